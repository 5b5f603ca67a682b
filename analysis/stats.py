"""Statistics over a block design (rows = datasets, columns = methods).

Rank-based functions take the wide score matrix already oriented so that higher is better
(`compare` negates lower-is-better scores once), so ranking code has a single direction.
Library routines are used where they exist (scipy, scikit-posthocs, statsmodels, baycomp);
tests/unit/test_analysis_stats.py checks them against published worked examples and
independent implementations of the formulas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from bench.errors import LossbenchError

#: the Friedman test ranks k >= 3 methods; two are compared by Wilcoxon and the sign test
MIN_FRIEDMAN_METHODS = 3


def rank_matrix(scores: pd.DataFrame, ties: str = "average") -> pd.DataFrame:
    """Per-dataset ranks, 1 = best; ties share the average rank (Demšar 2006, Sec. 3.2.2).

    ``ties="min"`` gives tied methods the best of their ranks instead: the convention the
    mixing paper's Table 4 implies (its mean ranks sum to less than 1 + ... + k).
    """
    ranks = stats.rankdata(-scores.to_numpy(dtype=float), axis=1, method=ties)
    return pd.DataFrame(ranks, index=scores.index, columns=scores.columns)


def wins(scores: pd.DataFrame) -> pd.Series:
    """Datasets on which a method matched or beat every other (ties count for all).

    The paper's Table 4 convention, so wins do not sum to the number of datasets.
    """
    best = scores.max(axis=1)
    return scores.eq(best, axis=0).sum(axis=0).astype(int)


def _iman_davenport(chi2: float, n: int, k: int) -> tuple[float, float]:
    """F_F = (N-1) chi2 / (N(k-1) - chi2) ~ F(k-1, (k-1)(N-1)) (Demšar 2006, eq. after 1)."""
    denom = n * (k - 1) - chi2
    if denom <= 0:  # every dataset ranks the methods identically: F is infinite
        return float("inf"), 0.0
    f = (n - 1) * chi2 / denom
    return float(f), float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))


def friedman(scores: pd.DataFrame) -> dict[str, float | int | bool]:
    """Friedman chi^2 and the Iman–Davenport F, with and without the tie correction.

    The headline `chi2`/`p_value`/`iman_davenport_*` use the tie-corrected statistic
    (scipy, R's friedman.test, Conover 1999): accuracies tie often (e.g. 100 % on easy
    datasets) and the uncorrected statistic is then conservative. The uncorrected form
    (Demšar 2006, eq. 1) is reported too, because that is what most ML papers print.
    """
    n, k = scores.shape
    if k < MIN_FRIEDMAN_METHODS:
        raise LossbenchError(
            f"the Friedman test needs >= {MIN_FRIEDMAN_METHODS} methods, got {k}; compare two "
            "methods with wilcoxon_holm (Wilcoxon signed-rank and sign test)"
        )
    values = scores.to_numpy(dtype=float)
    ranks = rank_matrix(scores).to_numpy()
    if np.all(ranks == (k + 1) / 2):  # every dataset fully tied: no evidence of any difference
        chi2, p = 0.0, 1.0
    else:
        res = stats.friedmanchisquare(*values.T)
        chi2, p = float(res.statistic), float(res.pvalue)
    mean_ranks = ranks.mean(axis=0)
    chi2_plain = 12.0 * n / (k * (k + 1)) * (np.sum(mean_ranks**2) - k * (k + 1) ** 2 / 4.0)
    chi2_plain = max(float(chi2_plain), 0.0)
    f, f_p = _iman_davenport(chi2, n, k)
    f_plain, f_plain_p = _iman_davenport(chi2_plain, n, k)
    return {
        "n_datasets": int(n), "n_methods": int(k),
        "chi2": chi2, "p_value": p, "iman_davenport_F": f, "iman_davenport_p": f_p,
        "tie_corrected": True,
        "chi2_no_tie_correction": chi2_plain,
        "p_value_no_tie_correction": float(stats.chi2.sf(chi2_plain, k - 1)),
        "iman_davenport_F_no_tie_correction": f_plain,
        "iman_davenport_p_no_tie_correction": f_plain_p,
    }


def conover_bh(scores: pd.DataFrame) -> pd.DataFrame:
    """Conover–Friedman pairwise p-values, Benjamini–Hochberg adjusted (the paper's Fig. 3).

    scikit-posthocs (>= 0.8.1; earlier versions had a wrong statistic) computes Conover's
    tie-aware t statistic, df = (N-1)(k-1), and adjusts the k(k-1)/2 p-values with
    statsmodels' `fdr_bh`. Degenerate inputs that make its formula 0/0 are handled here.
    """
    import scikit_posthocs as sp

    k = scores.shape[1]
    ranks = rank_matrix(scores).to_numpy()
    if np.all(ranks == (k + 1) / 2):  # all tied on every dataset: nothing differs
        p = np.ones((k, k))
    else:
        # scikit-posthocs ranks ascending; negate so rank 1 = best (p-values are symmetric).
        with np.errstate(divide="ignore", invalid="ignore"):
            p = sp.posthoc_conover_friedman(
                -scores.to_numpy(dtype=float), p_adjust="fdr_bh"
            ).to_numpy(dtype=float)
        # identical rankings on every dataset make the residual variance 0: t = +inf, p = 0
        p = np.nan_to_num(p, nan=0.0)
    return pd.DataFrame(p, index=scores.columns, columns=scores.columns)


def nemenyi_cd(n_datasets: int, n_methods: int, alpha: float = 0.05) -> tuple[float, float]:
    """(q_alpha, critical difference) of the Nemenyi test (Demšar 2006, Sec. 3.2.2).

    q_alpha is the studentized range quantile (infinite df) divided by sqrt(2).
    """
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
    return pd.DataFrame(np.clip(p, 0.0, 1.0), index=scores.columns, columns=scores.columns)


def performance_profile(
    scores: pd.DataFrame, higher_is_better: bool = True, n_points: int = 201
) -> pd.DataFrame:
    """Dolan–Moré profile rho_m(tau) for each method (columns) over a tau grid (index).

    Higher is better (the mixing paper): rho_m(tau) = fraction of datasets with
    s_m >= tau * best, tau in [tau_min, 1]. Lower is better (Dolan & Moré 2002):
    rho_m(tau) = fraction with s_m <= tau * best, tau >= 1. A dataset whose best score is 0
    counts only methods scoring exactly 0 (ratio 1; any other score has ratio 0 for higher-
    or infinity for lower-is-better), so zero and 100 % scores both work. The grid holds
    every attained ratio, so the step function is exact at its jumps.
    `scores` are in their original direction and must be non-negative.
    """
    s = scores.to_numpy(dtype=float)
    assert np.all(s >= 0), "performance_profile needs non-negative scores"
    best = s.max(axis=1, keepdims=True) if higher_is_better else s.min(axis=1, keepdims=True)
    best = np.broadcast_to(best, s.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        if higher_is_better:  # best == 0 implies every score is 0: all tie for best
            ratio = np.where(best > 0, s / best, 1.0)
        else:
            ratio = np.where(best > 0, s / best, np.where(s == 0, 1.0, np.inf))
    finite = ratio[np.isfinite(ratio)]
    if higher_is_better:
        lo = float(np.floor(finite.min() * 100) / 100)
        grid = np.linspace(min(lo, 0.99), 1.0, n_points)
    else:
        hi = float(np.ceil(finite.max() * 100) / 100)
        grid = np.linspace(1.0, max(hi, 1.01), n_points)
    grid = np.unique(np.concatenate([grid, finite]))
    # counts by binary search in each method's sorted ratios: O(grid log n) per method, not a
    # grid x datasets x methods boolean cube (1.5 GB at 2,000 datasets x 20 methods, issue 15)
    ranked = np.sort(ratio, axis=0)
    n = ratio.shape[0]
    rho = np.empty((grid.size, ratio.shape[1]))
    for j in range(ratio.shape[1]):
        if higher_is_better:  # share of ratios >= tau
            rho[:, j] = (n - np.searchsorted(ranked[:, j], grid, side="left")) / n
        else:  # share of ratios <= tau
            rho[:, j] = np.searchsorted(ranked[:, j], grid, side="right") / n
    return pd.DataFrame(rho, index=pd.Index(grid, name="tau"), columns=scores.columns)


def _snap(d: np.ndarray) -> np.ndarray:
    """Round float noise (e.g. 0.768-0.763 vs 0.936-0.931) so equal differences tie."""
    scale = float(np.max(np.abs(d))) if d.size else 0.0
    if scale == 0.0:
        return d
    return np.round(d, 12 - int(np.ceil(np.log10(scale))))


def signed_rank_sums(d: np.ndarray) -> tuple[float, float]:
    """(R+, R-) of Wilcoxon's test, zero differences split evenly (Demšar 2006, Sec. 3.1.3)."""
    d = _snap(np.asarray(d, dtype=float))
    r = stats.rankdata(np.abs(d))
    zero = r[d == 0].sum() / 2.0
    return float(r[d > 0].sum() + zero), float(r[d < 0].sum() + zero)


def wilcoxon_one_sided(d: np.ndarray, alternative: str = "greater") -> tuple[float, float]:
    """(statistic, p) of the Wilcoxon signed-rank test of H1: the differences ``d`` lie above
    zero (``greater``) or below it (``less``); zero differences split as in `wilcoxon_holm`."""
    d = _snap(np.asarray(d, dtype=float))
    if d.size == 0 or np.all(d == 0):
        return 0.0, 1.0
    res = stats.wilcoxon(d, zero_method="zsplit", alternative=alternative)
    return float(res.statistic), float(res.pvalue)


def sign_test(d: np.ndarray) -> tuple[int, int, int, float]:
    """(wins, losses, ties, two-sided p) of the sign test on differences ``d`` (> 0 = win).

    Demšar (2006), Sec. 3.1.2: ties are split evenly between wins and losses, one ignored
    when their number is odd; p from the exact binomial test with p = 1/2.
    """
    d = _snap(np.asarray(d, dtype=float))
    wins, losses = int(np.sum(d > 0)), int(np.sum(d < 0))
    ties = d.size - wins - losses
    n = wins + losses + 2 * (ties // 2)
    if n == 0:
        return wins, losses, ties, 1.0
    p = stats.binomtest(wins + ties // 2, n, 0.5).pvalue
    return wins, losses, ties, float(min(p, 1.0))


def wilcoxon_holm(
    scores: pd.DataFrame, baseline: str, higher_is_better: bool = True, seed: int = 0,
    n_resamples: int = 9999, confidence: float = 0.95,
) -> pd.DataFrame:
    """Each method vs the baseline: Wilcoxon signed-rank p, Holm-adjusted p, bootstrap CIs.

    Differences are method - baseline in the score's units and direction. Zero differences
    are split between R+ and R- as Demšar (2006) recommends (scipy's `zsplit`); the test is
    two-sided, so the direction only decides which rank sum is `r_better`. The sign test
    (`sign_test`; columns `sign_*`, wins = datasets where the method is better) is the
    distribution-free companion Demšar (2006, Sec. 3.1.2) gives for two classifiers.
    """
    rows = []
    for j, method in enumerate(m for m in scores.columns if m != baseline):
        d = _snap((scores[method] - scores[baseline]).to_numpy(dtype=float))
        r_plus, r_minus = signed_rank_sums(d)
        if np.all(d == 0):
            stat, p = 0.0, 1.0
        else:
            res = stats.wilcoxon(d, zero_method="zsplit")
            stat, p = float(res.statistic), float(res.pvalue)
        row = {
            "method": method, "n_datasets": len(d),
            "r_better": r_plus if higher_is_better else r_minus,
            "r_worse": r_minus if higher_is_better else r_plus,
            "wilcoxon_stat": stat, "p_value": p,
            "median_diff": float(np.median(d)), "mean_diff": float(np.mean(d)),
        }
        for name, fn in (("median", np.median), ("mean", np.mean)):
            if np.all(d == d[0]):
                low = high = float(d[0])
            else:
                # batches bound memory at O(batch x n); the resamples are the same as in one
                # call (the generator's stream does not depend on the batch size)
                ci = stats.bootstrap(
                    (d,), fn, n_resamples=n_resamples, confidence_level=confidence,
                    method="percentile", rng=np.random.default_rng(seed + j),
                    batch=max(1, 2_000_000 // len(d)),
                ).confidence_interval
                low, high = float(ci.low), float(ci.high)
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high
        wins, losses, ties, sign_p = sign_test(d if higher_is_better else -d)
        row.update(sign_wins=wins, sign_losses=losses, sign_ties=ties, sign_p=sign_p)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("p_value") + 1, "p_holm",
                 multipletests(table["p_value"], method="holm")[1])
    return table


def _first_true(d: np.ndarray, d_sorted: np.ndarray, thresh: float, strict: bool) -> np.ndarray:
    """For each i, the first k with d[i] + d_sorted[k] > thresh (>= if not strict), else m.

    A vectorised binary search on the very sums the dense form compares: float addition is
    monotone in each argument, so the predicate is monotone in k and the split is exact.
    """
    m = d_sorted.size
    lo, hi = np.zeros(d.size, dtype=np.int64), np.full(d.size, m, dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        s = d + d_sorted[np.minimum(mid, m - 1)]
        ok = (s > thresh) if strict else (s >= thresh)
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid + 1, lo)


def _quadratic_forms(wt: np.ndarray, order: np.ndarray, cuts: dict[str, np.ndarray],
                     rope: bool, prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """w'Hw for each column of ``wt`` (m x S, one Dirichlet draw per column), for H above
    (+rope) and, with ``rope``, below (-rope).

    ``prefix`` (m+1 x S) receives P, the cumulative sums of the weights in sorted order; then
    sum_j H_ij w_j = T - (P[gt_i] + P[ge_i]) / 2 above and (P[lt_i] + P[le_i]) / 2 below,
    where the ``cuts`` (per original index i) bound the sorted j whose d_i + d_j is above /
    equal to / below the threshold. Ties (1/2 weight) are summed per group of equal
    differences (rows of a group share their cuts): sum over groups g of W_g x (its partners'
    weight), W_g = P[stop_g] - P[start_g].
    """
    prefix[0] = 0.0
    for r, i in enumerate(order):  # row adds over S draws: no strided cumsum
        np.add(prefix[r], wt[i], out=prefix[r + 1])
    total = prefix[-1]
    out = []
    for lo, sign in (("gt", -1.0), ("lt", 1.0))[: 2 if rope else 1]:
        form = np.einsum("is,is->s", wt, prefix.take(cuts[lo], axis=0, mode="clip"))
        start, stop, lo_g, hi_g = cuts[f"{lo}_tied"]
        if start.size:  # per group of equal differences: its weight x its tied partners'
            weight = prefix.take(stop, axis=0) - prefix.take(start, axis=0)
            partners = prefix.take(hi_g, axis=0) - prefix.take(lo_g, axis=0)
            form += 0.5 * np.einsum("gs,gs->s", weight, partners)
        out.append(total * total - form if sign < 0 else form)
    return out[0], (out[1] if rope else None)


def _posterior_many(
    diffs: np.ndarray, rope: float, prior: float, n_samples: int, seed: int, chunk: int | None,
) -> np.ndarray:
    """Posterior samples for each column of ``diffs`` (n x k, y - x), shape (k, n_samples, 3).

    baycomp evaluates, per Dirichlet draw w, the quadratic form w' H w with
    H_ij = heaviside(d_i + d_j - 2 rope) over the n + 1 differences (a pseudo-observation 0
    first): O(n^2) per draw, minutes and gigabytes at 2,000 datasets (issue 15). Sorting the
    differences once makes {j : d_i + d_j > t} a suffix of the sorted order, so
    (H w)_i = a suffix sum of the sorted weights: O(n) per draw after an O(n log n) search.
    The draws are the same for every column (same seed), so they are made once, in chunks
    (RandomState draws them sequentially: chunking leaves them equal), and the columns of a
    chunk are evaluated on two threads (numpy releases the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    n, k = diffs.shape
    m = n + 1
    d_all = np.vstack([np.zeros((1, k)), diffs])
    weights = np.ones(m)
    weights[0] = prior
    t = 2.0 * rope
    plans = []
    for c in range(k):
        d = d_all[:, c]
        order = np.argsort(d, kind="stable")
        ds = d[order]
        # above: d_i + d_j > t (1) or == t (1/2); below: d_i + d_j < -t (1) or == -t (1/2)
        cuts = {"gt": _first_true(d, ds, t, True), "ge": _first_true(d, ds, t, False)}
        if rope > 0:
            cuts.update(lt=_first_true(d, ds, -t, False), le=_first_true(d, ds, -t, True))
        # groups of equal differences: sorted runs [start, stop), one representative each
        start = np.flatnonzero(np.r_[True, ds[1:] != ds[:-1]])
        stop = np.r_[start[1:], m]
        rep = order[start]
        for lo, hi in (("gt", "ge"), ("lt", "le"))[: 2 if rope > 0 else 1]:
            tied = cuts[lo][rep] != cuts[hi][rep]
            cuts[f"{lo}_tied"] = (start[tied], stop[tied], cuts[lo][rep][tied],
                                  cuts[hi][rep][tied])
        plans.append((order, cuts))
    out = np.zeros((k, n_samples, 3))
    rs = np.random.RandomState(seed)
    step = chunk or max(1, min(1024, 2_000_000 // m))  # ~16 MB per array: bounded memory
    workers = min(2, k)
    buffers = [np.empty((m + 1, step)) for _ in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, n_samples, step):
            stop = min(start + step, n_samples)
            wt = np.ascontiguousarray(rs.dirichlet(weights, stop - start).T)

            def job(c: int, wt=wt, start=start, stop=stop) -> None:
                prefix = buffers[c % workers][:, : stop - start]
                above, below = _quadratic_forms(wt, *plans[c], rope > 0, prefix)
                out[c, start:stop, 2] = above
                if below is not None:
                    out[c, start:stop, 0] = below

            for first in range(0, k, workers):  # one column per buffer at a time
                list(pool.map(job, range(first, min(first + workers, k))))
    if rope > 0:
        out[:, :, 1] = 1.0 - out[:, :, 0] - out[:, :, 2]
    else:
        out[:, :, 0] = 1.0 - out[:, :, 2]
    return out


def signed_rank_posterior(
    x: np.ndarray, y: np.ndarray, rope: float = 0.0, prior: float = 0.5,
    n_samples: int = 50000, seed: int = 0, chunk: int | None = None,
) -> np.ndarray:
    """Posterior samples of the Bayesian signed-rank test, shape (n_samples, 3).

    The same computation as `baycomp.SignedRankTest.sample(x, y, rope, prior=...,
    nsamples=..., random_state=seed)` (same Dirichlet draws, same columns: 0 = x better by
    more than the rope, 1 = rope, 2 = y better), in O(n log n + n_samples n) instead of
    baycomp's O(n_samples n^2) Python loop (`_posterior_many`). The tests check equality with
    baycomp and with the dense quadratic form. `chunk`: draws per block (default: about a
    million numbers per block, which bounds memory).
    """
    diff = np.asarray(y, dtype=float) - np.asarray(x, dtype=float)
    return _posterior_many(diff[:, None], rope, prior, n_samples, seed, chunk)[0]


def bayes_signed_rank(
    scores: pd.DataFrame, baseline: str, rope: float = 0.5, higher_is_better: bool = True,
    seed: int = 0, n_samples: int = 50000,
) -> pd.DataFrame:
    """Bayesian signed-rank test of each method vs the baseline (Benavoli et al. 2017).

    baycomp's `SignedRankTest` model (Dirichlet-process posterior, prior weight 0.5 on a
    pseudo-observation at 0), sampled by `signed_rank_posterior`. baycomp takes (x, y),
    works on y - x and puts P(x - y > rope) in column 0 ("left"), the rope in column 1 and
    P(y - x > rope) in column 2; with x = method, y = baseline (swapped for lower-is-better)
    column 0 is P(method better). Each probability is the share of posterior samples in
    which that region is the most probable, as baycomp's own `probs`.
    """
    methods = [m for m in scores.columns if m != baseline]
    x = scores[methods].to_numpy(dtype=float)
    y = scores[[baseline]].to_numpy(dtype=float)
    if not higher_is_better:
        x, y = y, x
    samples = _posterior_many(y - x, rope, 0.5, n_samples, seed, None)
    rows = []
    for method, sample in zip(methods, samples, strict=True):
        winners = np.argmax(sample, axis=1)
        p_better, p_rope, p_worse = np.bincount(winners, minlength=3) / len(winners)
        rows.append({"method": method, "rope": rope, "p_better": float(p_better),
                     "p_rope": float(p_rope), "p_worse": float(p_worse),
                     "mean_diff": float(np.mean(scores[method] - scores[baseline]))})
    return pd.DataFrame(rows)
