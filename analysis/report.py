"""results/README.md: the reproduction report, generated from whatever a results folder holds.

Reads only files (CONTRIBUTING.md layout): ``uci/datasets.csv``, and per protocol
``uci/<protocol>/{settings.json,timings.csv,scores.csv}`` and
``uci/<protocol>/analysis/<arch>/<seedN|mean>/{table4.csv,friedman.json,*.png}``, plus the
figures folder and the paper's Table 4. Each claim of the paper's UCI section gets a verdict
decided by an explicit rule (``CLAIM_RULES``), so the report says what we measured, whichever
way it falls. Missing pieces are reported as missing, never skipped silently.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import LossbenchError
from bench.io import write_text

# loss ids the paper's claims are about
MIXES = ("ce_el_0", "ce_el_0_05", "ce_el_0to05")
GRADUAL = "ce_el_0to05"
EL = "el"
FOCAL = "focal"
FRIEDMAN_ALPHA = 1e-3  # "a very low p-value"
PRIMARY_PROTOCOL = "klambauer"  # the paper's splits
TABLE_COLUMNS = ("method", "wins", "delta", "mean_rank")


@dataclass
class Selection:
    """Analysis outputs of one protocol x arch x (seedN | mean) folder."""

    path: Path
    table: pd.DataFrame | None  # index = loss id; columns wins, delta, mean_rank
    friedman: dict | None


@dataclass
class Protocol:
    name: str
    path: Path
    settings: dict
    timings: pd.DataFrame | None
    scores: pd.DataFrame | None
    # arch -> selection name ("mean", "seed0", ...) -> outputs
    analysis: dict[str, dict[str, Selection]] = field(default_factory=dict)


@dataclass
class Verdict:
    claim: str
    rule: str
    reproduced: bool | None  # None: not testable from these results
    evidence: str


# ---------------------------------------------------------------- reading


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LossbenchError(f"{path}: not valid JSON ({exc})") from exc


def _label_map(uci: Path) -> dict[str, str]:
    labels = _read_csv(uci / "losses.csv")
    if labels is None or not {"method", "label"} <= set(labels.columns):
        return {}
    return dict(zip(labels["method"], labels["label"], strict=True))


def read_table4(path: Path, labels: dict[str, str]) -> pd.DataFrame | None:
    """Our Table 4 indexed by loss id (a table keyed by display label is mapped back)."""
    table = _read_csv(path)
    if table is None:
        return None
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise LossbenchError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {list(TABLE_COLUMNS)}"
        )
    by_label = {label: loss_id for loss_id, label in labels.items()}
    table["method"] = [by_label.get(m, m) for m in table["method"]]
    optional = [c for c in ("mean_rank_min",) if c in table.columns]
    return table.set_index("method")[list(TABLE_COLUMNS[1:]) + optional]


def friedman_p(friedman: dict | None) -> float | None:
    if not friedman:
        return None
    for key in ("p_value", "pvalue", "p"):
        if key in friedman:
            return float(friedman[key])
    return None


def read_protocol(path: Path, labels: dict[str, str]) -> Protocol:
    protocol = Protocol(
        name=path.name,
        path=path,
        settings=_read_json(path / "settings.json") or {},
        timings=_read_csv(path / "timings.csv"),
        scores=_read_csv(path / "scores.csv"),
    )
    analysis = path / "analysis"
    if analysis.is_dir():
        for arch_dir in sorted(p for p in analysis.iterdir() if p.is_dir()):
            protocol.analysis[arch_dir.name] = {
                sel.name: Selection(
                    path=sel,
                    table=read_table4(sel / "table4.csv", labels),
                    friedman=_read_json(sel / "friedman.json"),
                )
                for sel in sorted(p for p in arch_dir.iterdir() if p.is_dir())
            }
    return protocol


def read_results(results_dir: Path) -> tuple[pd.DataFrame | None, list[Protocol], dict]:
    uci = results_dir / "uci"
    if not uci.is_dir():
        raise LossbenchError(
            f"{results_dir}: no uci/ folder; expected a results folder written by the pipeline "
            "(run `snakemake --cores N` first)"
        )
    labels = _label_map(uci)
    protocols = [
        read_protocol(p, labels)
        for p in sorted(uci.iterdir())
        if p.is_dir() and ((p / "scores.csv").is_file() or (p / "analysis").is_dir())
    ]
    protocols.sort(key=lambda p: (p.name != PRIMARY_PROTOCOL, p.name))
    return _read_csv(uci / "datasets.csv"), protocols, labels


# ---------------------------------------------------------------- verdicts


def _fmt_rank(table: pd.DataFrame, loss_id: str) -> str:
    row = table.loc[loss_id]
    return f"{loss_id}: rank {row['mean_rank']:.2f}, ΔAcc {row['delta']:+.2f}"


def _need(tables: dict[str, pd.DataFrame], ids: list[str]) -> str | None:
    for arch, table in tables.items():
        absent = [i for i in ids if i not in table.index]
        if absent:
            return f"not tested: {', '.join(absent)} absent from the {arch} results"
    return None


def _rule_gradual(tables, baseline):
    ids = [GRADUAL]
    if (why := _need(tables, ids)) is not None:
        return None, why
    ok, parts = True, []
    for arch, t in tables.items():
        best = t["mean_rank"].min()
        others = t.drop(index=GRADUAL)["mean_rank"]
        holds = t.loc[GRADUAL, "mean_rank"] == best and (others > best).all()
        ok &= bool(holds)
        runner = others.idxmin()
        parts.append(f"{arch}: {GRADUAL} {t.loc[GRADUAL, 'mean_rank']:.2f} vs best other "
                     f"{runner} {others.min():.2f}")
    return ok, "; ".join(parts)


def _rule_mixes(tables, baseline):
    ids = [*MIXES, baseline]
    if (why := _need(tables, ids)) is not None:
        return None, why
    ok, parts = True, []
    for arch, t in tables.items():
        base = t.loc[baseline, "mean_rank"]
        for mix in MIXES:
            ok &= bool(t.loc[mix, "mean_rank"] < base and t.loc[mix, "delta"] > 0)
        parts.append(f"{arch}: {baseline} rank {base:.2f}; "
                     + ", ".join(_fmt_rank(t, m) for m in MIXES))
    return ok, "; ".join(parts)


def _rule_worse_than_baseline(loss_id):
    def rule(tables, baseline):
        if (why := _need(tables, [loss_id, baseline])) is not None:
            return None, why
        ok, parts = True, []
        for arch, t in tables.items():
            worse = t.loc[loss_id, "mean_rank"] > t.loc[baseline, "mean_rank"]
            ok &= bool(worse and t.loc[loss_id, "delta"] < 0)
            position = int(t["mean_rank"].rank(method="min").loc[loss_id])
            parts.append(f"{arch}: {_fmt_rank(t, loss_id)} (position {position}/{len(t)}) vs "
                         f"{baseline} rank {t.loc[baseline, 'mean_rank']:.2f}")
        return ok, "; ".join(parts)

    return rule


def _rule_friedman(friedmans, baseline):
    if not friedmans:
        return None, "not tested: no friedman.json"
    ok, parts = True, []
    for arch, f in friedmans.items():
        p = friedman_p(f)
        if p is None:
            return None, f"not tested: no p-value in the {arch} friedman.json"
        ok &= bool(p < FRIEDMAN_ALPHA)
        stat = f.get("statistic", f.get("chi2", float("nan")))
        parts.append(f"{arch}: statistic {float(stat):.2f}, p = {p:.2e}")
    return ok, "; ".join(parts)


# (claim as the paper states it, the rule we apply, function of (per-arch tables, baseline))
CLAIM_RULES: list[tuple[str, str, Callable]] = [
    ("Gradual mixing (F=0–0.5) has the best mean rank for both architectures",
     f"`{GRADUAL}` has the strictly lowest mean rank of all methods, for every architecture",
     _rule_gradual),
    ("All three mixes beat CE",
     "each of `ce_el_0`, `ce_el_0_05`, `ce_el_0to05` has a lower mean rank than the baseline and "
     "a positive ΔAcc, for every architecture",
     _rule_mixes),
    ("EL alone is not competitive",
     "`el` has a higher (worse) mean rank than the baseline and a negative ΔAcc, for every "
     "architecture",
     _rule_worse_than_baseline(EL)),
    ("Focal is outperformed by CE",
     "`focal` has a higher (worse) mean rank than the baseline and a negative ΔAcc, for every "
     "architecture",
     _rule_worse_than_baseline(FOCAL)),
    ("The Friedman test rejects equality at a very low p-value",
     f"Friedman p < {FRIEDMAN_ALPHA:g}, for every architecture",
     _rule_friedman),
]


def selection_names(protocol: Protocol) -> list[str]:
    names = {s for sels in protocol.analysis.values() for s in sels}
    seeds = sorted((s for s in names if s != "mean"), key=lambda s: (len(s), s))
    return (["mean"] if "mean" in names else []) + seeds


def verdicts(protocol: Protocol, selection: str, baseline: str) -> list[Verdict]:
    """One verdict per claim, from the given selection (``mean`` = averaged over seeds)."""
    tables = {arch: sels[selection].table for arch, sels in protocol.analysis.items()
              if selection in sels and sels[selection].table is not None}
    friedmans = {arch: sels[selection].friedman for arch, sels in protocol.analysis.items()
                 if selection in sels and sels[selection].friedman is not None}
    out = []
    for claim, rule, fn in CLAIM_RULES:
        if fn is _rule_friedman:
            reproduced, evidence = fn(friedmans, baseline)
        elif not tables:
            reproduced, evidence = None, "not tested: no table4.csv"
        else:
            reproduced, evidence = fn(tables, baseline)
        out.append(Verdict(claim, rule, reproduced, evidence))
    return out


def _mark(reproduced: bool | None) -> str:
    return {True: "**reproduced**", False: "**not reproduced**", None: "not tested"}[reproduced]


# ---------------------------------------------------------------- rendering


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def render_datasets(datasets: pd.DataFrame | None, protocols: list[Protocol]) -> list[str]:
    lines = ["## Datasets", ""]
    if datasets is None:
        return [*lines, "No dataset table (`uci/datasets.csv`) in this results folder.", ""]
    status = datasets["status"].astype(str)
    ok = datasets[status == "ok"]
    missing = datasets[status == "missing"]
    invalid = datasets[status.str.startswith("invalid")]
    lines.append(f"{len(datasets)} datasets configured: {len(ok)} available and used, "
                 f"{len(missing)} missing from the source, {len(invalid)} invalid.")
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


SETTING_KEYS = ("protocol", "archs", "arch", "losses", "lrs", "seeds", "epochs", "batch_size",
                "threads", "n_jobs", "selection")


def render_settings(protocol: Protocol) -> list[str]:
    lines = [f"### Protocol `{protocol.name}`: settings", ""]
    settings = protocol.settings
    if not settings:
        return [*lines, "No settings.json.", ""]
    keys = [k for k in SETTING_KEYS if k in settings]
    keys += [k for k in sorted(settings) if k not in keys and k != "varying_across_jobs"]
    for key in keys:
        lines.append(f"- {key}: `{json.dumps(settings[key], default=str)}`")
    if "varying_across_jobs" in settings:
        lines.append(f"- differing between jobs: `{json.dumps(settings['varying_across_jobs'])}`")
    return [*lines, ""]


def render_timing(protocol: Protocol) -> list[str]:
    t = protocol.timings
    if t is None or t.empty:
        return [f"Wall time: no timings.csv for `{protocol.name}`.", ""]
    elapsed = float(t["end"].max() - t["start"].min())
    slow = t.loc[t["seconds"].idxmax()]
    return [
        f"Wall time (`{protocol.name}`, {len(t)} train jobs, from Snakemake benchmark files): "
        f"sum of job times {_duration(float(t['seconds'].sum()))}; elapsed from first job start "
        f"to last job end {_duration(elapsed)}; slowest job {slow['dataset']}/{slow['arch']} "
        f"{_duration(float(slow['seconds']))}.",
        "",
    ]


def _cell(table: pd.DataFrame | None, loss_id: str) -> str:
    if table is None or loss_id not in table.index:
        return "–"
    row = table.loc[loss_id]
    return f"{row['wins']:g} / {row['delta']:+.2f} / {row['mean_rank']:.2f}"


def render_table4(protocol: Protocol, paper: pd.DataFrame | None, labels: dict[str, str],
                  baseline: str) -> list[str]:
    archs = [a for a in protocol.analysis if "mean" in protocol.analysis[a]]
    if not archs:
        return ["No seed-averaged analysis (analysis/<arch>/mean) for this protocol.", ""]
    ours = {a: protocol.analysis[a]["mean"].table for a in archs}
    ids = list(labels) or sorted({i for t in ours.values() if t is not None for i in t.index})
    header = ["method"]
    for arch in archs:
        header += [f"{arch}: ours", f"{arch}: paper"]
    rows = []
    for loss_id in ids:
        row = [f"{labels.get(loss_id, loss_id)} (`{loss_id}`)"]
        for arch in archs:
            theirs = None
            if paper is not None:
                theirs = paper[paper["group"] == arch].set_index("method")
            row += [_cell(ours[arch], loss_id), _cell(theirs, loss_id)]
        rows.append(row)
    return [
        f"Each cell: #wins / ΔAcc vs `{baseline}` / mean rank, averaged over seeds (paper: two "
        "seeds, 121 datasets; ours: the datasets listed above). `–`: not run or not in the paper.",
        "",
        *_md_table(header, rows),
        "",
    ]


def render_tie_convention(protocol: Protocol, paper: pd.DataFrame | None,
                          labels: dict[str, str]) -> list[str]:
    """Mean ranks under the paper's tie convention, which its Table 4 implies."""
    archs = [a for a in protocol.analysis if "mean" in protocol.analysis[a]
             and protocol.analysis[a]["mean"].table is not None
             and "mean_rank_min" in protocol.analysis[a]["mean"].table.columns]
    if not archs or paper is None:
        return []
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
        "#### Mean ranks and ties",
        "",
        f"With {k} methods, mean ranks that average ties sum to {k * (k + 1) / 2:g}; the paper's "
        f"sum to {', '.join(sums)}, so it must have given tied methods (frequent on small UCI "
        "datasets) a better rank. Our verdicts use averaged ranks (Demšar 2006); the column "
        "\"ties → best rank\" is the closest match to the paper's numbers.",
        "",
        *_md_table(header, rows),
        "",
    ]


def render_friedman(protocol: Protocol) -> list[str]:
    rows = []
    for arch, sels in protocol.analysis.items():
        for name in selection_names(protocol):
            f = sels.get(name).friedman if name in sels else None
            p = friedman_p(f)
            if f is None or p is None:
                rows.append([arch, name, "–", "–", "–", "–"])
                continue
            stat = f.get("statistic", f.get("chi2", float("nan")))
            rows.append([arch, name, f"{float(stat):.2f}", f"{p:.2e}",
                         f.get("n_datasets", "–"), f.get("n_methods", "–")])
    return [*_md_table(["arch", "seeds", "statistic", "p-value", "datasets", "methods"], rows), ""]


def render_verdicts(protocol: Protocol, baseline: str) -> list[str]:
    names = selection_names(protocol)
    if not names:
        return ["No analysis folders: no verdicts.", ""]
    main = names[0]
    per_sel = {name: verdicts(protocol, name, baseline) for name in names}
    lines = [f"Decided on `{main}` (seed-averaged as the paper) with the rule stated per claim; "
             "the last column repeats the rule on each seed alone.", ""]
    rows = []
    for i, v in enumerate(per_sel[main]):
        by_seed = ", ".join(f"{n}: {_mark(per_sel[n][i].reproduced).strip('*')}"
                            for n in names if n != main) or "–"
        rows.append([v.claim, _mark(v.reproduced), v.rule, v.evidence, by_seed])
    return [*lines, *_md_table(["claim", "verdict", "rule", "numbers", "per seed"], rows), ""]


def render_changes(protocols: list[Protocol], baseline: str) -> list[str]:
    usable = [p for p in protocols if selection_names(p)]
    if len(usable) < 2:
        return []
    primary, others = usable[0], usable[1:]
    ref = verdicts(primary, selection_names(primary)[0], baseline)
    lines = ["## Do the verdicts depend on the split protocol?", ""]
    header = ["claim", f"`{primary.name}`"] + [f"`{p.name}`" for p in others]
    rows, changed = [], []
    per = {p.name: verdicts(p, selection_names(p)[0], baseline) for p in others}
    for i, v in enumerate(ref):
        row = [v.claim, _mark(v.reproduced)]
        for p in others:
            other = per[p.name][i].reproduced
            row.append(_mark(other))
            if other != v.reproduced:
                changed.append(f"“{v.claim}” under `{p.name}`")
        rows.append(row)
    lines += _md_table(header, rows)
    lines += ["", ("Verdicts that change: " + "; ".join(changed) + ".") if changed
              else "No verdict changes between protocols.", ""]
    return lines


def render_figures(protocol: Protocol, readme_dir: Path) -> list[str]:
    lines = []
    for arch, sels in protocol.analysis.items():
        for name in selection_names(protocol):
            if name not in sels:
                continue
            pngs = [sels[name].path / f for f in ("cd_diagram.png", "performance_profile.png")]
            shown = [p for p in pngs if p.is_file()]
            title = "averaged over seeds" if name == "mean" else name
            lines.append(f"**{arch}, {title}**" + ("" if shown else ": no figures"))
            lines.append("")
            lines += [f"![{p.stem} {arch} {name}]({_rel(p, readme_dir)})" for p in shown]
            lines.append("")
    return lines


def render(results_dir: str | os.PathLike, paper_table: str | os.PathLike | None = None,
           baseline: str = "ce", readme_dir: str | os.PathLike | None = None) -> str:
    """The report as Markdown; image links are relative to ``readme_dir`` (default results)."""
    results = Path(results_dir)
    readme_dir = Path(readme_dir) if readme_dir is not None else results
    datasets, protocols, labels = read_results(results)
    paper = None
    if paper_table is not None:
        paper = pd.read_csv(paper_table)
        need = {"method", "group", "wins", "delta", "mean_rank"}
        if not need <= set(paper.columns):
            raise LossbenchError(f"{paper_table}: expected columns {sorted(need)}, "
                                 f"got {list(paper.columns)}")
    lines = [
        "# lossbench results: CE/EL mixing on UCI-121",
        "",
        "Generated by `lossbench report` (the `report` rule of the Snakefile); do not edit by "
        "hand. Regenerate with `snakemake --cores N` (or `lossbench report --results-dir "
        f"{results.as_posix()}`).",
        "",
        "Reproduces Table 4 and the UCI claims of Battash, Hazan, Wolf, *Mixing between the "
        "Cross Entropy and the Expectation Loss Terms* (AAAI 2022). Protocols found: "
        + (", ".join(f"`{p.name}`" for p in protocols) or "none") + ".",
        "",
    ]
    lines += render_datasets(datasets, protocols)
    for p in protocols:
        lines += [f"## Protocol `{p.name}`", ""]
        lines += render_settings(p)
        lines += render_timing(p)
        lines += ["### Verdicts on the paper's claims", ""]
        lines += render_verdicts(p, baseline)
        lines += ["### Table 4: ours next to the paper's", ""]
        lines += render_table4(p, paper, labels, baseline)
        lines += render_tie_convention(p, paper, labels)
        lines += ["### Friedman test", ""]
        lines += render_friedman(p)
        lines += ["### Critical-difference diagrams and performance profiles", ""]
        lines += render_figures(p, readme_dir)
    lines += render_changes(protocols, baseline)
    figures = sorted((results / "figures").glob("*.png")) if (results / "figures").is_dir() else []
    lines += ["## Figure 1: gradients of CE, EL and their mixes", ""]
    lines += [f"![{f.stem}]({_rel(f, readme_dir)})" for f in figures] or ["Not generated."]
    return "\n".join(lines).rstrip() + "\n"


def write_report(results_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 paper_table: str | os.PathLike | None = None, baseline: str = "ce") -> Path:
    """Render and write atomically (temp file + os.replace); returns the path written."""
    out = Path(out) if out is not None else Path(results_dir) / "README.md"
    text = render(results_dir, paper_table, baseline, readme_dir=out.parent)
    return write_text(out, text)
