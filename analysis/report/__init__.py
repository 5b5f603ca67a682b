"""results/README.md: the reproduction report, generated from whatever a results folder holds.

Three parts: ``read`` (a study's results folder -> objects), ``claims`` (studies and their
claims as data, and the rules deciding each verdict) and ``render`` (Markdown sections).
Each claim gets a verdict by an explicit rule, so the report says what we measured, whichever
way it falls. Missing pieces are reported as missing, never skipped silently.
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.report import beside as _beside  # noqa: F401  (registers paper_beside)
from analysis.report import escaping as _escaping  # noqa: F401 (registers escaping, sign_test)
from analysis.report import levels as _levels  # noqa: F401 (registers its sections)
from analysis.report import transitions as _transitions  # noqa: F401 (transition_error)
from analysis.report.claims import StudyStatus, load_studies
from analysis.report.read import StudyResults, read_paper_table, read_study
from analysis.report.render import Context, check_sections, render_page
from bench.errors import LossbenchError
from bench.io import write_text

__all__ = ["render", "write_report"]


def render(results_dir: str | os.PathLike, paper_table: str | os.PathLike | None = None,
           baseline: str | None = None, readme_dir: str | os.PathLike | None = None, *,
           paper: bool = True, studies: str | os.PathLike | None = None) -> str:
    """The report as Markdown; image links are relative to ``readme_dir`` (default results).

    ``studies`` is the studies table (default: the packaged one). ``paper_table`` and
    ``baseline`` override those of the first study in it (default: its spec's); ``paper=False``
    leaves every paper table out.
    """
    results = Path(results_dir)
    readme_dir = Path(readme_dir) if readme_dir is not None else results
    statuses = load_studies(studies)
    rows: list[tuple[StudyStatus, StudyResults | None]] = []
    contexts, previews = [], []
    for i, status in enumerate(statuses):
        study = status.study
        folder = results / study.results if study is not None else None
        if status.status != "run" or folder is None or not folder.is_dir():
            rows.append((status, None))
            if study is not None and study.preview:
                check_sections(study.preview, study.source)
                previews.append(Context(
                    status=status, results=StudyResults(folder, None, [], {}), paper=None,
                    baseline=study.baseline, results_dir=results, readme_dir=readme_dir))
            continue
        check_sections(study.sections, study.source)
        found = read_study(folder, study.primary_protocol)
        table = paper_table if i == 0 and paper_table is not None else study.paper_table
        contexts.append(Context(
            status=status, results=found,
            paper=read_paper_table(table) if paper and table is not None else None,
            baseline=baseline if i == 0 and baseline is not None else study.baseline,
            results_dir=results, readme_dir=readme_dir,
        ))
        rows.append((status, found))
    if not contexts:
        wanted = [f"{s.study.results}/" for s in statuses if s.status == "run" and s.study]
        raise LossbenchError(
            f"{results}: no {' or '.join(wanted) or 'study'} folder; expected a results folder "
            "written by the pipeline (run `snakemake --cores N` first)"
        )
    return render_page(rows, contexts, results, previews)


def write_report(results_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 paper_table: str | os.PathLike | None = None, baseline: str | None = None,
                 *, paper: bool = True, studies: str | os.PathLike | None = None) -> Path:
    """Render and write atomically (temp file + os.replace); returns the path written."""
    out = Path(out) if out is not None else Path(results_dir) / "README.md"
    text = render(results_dir, paper_table, baseline, readme_dir=out.parent, paper=paper,
                  studies=studies)
    return write_text(out, text)
