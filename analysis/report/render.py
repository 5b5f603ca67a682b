"""results/README.md as Markdown: a header, the studies table, then each study's sections.

A study's sections come from its spec (analysis/claims/*.yaml, ``sections``); each names a kind
registered here with ``@section``. Section functions know the pipeline's file layout and the
Table 4 format (wins, delta, mean rank), never a paper: claims and their rules are data
(``analysis.report.claims``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from analysis.report.claims import PER_SELECTION, RULES, StudyStatus, Verdict, verdicts
from analysis.report.read import Protocol, StudyResults, friedman_p
from bench.errors import LossbenchError


@dataclass(frozen=True)
class Context:
    """What a section sees: one study (and, inside ``protocols``, one protocol)."""

    status: StudyStatus
    results: StudyResults
    paper: pd.DataFrame | None
    baseline: str
    results_dir: Path
    readme_dir: Path
    protocol: Protocol | None = None

    @property
    def study(self):
        return self.status.study


@dataclass(frozen=True)
class Section:
    render: Callable[..., list[str] | None]  # (ctx, **options); None: leave the section out
    own_heading: bool = False  # the function writes its heading(s) itself


SECTIONS: dict[str, Section] = {}


def section(kind: str, own_heading: bool = False) -> Callable:
    def decorate(fn: Callable) -> Callable:
        SECTIONS[kind] = Section(fn, own_heading)
        return fn

    return decorate


# ---------------------------------------------------------------- helpers


def _md_cell(value) -> str:
    """A table cell: a literal ``|`` (|a − b|) escaped, so it does not split the row."""
    return str(value).replace("|", "\\|")


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
    return lines


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def mark(reproduced: bool | None) -> str:
    return {True: "**reproduced**", False: "**not reproduced**", None: "not tested"}[reproduced]


def selection_verdicts(ctx: Context, protocol: Protocol, selection: str,
                       claims: list[str] | None = None) -> list[Verdict]:
    """The study's verdicts on one selection (``mean`` = averaged over seeds) of a protocol:
    the claims with ids in ``claims``, default every claim a selection decides (its rule
    needs Table 4, Friedman or the post-hoc matrix; not a section's own data)."""
    found = {arch: sels[selection] for arch, sels in protocol.analysis.items()
             if selection in sels}
    tables = {a: s.table for a, s in found.items() if s.table is not None}
    friedmans = {a: s.friedman for a, s in found.items() if s.friedman is not None}
    posthocs = {a: (s.table, s.conover) for a, s in found.items() if s.table is not None}
    if claims is None:
        claims = [c.id for c in ctx.study.claims if RULES[c.rule].needs in PER_SELECTION]
    return verdicts(ctx.study, tables, friedmans, ctx.baseline,
                    inputs={"posthoc": posthocs}, claims=claims)


def render_sections(ctx: Context, specs: tuple[dict, ...] | list[dict]) -> list[str]:
    lines = []
    for spec in specs:
        kind = SECTIONS[spec["kind"]]
        options = {k: v for k, v in spec.items() if k not in ("kind", "heading")}
        if kind.own_heading:
            lines += kind.render(ctx, heading=spec.get("heading"), **options)
            continue
        body = kind.render(ctx, **options)
        if body is None:
            continue
        if spec.get("heading"):
            name = ctx.protocol.name if ctx.protocol is not None else ""
            lines += [spec["heading"].format(protocol=name), ""]
        lines += body
    return lines


def check_sections(specs, source: str) -> None:
    """Every section kind is known (nested ``sections`` too): one line naming the spec if not."""
    for spec in specs:
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind not in SECTIONS:
            raise LossbenchError(f"{source}: unknown section kind {kind!r}; known: "
                                 f"{', '.join(sorted(SECTIONS))}")
        check_sections(spec.get("sections", ()), source)


# ---------------------------------------------------------------- study sections


@section("datasets")
def datasets_section(ctx: Context) -> list[str]:
    datasets, protocols = ctx.results.datasets, ctx.results.protocols
    if datasets is None:
        folder = _rel(ctx.results.path / "datasets.csv", ctx.results_dir)
        return [f"No dataset table (`{folder}`) in this results folder.", ""]
    status = datasets["status"].astype(str)
    ok = datasets[status == "ok"]
    missing = datasets[status == "missing"]
    invalid = datasets[status.str.startswith("invalid")]
    lines = [f"{len(datasets)} datasets configured: {len(ok)} available and used, "
             f"{len(missing)} missing from the source, {len(invalid)} invalid."]
    if len(missing):
        lines.append(f"Missing (not trained, not ranked): {', '.join(missing['name'])}.")
    for _, row in invalid.iterrows():
        lines.append(f"Invalid: {row['name']} ({row['status']}).")
    for p in protocols:
        if p.scores is not None:
            lines.append(f"Protocol `{p.name}`: {p.scores['dataset'].nunique()} datasets "
                         f"in scores.csv.")
    names = ", ".join(ok["name"])
    return [*lines, "", f"<details><summary>Datasets used</summary>\n\n{names}\n\n</details>", ""]


@section("protocols", own_heading=True)
def protocols_section(ctx: Context, heading: str | None, sections: list[dict],
                      only: list[str] | None = None) -> list[str]:
    """The sections once per protocol folder (``only``: these folders, when studies share a
    results folder, as the image studies share ``results/images``)."""
    lines = []
    for p in ctx.results.protocols:
        if only is not None and p.name not in only:
            continue
        if heading:
            lines += [heading.format(protocol=p.name), ""]
        lines += render_sections(replace(ctx, protocol=p), sections)
    return lines


@section("protocol_changes")
def protocol_changes_section(ctx: Context) -> list[str] | None:
    """Verdicts of every protocol next to the primary one's (left out with a single protocol)."""
    usable = [p for p in ctx.results.protocols if p.selection_names()]
    if len(usable) < 2:
        return None
    primary, others = usable[0], usable[1:]
    ref = selection_verdicts(ctx, primary, primary.selection_names()[0])
    header = ["claim", f"`{primary.name}`"] + [f"`{p.name}`" for p in others]
    rows, changed = [], []
    per = {p.name: selection_verdicts(ctx, p, p.selection_names()[0]) for p in others}
    for i, v in enumerate(ref):
        row = [v.claim.claim, mark(v.reproduced)]
        for p in others:
            other = per[p.name][i].reproduced
            row.append(mark(other))
            if other != v.reproduced:
                changed.append(f"“{v.claim.claim}” under `{p.name}`")
        rows.append(row)
    return [*md_table(header, rows), "",
            ("Verdicts that change: " + "; ".join(changed) + ".") if changed
            else "No verdict changes between protocols.", ""]


@section("figures")
def figures_section(ctx: Context, glob: str) -> list[str]:
    """Figures of the results folder matching ``glob`` (e.g. ``figures/*.png``)."""
    figures = sorted(ctx.results_dir.glob(glob))
    return [f"![{f.stem}]({_rel(f, ctx.readme_dir)})" for f in figures] or ["Not generated."]


# ---------------------------------------------------------------- protocol sections

SETTING_KEYS = ("protocol", "archs", "arch", "losses", "lrs", "seeds", "epochs", "batch_size",
                "threads", "n_jobs", "selection")


@section("settings")
def settings_section(ctx: Context) -> list[str]:
    settings = ctx.protocol.settings
    if not settings:
        return ["No settings.json.", ""]
    keys = [k for k in SETTING_KEYS if k in settings]
    keys += [k for k in sorted(settings) if k not in keys and k != "varying_across_jobs"]
    lines = [f"- {key}: `{json.dumps(settings[key], default=str)}`" for key in keys]
    if "varying_across_jobs" in settings:
        lines.append(f"- differing between jobs: `{json.dumps(settings['varying_across_jobs'])}`")
    return [*lines, ""]


@section("timing")
def timing_section(ctx: Context) -> list[str]:
    p, t = ctx.protocol, ctx.protocol.timings
    if t is None or t.empty:
        return [f"Wall time: no timings.csv for `{p.name}`.", ""]
    elapsed = float(t["end"].max() - t["start"].min())
    slow = t.loc[t["seconds"].idxmax()]
    return [
        f"Wall time (`{p.name}`, {len(t)} train jobs, from Snakemake benchmark files): "
        f"sum of job times {duration(float(t['seconds'].sum()))}; elapsed from first job start "
        f"to last job end {duration(elapsed)}; slowest job {slow['dataset']}/{slow['arch']} "
        f"{duration(float(slow['seconds']))}.",
        "",
        *_time_split(t, elapsed),
    ]


def _time_split(t: pd.DataFrame, elapsed: float) -> list[str]:
    """Where the summed job time went (timings of `lossbench collect` that carry the jobs'
    ``train_seconds`` / ``run_seconds``), and the cores' idle time for the jobs' concurrency."""
    if not {"train_seconds", "run_seconds"} <= set(t.columns) or t["run_seconds"].isna().any():
        return []
    total = float(t["seconds"].sum())
    train, run = float(t["train_seconds"].sum()), float(t["run_seconds"].sum())
    busy = t[["start", "end"]].to_numpy()
    cores = max(1, int(max(((busy[:, 0] <= s) & (busy[:, 1] > s)).sum() for s in busy[:, 0])))
    idle = max(0.0, cores * elapsed - total)
    part = [("training loops (evaluation included)", train),
            ("tables and writes", run - train),
            ("process start-up, imports, data loading", total - run)]
    text = "; ".join(f"{name} {duration(v)} ({100 * v / total:.0f} %)" for name, v in part)
    return [f"Split of the summed job time: {text}. Idle with {cores} jobs at a time: "
            f"{duration(idle)} of {duration(cores * elapsed)} core-time.", ""]


@section("verdicts")
def verdicts_section(ctx: Context, claims: list[str] | None = None) -> list[str]:
    """One row per claim (``claims``: these ids; default every claim a selection decides)."""
    names = ctx.protocol.selection_names()
    if not names:
        return ["No analysis folders: no verdicts.", ""]
    unknown = sorted(set(claims or ()) - {c.id for c in ctx.study.claims})
    if unknown:
        raise LossbenchError(f"{ctx.study.source}: verdicts section: unknown claim id(s) "
                             f"{', '.join(unknown)}")
    main = names[0]
    per_sel = {name: selection_verdicts(ctx, ctx.protocol, name, claims) for name in names}
    lines = [f"Decided on `{main}` (seed-averaged as the paper) with the rule stated per claim; "
             "the last column repeats the rule on each seed alone.", ""]
    rows = []
    for i, v in enumerate(per_sel[main]):
        by_seed = ", ".join(f"{n}: {mark(per_sel[n][i].reproduced).strip('*')}"
                            for n in names if n != main) or "–"
        rows.append([v.claim.claim, mark(v.reproduced), v.rule, v.evidence, by_seed])
    return [*lines, *md_table(["claim", "verdict", "rule", "numbers", "per seed"], rows), ""]


def _cell(table: pd.DataFrame | None, loss_id: str) -> str:
    if table is None or loss_id not in table.index:
        return "–"
    row = table.loc[loss_id]
    return f"{row['wins']:g} / {row['delta']:+.2f} / {row['mean_rank']:.2f}"


@section("paper_table")
def paper_table_section(ctx: Context, paper_note: str = "paper") -> list[str]:
    """Our seed-averaged Table 4 next to the paper's, per group (arch); ours alone for a
    study without a paper table (a claim the paper printed no table for)."""
    protocol, labels, paper = ctx.protocol, ctx.results.labels, ctx.paper
    archs = [a for a in protocol.analysis if "mean" in protocol.analysis[a]]
    if not archs:
        return ["No seed-averaged analysis (analysis/<arch>/mean) for this protocol.", ""]
    ours = {a: protocol.analysis[a]["mean"].table for a in archs}
    ids = list(labels) or sorted({i for t in ours.values() if t is not None for i in t.index})
    beside = ctx.study.paper_table is not None
    header = ["method"]
    for arch in archs:
        header += [f"{arch}: ours", f"{arch}: paper"] if beside else [arch]
    rows = []
    for loss_id in ids:
        row = [f"{labels.get(loss_id, loss_id)} (`{loss_id}`)"]
        for arch in archs:
            theirs = None
            if paper is not None:
                theirs = paper[paper["group"] == arch].set_index("method")
            row.append(_cell(ours[arch], loss_id))
            if beside:
                row.append(_cell(theirs, loss_id))
        rows.append(row)
    where = (f"{paper_note}; ours: the datasets listed above" if beside
             else "the datasets listed above")
    return [
        f"Each cell: #wins / {ctx.study.delta} vs `{ctx.baseline}` / mean rank, averaged over "
        f"seeds ({where}). `–`: not run" + (" or not in the paper." if beside else "."),
        "",
        *md_table(header, rows),
        "",
    ]


@section("tie_convention")
def tie_convention_section(ctx: Context) -> list[str] | None:
    """Mean ranks under the paper's tie convention, which its Table 4 implies."""
    protocol, labels, paper = ctx.protocol, ctx.results.labels, ctx.paper
    archs = [a for a in protocol.analysis if "mean" in protocol.analysis[a]
             and protocol.analysis[a]["mean"].table is not None
             and "mean_rank_min" in protocol.analysis[a]["mean"].table.columns]
    if not archs or paper is None:
        return None
    ours = {a: protocol.analysis[a]["mean"].table for a in archs}
    sums = []
    for arch in archs:
        theirs = paper[paper["group"] == arch]["mean_rank"]
        k = len(ours[arch])
        sums.append(f"{arch} {theirs.sum():.2f}")
    header = ["method"] + [f"{a}: {c}" for a in archs for c in ("ours, ties averaged",
                                                                "ours, ties → best rank", "paper")]
    rows = []
    for loss_id in ours[archs[0]].index:
        row = [f"{labels.get(loss_id, loss_id)} (`{loss_id}`)"]
        for arch in archs:
            t = ours[arch]
            p = paper[(paper["group"] == arch) & (paper["method"] == loss_id)]["mean_rank"]
            row += [f"{t.loc[loss_id, 'mean_rank']:.2f}", f"{t.loc[loss_id, 'mean_rank_min']:.2f}",
                    f"{float(p.iloc[0]):.2f}" if len(p) else "–"]
        rows.append(row)
    return [
        f"With {k} methods, mean ranks that average ties sum to {k * (k + 1) / 2:g}; the paper's "
        f"sum to {', '.join(sums)}, so it must have given tied methods (frequent on small UCI "
        "datasets) a better rank. Our verdicts use averaged ranks (Demšar 2006); the column "
        "\"ties → best rank\" is the closest match to the paper's numbers.",
        "",
        *md_table(header, rows),
        "",
    ]


@section("friedman")
def friedman_section(ctx: Context) -> list[str]:
    protocol, rows = ctx.protocol, []
    for arch, sels in protocol.analysis.items():
        for name in protocol.selection_names():
            f = sels.get(name).friedman if name in sels else None
            p = friedman_p(f)
            if f is None or p is None:
                rows.append([arch, name, "–", "–", "–", "–"])
                continue
            stat = f.get("statistic", f.get("chi2", float("nan")))
            rows.append([arch, name, f"{float(stat):.2f}", f"{p:.2e}",
                         f.get("n_datasets", "–"), f.get("n_methods", "–")])
    return [*md_table(["arch", "seeds", "statistic", "p-value", "datasets", "methods"], rows), ""]


@section("posthoc")
def posthoc_section(ctx: Context, selection: str = "mean", alpha: float = 0.05) -> list[str]:
    """Every pair's Conover–Friedman p-value, Benjamini–Hochberg-adjusted (conover_bh.csv),
    with both mean ranks, per group: the post-hoc test behind the CD diagrams as numbers."""
    labels, rows = ctx.results.labels, []
    for arch, sels in ctx.protocol.analysis.items():
        sel = sels.get(selection)
        if sel is None or sel.table is None or sel.conover is None:
            rows.append([arch, "–", "–", "no conover_bh.csv"])
            continue
        order = [m for m in labels if m in sel.table.index]
        order += [m for m in sel.table.index if m not in order]
        for i, a in enumerate(order):
            for b in order[i + 1:]:
                p = float(sel.conover.loc[a, b])
                rows.append([arch, f"`{a}` vs `{b}`",
                             f"{sel.table.loc[a, 'mean_rank']:.2f} / "
                             f"{sel.table.loc[b, 'mean_rank']:.2f}",
                             f"**{p:.2e}**" if p < alpha else f"{p:.2e}"])
    title = "averaged over seeds" if selection == "mean" else f"`{selection}`"
    return [f"Conover–Friedman post-hoc test over datasets ({title}), p-values "
            f"Benjamini–Hochberg-adjusted over all pairs (Demšar 2006); bold: below {alpha:g}.",
            "", *md_table(["arch", "pair", "mean ranks", "p (Conover–BH)"], rows), ""]


@section("analysis_figures")
def analysis_figures_section(ctx: Context,
                             files: tuple[str, ...] = ("cd_diagram.png",
                                                       "performance_profile.png")) -> list[str]:
    protocol, lines = ctx.protocol, []
    for arch, sels in protocol.analysis.items():
        for name in protocol.selection_names():
            if name not in sels:
                continue
            shown = [p for p in (sels[name].path / f for f in files) if p.is_file()]
            title = "averaged over seeds" if name == "mean" else name
            lines.append(f"**{arch}, {title}**" + ("" if shown else ": no figures"))
            lines.append("")
            lines += [f"![{p.stem} {arch} {name}]({_rel(p, ctx.readme_dir)})" for p in shown]
            lines.append("")
    return lines


# ---------------------------------------------------------------- the page


def studies_section(rows: list[tuple[StudyStatus, StudyResults | None]]) -> list[str]:
    """Every study of the suite with its status: run (with what was found) or not run, why."""
    table = []
    for status, results in rows:
        study = status.study
        what = f"{study.title} ({study.paper})" if study is not None and study.paper else (
            study.title if study is not None else "–")
        if results is not None:
            protocols = ", ".join(f"`{p.name}`" for p in results.protocols) or "none"
            state = f"run: protocols {protocols}; {len(study.claims)} claims"
        else:
            state = not_run_state(status)
        table.append([f"`{status.name}`", what, state])
    return ["## Studies", "", *md_table(["study", "claims", "status"], table), ""]


def not_run_state(status: StudyStatus) -> str:
    """The studies table's status of a study without results, e.g. "not run: data not
    configured: LOSSBENCH_GLUE"."""
    if status.status == "run":
        folder = status.study.results if status.study is not None else status.name
        return f"not run: no results (`{folder}/` missing)"
    return f"not run: {status.reason or 'no reason given'}"


def preview_sections(ctx: Context) -> list[str]:
    """A study without results: its title, why it was not run, and its ``preview`` sections
    (the paper's numbers: what a run should be compared with)."""
    study = ctx.study
    lines = [f"## `{ctx.status.name}`: {study.title} — {not_run_state(ctx.status)}", ""]
    if study.intro:
        lines += [study.intro, ""]
    return lines + render_sections(ctx, study.preview)


def render_page(rows: list[tuple[StudyStatus, StudyResults | None]],
                contexts: list[Context], results_dir: Path,
                previews: list[Context] | None = None) -> str:
    titles = "; ".join(c.study.title for c in contexts)
    lines = [
        f"# lossbench results: {titles}",
        "",
        "Generated by `lossbench report` (the `report` rule of the Snakefile); do not edit by "
        "hand. Regenerate with `snakemake --cores N` (or `lossbench report --results-dir "
        f"{results_dir.as_posix()}`).",
        "",
    ]
    for ctx in contexts:
        found = ", ".join(f"`{p.name}`" for p in ctx.results.protocols) or "none"
        lines += [f"{ctx.study.intro} Protocols found: {found}.", ""]
    lines += studies_section(rows)
    for ctx in contexts:
        lines += render_sections(ctx, ctx.study.sections)
    for ctx in previews or ():
        lines += preview_sections(ctx)
    return "\n".join(lines).rstrip() + "\n"


def _method_id(method: str) -> str:
    """The loss id of a method name (``ce_el_0to05(rule=paper)`` -> ``ce_el_0to05``)."""
    return str(method).split("(", 1)[0]


@section("accuracy_table")
def accuracy_table_section(ctx: Context, metric: str = "test_acc",
                           title: str = "Test accuracy (%)") -> list[str]:
    """Mean ± std over seeds of a metric (percent) per dataset x model x method, with the
    change against the baseline: the numbers behind every verdict, in the paper's format.
    ``metric`` ``test_score`` with ``title`` naming it: a dataset's official metric."""
    scores = ctx.protocol.scores
    if scores is None or metric not in scores.columns:
        return [f"No scores.csv with `{metric}` for `{ctx.protocol.name}`.", ""]
    labels = ctx.results.labels
    methods = [m for m in labels if m in set(scores["loss"])] or sorted(set(scores["loss"]))
    base = next((m for m in methods if _method_id(m) == ctx.baseline), None)
    stats = (scores.assign(pct=100 * scores[metric])
             .groupby(["dataset", "arch", "loss"])["pct"].agg(["mean", "std", "count"]))
    rows = []
    for (dataset, arch), block in stats.groupby(level=[0, 1], sort=True):
        block = block.droplevel([0, 1])
        row = [f"`{dataset}`", f"`{arch}`"]
        for method in methods:
            if method not in block.index:
                row.append("–")
                continue
            cell = f"{block.loc[method, 'mean']:.2f} ± {block.loc[method, 'std']:.2f}"
            if base is not None and method != base and base in block.index:
                cell += f" ({block.loc[method, 'mean'] - block.loc[base, 'mean']:+.2f})"
            row.append(cell)
        rows.append(row)
    n = int(stats["count"].max()) if len(stats) else 0
    header = ["dataset", "model", *[labels.get(m, m) for m in methods]]
    return [f"{title} at the selected lr and epoch, mean ± std over {n} seeds; in "
            f"brackets the change against {labels.get(base, base)}.", "",
            *md_table(header, rows), ""]


def _pm(mean: float, std: float) -> str:
    """``mean ± std``; an unreadable std (empty in the paper table) is ``?``."""
    return f"{mean:.2f} ± {std:.2f}" if pd.notna(std) else f"{mean:.2f} ± ?"


def _our_stats(ctx: Context, metric: str | None) -> pd.DataFrame | None:
    """Our mean, std and count over seeds (percent) per (dataset, model, loss id)."""
    scores = ctx.protocol.scores if ctx.protocol is not None and metric else None
    if scores is None or metric not in scores.columns:
        return None
    frame = scores.assign(pct=100 * scores[metric], loss=scores["loss"].map(_method_id))
    return frame.groupby(["dataset", "arch", "loss"])["pct"].agg(["mean", "std", "count"])


@section("paper_values")
def paper_values_section(ctx: Context, table: str, note: str = "",
                         models: list[str] | None = None, ours: str | None = None,
                         labels: dict[str, str] | None = None) -> list[str]:
    """The paper's published cells (a packaged table, analysis/paper_tables) for reference;
    ``ours`` (a scores.csv column, e.g. ``test_acc``): our mean ± std over seeds in a row under
    each of the paper's, when this protocol has scores (a study not run shows the paper's).
    ``labels``: loss id -> column label where the results folder has no losses.csv."""
    from analysis.paper import paper_table

    paper = paper_table(table)
    if models:
        paper = paper[paper["model"].isin(models)]
    if paper.empty:
        return [f"The paper's `{table}` has no rows for {models}.", ""]
    losses = list(dict.fromkeys(paper["loss"]))
    labels = {**(labels or {}), **{_method_id(m): lab.split(" (")[0]
                                   for m, lab in ctx.results.labels.items()}}
    stats = _our_stats(ctx, ours)
    rows, notes = [], []
    for (dataset, model), block in paper.groupby(["dataset", "model"], sort=False):
        cells = block.set_index("loss")
        lead = [f"`{dataset}`", f"`{model}`"] + (["paper"] if stats is not None else [])
        rows.append([*lead, *[_pm(cells.loc[loss, "mean"], cells.loc[loss, "std"])
                              if loss in cells.index else "–" for loss in losses]])
        if stats is not None:
            mine = stats.loc[(dataset, model)] if (dataset, model) in stats.index else None
            rows.append(["", "", f"ours ({ours})", *[
                _pm(mine.loc[loss, "mean"], mine.loc[loss, "std"])
                if mine is not None and loss in mine.index else "–" for loss in losses]])
        if "note" in block.columns:
            notes += [f"`{model}`, {labels.get(r.loss, r.loss)}: {r.note}"
                      for r in block.itertuples() if isinstance(r.note, str) and r.note]
    header = ["dataset", "model", *([""] if stats is not None else []),
              *[labels.get(loss, loss) for loss in losses]]
    out = [note, ""] if note else []
    out += [*md_table(header, rows), ""]
    if stats is not None:
        n = int(stats["count"].max()) if len(stats) else 0
        out += [f"Ours: mean ± std over {n} seeds at the selected lr and epoch; `–`: not run.",
                ""]
    if notes:
        out += ["The paper table's notes: " + "; ".join(notes) + ".", ""]
    return out


@section("note")
def note_section(ctx: Context, text: str) -> list[str]:
    """Fixed text from the study spec: what changed in the results since an earlier run and
    why, provenance a reader needs (the spec is data, so the note is versioned with it)."""
    return [" ".join(str(text).split()), ""]


@section("buckets")
def buckets_section(ctx: Context, table: str) -> list[str]:
    """The motivating example: our buckets (analysis.buckets) beside the paper's counts."""
    from analysis.paper import paper_table

    path = ctx.protocol.path / "buckets.csv"
    if not path.is_file():
        return [f"No buckets.csv for `{ctx.protocol.name}` (`lossbench buckets`).", ""]
    ours = pd.read_csv(path).set_index("bucket")
    paper = paper_table(table)
    names = {"correct": "correct", "wrong_py_above": "wrong_py_above_0.2",
             "wrong_py_below": "wrong_py_below_0.2"}
    rows = []
    for bucket, row in ours.iterrows():
        ref = paper[paper["bucket"] == names.get(bucket, bucket)]
        ref_cell = "–"
        if len(ref):
            first = ref.iloc[0]
            ref_cell = (f"{int(first['n_at_epoch70']):,} → {int(first['n_correct_at_epoch90']):,}"
                        f" ({first['pct']:.2f} %)")
        rows.append([bucket, f"{int(row['n_early']):,} → {int(row['n_correct_late']):,} "
                     f"({row['pct']:.2f} %)", ref_cell])
    return [*md_table(["bucket at the early epoch", "ours: size → correct later",
                       "paper"], rows), ""]
