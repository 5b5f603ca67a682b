"""The noise studies through the real Snakefile: a collection study plans one job per available
UCI-121 dataset and model (missing datasets listed, not failed)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _snakemake(workdir: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture
def env(uci_source: str, splits_source: str, monkeypatch) -> None:
    monkeypatch.setenv("LOSSBENCH_UCI121", uci_source)
    monkeypatch.setenv("LOSSBENCH_UCI121_SPLITS", splits_source)
    monkeypatch.setenv("LOSSBENCH_CACHE", str(REPO / "data" / "cache"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _count(plan: str, rule: str) -> int:
    rows = [line.split() for line in plan.splitlines()]
    return next((int(r[1]) for r in rows if len(r) == 2 and r[0] == rule), 0)


def test_noise_uci_plans_two_jobs_per_available_dataset(tmp_path: Path, env) -> None:
    # the availability checkpoint first (as a real run does), then the plan knows every job
    _snakemake(tmp_path, "results/noise/noise_uci/datasets.csv")
    with open(tmp_path / "results/noise/noise_uci/datasets.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    ok = [r for r in rows if r["status"] == "ok"]
    missing = [r["name"] for r in rows if r["status"] == "missing"]
    excluded = [r for r in rows if r["status"].startswith("excluded")]
    assert len(rows) == 121 and ok and "miniboone" in missing
    study = yaml.safe_load((REPO / "config/studies/noise_uci.yaml").read_text())
    cap = study["datasets"].get("max_samples")
    if cap:  # the study's size cap: larger datasets listed as excluded, never trained
        assert all(int(r["n_samples"]) <= cap for r in ok)
        assert excluded and all(int(r["n_samples"]) > cap for r in excluded)
    plan = _snakemake(tmp_path, "-n", "-p", "noise_uci")
    assert _count(plan, "study_train") == 2 * len(ok)
    for name in [*missing, *(r["name"] for r in excluded)]:
        assert f"--dataset {name} " not in plan
    # a variant with parentheses reaches the train command as one shell word
    assert f"--losses '{','.join(study['losses'])}'" in plan
    assert "forward(T=true)" in study["losses"]
    assert "--noise none,uniform:0.2,uniform:0.4,uniform:0.6,pair:0.1,pair:0.2" in plan
