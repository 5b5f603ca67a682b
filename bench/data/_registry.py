"""Dataset and split-protocol registries, and the one Dataset protocol every family follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bench.errors import LossbenchError
from bench.registry import Registry

Split = tuple[np.ndarray, np.ndarray, np.ndarray]

DATASETS = Registry("dataset")
PROTOCOLS = Registry("split protocol")
# family -> fallback loader for names a source holds but the registry does not list
# (a UCI-format folder with a dataset of the user's own): loader(name, source, **options)
_OPEN_FAMILIES: dict[str, Callable[..., Any]] = {}


@runtime_checkable
class Dataset(Protocol):
    """What trainers and studies read from any dataset, tabular, image or text.

    ``X`` is ``[N, *input_shape]`` (float32 features, uint8 images, or token ids), ``y`` int64
    class indexes in ``[0, n_classes)``; ``splits(protocol)`` gives (train, val, test) index
    arrays into them, one triple per fold.
    """

    name: str
    family: str
    n_classes: int
    X: np.ndarray
    y: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def class_names(self) -> list[str] | None: ...

    def splits(self, protocol: str) -> list[Split]: ...


def register_dataset(name: str, *, family: str, **meta: Any) -> Callable:
    """Register ``loader(source=None, **options) -> Dataset`` under ``name``.

    ``metric="mcc"`` (any key of ``bench.train.SCORES``) declares the dataset's official score:
    the trainers then record ``<split>_score`` beside accuracy and select by ``val_score``
    (a loader's ``meta["metric"]`` does the same for one dataset object).
    """
    return DATASETS.register(name, family=family, **meta)


def register_open_family(family: str, loader: Callable[..., Any]) -> None:
    """Let ``get_dataset`` load unregistered names of ``family`` from an explicit source."""
    _OPEN_FAMILIES[family] = loader


def list_datasets(family: str | None = None) -> list[str]:
    """Registered dataset names (``list_datasets("uci")``: the 121 of the collection)."""
    return DATASETS.names(family)


def dataset_source_env(name: str) -> str | None:
    """The env variable that must name a source for ``name`` to load (None: it needs none,
    or its loader falls back to a public download, as UCI-121 does)."""
    meta = DATASETS.get(name).meta
    return None if meta.get("default_source") else meta.get("env")


def dataset_metric(name: str) -> str | None:
    """The official metric ``name`` was registered with (``register_dataset(..., metric=)``:
    a key of ``bench.train.SCORES``, e.g. ``mcc``), None for a name without one or unknown."""
    return DATASETS.get(name).meta.get("metric") if name in DATASETS else None


def dataset_source_envs(name: str) -> tuple[str, ...]:
    """Every env variable whose source ``name`` reads (an open-set dataset reads two), the
    one ``dataset_source_env`` names first; () when it needs none."""
    first = dataset_source_env(name)
    if first is None:
        return ()
    return (first, *DATASETS.get(name).meta.get("other_envs", ()))


def dataset_family(name: str) -> str:
    return DATASETS.get(name).family


def get_dataset(name: str, source: Any = None, **options: Any) -> Dataset:
    """Load dataset ``name`` from ``source`` (None: the family's env variable or default).

    A name the registry does not list is tried in each open family (UCI) when a source is
    given: a user's own folder in the collection's format needs no registration.
    """
    if not isinstance(name, str):
        raise LossbenchError(f"dataset name must be a str; got {type(name).__name__}")
    if name not in DATASETS and source is not None:
        for loader in _OPEN_FAMILIES.values():
            found = loader(name, source, **options)
            if found is not None:
                return found
    return DATASETS.get(name).builder(source=source, **options)


EPOCH_RULES = ("best", "last")


def register_protocol(name: str, *, families: tuple[str, ...] | None = None,
                      epoch: str = "best") -> Callable:
    """Register ``protocol(dataset) -> list[Split]``; ``families`` limits where it applies.

    ``epoch``: how a run's reported epoch is chosen: ``best`` by validation (the protocol has
    a validation part of its own), or ``last`` (a fixed number of epochs: the protocol's
    validation part is its test set, so choosing an epoch by it would be choosing by test).
    """
    if epoch not in EPOCH_RULES:
        raise LossbenchError(f"register_protocol({name!r}): epoch must be one of "
                             f"{', '.join(EPOCH_RULES)}; got {epoch!r}")
    return PROTOCOLS.register(name, family="any" if families is None else ",".join(families),
                              families=families, epoch=epoch)


def protocol_epoch(name: str) -> str:
    """``best`` or ``last``: how runs under protocol ``name`` choose their epoch."""
    return PROTOCOLS.get(name).meta["epoch"]


def list_protocols(family: str | None = None) -> list[str]:
    """Protocol names, optionally only those that apply to a dataset family."""
    out = []
    for name in PROTOCOLS.names():
        allowed = PROTOCOLS.get(name).meta["families"]
        if family is None or allowed is None or family in allowed:
            out.append(name)
    return out


def make_splits(dataset: Dataset, protocol: str) -> list[Split]:
    """Run a registered protocol on ``dataset``; one line if it does not apply."""
    entry = PROTOCOLS.get(protocol)
    allowed = entry.meta["families"]
    if allowed is not None and dataset.family not in allowed:
        raise LossbenchError(
            f"split protocol {protocol!r} does not apply to {dataset.family} dataset "
            f"{dataset.name!r}. Protocols for it: {', '.join(list_protocols(dataset.family))}"
        )
    return entry.builder(dataset)
