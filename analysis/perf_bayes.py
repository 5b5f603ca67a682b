"""Benchmark `lossbench analyze` at scale: ``python -m analysis.perf_bayes [--out FILE]``.

Lossbench issue 15: on 2,000 datasets x 20 methods `lossbench analyze` took 3 min 57 s and
1.65 GB, because the Bayesian signed-rank posterior evaluated an O(n^2) quadratic form per
Dirichlet draw. Targets: <= 15 s and <= 300 MB for that size. Prints JSON (and writes it with
``--out``): wall time and peak resident memory of one `lossbench analyze` subprocess on a
synthetic long table, and the time of the Bayesian step alone (in this process). CPU
seconds are given too: on a shared machine the wall time depends on the other processes.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def synthetic_scores(n_datasets: int, n_methods: int, seed: int = 0):
    """A long table (dataset, method, score) of accuracies in percent with small effects."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    base = rng.uniform(50, 95, n_datasets)
    effect = np.linspace(-2.0, 2.0, n_methods)
    acc = np.clip(base[:, None] + effect[None, :] + rng.normal(0, 1.5, (n_datasets, n_methods)),
                  0, 100).round(2)
    return pd.DataFrame({
        "dataset": np.repeat([f"ds{i:05d}" for i in range(n_datasets)], n_methods),
        "method": np.tile([f"m{j:02d}" for j in range(n_methods)], n_datasets),
        "score": acc.ravel(),
    })


def analyze_subprocess(csv: Path, out: Path) -> dict:
    """Wall time and peak RSS of `python -m bench.cli analyze csv --out out` (own process)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "analyze", str(csv), "--out",
                           str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lossbench analyze failed ({proc.returncode}):\n{proc.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def bayes_step(scores_long, repeats: int = 1) -> dict:
    """Wall and CPU seconds of `stats.bayes_signed_rank` (baseline = first method)."""
    from analysis import stats

    wide = scores_long.pivot(index="dataset", columns="method", values="score")
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        stats.bayes_signed_rank(wide, wide.columns[0], rope=0.5)
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return {"wall_s": round(best[0], 2), "cpu_s": round(best[1], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--methods", type=int, default=20)
    parser.add_argument("--out", default=None, help="JSON file to write (e.g. results/perf/)")
    args = parser.parse_args(argv)
    scores = synthetic_scores(args.datasets, args.methods)
    with tempfile.TemporaryDirectory(prefix="lossbench-perf-") as tmp:
        csv = Path(tmp) / "scores.csv"
        scores.to_csv(csv, index=False)
        analyze = analyze_subprocess(csv, Path(tmp) / "out")
    result = {
        "n_datasets": args.datasets, "n_methods": args.methods,
        "analyze": analyze,
        "bayes_signed_rank": bayes_step(scores),
        "load_average_1min": round(__import__("os").getloadavg()[0], 1),
        "targets": {"wall_s": 15, "peak_rss_mb": 300},
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cpus": __import__("os").cpu_count()},
    }
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    sys.stdout.write(text)
    if args.out:
        from bench.io import write_text

        write_text(args.out, text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
