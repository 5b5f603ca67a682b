"""Display labels of the configured losses, from the registry (`make_loss(id).label`).

Also the first place an unknown loss id is reported (the registry's error lists the known ids).
"""

import pandas as pd
from pipeline_io import run_logged

from bench.io import write_csv
from bench.losses import make_loss


def main() -> None:
    ids = list(snakemake.params.losses)  # noqa: F821 (injected by Snakemake)
    labels = [make_loss(loss_id).label for loss_id in ids]
    write_csv(snakemake.output.labels, pd.DataFrame({"method": ids, "label": labels}))  # noqa: F821


run_logged(main, snakemake.log[0] if snakemake.log else None)  # noqa: F821
