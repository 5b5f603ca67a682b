"""Figures of a `Comparison`: critical-difference diagrams and the performance profile.

Plot functions take an `ax`, draw and return it (scikit-posthocs / sklearn convention);
`tables.write_outputs` chooses paths. Colours and order come from the `Comparison`, so a
method looks the same in every figure and every group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from analysis._compare import Comparison

# Figures are built on `matplotlib.figure.Figure`, not pyplot: no backend is switched and
# nothing stays open, so this is safe inside notebooks and batch runs alike.
# line styles cycle with the colours so overlapping profile curves stay distinguishable
_STYLES = ("-", "--", "-.", ":")


def cd_diagram(result: Comparison, ax: Axes, test: str = "conover") -> Axes:
    """Demšar-style critical-difference diagram on the mean-rank axis (1 = best, left).

    `test="conover"`: bars join maximal groups of methods whose pairwise Conover–BH p-values
    are all >= alpha (the paper's Fig. 3). `test="nemenyi"`: the same from Nemenyi p-values
    (i.e. rank differences below the CD), plus the CD bar, as in Demšar (2006), Fig. 1.
    Drawn by scikit-posthocs' `critical_difference_diagram`, which computes exactly these
    groups (maximal cliques of the non-significance graph).
    """
    import pandas as pd
    import scikit_posthocs as sp

    alpha = result.settings["alpha"]
    if test == "conover":
        p = result.conover_bh
        title = f"Conover–Friedman post-hoc, BH-adjusted (α = {alpha:g})"
        cd = None
    elif test == "nemenyi":
        p = result.nemenyi_p
        title = f"Nemenyi (α = {alpha:g}), CD = {result.nemenyi_cd:.3f}"
        cd = result.nemenyi_cd
    else:
        raise ValueError(f"test must be 'conover' or 'nemenyi'; got {test!r}")
    lab = result.labels
    mean_rank = result.rank_matrix.mean(axis=0)
    ranks = pd.Series({lab[m]: float(mean_rank[m]) for m in result.methods})
    sig = p.rename(index=lab, columns=lab)
    colors = {lab[m]: result.colors[m] for m in result.methods}
    sp.critical_difference_diagram(
        ranks, sig, alpha=alpha, ax=ax, color_palette=colors,
        label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}",
        label_props={"fontsize": 10}, marker_props={"s": 30},
        crossbar_props={"linewidth": 3, "color": "0.25", "solid_capstyle": "round"},
        text_h_margin=0.3,
    )
    k = len(result.methods)
    ax.set_xlim(0.5, k + 0.5)
    ax.set_xticks(np.arange(1, k + 1))
    ax.tick_params(axis="x", labelsize=9)
    if cd is not None:
        # Demšar's CD bar, above the tick labels from rank 1 (scikit-posthocs would draw it
        # at the best method's rank, across the tick labels)
        bottom, _ = ax.get_ylim()
        ax.set_ylim(bottom, 2.6)
        x0 = 1.0
        ax.plot([x0, x0 + cd], [1.6, 1.6], color="k", linewidth=1.5)
        for x in (x0, x0 + cd):
            ax.plot([x, x], [1.45, 1.75], color="k", linewidth=1.5)
        ax.text(x0 + cd / 2, 1.9, f"CD = {cd:.3f}", ha="center", va="bottom", fontsize=9)
    ax.set_title(f"{title}\nmean rank over {len(result.scores)} datasets (1 = best)",
                 fontsize=10, pad=12)
    return ax


def cd_figure(result: Comparison, test: str = "conover") -> Figure:
    """A figure sized for the number of methods, holding one `cd_diagram`."""
    from matplotlib.figure import Figure

    k = len(result.methods)
    fig = Figure(figsize=(8, 1.6 + 0.32 * k))
    ax = fig.subplots()
    cd_diagram(result, ax, test=test)
    return fig


def profile_plot(result: Comparison, ax: Axes) -> Axes:
    """Dolan–Moré performance profile, one step curve per method."""
    prof = result.profile
    assert prof is not None, "no performance profile (negative scores)"
    higher = result.settings["higher_is_better"]
    tau = prof.index.to_numpy()
    for i, m in enumerate(result.methods):
        ax.step(tau, prof[m].to_numpy(), where="post" if not higher else "pre",
                color=result.colors[m], linestyle=_STYLES[i % len(_STYLES)], linewidth=1.8,
                label=result.labels[m])
    if higher:
        ax.set_xlabel("τ (score ≥ τ × best score on the dataset)")
        ax.set_xlim(tau[0], 1.0)
    else:
        ax.set_xlabel("τ (score ≤ τ × best score on the dataset)")
        ax.set_xlim(1.0, tau[-1])
    ax.set_ylabel("fraction of datasets ρ(τ)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    return ax


def profile_figure(result: Comparison) -> Figure:
    """Full-range profile and, when the range is wide, a zoom near τ = 1 where curves part."""
    from matplotlib.figure import Figure

    prof = result.profile
    assert prof is not None, "no performance profile (negative scores)"
    higher = result.settings["higher_is_better"]
    tau = prof.index.to_numpy()
    # zoom on the part where the curves separate: up to where every method still covers
    # 90 % of the datasets (higher), or from 1 to where all first reach 90 % (lower)
    covered = (prof.min(axis=1) >= 0.9).to_numpy()
    zoom = None
    if covered.any():
        if higher:
            z = float(tau[covered].max())
            if tau[0] + 0.25 * (1 - tau[0]) < z < 1.0:
                zoom = (z - 0.05 * (1 - z), 1.0)
        else:
            z = float(tau[covered].min())
            if 1.0 < z < 1.0 + 0.75 * (tau[-1] - 1):
                zoom = (1.0, z + 0.1 * (z - 1))
    if zoom is None:
        fig = Figure(figsize=(7, 4.5))
        ax = fig.subplots()
        axes = [ax]
        profile_plot(result, ax)
    else:
        fig = Figure(figsize=(12, 4.5))
        axes = fig.subplots(1, 2)
        profile_plot(result, axes[0])
        profile_plot(result, axes[1])
        axes[1].set_xlim(*zoom)
        axes[1].set_title(f"zoom: τ in [{zoom[0]:.3f}, {zoom[1]:.3f}]", fontsize=10)
        axes[1].set_ylabel("")
    # curves start high on the left (higher) or low on the left (lower): the free corner
    axes[0].legend(loc="lower left" if higher else "lower right", fontsize=9, framealpha=0.9)
    fig.suptitle(f"Performance profile over {len(result.scores)} datasets "
                 f"({result.settings['score_col']})", fontsize=11)
    fig.tight_layout()
    return fig
