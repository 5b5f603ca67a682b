"""Fig. 1 of the mixing paper: |dL/dq_y| against p_y for CE, EL and alpha CE + beta EL mixes.

Computed by autograd from the implemented losses (``bench.losses``), not from re-typed
formulas: for each p_y a 2-class logit vector (0, log(p_y / (1 - p_y))) has target
probability p_y, and the gradient w.r.t. the target logit q_y is read off.

    lossbench figure gradients --out results/figures/gradients.png   # and gradients.svg
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.figures import register_figure

#: (label, loss id, make_loss parameters) of the curves, after the paper's Fig. 1.
CURVES: list[tuple[str, str, dict[str, Any]]] = [
    ("CE", "ce", {}),
    ("EL", "el", {}),
    ("CE + EL (α = β = 1)", "ce_el", {"F": [0.0]}),
    *[(f"α = 1, β = 1/(1−2F), F = {F:g}", "ce_el", {"F": [F]}) for F in (0.1, 0.2, 0.3, 0.4)],
]


def target_gradient(loss_id: str, p_y: np.ndarray, **params: Any) -> np.ndarray:
    """|dL/dq_y| at each target probability in ``p_y`` (open interval (0, 1)), by autograd."""
    import torch

    from bench.losses import make_loss

    loss = make_loss(loss_id, **params)
    p = torch.as_tensor(p_y, dtype=torch.float64)
    q = torch.stack([torch.zeros_like(p), torch.log(p) - torch.log1p(-p)], dim=-1)
    q.requires_grad_(True)
    target = torch.ones(p.shape, dtype=torch.int64)
    (grad,) = torch.autograd.grad(loss(q, target).sum(), q)
    return grad[:, 1].abs().numpy()


def gradient_curves(n_points: int = 999) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """p_y grid and one |dL/dq_y| curve per entry of ``CURVES``."""
    p_y = np.linspace(0.0, 1.0, n_points + 2)[1:-1]
    return p_y, {label: target_gradient(i, p_y, **kw) for label, i, kw in CURVES}


def plot_gradients(p_y: np.ndarray, curves: dict[str, np.ndarray], ax: Any = None) -> Any:
    """Draw the curves on ``ax`` (a new figure if None) and return it."""
    import matplotlib
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(9.0, 4.8), constrained_layout=True).add_subplot()
    styles = {"CE": ("black", "-", 2.2), "EL": ("tab:gray", "--", 2.2)}
    mixes = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(curves) - 2))
    k = 0
    for label, g in curves.items():
        if label in styles:
            color, ls, lw = styles[label]
        else:
            color, ls, lw = mixes[k], "-", 1.6
            k += 1
        ax.plot(p_y, g, color=color, linestyle=ls, linewidth=lw, label=label)
        if label not in styles:
            i = int(np.argmax(g))
            ax.plot(p_y[i], g[i], "o", color=color, markersize=4)
    ax.set_xlabel("probability of the true class $p_y$")
    ax.set_ylabel(r"$|\partial L / \partial q_y|$")
    ax.set_title("Gradient magnitude w.r.t. the true-class logit (dots: maxima at $p_y = F$)",
                 fontsize=10)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


@register_figure("gradients", family="mixing")
def make_figure() -> Any:
    """Fig. 1 of Battash, Hazan, Wolf (AAAI 2022) from the implemented CE, EL and mixes."""
    p_y, curves = gradient_curves()
    return plot_gradients(p_y, curves).figure
