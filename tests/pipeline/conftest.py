"""Helpers of the pipeline tests: one `snakemake -n` runner and its job-stats parser, so each
target test states only its target, its flags and what the plan must hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dry_run(workdir: Path, target: str | None, *args: str, drop_env: Iterable[str] = ()) -> str:
    """``snakemake -n --cores 2 [target] *args`` on the repository's Snakefile in ``workdir``
    (never the committed results/), the venv's bin first on PATH (the rules call
    ``lossbench``); ``drop_env``: variables removed so the plan does not depend on the
    machine's data sources. Asserts success; returns stdout + stderr."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for var in drop_env:
        env.pop(var, None)
    cmd = [sys.executable, "-m", "snakemake", *([target] if target else []), "-s",
           str(REPO / "Snakefile"), "-d", str(workdir), "-n", "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def job_counts(out: str) -> dict[str, int]:
    """Rule -> planned jobs, from the last "Job stats:" table of a dry run."""
    stats = out.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def rule_blocks(out: str, rule: str) -> list[str]:
    """The planned jobs of ``rule`` in a dry run's output, one text block each (its output,
    wildcards, resources and, with ``-p``, its shell command)."""
    return [b for b in re.split(r"\n(?=\[[^\]]+\]\nrule )", out) if f"\nrule {rule}:" in b]
