"""bench.data: every dataset and split protocol behind one registry.

``get_dataset(name, source=None, **options)`` -> a ``Dataset`` (``name, family, n_classes,
input_shape, X, y, class_names, splits(protocol)``); ``list_datasets(family=None)``;
``register_dataset`` / ``register_protocol`` for new ones. Importing this package imports
each family package (``uci``, ``images``, ``text``), then any user module in this folder whose
name does not start with ``_`` (README: "Add your own dataset").
"""

import importlib as _importlib

from bench.data._registry import (
    Dataset,
    Split,
    dataset_family,
    dataset_metric,
    dataset_source_env,
    dataset_source_envs,
    get_dataset,
    list_datasets,
    list_protocols,
    make_splits,
    protocol_epoch,
    register_dataset,
    register_protocol,
)
from bench.data.arrays import ArrayDataset
from bench.data.uci import dataset_status, load, names
from bench.data.uci._protocols import UCI_PROTOCOLS

#: the UCI protocols, in the order the README lists them (kept for old callers)
PROTOCOLS: tuple[str, ...] = UCI_PROTOCOLS

__all__ = ["PROTOCOLS", "ArrayDataset", "Dataset", "Split", "dataset_family",
           "dataset_metric", "dataset_source_env", "dataset_source_envs", "dataset_status",
           "get_dataset", "list_datasets", "list_protocols", "load", "make_splits", "names",
           "protocol_epoch", "register_dataset", "register_protocol"]

FAMILIES = ("uci", "images", "text")

for _name in FAMILIES[1:]:
    try:
        _importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _err:  # a family package not written yet
        if _err.name != f"{__name__}.{_name}":
            raise

from bench.registry import import_user_modules as _import_user_modules  # noqa: E402

_import_user_modules(__name__, __path__, skip=(*FAMILIES, "arrays", "perf"))
