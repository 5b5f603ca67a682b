"""`snakemake -n`: a study whose jobs record forward's T-hat (noise_uci) collects every job's
transitions.csv into transitions.csv.gz and transition_error.csv; studies whose forward trains
per model (gce_table1) plan no such rule. No data is read: the availability checkpoint's table
is written here, so the plan knows the jobs without the UCI-121 source."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import dry_run, job_counts

pytestmark = [pytest.mark.pipeline]

ROOT = "results/noise/noise_uci"
DATASETS = ("abalone", "acute-inflammation")


def _dry_run(workdir: Path, target: str, *extra: str) -> str:
    # no data inputs: the checkpoint's table below stands
    return dry_run(workdir, target, "-p", *extra,
                   drop_env=("LOSSBENCH_UCI121", "LOSSBENCH_UCI121_SPLITS"))


def test_noise_uci_collects_every_jobs_t_hat(tmp_path: Path):
    table = tmp_path / ROOT / "datasets.csv"
    table.parent.mkdir(parents=True)
    table.write_text("name,n_samples,n_features,n_classes,status\n"
                     + "".join(f"{d},100,4,3,ok\n" for d in DATASETS)
                     + "miniboone,130065,50,2,missing\n")
    out = _dry_run(tmp_path, "noise_uci")
    counts = job_counts(out)
    assert counts["study_train"] == 2 * len(DATASETS) and counts["study_transitions"] == 1
    block = out.split("\nrule study_transitions:\n", 1)[1].split("\n\n", 1)[0]
    jobs = [f"{d}__{m}" for d in DATASETS for m in ("linear", "mlp")]
    assert all(f"{ROOT}/runs/{j}/summary.csv" in block for j in jobs), block
    assert f"output: {ROOT}/transitions.csv.gz, {ROOT}/transition_error.csv" in block
    command = next(line for line in block.splitlines() if "lossbench transitions" in line)
    assert all(f"{ROOT}/runs/{j}/transitions.csv" in command for j in jobs)
    assert "miniboone" not in command and f"--out-dir {ROOT}" in command
    # the default target (the report) regenerates them
    report = _dry_run(tmp_path, "results/README.md")
    assert job_counts(report)["study_transitions"] == 1


def test_a_study_training_forward_per_model_plans_no_collection(tmp_path: Path):
    out = _dry_run(tmp_path, "gce_table1", "--resources", "gpu=1")
    assert "study_transitions" not in job_counts(out) and "transitions.csv" not in out
