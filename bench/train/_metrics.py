"""Per-model evaluation metrics, computed on stacked logits ``[..., n, C]`` under no_grad.

The measures of Berlyand, Creese & Jabin (2021), "A novel multi-scale loss function for
classification problems in machine learning" (arXiv:2106.02676), Sec. 3.1-3.2:

- ``acc`` (eq. 11) and top-k accuracy, ``top{k}``: the true class is one of the k largest
  probabilities; k = 2, 5, 10 (Fig. 3 goes to k = 10 on CIFAR-100), each only where C > k
  (else it is trivially 1);
- close-enough accuracy ``acc_at_{at}``: ``p_y >= max_j p_j - at`` (Sec. 3.1), at = 0.01 ...
  0.05 (Fig. 2: "0.01 < at < 0.05"; at = 0 is plain accuracy up to ties);
- ``mean_py``: the mean probability of the true class;
- with a class -> super-class map (CIFAR-100's 20 groups of 5), ``superclass_acc`` (eq. 20:
  the arg-max class is in the super-class of y) and ``superclass_acc_at_{at}``. Fig. 7 shows
  close-enough performance "on the CIFAR100 data-set's super-classes" without a formula; we
  read it as eq. 20 with arg-max replaced as in acc_at: some class of y's super-class has
  ``p_i >= max_j p_j - at``. At at = 0 it is eq. 20 (up to ties).

And ``score``, a dataset's official metric (``dataset.meta["metric"]``: GLUE's Matthews
correlation for CoLA, F1 for MRPC and QQP, accuracy elsewhere), when it declares one. Such a
score is a function of the confusion matrix, which is not a per-sample mean, but the scores
registered here need only its margins and diagonal: per class k, the number of samples of
true class k, of predicted class k, and of both. Those are sums over samples, so they are
accumulated over batches (and chunks, and epochs stacked) like every other column:
``metric_sums(..., score=name)`` returns them in place of ``score`` (3 C columns at the end)
and ``metric_means`` turns the totals into the ``metric_names`` columns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.errors import LossbenchError

TOP_K: tuple[int, ...] = (2, 5, 10)
ACC_AT: tuple[float, ...] = (0.01, 0.02, 0.03, 0.04, 0.05)

# -- scores from per-class counts ---------------------------------------------------------------
#: name -> ``score(true, pred, hit)``; each argument ``[..., C]``: per class, the count (or any
#: common multiple of it, e.g. the fraction) of samples whose label is the class, whose arg-max
#: is, and of both. A score must not depend on the scale (counts or fractions give one value).
SCORES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {}


def register_score(name: str) -> Callable:
    """Register ``score(true, pred, hit) -> [...]`` as the metric a dataset may declare
    (``register_dataset(..., metric=name)`` or ``meta["metric"]``)."""
    def decorate(fn: Callable) -> Callable:
        if name in SCORES:
            raise LossbenchError(f"score {name!r} is already registered")
        SCORES[name] = fn
        return fn

    return decorate


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, 0 where ``den`` is 0 (sklearn's value for an undefined F1 or MCC)."""
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)


@register_score("accuracy")
def accuracy_score(true: torch.Tensor, pred: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    return _ratio(hit.sum(-1), true.sum(-1))


@register_score("f1")
def f1_score(true: torch.Tensor, pred: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """F1 of class 1, the positive class (GLUE's MRPC "equivalent", QQP "duplicate"):
    2 TP / (2 TP + FP + FN) = 2 hit_1 / (pred_1 + true_1)."""
    return _ratio(2 * hit[..., 1], pred[..., 1] + true[..., 1])


@register_score("mcc")
def mcc_score(true: torch.Tensor, pred: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """Matthews correlation, multi-class (Gorodkin 2004; sklearn's ``matthews_corrcoef``):
    (n c - sum_k p_k t_k) / sqrt((n^2 - sum_k p_k^2)(n^2 - sum_k t_k^2)); 0 when undefined."""
    n, c = true.sum(-1), hit.sum(-1)
    cov = n * c - (pred * true).sum(-1)
    return _ratio(cov, ((n * n - (pred * pred).sum(-1)) * (n * n - (true * true).sum(-1))).sqrt())


def check_score(score: str | None, where: str = "dataset.meta['metric']") -> str | None:
    """``score`` if registered (or None); else one line naming the known ones."""
    if score is not None and score not in SCORES:
        raise LossbenchError(f"{where}: unknown metric {score!r}. Known metrics: "
                             f"{', '.join(SCORES)} (bench.train.register_score adds one)")
    return score


def dataset_score(dataset) -> str | None:
    """The metric ``dataset`` declares (``meta["metric"]``, else its registration's
    ``metric=``), checked against ``SCORES``; None when it declares none (UCI, images: no
    ``score`` column, the tables stay as they were)."""
    from bench.data import dataset_metric

    meta = getattr(dataset, "meta", None) or {}
    name = meta.get("metric", dataset_metric(dataset.name))
    return check_score(name, f"dataset {dataset.name!r}: declared metric")


def metric_names(n_classes: int, super_class: torch.Tensor | None = None,
                 score: str | None = None) -> list[str]:
    """Metric columns for one split; top-k only where ``C > k``; the super-class columns
    only with a ``super_class`` map; ``score`` last when the dataset declares a metric."""
    names = ["acc"] + [f"top{k}" for k in TOP_K if n_classes > k]
    names += [f"acc_at_{a:g}" for a in ACC_AT] + ["mean_py"]
    if super_class is not None:
        names += ["superclass_acc"] + [f"superclass_acc_at_{a:g}" for a in ACC_AT]
    if score is not None:
        names.append("score")
    return names


def metric_sums(logits: torch.Tensor, target: torch.Tensor, n_classes: int,
                sample_dim: int = -2, super_class: torch.Tensor | None = None,
                score: str | None = None) -> torch.Tensor:
    """Sums over the ``n`` samples of each metric (``metric_means`` makes them means).

    ``logits`` ``[..., C]`` with the samples along ``sample_dim`` (``[..., n, C]`` by default);
    ``target`` broadcastable to ``logits.shape[:-1]`` (e.g. ``[n]``). Returns the shape of
    ``logits`` without the sample and class dims, plus a last dim of ``n_metrics``, in the
    order of ``metric_names(n_classes, super_class)``. Top-k counts a hit when fewer than k
    classes score strictly higher than the true class. ``super_class``: int64 ``[C]``, the
    super-class of each class (``super_class_map`` makes one from a dataset's map).
    With a ``score``, the last 3 C columns (in place of ``score``) count, per class, the
    samples of that label, of that arg-max, and of both.
    """
    logits = logits.float()
    target = target.expand(logits.shape[:-1]).unsqueeze(-1)
    true_logit = logits.gather(-1, target)  # [..., n, 1]
    max_logit, pred = logits.max(-1, keepdim=True)  # one pass for argmax and max
    cols = [(pred == target)]
    if any(n_classes > k for k in TOP_K):
        higher = (logits > true_logit).sum(-1, keepdim=True)
        cols += [higher < k for k in TOP_K if n_classes > k]
    # p_y and max_j p_j from log-sum-exp around the max already found (no softmax materialised)
    lse = (logits - max_logit).exp_().sum(-1, keepdim=True).log_().add_(max_logit)
    p_y = (true_logit - lse).exp_()
    p_max = (max_logit - lse).exp_()
    cols += [p_y >= p_max - a for a in ACC_AT]
    cols.append(p_y)
    if super_class is not None:
        group = super_class[target]  # [..., n, 1]: the super-class of y
        cols.append(super_class[pred] == group)
        same = super_class == group  # [..., n, C]: the classes of y's super-class
        best = logits.masked_fill(~same, float("-inf")).amax(-1, keepdim=True)
        p_group = (best - lse).exp_()
        cols += [p_group >= p_max - a for a in ACC_AT]
    sums = torch.stack([c.sum(sample_dim, dtype=torch.float32).squeeze(-1) for c in cols], -1)
    if score is None:
        return sums
    classes = torch.arange(n_classes, device=logits.device)
    true, predicted = target == classes, pred == classes  # [..., n, C] one-hot
    counts = [m.sum(sample_dim, dtype=torch.float32) for m in (true, predicted, true & predicted)]
    return torch.cat([sums, *counts], -1)


def metric_means(sums: torch.Tensor, n: int, n_classes: int,
                 score: str | None = None) -> torch.Tensor:
    """``metric_sums`` totals over ``n`` samples -> the ``metric_names`` columns: each sum / n
    (float32, as without a score), the per-class counts -> ``score`` (computed in float64 from
    the exact counts; the result is then float64)."""
    if score is None:
        return sums / n
    k = sums.shape[-1] - 3 * n_classes
    true, pred, hit = sums[..., k:].double().unflatten(-1, (3, n_classes)).unbind(-2)
    value = SCORES[score](true, pred, hit)
    return torch.cat([(sums[..., :k] / n).double(), value[..., None]], -1)


def super_class_map(values, n_classes: int, where: str = "dataset.meta['super_class']"
                    ) -> torch.Tensor:
    """A class -> super-class map as int64 ``[C]``; a class without one (< 0, e.g. absent from
    the data) becomes a super-class of its own."""
    import numpy as np

    from bench.errors import LossbenchError

    array = np.asarray(values)
    if array.shape != (n_classes,) or not np.issubdtype(array.dtype, np.integer):
        raise LossbenchError(f"{where}: expected {n_classes} integer super-class indexes (one "
                             f"per class); got shape {array.shape} of {array.dtype}")
    array = array.astype(np.int64)
    lone = array < 0
    array[lone] = array.max(initial=-1) + 1 + np.arange(int(lone.sum()))
    return torch.from_numpy(array)
