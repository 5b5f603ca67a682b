"""Reference loop: one plain ``nn.Module`` + ``torch.optim`` optimiser per configuration.

This is what the stacked engine must reproduce (tests) and what it is timed against
(``python -m bench.perf``). Same init (``build_module``), same data order
(``order_generator``), same metrics (``metric_sums``); autograd for the backward.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.engine._metrics import metric_names, metric_sums
from bench.engine._stack import SPLITS, StackSpec, order_generator
from bench.models import build_module


def train_naive(spec: StackSpec, X: np.ndarray, y: np.ndarray, n_classes: int,
                split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Same outputs as ``train_stack`` (``[E, S, L, R]`` arrays), one model at a time."""
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y)
    parts = {name: (Xt[torch.from_numpy(idx)], yt[torch.from_numpy(idx)])
             for name, idx in zip(SPLITS, split, strict=True)}
    Xtr, ytr = parts["train"]
    names = metric_names(n_classes)
    E, B = spec.epochs, spec.batch_size
    shape = (E, len(spec.seeds), len(spec.losses), len(spec.lrs))
    out = {"train_loss": np.full(shape, np.nan), "diverged": np.zeros(shape, bool)}
    out.update({f"{sp}_{m}": np.full(shape, np.nan) for sp in SPLITS for m in names})
    for si, seed in enumerate(spec.seeds):
        for li, loss in enumerate(spec.losses):
            for ri, lr in enumerate(spec.lrs):
                model = build_module(spec.arch, Xt.shape[1], n_classes, seed)
                if spec.optimizer == "sgd":
                    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=spec.momentum)
                else:
                    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=spec.betas,
                                           eps=spec.eps)
                gen = order_generator(seed, spec.fold)
                for epoch in range(E):
                    perm = torch.randperm(Xtr.shape[0], generator=gen)
                    total, n_batches = 0.0, 0
                    for a in range(0, len(perm), B):
                        idx = perm[a:a + B]
                        value = loss(model(Xtr[idx]), ytr[idx], epoch / E).mean()
                        opt.zero_grad()
                        value.backward()
                        opt.step()
                        total += float(value.detach())
                        n_batches += 1
                    out["train_loss"][epoch, si, li, ri] = total / n_batches
                    with torch.no_grad():
                        for sp in SPLITS:
                            Xs, ys = parts[sp]
                            values = (metric_sums(model(Xs), ys, n_classes) / len(ys)).numpy()
                            for k, name in enumerate(names):
                                out[f"{sp}_{name}"][epoch, si, li, ri] = values[k]
    return out
