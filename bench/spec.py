"""One run specification: everything that determines a training run, and nothing else.

The CLI, the Snakefile and result rows are all made from ``RunSpec``s. ``run_id`` is a
stable hash of the canonical dict (sorted keys, JSON), identical in every process; result
rows carry ``flat()``, so a new key (a noise rate, a loss parameter) reaches the tables and
the statistics without any change in ``analysis``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bench.errors import LossbenchError

Params = tuple[tuple[str, Any], ...]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "multistep", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
NOISE_KEYS = ("kind", "rate", "mapping")
# spec fields that say where/how fast a run goes, not what it computes: not in run_id
EXECUTION_KEYS = ("device", "threads", "progress")
# spec values the stacked engine implements; any other value sends the grid to the per-model
# trainer (bench.train._run.stacked_refusal; bench.studies reads it without importing torch)
STACKED_SPEC = {"nesterov": False, "weight_decay": 0.0, "schedule": "constant",
                "augment": "none", "amp": False, "eval_every": 0, "save_predictions_at": ()}
REFERENCE_LOSS = "ce"  # the model forward's T-hat is estimated from (``forward`` without T)


def _params(value: Mapping[str, Any] | Iterable | None, where: str) -> Params:
    """Canonical, hashable form of a parameter dict: sorted (key, value) pairs."""
    if value is None:
        return ()
    items = dict(value).items() if not isinstance(value, Mapping) else value.items()
    out = []
    for key, v in sorted(items):
        if not isinstance(key, str) or not key.isidentifier():
            raise LossbenchError(f"{where}: parameter names must be identifiers; got {key!r}")
        if isinstance(v, list):
            v = tuple(v)
        out.append((key, v))
    return tuple(out)


def parse_param(text: str, where: str) -> tuple[str, Any]:
    """``"q=0.7"`` -> ``("q", 0.7)``: the value is read as YAML (numbers, bools, lists)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise LossbenchError(f"{where}: expected NAME=VALUE (e.g. q=0.7); got {text!r}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def parse_method(text: str) -> tuple[str, dict[str, Any]]:
    """``"gce(q=0.7)"`` -> ``("gce", {"q": 0.7})``: the inverse of ``RunSpec.method``."""
    loss, sep, rest = text.partition("(")
    if not sep:
        return text.strip(), {}
    if not rest.endswith(")"):
        raise LossbenchError(f"method {text!r}: expected ID or ID(NAME=VALUE, ...)")
    params = dict(parse_param(item.strip(), f"method {text!r}")
                  for item in rest[:-1].split(",") if item.strip())
    return loss.strip(), params


@dataclass(frozen=True)
class RunSpec:
    """A training run. Defaults are the mixing paper's UCI protocol (Battash et al. 2022)."""

    dataset: str
    model: str
    loss: str = "ce"
    protocol: str = "klambauer"
    fold: int = 0
    model_params: Params = ()
    loss_params: Params = ()
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    epochs: int = 50
    batch_size: int = 8
    augment: str = "none"
    noise: Params = ()
    seed: int = 0
    amp: bool = False
    eval_every: int = 0  # evaluate every N iterations too (0: once per epoch)
    save_predictions_at: tuple[int, ...] = ()
    device: str = "auto"
    threads: int = 1
    progress: bool = True
    extra: Params = field(default=())  # study-specific keys (kept, hashed, carried to rows)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("model_params", "loss_params", "noise", "extra"):
            set_(self, name, _params(getattr(self, name), f"spec field {name!r}"))
        set_(self, "milestones", tuple(int(m) for m in self.milestones))
        set_(self, "save_predictions_at", tuple(int(m) for m in self.save_predictions_at))
        self.validate()

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        """One line naming the field and what was expected (names are checked by registries)."""
        def bad(name: str, expected: str) -> LossbenchError:
            return LossbenchError(f"spec field {name!r}: expected {expected}; got "
                                  f"{getattr(self, name)!r}")

        for name in ("dataset", "model", "loss", "protocol"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(name, "a non-empty name")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", " or ".join(OPTIMIZERS))
        if self.schedule not in SCHEDULES:
            raise bad("schedule", ", ".join(SCHEDULES))
        if self.device not in DEVICES:
            raise bad("device", ", ".join(DEVICES))
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "a positive float")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", "a float in [0, 1)")
        if not self.weight_decay >= 0:
            raise bad("weight_decay", "a float >= 0")
        if not 0 < self.gamma <= 1:
            raise bad("gamma", "a float in (0, 1]")
        for name, low in (("epochs", 1), ("batch_size", 1), ("threads", 1), ("fold", 0),
                          ("seed", 0), ("eval_every", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad(name, f"an integer >= {low}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(
                not 0 < m < self.epochs for m in self.milestones):
            raise bad("milestones", f"increasing epochs in (0, {self.epochs})")
        if self.schedule == "multistep" and not self.milestones:
            raise bad("milestones", "at least one epoch for schedule 'multistep'")
        if any(not 0 < e <= self.epochs for e in self.save_predictions_at):
            raise bad("save_predictions_at", f"epochs in [1, {self.epochs}]")
        unknown = [k for k, _ in self.noise if k not in NOISE_KEYS]
        if unknown:
            raise bad("noise", f"keys from {', '.join(NOISE_KEYS)}")

    # -- dict forms ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (parameter pairs as dicts, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("model_params", "loss_params", "noise", "extra"):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "spec") -> RunSpec:
        """Inverse of ``to_dict``; unknown keys give one line naming them and the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LossbenchError(f"{where}: unknown field(s) {', '.join(unknown)}. Known fields: "
                                 f"{', '.join(f.name for f in fields(cls))}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except TypeError as err:
            raise LossbenchError(f"{where}: {err}") from None

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)

    @property
    def run_id(self) -> str:
        """Stable 16-hex-digit hash of what the run computes (execution keys excluded)."""
        data = {k: v for k, v in self.to_dict().items() if k not in EXECUTION_KEYS}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def method(self) -> str:
        """The compared method: the loss id with its parameters, e.g. ``gce(q=0.7)``."""
        if not self.loss_params:
            return self.loss
        return f"{self.loss}({', '.join(f'{k}={v}' for k, v in self.loss_params)})"

    def flat(self) -> dict[str, Any]:
        """One flat row: every scalar field, plus ``loss_<p>``, ``model_<p>``, ``noise_<k>``."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if key in ("model_params", "loss_params", "noise", "extra"):
                prefix = {"model_params": "model_", "loss_params": "loss_", "noise": "noise_",
                          "extra": ""}[key]
                out.update({f"{prefix}{k}": _cell(v) for k, v in value.items()})
            elif key not in EXECUTION_KEYS:
                out[key] = _cell(value)
        out["method"] = self.method
        return out


def _cell(value: Any) -> Any:
    return " ".join(map(str, value)) if isinstance(value, list | tuple) else value


def varying_keys(specs: Iterable[RunSpec]) -> list[str]:
    """Keys of ``flat()`` whose values differ between specs (the columns a table needs)."""
    rows = [s.flat() for s in specs]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1]


def load_spec_file(path: str) -> list[RunSpec]:
    """A YAML file holding one spec (a mapping) or several (a list of mappings)."""
    from bench.io import read_yaml

    data = read_yaml(path, f"{path}: cannot read spec file")
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) for i in items):
        raise LossbenchError(f"{path}: expected a mapping of spec fields or a list of them")
    return [RunSpec.from_dict(item, where=f"{path}[{i}]") for i, item in enumerate(items)]
