"""A spec's label noise as the trainers see it: the labels a run trains on, and the true T.

``RunSpec.noise`` (keys ``kind``, ``rate``, ``mapping``; empty = clean) is drawn with
``bench.noise.corrupt_split`` from ``(dataset name, part, spec.seed, kind, rate)``, so a seed's
noisy labels are the same in every trainer, every process and every grid that holds the
spec; train and validation labels are noisy (model selection sees noise, as the GCE paper's
held-out 10 %, Sec. 4.2), test labels stay clean.

Forward correction with the true matrix ("Forward T" of the GCE paper's Table 1, after
Patrini et al. 2017) is the loss ``forward`` with the loss parameter ``T: true``: the runner
replaces ``true`` by the matrix the labels were drawn from (the identity for a clean spec).
Plain ``forward`` estimates T-hat from a CE model trained on the same (noisy) labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import LossbenchError

TRUE_T = "true"  # loss parameter value T: true -> the run's true transition matrix


@dataclass(frozen=True)
class RunLabels:
    """Labels of every dataset row for one (spec noise, seed): train/val noisy, test clean."""

    y: np.ndarray
    T: np.ndarray  # the true transition matrix T[i, j] = P(noisy j | clean i)
    realised_train: float  # share of training labels that changed


def noise_of(spec) -> tuple[str, float, str | None]:
    """``(kind, rate, mapping)`` of a spec; clean specs give ``("none", 0.0, None)``."""
    params = dict(spec.noise)
    if not params:
        return "none", 0.0, None
    if not isinstance(params.get("kind"), str):
        raise LossbenchError(f"spec field 'noise': expected a 'kind' (e.g. {{kind: uniform, "
                             f"rate: 0.4}}); got {params!r}")
    rate = params.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise LossbenchError(f"spec field 'noise': expected a float 'rate'; got {rate!r}")
    return params["kind"], float(rate), params.get("mapping")


def run_labels(dataset, spec, split) -> RunLabels:
    """The labels ``spec`` trains on (``corrupt_split`` with the spec's seed)."""
    n_classes = int(dataset.n_classes)
    y = np.asarray(dataset.y)
    if not spec.noise:
        return RunLabels(y, np.eye(n_classes), 0.0)
    from bench.noise import corrupt_split

    kind, rate, mapping = noise_of(spec)
    super_class = (getattr(dataset, "meta", None) or {}).get("super_class")
    y_noisy, T, info = corrupt_split(y, split, n_classes, kind, rate, seed=spec.seed,
                                     dataset_name=dataset.name, mapping=mapping,
                                     class_names=getattr(dataset, "class_names", None),
                                     super_class=super_class)
    return RunLabels(y_noisy, T, float(info["noise_realised_train"]))


class LabelView:
    """``dataset`` with other labels ``y`` (everything else read from ``dataset``): what the
    per-model trainer gets, so its batches, metrics and loss hooks (truncated Lq's pruning,
    forward's reference run) all see the noisy labels."""

    def __init__(self, dataset, y: np.ndarray) -> None:
        self._dataset, self.y = dataset, y

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


def wants_true_transition(spec) -> bool:
    """Whether the spec's loss asks for the true transition matrix (``T: true``)."""
    value = dict(spec.loss_params).get("T")
    return value is True or (isinstance(value, str) and value.lower() == TRUE_T)


def loss_params(spec, T: np.ndarray | None = None) -> dict[str, Any]:
    """The spec's loss parameters with ``T: true`` replaced by ``T`` (dropped when ``T`` is
    None: enough to check the other parameters before any data is read)."""
    params = dict(spec.loss_params)
    if not wants_true_transition(spec):
        return params
    params.pop("T")
    if T is not None:
        params["T"] = tuple(tuple(float(v) for v in row) for row in np.asarray(T))
    return params


def build_loss(spec, T: np.ndarray | None = None):
    """``make_loss`` of the spec, ``T: true`` resolved to ``T``."""
    from bench.losses import make_loss

    return make_loss(spec.loss, **loss_params(spec, T))


def resolved_spec(spec, T: np.ndarray):
    """The spec the per-model trainer runs: ``T: true`` written out as the matrix."""
    return spec.replace(loss_params=loss_params(spec, T)) if wants_true_transition(spec) else spec
