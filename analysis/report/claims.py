"""Studies and their claims as data, and the rules that decide whether a claim is reproduced.

A study spec is a YAML file (package data under ``analysis/claims/``, or any path): the paper's
claims, each with a rule from ``RULES`` and its parameters, and the report sections to show.
The studies table (``analysis/claims/studies.csv``: name, status, reason, claims) lists every
study of the suite, run or not. Adding a paper = a YAML file and a row, not Python.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis._input import require_columns
from analysis.report.read import friedman_p
from bench.errors import LossbenchError

PACKAGE_DATA = files("analysis") / "claims"
STUDIES_TABLE = PACKAGE_DATA / "studies.csv"
STUDY_COLUMNS = ("name", "status", "reason", "claims")
STATUSES = ("run", "not run")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper (a row of a study's claims table)."""

    id: str
    claim: str  # as the paper states it
    metric: str
    test: str  # the statistical test behind it, or "none (...)"
    paper_value: str
    rule: str  # a key of RULES
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A study spec: where its results are, its paper table, claims and report sections."""

    name: str
    title: str
    paper: str
    intro: str
    results: str
    source: str  # the spec file, for error messages
    paper_table: Traversable | Path | None = None
    primary_protocol: str | None = None
    baseline: str = "ce"
    group: str = "group"  # what claims range over ("for every architecture")
    delta: str = "Δ"  # label of the score difference to the baseline
    claims: tuple[Claim, ...] = ()
    sections: tuple[dict, ...] = ()
    # sections shown while the study has no results (data not configured, GPU target not run):
    # what needs none, e.g. the paper's table, so a reader sees what to expect
    preview: tuple[dict, ...] = ()


@dataclass(frozen=True)
class StudyStatus:
    """A row of the studies table, with its spec when it has claims."""

    name: str
    status: str
    reason: str
    study: Study | None


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    rule: str  # the rule as a sentence
    reproduced: bool | None  # None: not testable from these results
    evidence: str


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """``check(inputs, baseline, study, **params) -> (reproduced | None, evidence)``.

    ``inputs`` maps each analysis group (arch) to its Table 4 (``needs="tables"``, indexed by
    method id), to its friedman.json (``needs="friedman"``), to its (Table 4, Conover-BH
    matrix) pair (``needs="posthoc"``), to its rows of the collected summary.csv
    (``needs="summary"``: per-dataset tests) or to a section's own table (any other
    ``needs``, e.g. ``escaping``: the rows of escaping/verdict.csv, passed by that section).
    ``text`` is the rule as a sentence, formatted with the parameters, ``group`` and ``delta``.
    """

    check: Callable[..., tuple[bool | None, str]]
    text: str
    needs: str = "tables"


RULES: dict[str, Rule] = {}


def register_rule(name: str, text: str, needs: str = "tables") -> Callable:
    def decorate(check: Callable) -> Callable:
        RULES[name] = Rule(check, text, needs)
        return check

    return decorate


def _fmt_rank(table: pd.DataFrame, loss_id: str, delta: str) -> str:
    row = table.loc[loss_id]
    return f"{loss_id}: rank {row['mean_rank']:.2f}, {delta} {row['delta']:+.2f}"


def _absent(tables: dict[str, pd.DataFrame], ids: list[str]) -> str | None:
    for group, table in tables.items():
        absent = [i for i in ids if i not in table.index]
        if absent:
            return f"not tested: {', '.join(absent)} absent from the {group} results"
    return None


@register_rule("lowest_mean_rank",
               "`{method}` has the strictly lowest mean rank of all methods, for every {group}")
def lowest_mean_rank(tables, baseline, study, method):
    if (why := _absent(tables, [method])) is not None:
        return None, why
    ok, parts = True, []
    for group, t in tables.items():
        best = t["mean_rank"].min()
        others = t.drop(index=method)["mean_rank"]
        ok &= bool(t.loc[method, "mean_rank"] == best and (others > best).all())
        parts.append(f"{group}: {method} {t.loc[method, 'mean_rank']:.2f} vs best other "
                     f"{others.idxmin()} {others.min():.2f}")
    return ok, "; ".join(parts)


@register_rule("beat_baseline",
               "each of {methods} has a lower mean rank than the baseline and a positive "
               "{delta}, for every {group}")
def beat_baseline(tables, baseline, study, methods):
    if (why := _absent(tables, [*methods, baseline])) is not None:
        return None, why
    ok, parts = True, []
    for group, t in tables.items():
        base = t.loc[baseline, "mean_rank"]
        for m in methods:
            ok &= bool(t.loc[m, "mean_rank"] < base and t.loc[m, "delta"] > 0)
        parts.append(f"{group}: {baseline} rank {base:.2f}; "
                     + ", ".join(_fmt_rank(t, m, study.delta) for m in methods))
    return ok, "; ".join(parts)


@register_rule("worse_than_baseline",
               "`{method}` has a higher (worse) mean rank than the baseline and a negative "
               "{delta}, for every {group}")
def worse_than_baseline(tables, baseline, study, method):
    if (why := _absent(tables, [method, baseline])) is not None:
        return None, why
    ok, parts = True, []
    for group, t in tables.items():
        worse = t.loc[method, "mean_rank"] > t.loc[baseline, "mean_rank"]
        ok &= bool(worse and t.loc[method, "delta"] < 0)
        position = int(t["mean_rank"].rank(method="min").loc[method])
        parts.append(f"{group}: {_fmt_rank(t, method, study.delta)} (position "
                     f"{position}/{len(t)}) vs {baseline} rank "
                     f"{t.loc[baseline, 'mean_rank']:.2f}")
    return ok, "; ".join(parts)


@register_rule("friedman_p_below", "Friedman p < {alpha:g}, for every {group}",
               needs="friedman")
def friedman_p_below(friedmans, baseline, study, alpha):
    if not friedmans:
        return None, "not tested: no friedman.json"
    ok, parts = True, []
    for group, f in friedmans.items():
        p = friedman_p(f)
        if p is None:
            return None, f"not tested: no p-value in the {group} friedman.json"
        ok &= bool(p < alpha)
        stat = f.get("statistic", f.get("chi2", float("nan")))
        parts.append(f"{group}: statistic {float(stat):.2f}, p = {p:.2e}")
    return ok, "; ".join(parts)


@register_rule("better_posthoc",
               "`{method}` has a lower mean rank than `{over}` and the Conover–Friedman p-value "
               "of the pair, Benjamini–Hochberg-adjusted over all pairs, is below {alpha:g}, "
               "for every {group}; not reproduced: for some {group} `{over}` ranks as well or "
               "better, or the pair is not distinguishable at {alpha:g}",
               needs="posthoc")
def better_posthoc(posthocs, baseline, study, method, over, alpha=0.05):
    tables = {g: t for g, (t, _) in posthocs.items()}
    if not tables:
        return None, "not tested: no table4.csv"
    if (why := _absent(tables, [method, over])) is not None:
        return None, why
    ok, parts = True, []
    for group, (t, conover) in posthocs.items():
        if conover is None or method not in conover.index or over not in conover.columns:
            return None, f"not tested: no Conover–BH p-value of {method} vs {over} ({group})"
        p = float(conover.loc[method, over])
        ok &= bool(t.loc[method, "mean_rank"] < t.loc[over, "mean_rank"] and p < alpha)
        parts.append(f"{group}: {_fmt_rank(t, method, study.delta)} vs "
                     f"{_fmt_rank(t, over, study.delta)}; Conover–BH p = {p:.2e}")
    return ok, "; ".join(parts)


_H1 = {"greater": "higher", "less": "lower"}


_UNIT_TEXT = ("one-sided Wilcoxon signed-rank test over {unit}s (dataset: seeds averaged; "
              "block: dataset x seed) of ")
_HOLM_TEXT = (", at every level of noise kind {kinds} (none = clean); p-values Holm-adjusted "
              "over all these comparisons; reproduced iff every adjusted p < {alpha:g}, for "
              "every {group}")


def _paired_table(summary: pd.DataFrame, methods, over, kinds, metric="test_acc",
                  alternative="higher", unit="dataset", alpha=None, versus=None,
                  relative_to=None) -> pd.DataFrame:
    """The comparisons behind a paired rule (``analysis.paired.paired_tests``), from the
    rule's parameters (``alpha`` decides, it does not test)."""
    from analysis.paired import paired_tests

    return paired_tests(summary, methods, over, kinds, metric,
                        {v: k for k, v in _H1.items()}[alternative], unit=unit, versus=versus,
                        relative_to=relative_to)


def claim_comparisons(claim: Claim, summary: pd.DataFrame) -> pd.DataFrame:
    """Every comparison of a paired claim on one group's summary, with the rule's defaults for
    the parameters the claim leaves out (the table its verdict was decided on)."""
    return _paired_table(summary, **rule_params(claim))


def _paired_verdict(summaries, alpha, unit, **params) -> tuple[bool | None, str]:
    """Every comparison of a claim per group (architecture), decided on Holm-adjusted p."""
    from analysis.noise import level_label

    if not summaries:
        return None, "not tested: no summary.csv"
    ok, parts = True, []
    for group, summary in summaries.items():
        try:
            table = _paired_table(summary, unit=unit, **params)
        except LossbenchError as exc:
            return None, f"not tested: {group}: {exc}"
        worst = table.loc[table["p_holm"].idxmax()]
        n_sig = int((table["p_holm"] < alpha).sum())
        ok &= n_sig == len(table)
        parts.append(f"{group}: {n_sig}/{len(table)} comparisons significant; largest Holm p = "
                     f"{worst['p_holm']:.2e} ({worst['method']} vs {worst['other']}, "
                     f"{level_label(worst['noise_kind'], worst['noise_rate'])}, mean contrast "
                     f"{worst['mean_diff']:+.2f}, {int(worst['n_datasets'])} {unit}s)")
    return ok, "; ".join(parts)


@register_rule("paired_wilcoxon",
               _UNIT_TEXT + "`{metric}`, H1: each of {methods} has a {alternative} `{metric}` "
               "than each of {over}" + _HOLM_TEXT, needs="summary")
def paired_wilcoxon(summaries, baseline, study, methods, over, kinds, metric="test_acc",
                    alternative="higher", alpha=0.05, unit="dataset"):
    return _paired_verdict(summaries, alpha, unit, methods=methods, over=over, kinds=kinds,
                           metric=metric, alternative=alternative)


@register_rule("paired_gain_exceeds",
               _UNIT_TEXT + "(method − other on `{metric}`) − (method − other on `{versus}`), "
               "H1: it is {alternative} than 0 for each of {methods} against each of {over}, "
               "i.e. the gain on `{metric}` exceeds the gain on `{versus}`" + _HOLM_TEXT,
               needs="summary")
def paired_gain_exceeds(summaries, baseline, study, methods, over, kinds, metric, versus,
                        alternative="higher", alpha=0.05, unit="dataset"):
    return _paired_verdict(summaries, alpha, unit, methods=methods, over=over, kinds=kinds,
                           metric=metric, alternative=alternative, versus=versus)


@register_rule("paired_closer",
               _UNIT_TEXT + "|method − `{relative_to}`| − |other − `{relative_to}`| on "
               "`{metric}`, H1: it is {alternative} than 0 (each of {methods} closer to "
               "`{relative_to}` than each of {over})" + _HOLM_TEXT, needs="summary")
def paired_closer(summaries, baseline, study, methods, over, kinds, metric, relative_to,
                  alternative="lower", alpha=0.05, unit="dataset"):
    return _paired_verdict(summaries, alpha, unit, methods=methods, over=over, kinds=kinds,
                           metric=metric, alternative=alternative, relative_to=relative_to)


def rule_params(claim: Claim) -> dict[str, Any]:
    """The claim's rule parameters, those it leaves out at the rule's defaults."""
    defaults = {name: p.default for name, p in
                inspect.signature(RULES[claim.rule].check).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **claim.params}


def rule_text(claim: Claim, study: Study) -> str:
    """The claim's rule as a sentence (list parameters become `a`, `b`, ...; parameters the
    claim leaves out read as the rule's defaults)."""
    params = {k: ", ".join(f"`{x}`" for x in v) if isinstance(v, list) else v
              for k, v in rule_params(claim).items()}
    return RULES[claim.rule].text.format(**params, group=study.group, delta=study.delta)


#: what a selection (one analysis folder per group) supplies; other rules need a section's data
PER_SELECTION = ("tables", "friedman", "posthoc")


def verdicts(study: Study, tables: dict[str, pd.DataFrame], friedmans: dict[str, dict],
             baseline: str, summaries: dict[str, pd.DataFrame] | None = None, *,
             inputs: dict[str, dict] | None = None,
             claims: Collection[str] | None = None) -> list[Verdict]:
    """One verdict per claim of ``study`` (those with ids in ``claims``, default all) from one
    selection's per-group tables (and, for per-dataset tests, each group's rows of the collected
    summary; ``inputs``: what other rules need, keyed by their ``needs``)."""
    given = {"tables": tables, "friedman": friedmans, "summary": summaries or {},
             **(inputs or {})}
    out = []
    for claim in study.claims:
        if claims is not None and claim.id not in claims:
            continue
        rule = RULES[claim.rule]
        if rule.needs == "tables" and not tables:
            reproduced, evidence = None, "not tested: no table4.csv"
        else:
            reproduced, evidence = rule.check(given.get(rule.needs, {}), baseline, study,
                                              **claim.params)
        out.append(Verdict(claim, rule_text(claim, study), reproduced, evidence))
    return out


# ---------------------------------------------------------------- loading


def _resource(name: str, base: Path | None) -> Traversable | Path:
    """A file named in a table: relative to the table's folder if it exists there, else
    package data (``analysis/claims/``, or ``analysis/<folder>/`` for a name with a folder)."""
    if base is not None and (base / name).is_file():
        return base / name
    if Path(name).is_absolute():
        return Path(name)
    if "/" in name:  # another folder of the package, e.g. paper_tables/mixing_table4.csv
        from importlib import resources

        return resources.files("analysis").joinpath(*name.split("/"))
    return PACKAGE_DATA / name


def _claim(entry: Any, source: str) -> Claim:
    need = ("id", "claim", "metric", "test", "paper_value", "rule")
    if not isinstance(entry, dict) or any(k not in entry for k in need):
        raise LossbenchError(f"{source}: each claim needs keys {', '.join(need)}; got {entry!r}")
    rule = dict(entry["rule"]) if isinstance(entry["rule"], dict) else {"kind": entry["rule"]}
    kind = rule.pop("kind", None)
    if kind not in RULES:
        raise LossbenchError(f"{source}: claim {entry['id']!r}: unknown rule kind {kind!r}; "
                             f"known: {', '.join(sorted(RULES))}")
    try:
        inspect.signature(RULES[kind].check).bind(None, None, None, **rule)
    except TypeError as exc:
        raise LossbenchError(f"{source}: claim {entry['id']!r}: rule {kind} parameters "
                             f"{sorted(rule)} do not fit ({exc})") from exc
    return Claim(str(entry["id"]), str(entry["claim"]), str(entry["metric"]),
                 str(entry["test"]), str(entry["paper_value"]), kind, rule)


def load_study(source: str | os.PathLike | Traversable) -> Study:
    """Read a study spec (YAML); a relative ``paper_table`` is resolved like the spec itself."""
    if isinstance(source, str | os.PathLike):
        source = Path(source)
    name = str(source)
    try:
        spec = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LossbenchError(f"{name}: cannot read the study spec ({exc})") from exc
    need = ("study", "title", "results", "claims", "sections")
    if not isinstance(spec, dict) or any(k not in spec for k in need):
        raise LossbenchError(f"{name}: a study spec needs keys {', '.join(need)}")
    claims = tuple(_claim(c, name) for c in spec["claims"] or ())
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise LossbenchError(f"{name}: duplicate claim ids in {ids}")
    base = source.parent if isinstance(source, Path) else None
    table = spec.get("paper_table")
    return Study(
        name=str(spec["study"]), title=str(spec["title"]), paper=str(spec.get("paper", "")),
        intro=str(spec.get("intro", "")), results=str(spec["results"]), source=name,
        paper_table=_resource(table, base) if table else None,
        primary_protocol=spec.get("primary_protocol"), baseline=str(spec.get("baseline", "ce")),
        group=str(spec.get("group", "group")), delta=str(spec.get("delta", "Δ")),
        claims=claims, sections=tuple(spec["sections"]),
        preview=tuple(spec.get("preview") or ()),
    )


def load_studies(table: str | os.PathLike | None = None) -> list[StudyStatus]:
    """The studies table (default: the packaged one) with each listed spec loaded."""
    source = Path(table) if table is not None else STUDIES_TABLE
    if not source.is_file():
        raise LossbenchError(f"{source}: no such file; expected a studies table "
                             f"({','.join(STUDY_COLUMNS)})")
    with source.open("rb") as handle:
        rows = pd.read_csv(handle, dtype=str, keep_default_na=False)
    require_columns(rows, STUDY_COLUMNS, source, str(list(STUDY_COLUMNS)))
    base = Path(table).parent if table is not None else None
    out = []
    for row in rows.itertuples():
        if row.status not in STATUSES:
            raise LossbenchError(f"{source}: study {row.name!r}: status {row.status!r}; "
                                 f"expected one of {', '.join(STATUSES)}")
        study = load_study(_resource(row.claims, base)) if row.claims else None
        out.append(StudyStatus(row.name, row.status, row.reason, study))
    return out


def default_paper_table(study: str = "uci") -> Traversable | Path:
    """The packaged paper table of ``study`` (the mixing paper's Table 4 for ``uci``)."""
    for row in load_studies():
        if row.name == study and row.study is not None and row.study.paper_table is not None:
            return row.study.paper_table
    raise LossbenchError(f"study {study!r}: no packaged paper table")
