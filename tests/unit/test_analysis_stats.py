"""analysis.stats against published worked examples and independent formula implementations.

References reproduced here (to their printed precision):
- Demšar (2006), JMLR 7, Table 6 / Sec. 3.2.4: AUC of four C4.5 variants on 14 datasets,
  mean ranks 3.143, 2.000, 2.893, 1.964, chi2_F = 9.28, F_F = 3.69, Nemenyi CD = 1.25 (q = 2.569);
  Table 5(a) critical values q_0.05 / q_0.10; Sec. 3.1.3 Wilcoxon R+ = 93, R- = 12.
- R `friedman.test(RoundingTimes)` (Hollander & Wolfe; R documentation example):
  "Friedman chi-squared = 11.143, df = 2, p-value = 0.003805" (with ties).
- Conover (1999) all-pairs test for Friedman ranks, written out below from the formula in
  PMCMRplus' frdAllPairsConoverTest documentation, and checked against the unadjusted
  p-values hard-coded in scikit-posthocs' own test suite for its `df_bn` example.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from analysis import stats

# Demšar (2006) Table 6. The voting row prints C4.5+cf and C4.5+m+cf both as 0.975, but the
# table ranks them 2 and 3 (the printed mean ranks 2.893 / 1.964 need it), so the unrounded
# C4.5+cf value was higher: 0.97501 stands in for it.
DEMSAR = pd.DataFrame(
    [[0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
     [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
     [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
     [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
     [0.972, 0.981, 0.97501, 0.975], [0.957, 0.978, 0.946, 0.970]],
    index=["adult", "breast_cancer", "breast_cancer_wisconsin", "cmc", "ionosphere", "iris",
           "liver_disorders", "lung_cancer", "lymphography", "mushroom", "primary_tumor",
           "rheum", "voting", "wine"],
    columns=["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"],
)

ROUNDING_TIMES = pd.DataFrame(np.array([
    5.40, 5.50, 5.55, 5.85, 5.70, 5.75, 5.20, 5.60, 5.50, 5.55, 5.50, 5.40, 5.90, 5.85, 5.70,
    5.45, 5.55, 5.60, 5.40, 5.40, 5.35, 5.45, 5.50, 5.35, 5.25, 5.15, 5.00, 5.85, 5.80, 5.70,
    5.25, 5.20, 5.10, 5.65, 5.55, 5.45, 5.60, 5.35, 5.45, 5.05, 5.00, 4.95, 5.50, 5.50, 5.40,
    5.45, 5.55, 5.50, 5.55, 5.55, 5.35, 5.45, 5.50, 5.55, 5.50, 5.45, 5.25, 5.65, 5.60, 5.40,
    5.70, 5.65, 5.55, 6.30, 6.30, 6.25]).reshape(22, 3),
    columns=["round_out", "narrow_angle", "wide_angle"])


# ---------------------------------------------------------------- independent formulas


def conover_formula(scores: pd.DataFrame) -> np.ndarray:
    """Unadjusted Conover p-values, written from Conover (1999) / PMCMRplus, not scikit-posthocs.

    Within-block ranks r_ij (ties averaged), R_j = sum_i r_ij, A1 = sum r_ij^2; methods i and
    j differ when |R_i - R_j| / sqrt(2 (n A1 - sum_j R_j^2) / ((n-1)(k-1))) exceeds the
    t quantile with (n-1)(k-1) df. (This equals PMCMRplus' form with T2 and the
    tie-corrected Friedman T1, but is computed differently from scikit-posthocs.)
    """
    n, k = scores.shape
    r = ss.rankdata(scores.to_numpy(dtype=float), axis=1)
    R = r.sum(axis=0)
    A1 = (r**2).sum()
    se = np.sqrt(2.0 * (n * A1 - (R**2).sum()) / ((n - 1) * (k - 1)))
    t = np.abs(R[:, None] - R[None, :]) / se
    return 2 * ss.t.sf(t, (n - 1) * (k - 1))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH step-up by hand: p_(i) * m / i, made monotone from the largest down, capped at 1."""
    m = len(p)
    order = np.argsort(p)
    adj = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def conover_bh_by_hand(scores: pd.DataFrame) -> np.ndarray:
    p = conover_formula(scores)
    iu = np.triu_indices(p.shape[0], 1)
    out = np.ones_like(p)
    out[iu] = benjamini_hochberg(p[iu])
    out.T[iu] = out[iu]
    return out


# ---------------------------------------------------------------- ranks and wins


def test_ranks_and_wins_with_ties_hand_made():
    scores = pd.DataFrame({"a": [90, 80, 70, 50], "b": [90, 85, 60, 50], "c": [70, 85, 70, 50]},
                          index=["d1", "d2", "d3", "d4"])
    ranks = stats.rank_matrix(scores)
    np.testing.assert_allclose(ranks.to_numpy(), [[1.5, 1.5, 3], [3, 1.5, 1.5], [1.5, 3, 1.5],
                                                  [2, 2, 2]])
    np.testing.assert_allclose(ranks.mean().to_numpy(), [8 / 4, 8 / 4, 8 / 4])
    # ties count for all: a wins d1, d3, d4; b d1, d2, d4; c d2, d3, d4 -> 9 wins on 4 datasets
    assert stats.wins(scores).to_dict() == {"a": 3, "b": 3, "c": 3}


# ---------------------------------------------------------------- Friedman


def test_friedman_reproduces_demsar_2006_worked_example():
    ranks = stats.rank_matrix(DEMSAR).mean()
    np.testing.assert_allclose(ranks.round(3).to_numpy(), [3.143, 2.000, 2.893, 1.964])
    f = stats.friedman(DEMSAR)
    assert round(f["chi2_no_tie_correction"], 2) == 9.28
    assert round(f["iman_davenport_F_no_tie_correction"], 2) == 3.69
    # Demšar: F(3, 39) critical value at 0.05 is 2.85, so the null hypothesis is rejected
    assert f["iman_davenport_p_no_tie_correction"] < 0.05
    assert ss.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.005)
    # the headline statistic is the tie-corrected one (mushroom, iris, ... tie): larger
    assert f["tie_corrected"] is True
    assert f["chi2"] > f["chi2_no_tie_correction"]
    assert f["chi2"] == pytest.approx(ss.friedmanchisquare(*DEMSAR.to_numpy().T).statistic)
    assert (f["n_datasets"], f["n_methods"]) == (14, 4)


def test_friedman_tie_corrected_matches_r_friedman_test():
    f = stats.friedman(ROUNDING_TIMES)
    assert round(f["chi2"], 3) == 11.143
    assert round(f["p_value"], 6) == 0.003805
    # Conover's T1 = (k-1) sum_j (R_j - n(k+1)/2)^2 / (A1 - C1), computed by hand
    n, k = ROUNDING_TIMES.shape
    r = ss.rankdata(ROUNDING_TIMES.to_numpy(), axis=1)
    R = r.sum(axis=0)
    t1 = (k - 1) * ((R - n * (k + 1) / 2) ** 2).sum() / ((r**2).sum() - n * k * (k + 1) ** 2 / 4)
    assert f["chi2"] == pytest.approx(t1, rel=1e-12)
    assert f["iman_davenport_F"] == pytest.approx((n - 1) * t1 / (n * (k - 1) - t1))


def test_friedman_degenerate_cases():
    tied = pd.DataFrame(np.full((5, 3), 0.7), columns=list("abc"))
    f = stats.friedman(tied)
    assert (f["chi2"], f["p_value"]) == (0.0, 1.0)
    ordered = pd.DataFrame(np.tile([3.0, 2.0, 1.0], (6, 1)), columns=list("abc"))
    f = stats.friedman(ordered)  # perfect agreement: chi2 = n(k-1), F infinite
    assert f["chi2"] == pytest.approx(12.0)
    assert f["iman_davenport_F"] == float("inf") and f["iman_davenport_p"] == 0.0


# ---------------------------------------------------------------- Nemenyi


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [(0.05, [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]),
     (0.10, [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920])],
)
def test_nemenyi_q_matches_demsar_table_5a(alpha, expected):
    # the printed table is truncated in places (2.3437 -> 2.343): one unit in the last digit
    got = [stats.nemenyi_cd(10, k, alpha)[0] for k in range(2, 11)]
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_nemenyi_cd_and_p_demsar_example():
    q, cd = stats.nemenyi_cd(14, 4, 0.05)
    assert round(q, 3) == 2.569 and round(cd, 2) == 1.25
    p = stats.nemenyi_p(DEMSAR)
    # C4.5 vs C4.5+m+cf: 3.143 - 1.964 = 1.179 < CD(0.05) = 1.25 but > CD(0.10) = 1.12
    assert 0.05 < p.loc["C4.5", "C4.5+m+cf"] < 0.10
    # p < alpha exactly when the rank difference exceeds the CD
    ranks = stats.rank_matrix(DEMSAR).mean()
    diff = np.abs(ranks.to_numpy()[:, None] - ranks.to_numpy()[None, :])
    np.fill_diagonal(diff, 0)
    np.testing.assert_array_equal(p.to_numpy() < 0.05, diff > cd)
    np.testing.assert_array_equal(p.to_numpy() < 0.10, diff > stats.nemenyi_cd(14, 4, 0.10)[1])


# ---------------------------------------------------------------- Conover–BH


def test_conover_formula_matches_scikit_posthocs_reference_values():
    # scikit-posthocs' test suite: df_bn (3 blocks x 7 groups, with ties), unadjusted p-values
    df_bn = pd.DataFrame([[4, 3, 4, 4, 5, 6, 3], [1, 2, 3, 5, 6, 7, 7], [1, 2, 6, 4, 1, 5, 1]])
    p = conover_formula(df_bn)
    assert p[1, 0] == pytest.approx(0.9147508, abs=1e-6)
    assert p[2, 0] == pytest.approx(0.1518030, abs=1e-6)
    assert p[5, 0] == pytest.approx(0.0181602, abs=1e-6)
    assert p[6, 5] == pytest.approx(0.05991984, abs=1e-7)


@pytest.mark.parametrize("name", ["demsar", "rounding_times", "integer_ties", "random"])
def test_conover_bh_equals_independent_computation(name):
    rng = np.random.default_rng(3)
    data = {
        "demsar": DEMSAR,
        "rounding_times": ROUNDING_TIMES,
        # heavy ties: scores on a 4-level scale
        "integer_ties": pd.DataFrame(rng.integers(0, 4, size=(25, 5)), columns=list("abcde")),
        "random": pd.DataFrame(rng.normal(size=(30, 6)) + np.arange(6) * 0.3,
                               columns=list("abcdef")),
    }[name]
    got = stats.conover_bh(data)
    assert list(got.index) == list(data.columns) == list(got.columns)
    np.testing.assert_allclose(got.to_numpy(), conover_bh_by_hand(data), rtol=1e-9, atol=1e-15)
    # direction does not matter: negating the scores reverses ranks, not |R_i - R_j|
    np.testing.assert_allclose(stats.conover_bh(-data).to_numpy(), got.to_numpy(), rtol=1e-9)


def test_conover_bh_degenerate_inputs():
    tied = pd.DataFrame(np.full((4, 3), 1.0), columns=list("abc"))
    assert (stats.conover_bh(tied).to_numpy() == 1).all()
    ordered = pd.DataFrame(np.tile([3.0, 2.0, 1.0], (6, 1)), columns=list("abc"))
    p = stats.conover_bh(ordered).to_numpy()
    assert np.isfinite(p).all() and p[0, 2] == 0.0 and p[0, 0] == 1.0


# ---------------------------------------------------------------- performance profile


def test_performance_profile_higher_is_better_hand_made():
    # best per dataset: 100, 80, 0 (all zero), 90
    scores = pd.DataFrame({"a": [100.0, 80.0, 0.0, 90.0], "b": [50.0, 80.0, 0.0, 45.0],
                           "c": [0.0, 40.0, 0.0, 90.0]})
    prof = stats.performance_profile(scores, higher_is_better=True)

    def rho(tau):
        return prof.loc[prof.index[np.argmin(np.abs(prof.index - tau))]]

    assert rho(1.0).to_dict() == {"a": 1.0, "b": 0.5, "c": 0.5}  # ties and all-zero count
    assert rho(0.5).to_dict() == {"a": 1.0, "b": 1.0, "c": 0.75}  # b: 50 >= .5*100, 45 >= 45
    assert prof.index[0] == 0.0  # c scores 0 where the best is 100: ratio 0
    assert rho(0.0).to_dict() == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert prof.index.is_monotonic_increasing
    assert (prof.diff().fillna(0) <= 0).all().all()  # non-increasing in tau
    # just above a breakpoint the step has happened
    just_above = prof[prof.index > 0.5].iloc[0]
    assert just_above["b"] == 0.5


def test_performance_profile_lower_is_better_hand_made():
    errors = pd.DataFrame({"a": [1.0, 0.0, 4.0], "b": [2.0, 0.0, 2.0], "c": [1.0, 3.0, 8.0]})
    prof = stats.performance_profile(errors, higher_is_better=False)
    assert prof.loc[1.0].to_dict() == {"a": 2 / 3, "b": 2 / 3, "c": 1 / 3}
    assert prof.loc[2.0].to_dict() == {"a": 1.0, "b": 1.0, "c": 1 / 3}
    # c's 3.0 where the best is 0 is never within any finite factor
    assert prof.iloc[-1]["c"] == 2 / 3
    assert (prof.diff().fillna(0) >= 0).all().all()


# ---------------------------------------------------------------- Wilcoxon–Holm


def test_wilcoxon_signed_rank_sums_demsar_example():
    # Demšar (2006), Sec. 3.1.3: C4.5+m vs C4.5 gives R+ = 93 and R- = 12 (zeros split)
    d = (DEMSAR["C4.5+m"] - DEMSAR["C4.5"]).to_numpy()
    assert stats.signed_rank_sums(d) == (93.0, 12.0)
    table = stats.wilcoxon_holm(DEMSAR[["C4.5", "C4.5+m"]], baseline="C4.5")
    row = table.iloc[0]
    assert (row["r_better"], row["r_worse"], row["wilcoxon_stat"]) == (93.0, 12.0, 12.0)
    assert row["p_value"] < 0.05  # Demšar: T = 12 < 21, the critical value for N = 14
    lower = stats.wilcoxon_holm(DEMSAR[["C4.5", "C4.5+m"]], "C4.5", higher_is_better=False)
    assert (lower.iloc[0]["r_better"], lower.iloc[0]["r_worse"]) == (12.0, 93.0)


def test_wilcoxon_holm_adjustment_and_cis():
    table = stats.wilcoxon_holm(DEMSAR, baseline="C4.5", n_resamples=999)
    assert list(table["method"]) == ["C4.5+m", "C4.5+cf", "C4.5+m+cf"]
    p = table["p_value"].to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(p[order] * (3 - np.arange(3)), 1.0))
    np.testing.assert_allclose(table["p_holm"].to_numpy()[order], holm)
    for r in table.itertuples():
        d = DEMSAR[r.method] - DEMSAR["C4.5"]
        assert r.mean_diff == pytest.approx(d.mean()) and r.median_diff == pytest.approx(d.median())
        assert r.mean_ci_low <= r.mean_diff <= r.mean_ci_high
        assert r.median_ci_low <= r.median_diff <= r.median_ci_high


# ---------------------------------------------------------------- Bayesian signed-rank


def test_bayes_signed_rank_column_convention():
    rng = np.random.default_rng(0)
    base = rng.uniform(60, 90, 20)
    scores = pd.DataFrame({"ce": base, "good": base + 3 + rng.uniform(0, 1, 20),
                           "bad": base - 3 - rng.uniform(0, 1, 20),
                           "same": base + rng.uniform(-0.05, 0.05, 20)})
    table = stats.bayes_signed_rank(scores, "ce", rope=0.5, n_samples=3000).set_index("method")
    assert table.loc["good", "p_better"] > 0.99 and table.loc["good", "p_worse"] < 0.01
    assert table.loc["bad", "p_worse"] > 0.99 and table.loc["bad", "p_better"] < 0.01
    assert table.loc["same", "p_rope"] > 0.99
    np.testing.assert_allclose(table[["p_better", "p_rope", "p_worse"]].sum(axis=1), 1.0)
    # lower is better (e.g. error rates): the same numbers mean the opposite
    lower = stats.bayes_signed_rank(scores, "ce", rope=0.5, higher_is_better=False,
                                    n_samples=3000).set_index("method")
    assert lower.loc["good", "p_worse"] > 0.99 and lower.loc["bad", "p_better"] > 0.99
    # rope 0: no mass in the rope, the dominant method still wins
    zero = stats.bayes_signed_rank(scores, "ce", rope=0.0, n_samples=3000).set_index("method")
    assert zero.loc["good", "p_better"] > 0.99 and (zero["p_rope"] == 0).all()


@pytest.mark.parametrize("rope", [0.0, 0.5])
def test_vectorised_posterior_equals_baycomp(rope):
    baycomp = pytest.importorskip("baycomp")
    rng = np.random.default_rng(1)
    x = rng.uniform(60, 90, 15)
    y = x + rng.normal(0.2, 0.8, 15)
    y[:3] = x[:3]  # zero differences exercise the 0.5 heaviside ties
    ours = stats.signed_rank_posterior(x, y, rope=rope, n_samples=2000, seed=7, chunk=700)
    ref = baycomp.SignedRankTest.sample(x, y, rope=rope, nsamples=2000, random_state=7)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    probs = baycomp.SignedRankTest(x, y, rope=rope, nsamples=2000, random_state=7).probs(
        rope > 0)
    table = stats.bayes_signed_rank(pd.DataFrame({"b": y, "m": x}), "b", rope=rope,
                                    n_samples=2000, seed=7).iloc[0]
    if rope > 0:
        assert (table["p_better"], table["p_rope"], table["p_worse"]) == pytest.approx(probs)
    else:
        assert (table["p_better"], table["p_worse"]) == pytest.approx(probs)
