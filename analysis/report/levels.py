"""Report sections of a grouped study (one analysis per noise level, ``groups.csv``).

A protocol folder of such a study holds ``datasets.csv`` (which datasets of the collection the
source had), ``analysis/<arch>/<selection>/groups.csv`` with one folder per level, and
``figures/<arch>/noise_curves_<arch>.png``. Registered with ``@section`` like render.py's.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.noise import CLEAN, level_label
from analysis.report.read import Selection, read_labels
from analysis.report.render import Context, _rel, md_table, section


def metric_label(column: str) -> str:
    """``test_top2_pct`` -> ``top-2 acc.``, ``test_acc_at_0.05_pct`` -> ``acc@0.05``."""
    name = column.removeprefix("test_").removesuffix("_pct")
    if name.startswith("top"):
        return f"top-{name[3:]} acc."
    name = name.replace("superclass_", "super-class ").replace("acc_at_", "acc@")
    return "accuracy" if name == "acc" else name


def level_name(group: dict) -> str:
    """``clean``, ``uniform 0.4`` for noise levels; ``top-2 acc.`` for metrics; ``col=value,
    ...`` for other groups."""
    if "noise_kind" in group and "noise_rate" in group:
        return level_label(group["noise_kind"], group["noise_rate"])
    if set(group) == {"metric"}:
        return metric_label(str(group["metric"]))
    return ", ".join(f"{k}={v}" for k, v in group.items())


def ordered_levels(selection: Selection) -> list[tuple[str, dict]]:
    """(folder, group values) of a grouped selection: clean first, then by kind and rate."""
    groups = selection.groups
    keys = [c for c in groups.columns if c not in ("folder", "n_datasets", "n_methods",
                                                    "n_dropped", "friedman_p")]
    rows = [(r["folder"], {k: r[k] for k in keys}) for _, r in groups.iterrows()]

    def key(item):  # clean first; accuracy first among metrics
        group = item[1]
        return (str(group.get("noise_kind")) != CLEAN, group.get("metric") != "test_acc_pct",
                str(group.get("noise_kind", "")), float(group.get("noise_rate", 0) or 0),
                item[0])

    return sorted(rows, key=key)


def protocol_labels(ctx: Context) -> dict[str, str]:
    """Display labels of the protocol's methods: a study's own losses.csv (studies keep it
    beside their scores), else the results folder's."""
    return read_labels(ctx.protocol.path / "losses.csv") or ctx.results.labels


def _grouped(ctx: Context, selection: str, metrics: bool = False) -> dict[str, Selection]:
    """Per arch, the grouped analysis of ``selection``: its levels, or with ``metrics`` its
    per-metric analyses (``metrics/``)."""
    out = {}
    for arch, sels in ctx.protocol.analysis.items():
        sel = sels.get(selection)
        sel = sel.metrics if metrics and sel is not None else sel
        if sel is not None and sel.groups is not None:
            out[arch] = sel
    return out


@section("protocol_datasets")
def protocol_datasets_section(ctx: Context) -> list[str]:
    """Which datasets of the collection the protocol's source had (its datasets.csv)."""
    path = ctx.protocol.path / "datasets.csv"
    if not path.is_file():
        return [f"Datasets: listed in the study file (no `{_rel(path, ctx.results_dir)}`).", ""]
    table = pd.read_csv(path)
    status = table["status"].astype(str)
    ok, missing = table[status == "ok"], table[status == "missing"]
    invalid = table[status.str.startswith("invalid")]
    lines = [f"{len(table)} datasets in the collection: {len(ok)} available and used, "
             f"{len(missing)} missing from the source, {len(invalid)} invalid."]
    if len(missing):
        lines.append(f"Missing (not trained, not ranked): {', '.join(missing['name'])}.")
    lines += [f"Invalid: {r['name']} ({r['status']})." for _, r in invalid.iterrows()]
    return [*lines, ""]


def _cell(table: pd.DataFrame | None, method: str, best: float) -> str:
    if table is None or method not in table.index:
        return "–"
    row = table.loc[method]
    rank = f"{row['mean_rank']:.2f}"
    rank = f"**{rank}**" if math.isclose(row["mean_rank"], best) else rank
    return f"{row['wins']:g} / {row['delta']:+.2f} / {rank}"


@section("level_tables")
def level_tables_section(ctx: Context, selection: str = "mean", metrics: bool = False,
                         caption: str | None = None) -> list[str]:
    """Table 4 per noise level (or, with ``metrics``, per metric) in columns and method in
    rows, per arch, with Friedman p."""
    grouped = _grouped(ctx, selection, metrics)
    if not grouped:
        folder = f"{selection}/metrics" if metrics else selection
        return [f"No per-{'metric' if metrics else 'level'} analysis "
                f"(`analysis/<arch>/{folder}/groups.csv`) for `{ctx.protocol.name}`.", ""]
    labels = protocol_labels(ctx)
    if caption is None:
        caption = ("selection (lr, epoch) on the noisy validation labels, test labels clean.")
    lines = [f"Each cell: #wins / {ctx.study.delta} vs `{ctx.baseline}` / mean rank (bold: the "
             f"best mean rank of the {'metric' if metrics else 'level'}), datasets "
             f"seed-averaged, {caption}", ""]
    for arch, sel in grouped.items():
        levels = ordered_levels(sel)
        tables = {folder: sel.levels[folder].table for folder, _ in levels}
        methods = [m for m in labels if any(t is not None and m in t.index
                                             for t in tables.values())]
        methods += sorted({m for t in tables.values() if t is not None for m in t.index}
                          - set(methods))
        best = {f: (t["mean_rank"].min() if t is not None else math.nan)
                for f, t in tables.items()}
        rows = [[f"{labels.get(m, m)} (`{m}`)",
                 *[_cell(tables[f], m, best[f]) for f, _ in levels]] for m in methods]
        index = sel.groups.set_index("folder")
        rows.append(["Friedman p", *[f"{index.loc[f, 'friedman_p']:.2e}" for f, _ in levels]])
        rows.append(["datasets", *[f"{index.loc[f, 'n_datasets']:g}" for f, _ in levels]])
        lines += [f"**{arch}**", "",
                  *md_table(["method", *[level_name(g) for _, g in levels]], rows), ""]
    return lines


@section("level_figures")
def level_figures_section(ctx: Context, selection: str = "mean",
                          files: tuple[str, ...] = ("cd_diagram.png",
                                                    "performance_profile.png"),
                          metrics: bool = False) -> list[str]:
    """Links to each level's (or metric's) CD diagram and performance profile (too many to
    show inline)."""
    grouped = _grouped(ctx, selection, metrics)
    lines = []
    for arch, sel in grouped.items():
        for name in files:
            links = [f"[{level_name(g)}]({_rel(sel.path / folder / name, ctx.readme_dir)})"
                     for folder, g in ordered_levels(sel) if (sel.path / folder / name).is_file()]
            if links:
                lines.append(f"- {arch}, {name.rsplit('.', 1)[0].replace('_', ' ')}: "
                             + ", ".join(links))
    return [*lines, ""] if lines else ["No per-level figures.", ""]


@section("protocol_figures")
def protocol_figures_section(ctx: Context, name: str, caption: str = "") -> list[str]:
    """A study figure per arch (``figures/<arch>/<name>_<arch>.png`` of the protocol folder,
    e.g. noise_curves, q_sweep) with its caption and the CSV of its numbers."""
    figures = sorted((ctx.protocol.path / "figures").glob(f"*/{name}_*.png"))
    if not figures:
        return [f"No `{name}` figure for `{ctx.protocol.name}`.", ""]
    numbers = ", ".join(f"`{_rel(f.with_name(name + '.csv'), ctx.readme_dir)}`"
                        for f in figures)
    return [*(f"![{f.stem}]({_rel(f, ctx.readme_dir)})" for f in figures), "",
            " ".join(f"{caption} Numbers: {numbers}.".split()), ""]


def _summaries(ctx: Context) -> dict[str, pd.DataFrame]:
    path = ctx.protocol.path / "summary.csv"
    if not path.is_file():
        return {}
    summary = pd.read_csv(path)
    return {str(arch): part for arch, part in summary.groupby("arch", sort=True)}


def _comparisons(claim, summary: pd.DataFrame) -> list[list[str]]:
    from analysis.report.claims import claim_comparisons

    table = claim_comparisons(claim, summary)
    return [[level_label(r.noise_kind, r.noise_rate), f"`{r.method}`", f"`{r.other}`",
             f"{r.n_datasets}", f"{r.mean_diff:+.2f}", f"{r.n_better}/{r.n_worse}",
             f"{r.p_value:.2e}", f"{r.p_holm:.2e}"] for r in table.itertuples()]


@section("noise_verdicts")
def noise_verdicts_section(ctx: Context, where: str = "") -> list[str]:
    """The study's claims decided by per-dataset tests on the protocol's summary.csv, each
    with its test as the claims file defines it, then every comparison behind it."""
    from analysis.report.claims import verdicts
    from analysis.report.render import mark

    summaries = _summaries(ctx)
    if not summaries:
        return [f"No summary.csv for `{ctx.protocol.name}`: no verdicts.", ""]
    found = verdicts(ctx.study, {}, {}, ctx.baseline, summaries)
    suffix = f" on {where}" if where else ""
    rows = [[v.claim.claim, v.claim.paper_value,
             mark(v.reproduced) + (suffix if v.reproduced is not None else ""),
             v.claim.test, v.rule, v.evidence] for v in found]
    lines = [*md_table(["claim", "paper", "verdict", "test", "decision rule", "ours"], rows), ""]
    for v in found:
        if v.reproduced is None or not v.claim.rule.startswith("paired_"):
            continue
        lines += [f"<details><summary>{v.claim.id}: every comparison (paper: "
                  f"{v.claim.paper_value})</summary>", ""]
        for arch, summary in summaries.items():
            lines += [f"**{arch}**", "", *md_table(
                ["level", "method", "vs", "blocks", "mean contrast (points)", "better/worse",
                 "p (one-sided)", "p (Holm)"], _comparisons(v.claim, summary)), ""]
        lines += ["</details>", ""]
    return lines


@section("summary_means")
def summary_means_section(ctx: Context, columns: list[str], caption: str = "") -> list[str]:
    """Per arch, each method's mean (over datasets, seeds averaged first) of ``columns`` of the
    protocol's summary.csv, in percent: the levels behind the rank tables (e.g. mean p_y
    beside close-enough accuracy). Datasets lacking a column's value (top-2 with two
    classes) are left out of that column's mean; the last row counts them."""
    summaries = _summaries(ctx)
    if not summaries:
        return [f"No summary.csv for `{ctx.protocol.name}`.", ""]
    labels = protocol_labels(ctx)
    lines = [" ".join(f"Mean over datasets, in percent (seeds averaged first). {caption}"
                      .split()), ""]
    for arch, summary in summaries.items():
        missing = [c for c in columns if c not in summary.columns]
        if missing:
            return [f"`{ctx.protocol.name}` summary.csv lacks {', '.join(missing)}.", ""]
        per = 100 * summary.groupby(["dataset", "loss"])[columns].mean()
        means = per.groupby("loss").mean()
        order = [m for m in labels if m in means.index]
        order += sorted(set(means.index) - set(order))
        rows = [[f"{labels.get(m, m)} (`{m}`)", *[f"{means.loc[m, c]:.2f}" for c in columns]]
                for m in order]
        counts = per.groupby("dataset").first().notna().sum()
        rows.append(["datasets", *[f"{counts[c]:g}" for c in columns]])
        lines += [f"**{arch}**", "", *md_table(["method", *[f"`{c}`" for c in columns]], rows),
                  ""]
    return lines
