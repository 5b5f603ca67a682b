"""Benchmark the training engine: ``python -m bench.perf [--out results/perf/engine.json]``.

Prints JSON (and writes it with ``--out``):

- ``speedup``: on identical work (the paper grid: 6 losses x 3 lrs x 2 seeds, both archs) on
  three real datasets of different sizes, model-steps per second of the stacked engine vs the
  per-model torch trainer (``fit_torch``, one model at a time on the CPU; the ``naive_*``
  keys), both run in this process (the per-model runs on a bounded number of epochs for the
  large datasets, which does not change their per-step cost);
- ``sweep``: one epoch of the stacked engine on every available dataset and both archs, scaled
  to the paper's 50 epochs: the full sweep's CPU time, and its wall time on ``--cores`` cores;
- ``peak_rss_mb``: peak resident memory of this process.
Targets on a 2-core machine: speedup >= 50x, sweep <= 10 min wall, peak memory <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

PAPER_LOSSES = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]
LRS = [0.01, 0.005, 0.001]
SEEDS = [0, 1]


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, arch: str, epochs: int, naive_epochs: int) -> dict:
    """Stacked vs per-model (``fit_torch``) model-steps/s on one dataset (the per-model runs
    on ``naive_epochs`` epochs)."""
    from bench.data import load
    from bench.losses import make_loss
    from bench.spec import RunSpec
    from bench.train import StackSpec, fit_torch_grid, train_stack

    ds = load(name)
    split = ds.splits("klambauer")[0]
    losses = [make_loss(i) for i in PAPER_LOSSES]
    n_models = len(losses) * len(LRS) * len(SEEDS)
    n_batches = -(-len(split[0]) // 8)

    def spec(e: int) -> StackSpec:
        return StackSpec(arch=arch, losses=losses, lrs=LRS, seeds=SEEDS, epochs=e)

    def per_model(e: int, parts) -> None:
        base = RunSpec(dataset=name, model=arch, epochs=e, device="cpu", progress=False)
        fit_torch_grid(base, [(i, {}) for i in PAPER_LOSSES], LRS, SEEDS, ds, parts,
                       log=lambda msg: None)

    tiny = tuple(idx[:16] for idx in split)  # warm-up: one-time costs stay out of the timings
    train_stack(spec(1), ds.X, ds.y, ds.n_classes, tiny)
    per_model(1, tiny)

    t_stack = _time(lambda: train_stack(spec(epochs), ds.X, ds.y, ds.n_classes, split))
    t_naive = _time(lambda: per_model(naive_epochs, split))
    stack_rate = n_models * n_batches * epochs / t_stack
    naive_rate = n_models * n_batches * naive_epochs / t_naive
    return {"dataset": name, "arch": arch, "n_train": int(len(split[0])),
            "n_features": ds.n_features, "n_classes": ds.n_classes, "n_models": n_models,
            "stack_epochs": epochs, "naive_epochs": naive_epochs,
            "stack_model_steps_per_s": round(stack_rate),
            "naive_model_steps_per_s": round(naive_rate),
            "stack_us_per_model_step": round(1e6 / stack_rate, 2),
            "naive_us_per_model_step": round(1e6 / naive_rate, 2),
            "speedup": round(stack_rate / naive_rate, 1)}


def sweep(cores: int, paper_epochs: int = 50) -> dict:
    """One stacked epoch per available dataset x arch, scaled to the paper's epoch count."""
    from bench.data import load, names
    from bench.errors import DatasetMissingError
    from bench.losses import make_loss
    from bench.train import StackSpec, train_stack

    losses = [make_loss(i) for i in PAPER_LOSSES]
    jobs, missing, steps = [], [], 0
    for name in names():
        try:
            ds = load(name)
        except DatasetMissingError:
            missing.append(name)
            continue
        split = ds.splits("klambauer")[0]
        for arch in ("linear", "mlp"):
            spec = StackSpec(arch=arch, losses=losses, lrs=LRS, seeds=SEEDS, epochs=1)
            seconds = _time(lambda spec=spec, ds=ds, split=split:
                            train_stack(spec, ds.X, ds.y, ds.n_classes, split))
            jobs.append(seconds * paper_epochs)
            steps += 36 * paper_epochs * -(-len(split[0]) // 8)
    jobs.sort(reverse=True)
    loads = [0.0] * cores  # longest-first onto the least-loaded core, as a scheduler would
    for seconds in jobs:
        loads[loads.index(min(loads))] += seconds
    return {"n_jobs": len(jobs), "missing": missing, "model_steps": steps,
            "cpu_s": round(sum(jobs), 1), "cores": cores,
            "wall_s_estimate": round(max(loads), 1), "longest_job_s": round(jobs[0], 1),
            "us_per_model_step": round(1e6 * sum(jobs) / steps, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="iris,letter,adult",
                        help="three datasets of different sizes (small, mid, large)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args(argv)
    import torch

    from bench.io import write_json

    torch.set_num_threads(1)
    report: dict = {"python": platform.python_version(), "torch": torch.__version__,
                    "machine": platform.machine(), "threads_per_job": 1}
    rows = []
    for name in args.datasets.split(","):
        for arch in ("linear", "mlp"):
            small = name == args.datasets.split(",")[0]
            rows.append(compare(name, arch, epochs=5 if small else 2,
                                naive_epochs=5 if small else 1))
            print(json.dumps(rows[-1]), file=sys.stderr)
    report["speedup"] = rows
    if not args.no_sweep:
        report["sweep"] = sweep(args.cores)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
