"""Report section ``escaping`` and rule ``sign_test``: the escaping-efficiency verdicts.

``lossbench escaping-verdict`` (rule escaping_verdict of workflow/rules/mechanisms.smk) writes
``<study>/escaping/{verdict.csv,dataset_traces.csv,traces.png}``: per claim "EE(a) > EE(b)",
model and probed epoch (``all`` = the trace averaged over the epochs), the datasets compared,
where the claim holds and the one-sided sign test's p-value; the probe runs leave what each
model cost in ``escaping/runs/<dataset>/config.json``. The claims and their decision rule are
data (the study's spec); this section reads that folder, not a protocol's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis._input import require_columns
from analysis.report.claims import RULES, register_rule, verdicts
from analysis.report.read import read_json
from analysis.report.render import Context, _rel, mark, md_table, section

VERDICT_COLUMNS = ("a", "b", "model", "epoch", "n_datasets", "n_holds", "fraction", "p_value")


@register_rule("sign_test",
               "one-sided sign test over the probed datasets, H1: Tr(HΣ) under each of "
               "{methods} exceeds Tr(HΣ) under `{over}` (per dataset, one run per loss, at "
               "epoch `{epoch}`; `all`: the trace averaged over the probed epochs; ties and "
               "diverged runs dropped); reproduced iff every p < {alpha:g}, for every {group} "
               "(an intersection–union test: no adjustment); not reproduced: some p ≥ "
               "{alpha:g}, i.e. the inequality holds on too few datasets to exclude chance",
               needs="escaping")
def sign_test(rows, baseline, study, methods, over, alpha=0.05, epoch="all"):
    if not rows:
        return None, "not tested: no escaping verdict.csv"
    ok, parts = True, []
    for group, table in rows.items():
        for method in methods:
            hit = table[(table["a"] == method) & (table["b"] == over)
                        & (table["epoch"] == str(epoch))]
            if hit.empty:
                return None, (f"not tested: no EE({method}) > EE({over}) at epoch {epoch} "
                              f"for {group} in verdict.csv")
            row = hit.iloc[0]
            if not row["n_datasets"] or pd.isna(row["p_value"]):
                return None, f"not tested: {group}: no dataset compares {method} with {over}"
            ok &= bool(row["p_value"] < alpha)
            parts.append(f"{group}: {method} > {over} on {int(row['n_holds'])}/"
                         f"{int(row['n_datasets'])} datasets ({row['fraction']:.0%}), "
                         f"p = {row['p_value']:.2e}")
    return ok, "; ".join(parts)


def read_verdict(path: Path) -> pd.DataFrame | None:
    """escaping/verdict.csv (epochs as text: ``10``, ``all``), or None when absent."""
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"epoch": str})
    require_columns(table, VERDICT_COLUMNS, path, "the table of `lossbench escaping-verdict`")
    return table


def _epoch_key(epoch: str) -> tuple[int, int]:
    return (1, 0) if epoch == "all" else (0, int(epoch))


def _per_epoch(table: pd.DataFrame) -> list[str]:
    """Every claim x model of verdict.csv, one column per probed epoch and the mean."""
    epochs = sorted(set(table["epoch"]), key=_epoch_key)
    rows = []
    for (a, b, model), part in table.groupby(["a", "b", "model"], sort=False):
        cells = part.set_index("epoch")
        row = [f"EE(`{a}`) > EE(`{b}`)", f"`{model}`"]
        for epoch in epochs:
            if epoch not in cells.index or not cells.loc[epoch, "n_datasets"]:
                row.append("–")
                continue
            r = cells.loc[epoch]
            row.append(f"{int(r['n_holds'])}/{int(r['n_datasets'])} ({r['fraction']:.0%}), "
                       f"p = {r['p_value']:.2e}")
        rows.append(row)
    names = [f"epoch {e}" if e != "all" else "mean over epochs" for e in epochs]
    return md_table(["claim", "model", *names], rows)


def _costs(runs: Path) -> list[str]:
    """What the probe cost per model, from each dataset's config.json (`cost` entries)."""
    rows = []
    for path in sorted(runs.glob("*/config.json")):
        rows += [dict(c, dataset=path.parent.name) for c in (read_json(path) or {}).get("cost", [])]
    if not rows:
        return []
    cost = pd.DataFrame(rows)
    out = []
    for model, part in cost.groupby("model", sort=True):
        estimators = ", ".join(f"{e} {n}" for e, n in part["estimator"].value_counts()
                               .sort_index().items())
        out.append([f"`{model}`", f"{part['dataset'].nunique()} × {part['loss'].nunique()}",
                    estimators, f"{part['probe_s_per_epoch'].median():.2f} / "
                    f"{part['probe_s_per_epoch'].max():.2f}",
                    f"{part['probe_s'].sum():.0f}", f"{part['train_s'].sum():.0f}"])
    return ["What the probe cost (from `runs/<dataset>/config.json`):", "",
            *md_table(["model", "runs (datasets × losses)", "estimator (runs)",
                       "probe s per probed epoch (median / max)", "probe s (all runs)",
                       "training s (all runs)"], out), ""]


@section("escaping")
def escaping_section(ctx: Context, folder: str = "escaping", claims: list[str] | None = None,
                     target: str = "") -> list[str]:
    """The escaping-efficiency claims (default: those whose rule needs ``escaping``) decided on
    ``<study>/<folder>/verdict.csv``, every comparison per epoch, the figure and the cost."""
    path = ctx.results.path / folder
    table = read_verdict(path / "verdict.csv")
    if table is None:
        run = f" (`snakemake --cores N {target}`)" if target else ""
        return [f"No `{_rel(path / 'verdict.csv', ctx.results_dir)}`: the escaping-efficiency "
                f"probe has not run{run}.", ""]
    if claims is None:
        claims = [c.id for c in ctx.study.claims if RULES[c.rule].needs == "escaping"]
    by_model = {str(m): part for m, part in table.groupby("model", sort=True)}
    found = verdicts(ctx.study, {}, {}, ctx.baseline, inputs={"escaping": by_model},
                     claims=claims)
    rows = [[v.claim.claim, mark(v.reproduced), v.claim.test, v.rule, v.evidence]
            for v in found]
    lines = [*md_table(["claim", "verdict", "test", "decision rule", "numbers"], rows), "",
             "Every comparison: datasets where the inequality holds / datasets compared "
             "(fraction), one-sided sign-test p.", "", *_per_epoch(table), ""]
    figure = path / "traces.png"
    if figure.is_file():
        lines += [f"![Tr(HΣ) over training per loss]({_rel(figure, ctx.readme_dir)})", "",
                  "Median over datasets of Tr(HΣ) per loss and probed epoch, interquartile "
                  "band, one panel per model.", ""]
    lines.append("Numbers: " + ", ".join(
        f"`{_rel(path / n, ctx.readme_dir)}`" for n in ("verdict.csv", "dataset_traces.csv")
        if (path / n).is_file()) + ".")
    return [*lines, "", *_costs(path / "runs")]

