"""The O(n log n) Bayesian signed-rank posterior equals the dense O(n^2) form (issue 15).

`dense_posterior` is the implementation it replaced (baycomp's quadratic form, vectorised),
kept here as the reference: same Dirichlet draws, so the samples must agree to rounding.
"""

import numpy as np
import pandas as pd
import pytest

from analysis import stats


def dense_posterior(x, y, rope=0.0, prior=0.5, n_samples=50000, seed=0, chunk=10000):
    diff = np.hstack(([0.0], np.asarray(y, dtype=float) - np.asarray(x, dtype=float)))
    sums = diff[:, None] + diff[None, :]
    weights = np.ones(len(diff))
    weights[0] = prior

    def heaviside(a, thresh):
        return (a > thresh).astype(float) + 0.5 * (a == thresh).astype(float)

    w = np.random.RandomState(seed).dirichlet(weights, n_samples)
    out = np.zeros((n_samples, 3))
    if rope > 0:
        above, below = heaviside(sums, 2 * rope), heaviside(-sums, 2 * rope)
    else:
        above, below = heaviside(sums, 0.0), None
    for start in range(0, n_samples, chunk):
        wc = w[start:start + chunk]
        out[start:start + chunk, 2] = np.einsum("si,ij,sj->s", wc, above, wc)
        if below is not None:
            out[start:start + chunk, 0] = np.einsum("si,ij,sj->s", wc, below, wc)
    if rope > 0:
        out[:, 1] = 1.0 - out[:, 0] - out[:, 2]
    else:
        out[:, 0] = 1.0 - out[:, 2]
    return out


def _pairs():
    rng = np.random.default_rng(3)
    x = rng.uniform(60, 90, 40)
    y = x + rng.normal(0.2, 0.8, 40)
    y[:5] = x[:5]  # zero differences: the 1/2 weight of exact ties
    # differences on a 0.1 grid: many pairwise sums hit 2 * rope = 1.0 up to float rounding
    xg = np.zeros(30)
    yg = np.round(rng.integers(-12, 13, 30) * 0.1, 1)
    # 0.1 + 0.2 != 0.3 in floats: the search must compare the very sums the dense form does
    xt, yt = np.zeros(6), np.array([0.1, 0.2, 0.3, -0.1, -0.2, -0.3])
    return {"random": (x, y), "grid": (xg, yg), "float_sums": (xt, yt)}


@pytest.mark.parametrize("case", ["random", "grid", "float_sums"])
@pytest.mark.parametrize("rope", [0.0, 0.15, 0.5])
def test_fast_posterior_equals_dense(case, rope):
    x, y = _pairs()[case]
    ref = dense_posterior(x, y, rope=rope, n_samples=3000, seed=5, chunk=1000)
    for chunk in (None, 777):
        ours = stats.signed_rank_posterior(x, y, rope=rope, n_samples=3000, seed=5, chunk=chunk)
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_table_equals_dense_for_every_method_and_direction():
    rng = np.random.default_rng(8)
    base = rng.uniform(60, 90, 25)
    scores = pd.DataFrame({"ce": base, "up": base + rng.normal(0.6, 0.5, 25),
                           "down": base - rng.normal(0.6, 0.5, 25), "tie": base.copy()})
    for higher in (True, False):
        table = stats.bayes_signed_rank(scores, "ce", rope=0.5, higher_is_better=higher,
                                        n_samples=4000, seed=2).set_index("method")
        for m in ("up", "down", "tie"):
            x, y = scores[m].to_numpy(), scores["ce"].to_numpy()
            if not higher:
                x, y = y, x
            winners = np.argmax(dense_posterior(x, y, rope=0.5, n_samples=4000, seed=2), axis=1)
            expected = np.bincount(winners, minlength=3) / 4000
            assert tuple(table.loc[m, ["p_better", "p_rope", "p_worse"]]) == tuple(expected)


def test_large_input_is_linear_not_quadratic_in_memory():
    # 5,000 datasets: the dense form would hold a 5001 x 5001 matrix per method (200 MB)
    # and 50,000 x 5001 draws (2 GB); the sorted form works in bounded chunks.
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.uniform(60, 90, 5000)
    y = x + rng.normal(0.1, 1.0, 5000)
    tracemalloc.start()
    out = stats.signed_rank_posterior(x, y, rope=0.5, n_samples=400, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 80e6, f"peak {peak / 1e6:.0f} MB"
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # the posterior mean of w'Hw is about the share of Walsh averages beyond the rope
    d = np.sort(np.hstack(([0.0], y - x)))
    above = (d.size - np.searchsorted(d, 1.0 - d, side="right")).sum() / d.size**2
    below = np.searchsorted(d, -1.0 - d, side="left").sum() / d.size**2
    assert out[:, 2].mean() == pytest.approx(above, abs=0.005)
    assert out[:, 0].mean() == pytest.approx(below, abs=0.005)
