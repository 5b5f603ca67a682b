"""Files of a `Comparison`: CSV/JSON tables, Table 4 (ours and the paper's), summary.md.

File names are fixed (CONTRIBUTING.md, analysis contract); every file is written atomically.
`table4.csv` is read by `analysis.report`: columns method,wins,delta,mean_rank (average
ranks for ties) and mean_rank_min (tied methods get the best rank, the paper's convention) with
method = id, and `friedman.json` must hold `p_value`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis._compare import Comparison
from bench import io

FLOAT_FORMAT = "%.10g"  # every digit a float32/64 score needs, the same text on every rerun


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def _md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def table4_markdown(result: Comparison) -> str:
    """The paper's Table 4 layout (#Wins, ΔScore, mean rank), beside the paper's when given."""
    unit = result.settings["score_col"]
    t = result.table4.set_index("method")
    paper = result.paper
    if paper is None:
        header = ["Method", "#Wins", f"Δ {unit} vs {result.baseline}", "Mean rank"]
        rows = [[result.labels[m], f"{t.loc[m, 'wins']:d}", f"{t.loc[m, 'delta']:+.2f}",
                 f"{t.loc[m, 'mean_rank']:.2f}"] for m in result.methods]
    else:
        header = ["Method", "#Wins (ours)", "#Wins (paper)", "Δ (ours)", "Δ (paper)",
                  "Mean rank (ours)", "Mean rank (paper)"]
        rows = []
        for m in result.methods:
            has = m in paper.index
            rows.append([
                result.labels[m], f"{t.loc[m, 'wins']:d}",
                f"{paper.loc[m, 'wins']:g}" if has else "–",
                f"{t.loc[m, 'delta']:+.2f}", f"{paper.loc[m, 'delta']:+.2f}" if has else "–",
                f"{t.loc[m, 'mean_rank']:.2f}",
                f"{paper.loc[m, 'mean_rank']:.2f}" if has else "–",
            ])
    note = (f"\n{len(result.scores)} datasets. #Wins: datasets where the method matched or beat "
            "every other (ties count for all). Δ: mean difference to "
            f"{result.labels[result.baseline]} in {unit} units. Mean rank: 1 = best, ties "
            "share the average rank.\n")
    return _md_table(header, rows) + note


def _matrix_markdown(p: pd.DataFrame, result: Comparison, alpha: float) -> str:
    labels = [result.labels[m] for m in p.columns]
    rows = []
    for m in p.index:
        cells = []
        for c in p.columns:
            v = float(p.loc[m, c])
            cells.append("–" if m == c else (f"**{_fmt_p(v)}**" if v < alpha else _fmt_p(v)))
        rows.append([result.labels[m], *cells])
    return _md_table(["", *labels], rows)


def _friedman_markdown(f: dict, alpha: float) -> list[str]:
    out = ["## Friedman test", "",
           f"χ²_F = {f['chi2']:.3f} (tie-corrected), p = {_fmt_p(f['p_value'])}; "
           f"Iman–Davenport F_F = {f['iman_davenport_F']:.3f}, "
           f"p = {_fmt_p(f['iman_davenport_p'])} "
           f"(df {f['n_methods'] - 1}, {(f['n_methods'] - 1) * (f['n_datasets'] - 1)}). "
           f"Without tie correction (Demšar 2006, eq. 1): χ²_F = "
           f"{f['chi2_no_tie_correction']:.3f}, F_F = "
           f"{f['iman_davenport_F_no_tie_correction']:.3f}.", ""]
    if f["p_value"] >= alpha:
        out += [f"The Friedman test does not reject equal performance at α = {alpha:g}; "
                "read the post-hoc results below as descriptive only.", ""]
    return out


def summary_markdown(result: Comparison) -> str:
    """Everything in one page: settings, Friedman, ranks, Table 4, post-hoc, figures."""
    s = result.settings
    lab = result.labels
    alpha = s["alpha"]
    group = ", ".join(f"{k} = {v}" for k, v in result.group.items())
    direction = "higher is better" if s["higher_is_better"] else "lower is better"
    f = result.friedman
    out = [f"# Comparison of {len(result.methods)} methods on {len(result.scores)} datasets"
           + (f" ({group})" if group else ""), ""]
    out += [f"Score `{s['score_col']}` ({direction}), datasets from `{s['dataset_col']}`, "
            f"methods from `{s['method_col']}`"
            + (f", averaged over `{s['average_over']}`" if s["average_over"] else "")
            + f". Baseline: {lab[result.baseline]}. α = {alpha:g}.", ""]
    if result.dropped:
        out += [f"**Dropped {len(result.dropped)} incomplete dataset(s)** (a method lacked a "
                f"score): {', '.join(result.dropped)}.", ""]
    else:
        out += ["No dataset was dropped.", ""]
    out += [f"- {n}" for n in result.notes] + ([""] if result.notes else [])

    if not f.get("applicable", True):
        out += ["## Friedman test", "", f["reason"], ""]
    else:
        out += _friedman_markdown(f, alpha)

    out += ["## Ranks", "", _md_table(
        ["Method", "Mean rank", "#Wins", f"Δ vs {lab[result.baseline]}", "Datasets"],
        [[lab[r.method], f"{r.mean_rank:.3f}", f"{r.wins:d}", f"{r.delta_vs_baseline:+.3f}",
          f"{r.n_datasets:d}"] for r in result.ranks.itertuples()])]
    out += ["## Table 4", "", table4_markdown(result)]

    out += ["## Critical-difference diagrams", "",
            "Methods on the mean-rank axis; a bar joins methods that are not significantly "
            f"different at α = {alpha:g}.", "",
            "![Conover–BH critical-difference diagram](cd_diagram.png)", "",
            f"Nemenyi: q_α = {result.nemenyi_q:.3f}, CD = {result.nemenyi_cd:.3f} mean-rank "
            "units.", "", "![Nemenyi critical-difference diagram](cd_diagram_nemenyi.png)", ""]
    out += ["### Conover–Friedman p-values, Benjamini–Hochberg adjusted", "",
            _matrix_markdown(result.conover_bh, result, alpha),
            f"Bold: p < {alpha:g}.", ""]

    if result.profile is not None:
        out += ["## Performance profile", "",
                "ρ(τ): fraction of datasets on which a method scores at least τ × the best "
                "score on that dataset" if s["higher_is_better"] else
                "ρ(τ): fraction of datasets on which a method scores at most τ × the best "
                "(lowest) score on that dataset", "",
                "![Performance profile](performance_profile.png)", ""]

    w = result.wilcoxon_holm
    out += [f"## Wilcoxon signed-rank vs {lab[result.baseline]} (Holm-adjusted)", "",
            _md_table(
                ["Method", "R+ (better)", "R− (worse)", "p", "p (Holm)", "W/L/T", "sign p",
                 "median Δ [95 % CI]", "mean Δ [95 % CI]"],
                [[lab[r.method], f"{r.r_better:g}", f"{r.r_worse:g}", _fmt_p(r.p_value),
                  _fmt_p(r.p_holm), f"{r.sign_wins}/{r.sign_losses}/{r.sign_ties}",
                  _fmt_p(r.sign_p),
                  f"{r.median_diff:+.3f} [{r.median_ci_low:+.3f}, {r.median_ci_high:+.3f}]",
                  f"{r.mean_diff:+.3f} [{r.mean_ci_low:+.3f}, {r.mean_ci_high:+.3f}]"]
                 for r in w.itertuples()]),
            "Zero differences split between R+ and R− (Demšar 2006); W/L/T: datasets on "
            "which the method wins/loses/ties, sign p: two-sided sign test, ties split evenly "
            "(Demšar 2006, Sec. 3.1.2); CIs: percentile bootstrap over datasets.", ""]
    b = result.bayes_signed_rank
    out += [f"## Bayesian signed-rank test vs {lab[result.baseline]} "
            f"(rope ±{s['rope']:g} {s['score_col']})", "",
            _md_table(["Method", "P(better)", "P(rope)", "P(worse)", "mean Δ"],
                      [[lab[r.method], f"{r.p_better:.3f}", f"{r.p_rope:.3f}",
                        f"{r.p_worse:.3f}", f"{r.mean_diff:+.3f}"] for r in b.itertuples()]),
            "Benavoli et al. (2017), via baycomp: posterior probability that the method is "
            "better than the baseline by more than the rope, practically equivalent, or worse.",
            ""]
    out += ["## Files", "", "ranks.csv, friedman.json, conover_bh.csv, wilcoxon_holm.csv, "
            "bayes_signed_rank.csv, table4.csv/.md, cd_diagram.png/.svg, "
            "cd_diagram_nemenyi.png/.svg"
            + (", performance_profile.csv/.png/.svg" if result.profile is not None else "")
            + ".", ""]
    return "\n".join(out)


def write_csv(path: Path, table: pd.DataFrame, index: bool = False) -> Path:
    return io.write_csv(path, table, index=index, float_format=FLOAT_FORMAT)


def write_outputs(result: Comparison, out_dir: str | Path) -> list[Path]:
    """Write every table and figure of `result` into `out_dir` (created); returns the paths."""
    from analysis import figures

    out = Path(out_dir)
    written = [
        write_csv(out / "ranks.csv", result.ranks),
        io.write_json(out / "friedman.json", result.friedman, indent=2, sort_keys=False),
        write_csv(out / "conover_bh.csv", result.conover_bh.rename_axis("method"), index=True),
        write_csv(out / "wilcoxon_holm.csv", result.wilcoxon_holm),
        write_csv(out / "bayes_signed_rank.csv", result.bayes_signed_rank),
        write_csv(out / "table4.csv", result.table4[["method", "wins", "delta", "mean_rank",
                                                     "mean_rank_min"]]),
        io.write_text(out / "table4.md", table4_markdown(result)),
    ]
    plots = [("cd_diagram", lambda: figures.cd_figure(result, "conover")),
             ("cd_diagram_nemenyi", lambda: figures.cd_figure(result, "nemenyi"))]
    if result.profile is not None:
        written.append(write_csv(out / "performance_profile.csv", result.profile, index=True))
        plots.append(("performance_profile", lambda: figures.profile_figure(result)))
    for name, make in plots:
        fig = make()
        for ext in ("png", "svg"):
            written.append(io.save_figure(fig, out / f"{name}.{ext}"))
    written.append(io.write_text(out / "summary.md", summary_markdown(result)))
    return written


def groups_index(done: list[tuple[Path, Comparison]], out: Path) -> pd.DataFrame:
    """``groups.csv`` of a grouped analysis: one row per group (its column values, its folder
    relative to ``out``, datasets, methods, Friedman p), what figures and the report read."""
    rows = []
    for folder, result in done:
        rows.append({**result.group, "folder": folder.relative_to(out).as_posix(),
                     "n_datasets": len(result.scores), "n_methods": len(result.methods),
                     "n_dropped": len(result.dropped),
                     "friedman_p": result.friedman.get("p_value", float("nan"))})
    return pd.DataFrame(rows)
