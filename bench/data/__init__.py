"""UCI-121 data layer: load, validate, cache and split the Fernández-Delgado collection.

Public API (contract in CONTRIBUTING.md): ``names``, ``load``, ``Dataset``, ``PROTOCOLS``,
``dataset_status``.
"""

from bench.data._load import Dataset, load, names
from bench.data._protocols import PROTOCOLS
from bench.data._status import dataset_status

__all__ = ["PROTOCOLS", "Dataset", "dataset_status", "load", "names"]
