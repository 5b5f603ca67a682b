"""A study job's `lossbench train` arguments as the run specs the train CLI would build."""

from __future__ import annotations

import argparse

from bench.spec import RunSpec
from bench.train._cli import add_arguments, check_specs, specs_from_args


def flag_value(args: tuple[str, ...], name: str) -> str:
    """The value after ``name`` in a job's arguments."""
    return args[args.index(name) + 1]


def job_specs(args: tuple[str, ...]) -> list[RunSpec]:
    """Parse ``args`` with the train CLI's own parser and checks (one fold; nothing is run)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    specs = specs_from_args(parser.parse_args([*args, "--out", "unused"]), n_folds=1)
    check_specs(specs)
    return specs
