"""Split protocols: turn the collection's index files into (train, val, test) index triples.

All randomness is seeded from the dataset name (zlib.crc32), so every loss and seed sees the
same split, in every process and on every machine.
"""

from __future__ import annotations

import zlib

import numpy as np

Split = tuple[np.ndarray, np.ndarray, np.ndarray]

UCI_PROTOCOLS: tuple[str, ...] = ("klambauer", "klambauer4", "klambauer_swapped", "holdout",
                                   "kfold4")
VAL_FRACTION = 0.25


def name_seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def carve_validation(train: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``train`` into (train, val) with 25 % in val, stratified when every class allows it.

    Stratification (scikit-learn) needs >= 2 rows per class and at least one val row per
    class; otherwise (tiny datasets) the slice is drawn unstratified. Both parts stay non-empty.
    """
    from sklearn.model_selection import train_test_split

    n_val = max(1, int(round(VAL_FRACTION * train.size)))
    n_val = min(n_val, train.size - 1)
    labels = y[train]
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    fits = counts.min() >= 2 and counts.size <= min(n_val, train.size - n_val)
    stratify = labels if fits else None
    fit, val = train_test_split(train, test_size=n_val, random_state=seed % (2**32),
                                stratify=stratify)
    return np.sort(fit), np.sort(val)


def ensure_nonempty(split: Split, seed: int) -> Split:
    """Move one row (chosen by ``seed``) into any empty set, taking from the largest set.

    Only tiny datasets need it (a split file can leave validation empty); the change is
    deterministic and documented in the README.
    """
    sets = [np.asarray(s, dtype=np.int64) for s in split]
    rng = np.random.default_rng(seed)
    for i in range(3):
        if sets[i].size == 0:
            donor = max(range(3), key=lambda j: sets[j].size)
            pick = int(rng.integers(sets[donor].size))
            sets[i] = sets[donor][pick : pick + 1]
            sets[donor] = np.delete(sets[donor], pick)
    return sets[0], sets[1], sets[2]


def klambauer(folds: np.ndarray, val_folds: np.ndarray, name: str, columns: range,
              swapped: bool = False) -> list[Split]:
    """SNN convention: test = folds==1, val = validation_folds==1, train = rest (or swapped)."""
    out = []
    for col in columns:
        marked = folds[:, col] == 1
        val = val_folds[:, col] == 1
        rest = ~marked & ~val
        train, test = (marked, rest) if swapped else (rest, marked)
        split = tuple(np.flatnonzero(m).astype(np.int64) for m in (train, val, test))
        out.append(ensure_nonempty(split, name_seed(name, "klambauer", str(col))))
    return out


def holdout(conx_train: np.ndarray, conx_test: np.ndarray, y: np.ndarray, name: str) -> list[Split]:
    """Fernández-Delgado tuning split: test = conxuntos line 2, val carved from line 1."""
    train, val = carve_validation(conx_train, y, name_seed(name))
    return [(train, val, np.sort(conx_test))]


def kfold4(kfold: list[np.ndarray], y: np.ndarray, name: str) -> list[Split]:
    """The 4 random 75/25 pairs of conxuntos_kfold.dat, each with its own val slice."""
    out = []
    for k in range(4):
        train, val = carve_validation(kfold[2 * k], y, name_seed(name, "kfold4", str(k)))
        out.append((train, val, np.sort(kfold[2 * k + 1])))
    return out
