"""Per-model evaluation metrics, computed on stacked logits ``[..., n, C]`` under no_grad.

Close-enough accuracy follows Berlyand, Creese & Jabin (2021), "A novel multi-scale loss
function for classification problems in machine learning" (arXiv:2106.02676, J. Comput. Phys.
2023): an object counts as classified "close enough" at level ``delta`` when the probability of
its true class is within ``delta`` of the largest predicted probability,
``p_y >= max_j p_j - delta`` (``delta = 0`` is plain accuracy up to ties).
"""

from __future__ import annotations

import torch

TOP_K: tuple[int, ...] = (2, 5)
ACC_AT: tuple[float, ...] = (0.01, 0.02, 0.05)


def metric_names(n_classes: int) -> list[str]:
    """Metric columns for one split; top-k only where ``C > k`` (else it is trivially 1)."""
    names = ["acc"] + [f"top{k}" for k in TOP_K if n_classes > k]
    return names + [f"acc_at_{a:g}" for a in ACC_AT] + ["mean_py"]


def metric_sums(logits: torch.Tensor, target: torch.Tensor, n_classes: int,
                sample_dim: int = -2) -> torch.Tensor:
    """Sums over the ``n`` samples of each metric (divide by n later).

    ``logits`` ``[..., C]`` with the samples along ``sample_dim`` (``[..., n, C]`` by default);
    ``target`` broadcastable to ``logits.shape[:-1]`` (e.g. ``[n]``). Returns the shape of
    ``logits`` without the sample and class dims, plus a last dim of ``n_metrics``.
    Top-k counts a hit when fewer than k classes score strictly higher than the true class.
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
    return torch.stack([c.sum(sample_dim, dtype=torch.float32).squeeze(-1) for c in cols], -1)
