"""Study files (``config/studies/<name>.yaml``): the grid of one experiment, expanded to jobs.

A study names datasets (a list, or ``{collection: uci121}``: every dataset of a collection
that the configured source holds; the workflow's availability checkpoint drops and reports the
missing ones), models, losses, seeds and lrs, the training settings (``train:``,
``lossbench train`` flags), and which axes make one job (``job:``; the other axes run inside
the job, where the stacked engine or one process can share them). Values may depend on the
dataset (``seeds: {cifar100: [...]}``, ``per_dataset:``, ``per_model_dataset:``), and
``variants:`` adds a named axis of extra settings (the mixing paper's Table 6);
``group_by:`` (result columns, e.g. ``[noise_kind, noise_rate]``) makes the analysis one per
value of those columns (``lossbench analyze --group-by``). The workflow
(``workflow/rules/studies.smk``) turns each job into one ``lossbench train`` call; this module
holds that logic so it is tested, not buried in a Snakefile.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import LossbenchError
from bench.io import read_yaml
from bench.spec import REFERENCE_LOSS, STACKED_SPEC, parse_method


def _uci121() -> list[str]:
    from bench.data import names

    return names()


#: dataset collections a study may name (``datasets: {collection: NAME}``) -> their names
COLLECTIONS: dict[str, Callable[[], list[str]]] = {"uci121": _uci121}

AXES = ("dataset", "model", "loss", "seed", "variant")
# what a study's analysis may rank (``score:``; columns of ``lossbench select``'s output):
# accuracy, or each dataset's official metric (needs datasets that declare one)
SCORE_COLUMNS = ("test_acc_pct", "test_score_pct")
# what ``metrics:`` may rank besides: the test set's top-k, close-enough and super-class
# accuracies in percent (the two-scale paper's measures, Sec. 3.1), one analysis each
METRIC_COLUMNS = re.compile(r"test_(acc|top\d+|acc_at_[0-9.]+|superclass_acc(_at_[0-9.]+)?)_pct")
# study figures the workflow draws (``figures:``; rules in workflow/rules/studies.smk)
FIGURES = ("noise_curves", "q_sweep", "two_scale_curves")
REQUIRED = ("title", "results", "datasets", "models", "losses", "seeds", "lrs", "job", "train")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Job:
    """One ``lossbench train`` call of a study."""

    id: str
    dataset: str
    args: tuple[str, ...]


@dataclass
class Study:
    name: str
    path: Path
    config: dict[str, Any] = field(repr=False)

    @property
    def gpu(self) -> bool:
        return bool(self.config.get("gpu", False))

    @property
    def collection(self) -> str | None:
        """The collection the study ranges over (``datasets: {collection: uci121}``), or None."""
        datasets = self.config["datasets"]
        return datasets["collection"] if isinstance(datasets, dict) else None

    @property
    def max_samples(self) -> int | None:
        """``datasets: {collection: ..., max_samples: N}``: the collection's datasets of at most
        N samples run; larger ones are listed as excluded (None: no cap)."""
        datasets = self.config["datasets"]
        return datasets.get("max_samples") if isinstance(datasets, dict) else None

    @property
    def datasets(self) -> list[str]:
        """The named datasets, or every dataset of the collection (available or not)."""
        if self.collection is not None:
            return list(COLLECTIONS[self.collection]())
        return list(self.config["datasets"])

    @property
    def metrics(self) -> list[str]:
        """``metrics:``: the percent columns analysed one by one beside ``score`` (each with its
        Table 4, Friedman, Conover-BH, CD diagram and profile)."""
        return [str(m) for m in self.config.get("metrics", [])]

    @property
    def ranked_metrics(self) -> list[str]:
        """What the per-metric analysis ranks: the score first, then ``metrics:``."""
        return list(dict.fromkeys([self.score_col, *self.metrics]))

    @property
    def score_col(self) -> str:
        """The column the study's analysis ranks (``score:``, default ``test_acc_pct``)."""
        return str(self.config.get("score", SCORE_COLUMNS[0]))

    def _per(self, key: str, dataset: str) -> Any:
        """A value that may be given per dataset (``{dataset: value}``)."""
        value = self.config[key]
        if isinstance(value, dict):
            if dataset not in value:
                raise LossbenchError(f"{self.path}: '{key}' has no entry for dataset {dataset!r}")
            return value[dataset]
        return value

    def settings(self, dataset: str, model: str, variant: str | None) -> dict[str, Any]:
        """``lossbench train`` settings of one (dataset, model, variant), later keys winning."""
        out = dict(self.config["train"])
        out.update(self.config.get("per_dataset", {}).get(dataset, {}))
        out.update(self.config.get("per_model_dataset", {}).get(dataset, {}).get(model, {}))
        if variant is not None:
            out.update(self.config["variants"][variant])
        return out

    def jobs(self, sources: dict[str, str] | None = None,
             datasets: list[str] | None = None) -> list[Job]:
        """Every job, in a stable order; ``sources`` maps dataset -> ``--source`` value;
        ``datasets`` keeps the jobs of these datasets only (the available ones)."""
        axes = list(self.config["job"])
        keep = None if datasets is None else set(datasets)
        out = []
        for dataset in self.datasets:
            if keep is not None and dataset not in keep:
                continue
            values = {"dataset": [dataset], "model": self._per("models", dataset),
                      "loss": list(self.config["losses"]), "seed": self._per("seeds", dataset),
                      "variant": list(self.config.get("variants", {})) or [None]}
            inner = {a: v for a, v in values.items() if a not in axes}
            for combo in itertools.product(*(values[a] for a in axes)):
                picked = dict(zip(axes, combo, strict=True))
                model = picked.get("model")
                variant = picked.get("variant")
                job_id = "__".join(_SAFE.sub("_", str(picked[a])) for a in axes)
                args = self._train_args(dataset, picked, inner, variant, model, sources or {})
                out.append(Job(job_id, dataset, args))
        return out

    def _train_args(self, dataset, picked, inner, variant, model, sources) -> tuple[str, ...]:
        models = [model] if model is not None else inner["model"]
        losses = [picked["loss"]] if "loss" in picked else inner["loss"]
        seeds = [picked["seed"]] if "seed" in picked else inner["seed"]
        settings = self.settings(dataset, models[0], variant)
        args = ["--dataset", dataset, "--model", ",".join(models), "--losses", ",".join(losses),
                "--seeds", ",".join(map(str, seeds)),
                "--lrs", ",".join(map(str, self.config["lrs"]))]
        for loss_id in dict.fromkeys(parse_method(m)[0] for m in losses):
            for key, value in self.config.get("loss_params", {}).get(loss_id, {}).items():
                args += ["--loss-param", f"{loss_id}:{key}={value}"]
        for key, value in settings.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                args += [flag] if value else []
            elif isinstance(value, list) and key in ("model_param", "loss_param"):
                for item in value:
                    args += [flag, str(item)]
            elif isinstance(value, list):
                args += [flag, ",".join(map(str, value))]
            else:
                args += [flag, str(value)]
        if dataset in sources:
            args += ["--source", sources[dataset]]
        return tuple(args)

    def methods(self) -> list[str]:
        """The method names the result tables carry, in the study's order: each loss id or
        variant (``forward(T=true)``) with the study-wide ``loss_params`` of its id, written as
        ``RunSpec.method`` writes them (``forward(T=True)``, ``gce(q=0.5)``)."""
        from bench.spec import RunSpec

        out = []
        for method in self.config["losses"]:
            loss_id, inline = parse_method(str(method))
            params = {**self.config.get("loss_params", {}).get(loss_id, {}), **inline}
            out.append(RunSpec(dataset="-", model="-", loss=loss_id, loss_params=params).method)
        return out

    def records_t_hat(self) -> bool:
        """Whether its train jobs write ``transitions.csv`` (forward's T-hat estimates beside
        the true T, collected by the workflow): plain ``forward`` (no T) and its CE reference
        train in one job (``loss`` is no job axis) on the stacked engine, i.e. a CPU study
        whose settings ask for nothing the stack lacks (``bench.train._run``). Otherwise the
        per-model trainer estimates T-hat inside the loss and records none. Models are not
        checked (that needs torch): a job that trained forward per model and wrote no
        ``transitions.csv`` stops ``lossbench transitions`` with one line naming it."""
        methods = self.methods()
        if ("forward" not in methods or REFERENCE_LOSS not in methods
                or "loss" in self.config["job"] or self.gpu):
            return False
        overrides = [*self.config.get("per_dataset", {}).values(),
                     *(s for per in self.config.get("per_model_dataset", {}).values()
                       for s in per.values()),
                     *self.config.get("variants", {}).values()]
        return all(_stacked_settings(s) for s in [self.config["train"], *overrides])

    def data_status(self, sources: dict[str, str] | None = None) -> tuple[bool, str]:
        """(configured, reason): every dataset has a source (config, env) or needs none."""
        from bench.data import dataset_source_env

        missing = []
        for name in self.datasets:
            env = dataset_source_env(name)
            if env and not (sources or {}).get(name) and not os.environ.get(env):
                missing.append(f"{name} ({env})" if len(self.datasets) < 4 else env)
        missing += [f"model files ({env})" for env in self.config.get("requires_env", [])
                    if not os.environ.get(env)]
        if missing:
            return False, "data not configured: " + ", ".join(dict.fromkeys(missing))
        return True, ""


def _stacked_settings(settings: dict[str, Any]) -> bool:
    """Train settings (or a partial override) the stacked engine runs as they are."""
    if settings.get("trainer", "auto") == "torch" or settings.get("device") in ("cuda", "mps"):
        return False
    for key, value in STACKED_SPEC.items():
        given = settings.get(key, value)
        if (tuple(given) if isinstance(given, list) else given) != value:
            return False
    return True


def load_study(name: str, folder: str | os.PathLike) -> Study:
    """Read and check ``folder/name.yaml``; one line for a missing file or key."""
    path = Path(folder) / f"{name}.yaml"
    config = read_yaml(path, f"study {name!r}: cannot read {path}")
    if not isinstance(config, dict):
        raise LossbenchError(f"{path}: expected a mapping of study keys")
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise LossbenchError(f"{path}: missing key(s) {', '.join(missing)}")
    _check_datasets(config["datasets"], path)
    bad = [a for a in config["job"] if a not in AXES]
    if bad or "dataset" not in config["job"]:
        raise LossbenchError(f"{path}: 'job' must list axes from {', '.join(AXES)} including "
                             f"dataset; got {config['job']}")
    group_by = config.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(c, str) for c in group_by):
        raise LossbenchError(f"{path}: 'group_by' must be a list of result columns (e.g. "
                             f"[noise_kind, noise_rate]); got {group_by!r}")
    unknown = [f for f in config.get("figures", []) if f not in FIGURES]
    if unknown:
        raise LossbenchError(f"{path}: unknown figure(s) {', '.join(map(str, unknown))} in "
                             f"'figures'; known: {', '.join(FIGURES)}")
    if "variant" in config["job"] and not config.get("variants"):
        raise LossbenchError(f"{path}: 'job' names variant but 'variants' is empty")
    study = Study(name, path, config)
    _check_score(study)
    bad = [m for m in study.metrics if not METRIC_COLUMNS.fullmatch(m)]
    if bad or not isinstance(config.get("metrics", []), list):
        raise LossbenchError(f"{path}: 'metrics' must be a list of test_acc_pct, "
                             f"test_top<k>_pct, test_acc_at_<at>_pct or test_superclass_acc"
                             f"[_at_<at>]_pct; got {config.get('metrics')!r}")
    return study


def _check_score(study: Study) -> None:
    """``score:`` is a column the analysis gets; the official one needs every dataset to
    declare its metric (``register_dataset(..., metric=)``)."""
    from bench.data import dataset_metric

    if study.score_col not in SCORE_COLUMNS:
        raise LossbenchError(f"{study.path}: 'score' must be one of {', '.join(SCORE_COLUMNS)}; "
                             f"got {study.score_col!r}")
    if study.score_col == "test_score_pct":
        bare = [d for d in study.datasets if dataset_metric(d) is None]
        if bare:
            raise LossbenchError(f"{study.path}: 'score: test_score_pct' ranks each dataset's "
                                 f"official metric, but {', '.join(bare)} declare(s) none; use "
                                 "test_acc_pct")


def _check_datasets(value: Any, path: Path) -> None:
    """``datasets``: a non-empty list of names or ``{collection: NAME}`` of a known collection
    (optionally ``max_samples: N``: only its datasets of at most N samples)."""
    if isinstance(value, dict):
        if not {"collection"} <= set(value) <= {"collection", "max_samples"} \
                or value["collection"] not in COLLECTIONS:
            raise LossbenchError(
                f"{path}: 'datasets' must be a list of names or {{collection: NAME}} with NAME "
                f"one of {', '.join(COLLECTIONS)} (and optionally max_samples: N); got {value!r}")
        cap = value.get("max_samples")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise LossbenchError(f"{path}: 'datasets: max_samples' must be a positive integer; "
                                 f"got {cap!r}")
    elif not isinstance(value, list) or not value or not all(isinstance(d, str) for d in value):
        raise LossbenchError(f"{path}: 'datasets' must be a non-empty list of names or "
                             f"{{collection: NAME}}; got {value!r}")
