"""Report section ``transition_error``: how well forward's T-hat estimates the true T.

Reads ``<protocol>/transition_error.csv`` (``lossbench transitions``; columns in
``analysis.transitions.ERROR_COLUMNS``). Registered with ``@section`` like render.py's.
"""

from __future__ import annotations

import pandas as pd

from analysis.noise import level_label
from analysis.report.render import Context, _rel, md_table, section

T_HAT_METHOD = "forward"  # the method trained with T-hat (forward without a given T)
HEADER = ["arch", "noise", "estimates", "mean abs. error: mean", "median", "diagonal: mean",
          "median", "diagonal bias (mean)", "reference diverged"]


def _row(r) -> list[str]:
    return [f"`{r['arch']}`", level_label(r["noise_kind"], r["noise_rate"]),
            f"{int(r['n_estimates'])} ({int(r['n_datasets'])} datasets)",
            f"{r['mae_mean']:.4f}", f"{r['mae_median']:.4f}", f"{r['diag_mae_mean']:.4f}",
            f"{r['diag_mae_median']:.4f}", f"{r['diag_bias_mean']:+.4f}",
            str(int(r["n_reference_diverged"]))]


@section("transition_error")
def transition_error_section(ctx: Context, caption: str = "") -> list[str] | None:
    """One row per (arch, noise level): the error of T-hat against the true T; left out when
    the protocol's scores hold no forward with T-hat, "missing" when they do but the table is
    absent."""
    scores = ctx.protocol.scores
    if scores is not None and T_HAT_METHOD not in set(scores["loss"].astype(str)):
        return None
    path = ctx.protocol.path / "transition_error.csv"
    if not path.is_file():
        return [f"No `{_rel(path, ctx.results_dir)}` (`lossbench transitions`, from the train "
                "jobs' transitions.csv).", ""]
    table = pd.read_csv(path)
    out = [" ".join(caption.split()), ""] if caption else []
    return [*out, *md_table(HEADER, [_row(r) for _, r in table.iterrows()]), ""]
