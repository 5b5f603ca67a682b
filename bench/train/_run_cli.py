"""`lossbench run SPEC.yaml...`: run spec files without Snakemake, datasets in parallel.

Each dataset's specs are one job (``train_specs``: grids stacked where possible) writing
``<out>/<dataset>/{epochs,summary}.csv``; jobs run in ``--jobs`` worker processes (joblib),
so a user with a handful of specs needs no workflow engine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Run the specs of one or more YAML spec files (no Snakemake); one job per dataset."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", help="YAML files: a spec mapping or a list of them")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per dataset)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--trainer", choices=("auto", "stacked", "torch"), default="auto")
    parser.add_argument("--source", default=None, help="dataset source (all specs)")


def _run_dataset(name: str, specs: list, out: Path, trainer: str, source) -> str:
    import torch

    from bench.data import get_dataset
    from bench.io import write_csv
    from bench.train._run import train_specs
    from bench.train._tables import FLOAT_FORMAT

    torch.set_num_threads(max(s.threads for s in specs))
    result = train_specs(specs, get_dataset(name, source), trainer=trainer,
                         checkpoint_dir=out / name / "checkpoints")
    write_csv(out / name / "epochs.csv", result.epochs, float_format=FLOAT_FORMAT)
    write_csv(out / name / "summary.csv", result.summary, float_format=FLOAT_FORMAT)
    return f"{name}: {len(result.summary)} summary rows"


def run(args: argparse.Namespace) -> int:
    from joblib import Parallel, delayed

    from bench.errors import LossbenchError
    from bench.spec import load_spec_file
    from bench.train._cli import check_out, check_specs

    out = check_out(args.out)
    if args.jobs < 1:
        raise LossbenchError(f"--jobs: expected an integer >= 1; got {args.jobs}")
    specs = [s for path in args.specs for s in load_spec_file(path)]
    check_specs(specs)
    by_dataset: dict[str, list] = {}
    for spec in specs:
        by_dataset.setdefault(spec.dataset, []).append(spec)
    lines = Parallel(n_jobs=args.jobs)(
        delayed(_run_dataset)(name, group, out, args.trainer, args.source)
        for name, group in by_dataset.items())
    print("\n".join(lines))
    return 0
