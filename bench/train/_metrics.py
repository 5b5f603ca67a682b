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
"""

from __future__ import annotations

import torch

TOP_K: tuple[int, ...] = (2, 5, 10)
ACC_AT: tuple[float, ...] = (0.01, 0.02, 0.03, 0.04, 0.05)


def metric_names(n_classes: int, super_class: torch.Tensor | None = None) -> list[str]:
    """Metric columns for one split; top-k only where ``C > k``; the super-class columns
    only with a ``super_class`` map."""
    names = ["acc"] + [f"top{k}" for k in TOP_K if n_classes > k]
    names += [f"acc_at_{a:g}" for a in ACC_AT] + ["mean_py"]
    if super_class is not None:
        names += ["superclass_acc"] + [f"superclass_acc_at_{a:g}" for a in ACC_AT]
    return names


def metric_sums(logits: torch.Tensor, target: torch.Tensor, n_classes: int,
                sample_dim: int = -2, super_class: torch.Tensor | None = None) -> torch.Tensor:
    """Sums over the ``n`` samples of each metric (divide by n later).

    ``logits`` ``[..., C]`` with the samples along ``sample_dim`` (``[..., n, C]`` by default);
    ``target`` broadcastable to ``logits.shape[:-1]`` (e.g. ``[n]``). Returns the shape of
    ``logits`` without the sample and class dims, plus a last dim of ``n_metrics``, in the
    order of ``metric_names(n_classes, super_class)``. Top-k counts a hit when fewer than k
    classes score strictly higher than the true class. ``super_class``: int64 ``[C]``, the
    super-class of each class (``super_class_map`` makes one from a dataset's map).
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
    return torch.stack([c.sum(sample_dim, dtype=torch.float32).squeeze(-1) for c in cols], -1)


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
