"""Checkpoint script: the availability table of the configured datasets (ok | missing | invalid
| excluded by a study's ``max_samples``).

Train jobs are created only for `ok` rows; missing and invalid ones stay in the table so the
report lists them instead of silently dropping them. A configured name the collection does not
know is a typo and stops the pipeline with one clear line.
"""

import pandas as pd
from pipeline_io import run_logged

from bench.data import dataset_status
from bench.errors import LossbenchError
from bench.io import write_csv


def main() -> None:
    params = snakemake.params  # noqa: F821 (injected by Snakemake)
    rows = pd.DataFrame(dataset_status(params.source, params.splits_source))
    selection = params.selection
    if selection != "all":
        unknown = sorted(set(selection) - set(rows["name"]))
        if unknown:
            raise LossbenchError(
                f"config 'datasets': unknown dataset(s) {', '.join(unknown)}; "
                f"expected 'all' or names from `lossbench datasets` "
                f"(e.g. {', '.join(rows['name'][:5])}, ...)"
            )
        rows = rows[rows["name"].isin(selection)]
    cap = getattr(params, "max_samples", 0)
    if cap:  # a study's size cap: larger datasets are listed as excluded, not trained
        over = (rows["status"] == "ok") & (rows["n_samples"] > cap)
        rows.loc[over, "status"] = f"excluded: more than {cap} samples (study max_samples)"
    counts = rows["status"].str.split(":").str[0].value_counts().to_dict()
    print(f"datasets: {len(rows)} selected, {counts}")
    write_csv(snakemake.output.table, rows)  # noqa: F821


run_logged(main, snakemake.log[0] if snakemake.log else None)  # noqa: F821
