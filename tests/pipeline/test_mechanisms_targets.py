"""`snakemake -n`: the default target regenerates the escaping-efficiency verdict (the report
renders it) exactly when mixing_mechanisms is in `studies:` and its file has a `probe:` section;
the CI smoke config (studies: []) plans no probe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, dry_run, job_counts

pytestmark = [pytest.mark.pipeline]

VERDICT = ("mechanisms/escaping/verdict.csv", "mechanisms/escaping/dataset_traces.csv",
           "mechanisms/escaping/traces.png")


def _report_inputs(out: str) -> str:
    block = out.split("\nrule report:\n", 1)[1]
    return next(line for line in block.splitlines() if line.strip().startswith("input:"))


def test_default_target_regenerates_the_probe_and_the_report_reads_it(tmp_path: Path):
    out = dry_run(tmp_path, None)
    counts = job_counts(out)
    probe = yaml.safe_load((REPO / "config/studies/mixing_mechanisms.yaml").read_text())["probe"]
    assert counts["probe_escaping"] == len(probe["datasets"]) and counts["escaping_verdict"] == 1
    inputs = _report_inputs(out)
    assert all(f"results/{name}" in inputs for name in VERDICT), inputs


def test_smoke_config_plans_no_probe(tmp_path: Path):
    out = dry_run(tmp_path, None, "--configfile", str(REPO / "config/smoke.yaml"))
    counts = job_counts(out)
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
    out = dry_run(tmp_path / "work", None, *config)
    counts = job_counts(out)
    assert counts["study_datasets"] == 1 and "escaping_verdict" not in counts
    assert "mechanisms/mixing_mechanisms/scores.csv" in _report_inputs(out)
    # the same config with the probe section: planned and read by the report
    shutil.copy(REPO / "config/studies/mixing_mechanisms.yaml", studies)
    out = dry_run(tmp_path / "work", None, *config)
    assert job_counts(out)["escaping_verdict"] == 1
    assert "smoke/results/mechanisms/escaping/verdict.csv" in _report_inputs(out)
