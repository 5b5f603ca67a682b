"""`lossbench probe escaping`: Tr(H Sigma) and eq. 19's bound per loss at chosen epochs.

For each model x loss: train one run with the torch trainer's ``Run`` (the benchmark's own
training: same init, order and optimiser as ``lossbench train``), stop at each ``--at`` epoch
and measure ``bench.probes.escaping.escaping_terms`` on (a seeded subsample of at most
``--max-samples`` of) the training set, at the schedule's progress for the next step
(epoch / --epochs). Exact traces for models with at most ``--exact-max-params`` parameters,
Hutchinson with ``--probes`` vectors otherwise. Writes ``escaping.csv`` (one row per model,
loss and epoch; byte-identical for the same arguments) and ``config.json`` (the settings and
what each model cost: training and probe seconds).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from bench.errors import LossbenchError

HELP = "Probe models during training: `escaping` = Tr(H Sigma) and eq. 19 per loss (CSV)."

PROBES = ("escaping",)
PROBE_NEEDS = frozenset({"lr_multiplier"})  # needs the probe's loss calls can do without
DEFAULT_LOSSES = "ce,el,ce_el_0,ce_el_0to05"
COLUMNS = ["dataset", "model", "loss", "lr", "seed", "fold", "epoch", "progress", "n_train",
           "n_used", "n_params", "batch_size", "estimator", "probes", "diverged", "trace",
           "trace_se", "tr_fp2", "tr_hpfp", "m_batch", "beta", "rhs19", "train_loss", "mean_py"]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}")\
            from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.train._cli import _csv, _methods

    parser.add_argument("probe", choices=PROBES, help="what to measure")
    parser.add_argument("--dataset", required=True, help="dataset name (see `lossbench datasets`)")
    parser.add_argument("--model", "--arch", dest="model", type=_csv(str, "--model"),
                        default=["linear", "mlp"], help="model(s), e.g. linear,mlp")
    parser.add_argument("--losses", type=_methods, default=DEFAULT_LOSSES.split(","),
                        help=f"loss ids or ID(NAME=VALUE) variants (default {DEFAULT_LOSSES})")
    parser.add_argument("--at", type=_ints, default=[10, 25, 40],
                        help="epochs after which to measure (default 10,25,40)")
    parser.add_argument("--epochs", type=int, default=50,
                        help="the run's length: sets the schedules' progress (default 50)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8, help="m of eq. 16 too")
    parser.add_argument("--protocol", default="klambauer")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--probes", type=int, default=64,
                        help="Hutchinson vectors for models above --exact-max-params")
    parser.add_argument("--exact-max-params", type=int, default=400,
                        help="exact traces (one product per parameter) up to this many")
    parser.add_argument("--max-samples", type=int, default=2000,
                        help="training samples the estimate uses (a seeded subsample)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--source", default=None, help="dataset source")
    parser.add_argument("--splits-source", default=None, help="UCI: Klambauer split files")
    parser.add_argument("--out", required=True, help="output folder")


def _check(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "probes", "max_samples", "threads"):
        if getattr(args, name) < 1:
            raise LossbenchError(f"--{name.replace('_', '-')}: expected an integer >= 1; got "
                                 f"{getattr(args, name)}")
    bad = [e for e in args.at if not 1 <= e <= args.epochs]
    if not args.at or bad:
        raise LossbenchError(f"--at: expected epochs in 1..{args.epochs} (--epochs); got "
                             f"{args.at}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise LossbenchError(f"--lr: expected a positive float; got {args.lr}")


def _specs(args: argparse.Namespace):
    from bench.losses import make_loss
    from bench.spec import RunSpec, parse_method

    specs = []
    for model in args.model:
        for method in args.losses:
            loss_id, params = parse_method(method)
            loss = make_loss(loss_id, **params)
            extra = set(loss.needs) - PROBE_NEEDS
            if extra:
                raise LossbenchError(f"--losses {method}: the probe calls losses without extra "
                                     f"inputs; '{loss_id}' needs {sorted(extra)}")
            specs.append(RunSpec(dataset=args.dataset, model=model, loss=loss_id,
                                 loss_params=params, protocol=args.protocol, fold=args.fold,
                                 lr=args.lr, seed=args.seed, epochs=args.epochs,
                                 batch_size=args.batch_size, device=args.device,
                                 threads=args.threads, progress=False))
    return specs


def probe_run(spec, dataset, split, at: list[int], probes: int, exact_max_params: int,
              max_samples: int, log) -> tuple[list[dict], dict]:
    """Train ``spec`` to max(at) epochs; the escaping terms after each epoch in ``at``."""
    import numpy as np
    import torch

    from bench.probes.escaping import escaping_terms
    from bench.train._run import resolve_device
    from bench.train.torch_trainer import Run, _context, make_data

    device = torch.device(resolve_device(spec.device))
    data = make_data(dataset, split, device, "auto", log)
    run = Run(spec, dataset, data, device, None, log)
    ctx = _context(run, dataset, split, None, log)
    run.loss.prepare(ctx)
    train_idx = np.asarray(split[0])
    if len(train_idx) > max_samples:
        rng = np.random.default_rng(spec.seed)
        train_idx = np.sort(rng.choice(train_idx, max_samples, replace=False))
    X = run.inputs(torch.as_tensor(np.asarray(dataset.X[train_idx]), device=device),
                   train=False).double()  # as the model sees them (uint8 images / 255)
    y = torch.as_tensor(np.asarray(dataset.y[train_idx]), dtype=torch.int64, device=device)
    rows, cost = [], {"train_s": 0.0, "probe_s": 0.0}
    diverged = False
    for epoch in range(max(at)):
        started = time.perf_counter()
        if not diverged:
            value = run.train_epoch(epoch, ctx)
            diverged = not (math.isfinite(value) and run.finite())
        cost["train_s"] += time.perf_counter() - started
        if epoch + 1 not in at:
            continue
        started = time.perf_counter()
        n_params = sum(p.numel() for p in run.model.parameters())
        exact = n_params <= exact_max_params
        row = {"dataset": spec.dataset, "model": spec.model, "loss": spec.method,
               "lr": spec.lr, "seed": spec.seed, "fold": spec.fold, "epoch": epoch + 1,
               "progress": (epoch + 1) / spec.epochs, "n_train": len(split[0]),
               "n_used": len(train_idx), "n_params": n_params, "batch_size": spec.batch_size,
               "estimator": "exact" if exact else "hutchinson", "probes": 0 if exact else probes,
               "diverged": diverged}
        if diverged:
            rows.append(row)
            continue
        terms = escaping_terms(run.model, run.loss, X, y, min(1.0, (epoch + 1) / spec.epochs),
                               spec.batch_size, None if exact else probes, seed=spec.seed)
        row.update({k: getattr(terms, k) for k in ("trace", "trace_se", "tr_fp2", "tr_hpfp",
                                                   "m_batch", "beta", "rhs19", "mean_py")})
        row["train_loss"] = terms.loss
        rows.append(row)
        cost["probe_s"] += time.perf_counter() - started
        log(f"{spec.dataset}/{spec.model} {spec.method} epoch {epoch + 1}: Tr(H Sigma) = "
            f"{terms.trace:.4g} ({row['estimator']}, {n_params} params)")
    return rows, cost


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from bench.data import get_dataset
    from bench.io import write_csv, write_json
    from bench.train._cli import check_out, check_specs
    from bench.train._tables import FLOAT_FORMAT

    _check(args)
    out = check_out(args.out)
    specs = _specs(args)
    check_specs(specs)
    torch.set_num_threads(args.threads)
    dataset = get_dataset(args.dataset, args.source, **(
        {"splits_source": args.splits_source} if args.splits_source else {}))
    splits = dataset.splits(args.protocol)
    if not 0 <= args.fold < len(splits):
        raise LossbenchError(f"--fold: protocol {args.protocol!r} has folds 0..{len(splits) - 1};"
                             f" got {args.fold}")
    at = sorted(set(args.at))
    rows, costs = [], []
    for spec in specs:
        spec_rows, cost = probe_run(spec, dataset, splits[args.fold], at, args.probes,
                                    args.exact_max_params, args.max_samples,
                                    lambda msg: print(msg, file=sys.stderr))
        rows += spec_rows
        costs.append({"model": spec.model, "loss": spec.method,
                      "n_params": spec_rows[0]["n_params"],
                      "estimator": spec_rows[0]["estimator"],
                      "train_s": round(cost["train_s"], 3), "probe_s": round(cost["probe_s"], 3),
                      "probe_s_per_epoch": round(cost["probe_s"] / len(at), 3)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(Path(out) / "escaping.csv", table, float_format=FLOAT_FORMAT)
    settings = {k: v for k, v in vars(args).items() if k not in ("source", "splits_source",
                                                                 "out")}
    write_json(Path(out) / "config.json", {"settings": settings, "cost": costs,
                                           "n_samples": int(dataset.X.shape[0]),
                                           "n_classes": int(dataset.n_classes),
                                           "torch": torch.__version__})
    print(f"wrote {out}/escaping.csv ({len(table)} rows)")
    return 0
