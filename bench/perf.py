"""Benchmark the training engine: ``python -m bench.perf [--out results/perf/engine.json]``.

Prints JSON (and writes it with ``--out``):

- ``speedup``: on identical work (the paper grid: 6 losses x 3 lrs x 2 seeds, both archs) on
  three real datasets of different sizes, the marginal cost per model-step of the stacked
  engine vs the per-model torch trainer (``fit_torch``, one model at a time on the CPU; the
  ``naive_*`` keys), both run in this process: (time of e2 epochs - time of e1 epochs) /
  (the model-steps in between), so one-time costs (model creation, data copies) stay out;
  ``*_total_us_per_model_step`` are the whole runs' costs. Times are this process's CPU time
  (one thread), which a busy machine inflates less than wall time; each figure is the best
  of ``--repeats`` runs;
- ``sweep``: three epochs of the stacked engine on every available dataset and both archs,
  scaled to the paper's 50 epochs: the full sweep's CPU time, and its wall time on
  ``--cores`` cores (training only: no process start-up or file writing);
- ``peak_rss_mb``: peak resident memory of this process.
Targets on a 2-core machine: speedup >= 100x, sweep <= 5 min wall, peak memory <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time

PAPER_LOSSES = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]
LRS = [0.01, 0.005, 0.001]
SEEDS = [0, 1]


def _time(fn, repeats: int = 1) -> float:
    """Best CPU time of ``repeats`` calls (seconds)."""
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def compare(name: str, arch: str, epochs: tuple[int, int], naive_epochs: tuple[int, int],
            repeats: int = 3) -> dict:
    """Stacked vs per-model (``fit_torch``) marginal cost per model-step on one dataset."""
    from bench.data import load
    from bench.losses import make_loss
    from bench.spec import RunSpec
    from bench.train import StackSpec, fit_torch_grid, train_stack

    ds = load(name)
    split = ds.splits("klambauer")[0]
    losses = [make_loss(i) for i in PAPER_LOSSES]
    n_models = len(losses) * len(LRS) * len(SEEDS)
    n_batches = -(-len(split[0]) // 8)

    def stack(e: int, parts=split) -> None:
        spec = StackSpec(arch=arch, losses=losses, lrs=LRS, seeds=SEEDS, epochs=e)
        train_stack(spec, ds.X, ds.y, ds.n_classes, parts)

    def per_model(e: int, parts=split) -> None:
        base = RunSpec(dataset=name, model=arch, epochs=e, device="cpu", progress=False)
        fit_torch_grid(base, [(i, {}) for i in PAPER_LOSSES], LRS, SEEDS, ds, parts,
                       log=lambda msg: None)

    tiny = tuple(idx[:16] for idx in split)  # warm-up: one-time costs stay out of the timings
    stack(1, tiny)
    per_model(1, tiny)

    def cost(fn, e: tuple[int, int], reps: int) -> tuple[float, float]:
        """(marginal, whole-run) microseconds per model-step."""
        t1, t2 = (_time(lambda k=k: fn(k), reps) for k in e)
        marginal = (t2 - t1) / (n_models * n_batches * (e[1] - e[0]))
        return 1e6 * marginal, 1e6 * t2 / (n_models * n_batches * e[1])

    stack_us, stack_total = cost(stack, epochs, repeats)
    naive_us, naive_total = cost(per_model, naive_epochs, 1)
    return {"dataset": name, "arch": arch, "n_train": int(len(split[0])),
            "n_features": ds.n_features, "n_classes": ds.n_classes, "n_models": n_models,
            "stack_epochs": list(epochs), "naive_epochs": list(naive_epochs),
            "stack_us_per_model_step": round(stack_us, 2),
            "naive_us_per_model_step": round(naive_us, 2),
            "stack_total_us_per_model_step": round(stack_total, 2),
            "naive_total_us_per_model_step": round(naive_total, 2),
            "speedup": round(naive_us / stack_us, 1)}


def sweep(cores: int, paper_epochs: int = 50, epochs: int = 3) -> dict:
    """``epochs`` stacked epochs per available dataset x arch, scaled to the paper's count."""
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
            spec = StackSpec(arch=arch, losses=losses, lrs=LRS, seeds=SEEDS, epochs=epochs)
            seconds = _time(lambda spec=spec, ds=ds, split=split:
                            train_stack(spec, ds.X, ds.y, ds.n_classes, split))
            jobs.append(seconds * paper_epochs / epochs)
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
    parser.add_argument("--repeats", type=int, default=3, help="best of N stacked runs")
    args = parser.parse_args(argv)
    import torch

    from bench.io import write_json

    torch.set_num_threads(1)
    report: dict = {"python": platform.python_version(), "torch": torch.__version__,
                    "machine": platform.machine(), "threads_per_job": 1,
                    "clock": "process CPU time", "load_average": list(os.getloadavg()),
                    "cpu_count": os.cpu_count()}
    rows = []
    for name in args.datasets.split(","):
        for arch in ("linear", "mlp"):
            small = name == args.datasets.split(",")[0]
            # the small dataset's 50 stacked epochs in between: a 5-epoch difference (~20 ms)
            # was below the clock's noise (a 652x "speedup" on a loaded machine)
            rows.append(compare(name, arch, epochs=(10, 60) if small else (1, 3),
                                naive_epochs=(5, 10) if small else (1, 2),
                                repeats=args.repeats))
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
