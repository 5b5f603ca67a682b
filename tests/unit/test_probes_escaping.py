"""Escaping-efficiency probe: the trace estimators against dense computations, and the CLI."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import torch
from torch.func import functional_call, grad, hessian, vmap

from bench.cli import main
from bench.losses import make_loss
from bench.models import create_model
from bench.probes import escaping_terms, trace_of_product


def _problem(model_id, n=30, d=4, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (n,), generator=g)
    model = create_model(model_id, input_shape=(d,), n_classes=C, seed=seed).double()
    with torch.no_grad():  # away from the init, so every term is far from 0
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model, X, y


def _dense(model, loss, X, y, progress, m):
    """Tr(H Sigma), Tr(F_p F_p), Tr(H_p F_p) from explicit matrices (eq. 16, eq. 19)."""
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def logits(t, x):
        parts = t.split([math.prod(s) for s in shapes])
        params = {k: v.view(s) for k, v, s in zip(names, parts, shapes, strict=True)}
        return functional_call(model, params, (x,))

    def one_loss(t, x, yy):
        return loss.per_sample(logits(t, x[None]), yy[None], progress)[0]

    def one_py(t, x, yy):
        return torch.softmax(logits(t, x[None]), -1)[0].gather(0, yy[None])[0]

    n = len(y)
    G = vmap(grad(one_loss), in_dims=(None, 0, 0))(theta, X, y)
    H = hessian(lambda t: vmap(one_loss, in_dims=(None, 0, 0))(t, X, y).mean())(theta)
    g = G.mean(0)
    sigma = (G.T @ G / n - torch.outer(g, g)) / m
    U = vmap(grad(one_py), in_dims=(None, 0, 0))(theta, X, y)
    Fp = U.T @ U / n
    Hp = -hessian(lambda t: vmap(one_py, in_dims=(None, 0, 0))(t, X, y).mean())(theta)
    return (float(torch.trace(H @ sigma)), float(torch.trace(Fp @ Fp.T)),
            float(torch.trace(Hp @ Fp)))


@pytest.mark.parametrize("model_id", ["linear", "mlp"])
@pytest.mark.parametrize(("loss_id", "progress"), [("ce", 0.0), ("el", 0.0),
                                                   ("ce_el_0to05", 0.5), ("focal", 0.0)])
def test_exact_estimator_equals_dense_computation(model_id, loss_id, progress):
    model, X, y = _problem(model_id)
    loss = make_loss(loss_id)
    terms = escaping_terms(model, loss, X, y, progress, batch_size=4, probes=None)
    trace, fp2, hpfp = _dense(model, loss, X, y, progress, m=4)
    assert terms.exact and terms.trace_se == 0.0
    assert terms.trace == pytest.approx(trace, rel=1e-9, abs=1e-12)
    assert terms.tr_fp2 == pytest.approx(fp2, rel=1e-9, abs=1e-12)
    assert terms.tr_hpfp == pytest.approx(hpfp, rel=1e-9, abs=1e-12)
    assert abs(trace) > 1e-6  # the comparison is not between zeros


def test_hutchinson_is_unbiased_within_its_standard_error():
    model, X, y = _problem("mlp", n=40, d=5)
    loss = make_loss("ce_el_0")
    exact = escaping_terms(model, loss, X, y, 0.0, batch_size=8, probes=None)
    est = escaping_terms(model, loss, X, y, 0.0, batch_size=8, probes=400, seed=3)
    assert not est.exact and est.trace_se > 0
    assert abs(est.trace - exact.trace) < 4 * est.trace_se
    assert est.trace_se < 0.2 * abs(exact.trace)  # informative, not just wide


def test_trace_of_product_on_explicit_matrices():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(7, 7, generator=g, dtype=torch.float64)
    A = A + A.T
    B = torch.randn(7, 7, generator=g, dtype=torch.float64)
    exact, se = trace_of_product(lambda V: V @ A.T, lambda V: V @ B.T, 7, None, chunk=3)
    assert exact == pytest.approx(float(torch.trace(A @ B)), rel=1e-12) and se == 0.0


def test_eq19_beta_and_bound():
    model, X, y = _problem("linear")
    ce = escaping_terms(model, make_loss("ce"), X, y, 0.0, 4, None)
    assert ce.beta == 0.0 and ce.rhs19 == 0.0
    assert math.isnan(escaping_terms(model, make_loss("el"), X, y, 0.0, 4, None).rhs19)
    mix = escaping_terms(model, make_loss("ce_el_0to05"), X, y, 0.5, 4, None)
    assert mix.beta == pytest.approx(1 / (1 - 2 * 0.3))  # phase F = 0.3 from epoch 25 of 50
    b, M = mix.beta, mix.m_batch
    assert 0 < M <= 1
    coef = b**3 + 3 * b**2 / M + b * (2 / M**2 + 1 / M)
    assert mix.rhs19 == pytest.approx(coef * (mix.tr_fp2 + 2 * mix.tr_hpfp), rel=1e-12)


def test_cli_writes_one_row_per_model_loss_epoch_deterministically(tmp_path):
    args = ["probe", "escaping", "--dataset", "digits", "--protocol", "random", "--model",
            "linear", "--losses", "ce,el,ce_gradnorm(volume=off_target)", "--at", "1,2",
            "--epochs", "4", "--batch-size", "32", "--max-samples", "150", "--probes", "8",
            "--exact-max-params", "100"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "escaping.csv").read_bytes()
    assert a == (tmp_path / "b" / "escaping.csv").read_bytes()
    table = pd.read_csv(tmp_path / "a" / "escaping.csv")
    assert list(table["loss"]) == [m for m in ("ce", "el", "ce_gradnorm(volume=off_target)")
                                   for _ in range(2)]
    assert list(table["epoch"]) == [1, 2] * 3
    assert (table["estimator"] == "hutchinson").all() and (table["n_used"] == 150).all()
    assert table["trace"].notna().all() and (table["trace_se"] > 0).all()
    assert (table.loc[table["loss"] == "ce", "rhs19"] == 0).all()
    assert table.loc[table["loss"] == "el", "rhs19"].isna().all()


@pytest.mark.parametrize(("extra", "match"), [
    (["--at", "0"], "--at: expected epochs in 1..4"),
    (["--at", "1", "--losses", "trunc_gce"], "needs \\[.*'sample_weights'\\]"),
])
def test_cli_bad_input_one_line(tmp_path, capsys, extra, match):
    args = ["probe", "escaping", "--dataset", "digits", "--protocol", "random", "--epochs",
            "4", "--out", str(tmp_path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert re.search(match, err)
