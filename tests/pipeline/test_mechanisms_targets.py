"""`snakemake -n`: the default target regenerates the escaping-efficiency verdict (the report
renders it) exactly when mixing_mechanisms is in `studies:` and its file has a `probe:` section;
the CI smoke config (studies: []) plans no probe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.pipeline]

REPO = Path(__file__).resolve().parents[2]
VERDICT = ("mechanisms/escaping/verdict.csv", "mechanisms/escaping/dataset_traces.csv",
           "mechanisms/escaping/traces.png")


def _dry_run(workdir: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "-n", "--cores", "2", *args], capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def _counts(out: str) -> dict[str, int]:
    stats = out.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def _report_inputs(out: str) -> str:
    block = out.split("\nrule report:\n", 1)[1]
    return next(line for line in block.splitlines() if line.strip().startswith("input:"))


def test_default_target_regenerates_the_probe_and_the_report_reads_it(tmp_path: Path):
    out = _dry_run(tmp_path)
    counts = _counts(out)
    probe = yaml.safe_load((REPO / "config/studies/mixing_mechanisms.yaml").read_text())["probe"]
    assert counts["probe_escaping"] == len(probe["datasets"]) and counts["escaping_verdict"] == 1
    inputs = _report_inputs(out)
    assert all(f"results/{name}" in inputs for name in VERDICT), inputs


def test_smoke_config_plans_no_probe(tmp_path: Path):
    out = _dry_run(tmp_path, "--configfile", str(REPO / "config/smoke.yaml"))
    counts = _counts(out)
    assert counts["report"] == 1 and "probe_escaping" not in counts
    assert "escaping_verdict" not in counts and "escaping" not in _report_inputs(out)


def test_study_without_probe_section_plans_no_probe(tmp_path: Path):
    studies = tmp_path / "studies"
    studies.mkdir()
    spec = yaml.safe_load((REPO / "config/studies/mixing_mechanisms.yaml").read_text())
    del spec["probe"]
    (studies / "mixing_mechanisms.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(REPO / "config/studies/mixing_table1.yaml", studies)
    config = ["--configfile", str(REPO / "config/smoke.yaml"), "--config",
              'studies=["mixing_mechanisms"]', f"study_dir={studies}"]
    out = _dry_run(tmp_path / "work", *config)
    counts = _counts(out)
    assert counts["study_datasets"] == 1 and "escaping_verdict" not in counts
    assert "mechanisms/mixing_mechanisms/scores.csv" in _report_inputs(out)
    # the same config with the probe section: planned and read by the report
    shutil.copy(REPO / "config/studies/mixing_mechanisms.yaml", studies)
    out = _dry_run(tmp_path / "work", *config)
    assert _counts(out)["escaping_verdict"] == 1
    assert "smoke/results/mechanisms/escaping/verdict.csv" in _report_inputs(out)
