"""One runner for the fault table in `cases.py`: run the case, then check every invariant.

Add a case there, not a test here. In-process (`bench.cli.main`), so the whole table runs in
well under a minute.
"""

from __future__ import annotations

import re

import pytest
from cases import CASES, Case
from workspace import EARLIER, Workspace

from bench.cli import main

_TEMPORARY = re.compile(r"(~\d+~.*\.tmp$)|(\.tmp$)|(\.part$)")


def _run(argv: list[str]) -> int:
    try:
        return int(main(argv) or 0)
    except SystemExit as exc:  # argparse reports bad usage by exiting 2
        return int(exc.code or 0)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, tmp_path, monkeypatch, capsys):
    if case.skip:
        pytest.skip(case.skip)
    ws = Workspace(tmp_path)
    monkeypatch.setenv("LOSSBENCH_CACHE", str(ws.cache))
    monkeypatch.delenv("LOSSBENCH_UCI121", raising=False)
    monkeypatch.delenv("LOSSBENCH_UCI121_SPLITS", raising=False)
    if case.setup:
        case.setup(ws)
    capsys.readouterr()
    before = ws.snapshot()
    out_before = sorted(p.relative_to(ws.out) for p in ws.out.rglob("*"))
    if case.fault:
        case.fault(ws, monkeypatch)
    argv = [arg.format(**ws.places) for arg in case.command]
    try:
        code = _run(argv)
    finally:
        ws.out.chmod(0o755)
        monkeypatch.undo()  # lift injected faults before inspecting the workspace
    out, err = capsys.readouterr()

    assert code == case.exit, f"exit {code}, expected {case.exit}\nstdout: {out}\nstderr: {err}"
    assert case.message in err, err
    assert case.stdout in out, out
    assert "Traceback" not in out + err
    if code == 2:
        errors = [line for line in err.splitlines() if ": error: " in line]
        assert len(errors) == 1, err
        assert str(ws.cache) not in out + err, "a message cites the internal cache"
    assert ws.snapshot() == before, "a file outside the output folder changed"
    assert (ws.out / "earlier.txt").read_text() == EARLIER
    if code != 0:
        assert sorted(p.relative_to(ws.out) for p in ws.out.rglob("*")) == out_before
    leftovers = [p for p in ws.root.rglob("*") if _TEMPORARY.search(p.name)
                 and "cache" not in p.relative_to(ws.root).parts[:1]]
    assert not leftovers, leftovers
    if case.check:
        case.check(ws, out, err)
