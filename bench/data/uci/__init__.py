"""The UCI-121 family: the Fernández-Delgado et al. (JMLR 2014) collection and its splits.

Registers the 121 collection names (``list_datasets("uci")``; ``miniboone`` is listed even
where a source lacks it, and loading it then says so) and the five split protocols:
``klambauer`` (the SNN split files: the mixing paper's protocol), ``klambauer4`` (all four
split columns), ``klambauer_swapped`` (train and test exchanged), ``holdout`` and ``kfold4``
(the collection's own index files, a seeded 25 % validation slice).
"""

from __future__ import annotations

from functools import partial

from bench.data._registry import register_dataset, register_open_family, register_protocol
from bench.data.uci import _protocols
from bench.data.uci._load import Dataset, load, load_klambauer, names
from bench.data.uci._names import COLLECTION
from bench.data.uci._status import dataset_status
from bench.errors import DatasetMissingError

__all__ = ["COLLECTION", "Dataset", "dataset_status", "load", "names"]

FAMILY = "uci"


def _loader(name: str, source=None, splits_source=None) -> Dataset:
    return load(name, source, splits_source)


for _name in COLLECTION:
    register_dataset(_name, family=FAMILY)(partial(_loader, _name))


def _open_loader(name: str, source, splits_source=None) -> Dataset | None:
    """A folder of the source in the collection's format, under a name of the user's own."""
    try:
        return load(name, source, splits_source)
    except DatasetMissingError:
        return None


register_open_family(FAMILY, _open_loader)


def _klambauer(columns: range, swapped: bool, ds: Dataset):
    folds, val_folds = load_klambauer(ds.name, ds.y, ds.splits_source)
    return _protocols.klambauer(folds, val_folds, ds.name, columns, swapped=swapped)


register_protocol("klambauer", families=(FAMILY,))(partial(_klambauer, range(1), False))
register_protocol("klambauer4", families=(FAMILY,))(partial(_klambauer, range(4), False))
register_protocol("klambauer_swapped", families=(FAMILY,))(partial(_klambauer, range(1), True))
register_protocol("holdout", families=(FAMILY,))(
    lambda ds: _protocols.holdout(*ds.conxuntos, ds.y, ds.name))
register_protocol("kfold4", families=(FAMILY,))(
    lambda ds: _protocols.kfold4(list(ds.kfold), ds.y, ds.name))
