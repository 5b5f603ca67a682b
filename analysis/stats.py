"""Statistics over a block design (rows = datasets, columns = methods, higher = better).

Every function takes the wide score matrix already oriented so that higher is better
(`compare` negates lower-is-better scores once), so ranking code has a single direction.
Library routines are used where they exist (scipy, scikit-posthocs, baycomp); the tests
check them against the published formulas and worked examples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats
from statsmodels.stats.multitest import multipletests


def rank_matrix(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-dataset ranks, 1 = best; ties share the average rank (Demšar 2006)."""
    ranks = stats.rankdata(-scores.to_numpy(dtype=float), axis=1, method="average")
    return pd.DataFrame(ranks, index=scores.index, columns=scores.columns)


def wins(scores: pd.DataFrame) -> pd.Series:
    """Datasets on which a method matched or beat every other (ties count for all)."""
    best = scores.max(axis=1)
    return scores.eq(best, axis=0).sum(axis=0).astype(int)


def friedman(scores: pd.DataFrame) -> dict[str, float]:
    """Friedman chi^2 (tie-corrected, as scipy) and the Iman–Davenport F (Demšar 2006, eq. 2)."""
    n, k = scores.shape
    chi2, p = stats.friedmanchisquare(*scores.to_numpy(dtype=float).T)
    chi2 = float(chi2)
    if np.isnan(chi2):  # every dataset fully tied: no evidence of any difference
        chi2, p = 0.0, 1.0
    denom = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denom if denom > 0 else float("inf")
    f_p = float(stats.f.sf(f, k - 1, (k - 1) * (n - 1))) if np.isfinite(f) else 0.0
    return {
        "n_datasets": int(n), "n_methods": int(k), "chi2": chi2, "p_value": float(p),
        "iman_davenport_F": float(f), "iman_davenport_p": f_p,
    }


def conover_bh(scores: pd.DataFrame) -> pd.DataFrame:
    """Conover–Friedman pairwise p-values, Benjamini–Hochberg adjusted (the paper's Fig. 3)."""
    # scikit-posthocs ranks ascending; negate so rank 1 = best (p-values are symmetric anyway).
    p = sp.posthoc_conover_friedman(-scores.to_numpy(dtype=float), p_adjust="fdr_bh")
    p.index = p.columns = scores.columns
    return p


def nemenyi_cd(n_datasets: int, n_methods: int, alpha: float = 0.05) -> tuple[float, float]:
    """(q_alpha, critical difference) of the Nemenyi test (Demšar 2006, Sec. 3.2.2)."""
    q = float(stats.studentized_range.ppf(1 - alpha, n_methods, np.inf) / np.sqrt(2))
    cd = q * np.sqrt(n_methods * (n_methods + 1) / (6.0 * n_datasets))
    return q, float(cd)


def nemenyi_p(scores: pd.DataFrame) -> pd.DataFrame:
    """Nemenyi pairwise p-values (p < alpha exactly when |R_i - R_j| > CD)."""
    n, k = scores.shape
    mean_ranks = rank_matrix(scores).mean(axis=0).to_numpy()
    diff = np.abs(mean_ranks[:, None] - mean_ranks[None, :])
    q = diff * np.sqrt(2) / np.sqrt(k * (k + 1) / (6.0 * n))
    p = stats.studentized_range.sf(q, k, np.inf)
    np.fill_diagonal(p, 1.0)
    return pd.DataFrame(p, index=scores.columns, columns=scores.columns)


def performance_profile(
    scores: pd.DataFrame, higher_is_better: bool = True, n_points: int = 201
) -> pd.DataFrame:
    """Dolan–Moré profile: rho_m(tau) for each method (columns) over a tau grid (index).

    Higher is better (the mixing paper): rho_m(tau) = fraction of datasets with
    s_m >= tau * best, tau in [tau_min, 1]. Lower is better (Dolan & Moré 2002):
    rho_m(tau) = fraction with s_m <= tau * best, tau >= 1. Written as products, not
    ratios, so a best score of 0 works (ratio 1 for an equal score, never reached otherwise).
    `scores` here are in their original direction and must be non-negative.
    """
    s = scores.to_numpy(dtype=float)
    best = s.max(axis=1, keepdims=True) if higher_is_better else s.min(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(best != 0, s / best, np.where(s == best, 1.0, np.inf))
    finite = ratio[np.isfinite(ratio)]
    if higher_is_better:
        lo = min(1.0, float(np.floor(finite.min() * 100) / 100)) if finite.size else 0.0
        grid = np.linspace(lo, 1.0, n_points)
        rho = [(s >= t * best).mean(axis=0) for t in grid]
    else:
        hi = max(1.0, float(np.ceil(finite.max() * 100) / 100)) if finite.size else 1.0
        hi = hi if hi > 1.0 else 1.01
        grid = np.linspace(1.0, hi, n_points)
        rho = [(s <= t * best).mean(axis=0) for t in grid]
    grid = np.unique(np.concatenate([grid, np.clip(finite, grid[0], grid[-1])]))
    if higher_is_better:
        rho = [(s >= t * best).mean(axis=0) for t in grid]
    else:
        rho = [(s <= t * best).mean(axis=0) for t in grid]
    out = pd.DataFrame(np.array(rho), index=pd.Index(grid, name="tau"), columns=scores.columns)
    return out


def wilcoxon_holm(
    scores: pd.DataFrame, baseline: str, seed: int = 0, n_resamples: int = 9999,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Each method vs the baseline: Wilcoxon signed-rank p, Holm-adjusted p, bootstrap CIs.

    Differences are method - baseline in the oriented (higher = better) direction.
    """
    rows = []
    for j, method in enumerate(m for m in scores.columns if m != baseline):
        d = (scores[method] - scores[baseline]).to_numpy(dtype=float)
        if np.all(d == 0):
            stat, p = 0.0, 1.0
        else:
            res = stats.wilcoxon(d, zero_method="wilcox")
            stat, p = float(res.statistic), float(res.pvalue)
        row = {"method": method, "n_datasets": len(d), "wilcoxon_stat": stat, "p_value": p,
               "median_diff": float(np.median(d)), "mean_diff": float(np.mean(d))}
        for name, fn in (("median", np.median), ("mean", np.mean)):
            if np.all(d == d[0]):
                low = high = float(d[0])
            else:
                ci = stats.bootstrap(
                    (d,), fn, n_resamples=n_resamples, confidence_level=confidence,
                    method="percentile", rng=np.random.default_rng(seed + j),
                ).confidence_interval
                low, high = float(ci.low), float(ci.high)
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(4, "p_holm", multipletests(table["p_value"], method="holm")[1])
    return table


def bayes_signed_rank(
    scores: pd.DataFrame, baseline: str, rope: float = 0.5, seed: int = 0,
    n_samples: int = 50000,
) -> pd.DataFrame:
    """Bayesian signed-rank test of each method vs the baseline (Benavoli et al. 2017).

    Uses `baycomp.SignedRankTest` (Dirichlet-process posterior, prior weight 0.5 on a
    pseudo-observation at 0); P(better) = mass on method - baseline > rope.
    """
    import baycomp

    rows = []
    for method in (m for m in scores.columns if m != baseline):
        x = scores[method].to_numpy(dtype=float)
        y = scores[baseline].to_numpy(dtype=float)
        sample = baycomp.SignedRankTest.sample(
            x, y, rope=rope, nsamples=n_samples, random_state=seed
        )
        if rope == 0:  # baycomp then puts P(method better) in column 0, nothing in the rope
            sample[:, 1] = 0.0
        # baycomp: column 0 = y - x below -rope (method better), 2 = above rope (worse)
        winners = np.argmax(sample, axis=1)
        p_better, p_rope, p_worse = np.bincount(winners, minlength=3) / len(winners)
        rows.append({"method": method, "rope": rope, "p_better": float(p_better),
                     "p_rope": float(p_rope), "p_worse": float(p_worse),
                     "mean_diff": float(np.mean(x - y))})
    return pd.DataFrame(rows)
