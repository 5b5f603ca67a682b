# Config loading and validation, paths, input functions and wildcard constraints shared by the rules.

import csv
import os
from pathlib import Path

from snakemake.utils import min_version

from bench.config_check import validate_config_or_exit
from bench.schedule import size_priority

min_version("8.0")


# Fills schema defaults, so rules can index config[...] directly.
validate_config_or_exit(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
                        workflow.configfiles)

REPO = Path(workflow.basedir)
RESULTS = config["results_dir"].rstrip("/")
LOGS = config["logs_dir"].rstrip("/")
UCI = f"{RESULTS}/uci"
RUN = f"{UCI}/{{protocol}}/runs/{{dataset}}"  # one train job per dataset, every arch
ANALYSIS = f"{UCI}/{{protocol}}/analysis/{{arch}}/{{selection}}"
FIGURES = f"{RESULTS}/figures"
# analysis per architecture: one folder per seed and one averaged over seeds (as the paper)
SELECTIONS = [f"seed{s}" for s in config["seeds"]] + ["mean"]


def repo_path(path):
    """Config paths such as paper_table are relative to the repository, not the working dir."""
    return str(path if Path(path).is_absolute() else REPO / path)


# the paper's Table 4: the packaged copy unless the config names a file
PAPER_TABLE = repo_path(config["paper_table"]) if config["paper_table"] else None


def paper_input(wildcards=None):
    """The configured paper table as a named input (so jobs rerun when it changes), or none."""
    return {"paper_table": PAPER_TABLE} if PAPER_TABLE else {}


def paper_args():
    """--paper-table FILE when configured; else the commands use the packaged copy."""
    return ["--paper-table", PAPER_TABLE] if PAPER_TABLE else []

if config["baseline"] not in config["losses"]:
    raise ValueError(
        f"config: baseline {config['baseline']!r} must be one of losses {config['losses']}"
    )


wildcard_constraints:
    protocol="|".join(config["protocols"]),
    arch=r"[A-Za-z0-9_]+",  # any registered model (UCI: linear, mlp; studies: their models)
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    selection=r"mean|blocks|last|seed\d+",


def _local_file(key, env):
    """The configured source when it is a local path (so jobs rerun when it changes)."""
    value = config[key] or os.environ.get(env)
    if value and "://" not in value and Path(value).exists():
        return [value]
    return []


def data_inputs(wildcards=None):
    return _local_file("source", "LOSSBENCH_UCI121") + _local_file(
        "splits_source", "LOSSBENCH_UCI121_SPLITS"
    )


def source_args():
    """--source/--splits-source only when set in the config; else bench.data reads the env.
    Shell-quoted here: the values go into the command line as they are."""
    import shlex

    args = []
    if config["source"]:
        args.append(f"--source {shlex.quote(str(config['source']))}")
    if config["splits_source"]:
        args.append(f"--splits-source {shlex.quote(str(config['splits_source']))}")
    return " ".join(args)


def csv_list(values):
    return ",".join(str(v) for v in values)


def available_datasets():
    """Datasets of the availability table (checkpoint output) whose status is ok."""
    table = checkpoints.datasets.get().output.table
    with open(table, newline="") as handle:
        return [row["name"] for row in csv.DictReader(handle) if row["status"] == "ok"]


def run_files(name):
    """Input function: one per-job file (summary.csv, ...) for every available dataset."""

    def inputs(wildcards):
        return expand(f"{RUN}/{name}", protocol=wildcards.protocol, dataset=available_datasets())

    return inputs


def analysis_dirs():
    return expand(
        f"{UCI}/{{protocol}}/analysis/{{arch}}/{{selection}}",
        protocol=config["protocols"],
        arch=config["archs"],
        selection=SELECTIONS,
    )


def all_targets():
    """Everything `snakemake` builds by default; the report needs all of it."""
    targets = [f"{UCI}/datasets.csv", f"{RESULTS}/README.md"]
    targets += expand(f"{UCI}/{{protocol}}/summary.csv", protocol=config["protocols"])
    targets += [f"{d}/table4.csv" for d in analysis_dirs()]
    targets += rules.gradient_figure.output
    return targets
