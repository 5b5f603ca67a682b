"""`lossbench studies`: the studies table the report reads (name, status, reason, claims).

Every configured study gets a row: UCI-121 first, then the studies the default target runs,
then the GPU targets, then the CPU targets of their own (listed with the command that runs
them; "run" when their collected results are in the results folder, committed from a run).
A study whose datasets have no source is "not run: data not configured" with the variables
to set, so no table is ever silently absent from the report.
"""

from __future__ import annotations

import argparse

HELP = "Write the studies table (status of every configured study) for `lossbench report`."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folder", required=True, help="folder of the study files (YAML)")
    parser.add_argument("--run", nargs="*", default=[], help="studies of the default target")
    parser.add_argument("--targets", nargs="*", default=[],
                        help="studies that are targets of their own (GPU studies)")
    parser.add_argument("--cpu-targets", nargs="*", default=[],
                        help="CPU studies that are targets of their own (not in the default run)")
    parser.add_argument("--sources", nargs="*", default=[], metavar="DATASET=SOURCE",
                        help="dataset sources given in the config (beside env variables)")
    parser.add_argument("--results-dir", default=None,
                        help="results folder: a CPU target whose collected scores are there "
                             "(committed from its last run) is listed as run")
    parser.add_argument("--out", required=True, help="CSV to write")


def run(args: argparse.Namespace) -> int:
    from importlib import resources
    from pathlib import Path

    import pandas as pd

    from bench.io import write_csv
    from bench.studies import load_study

    sources = dict(item.split("=", 1) for item in args.sources if "=" in item)
    packaged = {p.name for p in resources.files("analysis.claims").iterdir()}
    rows = [{"name": "uci", "status": "run", "reason": "", "claims": "mixing_uci.yaml"}]
    for name in [*args.run, *args.targets, *args.cpu_targets]:
        study = load_study(name, args.folder)
        configured, reason = study.data_status(sources)
        if configured and name in args.targets:
            reason = f"GPU target: `snakemake --cores N --resources gpu=1 {name}`"
        if configured and name in args.cpu_targets:  # not in the default run: how to run it
            command = f"`snakemake --cores N {name}`"
            ran = args.results_dir is not None and (
                Path(args.results_dir) / study.config["results"] / name / "scores.csv").is_file()
            configured = ran
            reason = (f"a CPU target of its own ({command}): results of its last run"
                      if ran else f"a CPU target of its own: {command}")
        claims = study.config.get("claims") or (f"{name}.yaml" if f"{name}.yaml" in packaged
                                                 else "")
        rows.append({"name": name, "status": "run" if configured else "not run",
                     "reason": reason, "claims": claims})
    write_csv(args.out, pd.DataFrame(rows))
    print(f"wrote {args.out}: {len(rows)} studies")
    return 0
