"""Escaping efficiency of SGD under a loss (mixing paper, section "Escaping Efficiency").

EE ~ (t / 2) Tr(H Sigma) (Zhu et al. 2018), with H the Hessian of the training loss
L(W) = mean_i l_i(W) and Sigma the SGD noise covariance at batch size m (eq. 16):

    Sigma = (1/m) [ (1/N) sum_i g_i g_i^T - g g^T ],  g_i = grad l_i,  g = mean_i g_i.

Tr(H Sigma) = sum_j (H e_j) . (Sigma e_j) over the standard basis (``probes=None``: exact,
P products) or E_z[(H z) . (Sigma z)] over Rademacher vectors z (Hutchinson, ``probes=k``).
H z is a Hessian-vector product by double back-prop (the vjp of the gradient); Sigma z needs
no per-sample gradient matrix: G z is one forward-mode pass (jvp of the per-sample losses),
G^T (G z) one backward pass (their vjp). Everything is batched over probe vectors with
``torch.func.vmap``, in float64.

The right-hand side of eq. 19, the paper's lower bound on EE(L_ab) - EE(L_ce) for alpha = 1:

    (beta^3 + 3 beta^2 / M + beta (2 / M^2 + 1 / M)) Tr(F_p F_p^T + 2 H_p F_p),

F_p = E_x[grad p_y grad p_y^T], H_p = -E_x[hess p_y], M = max over the batch of p_y (reported
as the mean over the epoch's batches of size m of each batch's max). Tr(F_p F_p) and
Tr(H_p F_p) use the same exact / Hutchinson products (F_p z = (1/N) U^T (U z), U = the
per-sample gradients of p_y). The bound is NaN for losses other than alpha CE + beta EL with
alpha = 1 (EL, focal, ...), 0 for CE (beta = 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]  # [k, P] -> [k, P]


class FlatModel:
    """A module as a function of one flat float64 parameter vector ``theta`` [P]."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        named = [(n, p) for n, p in model.named_parameters()]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.buffers = {n: b.detach().double() for n, b in model.named_buffers()}
        self.theta = torch.cat([p.detach().reshape(-1).double() for _, p in named])

    @property
    def n_params(self) -> int:
        return int(self.theta.numel())

    def __call__(self, theta: Tensor, x: Tensor) -> Tensor:
        parts = theta.split(self.sizes)
        params = {n: t.view(s) for n, t, s in zip(self.names, parts, self.shapes, strict=True)}
        return torch.func.functional_call(self.model, {**params, **self.buffers}, (x,))


def _jacobian_products(f: Callable[[Tensor], Tensor], theta: Tensor):
    """(J v for rows v of V, J^T c for rows c of C) of ``f``: R^P -> R^n at ``theta``."""
    _, vjp_fn = torch.func.vjp(f, theta)

    def jv(V: Tensor) -> Tensor:  # [k, P] -> [k, n]
        return torch.func.vmap(lambda v: torch.func.jvp(f, (theta,), (v,))[1])(V)

    def jtc(C: Tensor) -> Tensor:  # [k, n] -> [k, P]
        return torch.func.vmap(vjp_fn)(C)[0]

    return jv, jtc, vjp_fn


def hvp(scalar: Callable[[Tensor], Tensor], theta: Tensor) -> MatVec:
    """V -> H V for the Hessian H of ``scalar`` at ``theta``: double back-prop (the vjp of the
    gradient; H is symmetric, so vjp = H v)."""
    _, vjp_fn = torch.func.vjp(torch.func.grad(scalar), theta)
    return lambda V: torch.func.vmap(vjp_fn)(V)[0]


def noise_covariance(per_sample: Callable[[Tensor], Tensor], theta: Tensor,
                     batch_size: int) -> MatVec:
    """V -> Sigma V, Sigma of eq. 16 at batch size m for the per-sample losses [N]."""
    jv, jtc, vjp_fn = _jacobian_products(per_sample, theta)
    n = per_sample(theta).shape[0]
    g = vjp_fn(torch.full((n,), 1.0 / n, dtype=theta.dtype, device=theta.device))[0]

    def mv(V: Tensor) -> Tensor:
        second = jtc(jv(V) / n)  # (1/N) G^T G v
        return (second - (V @ g)[:, None] * g) / batch_size

    return mv


def outer_mean(per_sample: Callable[[Tensor], Tensor], theta: Tensor) -> MatVec:
    """V -> F V, F = (1/N) sum_i u_i u_i^T, u_i the gradients of ``per_sample`` (F_p)."""
    jv, jtc, _ = _jacobian_products(per_sample, theta)
    n = per_sample(theta).shape[0]
    return lambda V: jtc(jv(V) / n)


def trace_of_product(a: MatVec, b: MatVec, dim: int, probes: int | None,
                     generator: torch.Generator | None = None, chunk: int = 32,
                     dtype: torch.dtype = torch.float64,
                     device: torch.device | str = "cpu") -> tuple[float, float]:
    """Tr(A B) for symmetric A: exact over the basis (``probes=None``; standard error 0) or
    Hutchinson over ``probes`` Rademacher vectors (mean, standard error of the mean)."""
    if probes is None:
        total = 0.0
        for start in range(0, dim, chunk):
            idx = torch.arange(start, min(start + chunk, dim), device=device)
            V = torch.zeros(len(idx), dim, dtype=dtype, device=device)
            V[torch.arange(len(idx)), idx] = 1.0
            total += float((a(V) * b(V)).sum())
        return total, 0.0
    values = []
    for start in range(0, probes, chunk):
        k = min(chunk, probes - start)
        V = torch.randint(0, 2, (k, dim), generator=generator, dtype=torch.int64)
        V = (2 * V - 1).to(dtype=dtype, device=device)
        values.append((a(V) * b(V)).sum(-1))
    s = torch.cat(values)
    se = float(s.std(unbiased=True)) / math.sqrt(probes) if probes > 1 else math.nan
    return float(s.mean()), se


def eq19_coefficient(beta: float, M: float) -> float:
    """beta^3 + 3 beta^2 / M + beta (2 / M^2 + 1 / M) (eq. 19)."""
    return beta**3 + 3 * beta**2 / M + beta * (2 / M**2 + 1 / M)


@dataclass(frozen=True)
class EscapingTerms:
    """One model at one epoch: Tr(H Sigma) and the pieces of eq. 19's right-hand side."""

    trace: float  # Tr(H Sigma)
    trace_se: float  # Hutchinson standard error (0 when exact)
    tr_fp2: float  # Tr(F_p F_p^T)
    tr_hpfp: float  # Tr(H_p F_p)
    m_batch: float  # mean over batches of size m of max p_y
    beta: float  # beta of alpha CE + beta EL with alpha = 1 at this progress, else NaN
    rhs19: float  # eq19_coefficient(beta, m_batch) * (tr_fp2 + 2 tr_hpfp)
    loss: float  # mean training loss at W_t
    mean_py: float
    n_params: int
    exact: bool


def escaping_terms(model: torch.nn.Module, loss, X: Tensor, y: Tensor, progress: float,
                   batch_size: int, probes: int | None, seed: int = 0,
                   chunk: int = 32) -> EscapingTerms:
    """Tr(H Sigma) and eq. 19's terms of ``loss`` at ``model``'s weights on (X, y).

    ``loss`` is a registered loss without extra inputs; ``progress`` picks its schedule phase;
    ``probes=None`` computes every trace exactly (P basis products), else by Hutchinson with
    that many Rademacher vectors drawn from ``seed``.
    """
    flat = FlatModel(model)
    theta = flat.theta.to(X.device)
    X = X.double()

    def logits(t: Tensor) -> Tensor:
        return flat(t, X)

    def per_sample(t: Tensor) -> Tensor:
        return loss.per_sample(logits(t), y, progress)

    def p_y(t: Tensor) -> Tensor:
        return torch.log_softmax(logits(t), -1).gather(-1, y[:, None]).squeeze(-1).exp()

    P = flat.n_params
    common = dict(dim=P, probes=probes, chunk=chunk, device=X.device)
    H = hvp(lambda t: per_sample(t).mean(), theta)
    sigma = noise_covariance(per_sample, theta, batch_size)
    trace, se = trace_of_product(H, sigma, generator=torch.Generator().manual_seed(seed),
                                 **common)
    Fp = outer_mean(p_y, theta)
    Hp = hvp(lambda t: -p_y(t).mean(), theta)
    tr_fp2, _ = trace_of_product(Fp, Fp, generator=torch.Generator().manual_seed(seed + 1),
                                 **common)
    tr_hpfp, _ = trace_of_product(Hp, Fp, generator=torch.Generator().manual_seed(seed + 2),
                                  **common)
    with torch.no_grad():
        py = p_y(theta)
        order = torch.randperm(len(py), generator=torch.Generator().manual_seed(seed + 3))
        m_batch = float(torch.stack([b.max() for b in py[order.to(py.device)].split(
            batch_size)]).mean())
        value = float(per_sample(theta).mean())
    ab = loss.affine_coef(progress) if getattr(loss, "depends_on_target_prob", False) else None
    beta = float(ab[1]) if ab is not None and ab[0] == 1.0 else math.nan
    rhs = eq19_coefficient(beta, m_batch) * (tr_fp2 + 2 * tr_hpfp) if beta == beta else math.nan
    return EscapingTerms(trace=trace, trace_se=se, tr_fp2=tr_fp2, tr_hpfp=tr_hpfp,
                         m_batch=m_batch, beta=beta, rhs19=rhs, loss=value,
                         mean_py=float(py.mean()), n_params=P, exact=probes is None)
