"""`snakemake -n` of the GCE paper's GPU targets and of the CPU proxy: every job planned, with
the resources a scheduler needs (no data is read: a dry run needs no CIFAR)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import dry_run, job_counts, rule_blocks

pytestmark = [pytest.mark.pipeline]

DATA_ENV = ("LOSSBENCH_CIFAR10", "LOSSBENCH_CIFAR100", "LOSSBENCH_FASHION_MNIST")


def _dry_run(workdir: Path, target: str, *extra: str) -> str:
    return dry_run(workdir, target, "--resources", "gpu=1", *extra, drop_env=DATA_ENV)


@pytest.mark.parametrize(("target", "n_train", "gpu", "selections"), [
    # Table 1: 3 datasets (one model each) x 6 losses x 5 seeds; 8 noise levels inside a job;
    # analysis per model (resnet18, resnet34) x (mean, blocks)
    ("gce_table1", 3 * 6 * 5, 1, 2 * 2),
    # Table 2: open-set + closed-set CIFAR-10 x 5 losses x 5 seeds; one model, selection last
    ("gce_table2", 2 * 5 * 5, 1, 1),
])
def test_gpu_targets_plan_every_job_with_a_gpu(tmp_path, target, n_train, gpu, selections):
    out = _dry_run(tmp_path, target)
    counts = job_counts(out)
    assert counts["study_train"] == n_train and counts["study_select"] == selections
    blocks = rule_blocks(out, "study_train")
    assert len(blocks) == n_train
    assert all(f"gpu={gpu}," in b for b in blocks)
    assert all(f"results/noise/{target}/runs/" in b for b in blocks)


def test_cpu_proxy_plans_18_jobs_without_a_gpu(tmp_path):
    out = _dry_run(tmp_path, "noise_images_small", "--config",
                   'studies=["images_small", "noise_images_small"]')
    counts = job_counts(out)
    assert counts["study_train"] == 3 * 6  # 3 datasets x 6 losses (LeNet-5)
    blocks = rule_blocks(out, "study_train")
    assert len(blocks) == 18 and all("gpu=0," in b for b in blocks)


def test_last_selection_passes_the_wildcard_constraint(tmp_path):
    out = _dry_run(tmp_path, "gce_table2")
    assert "results/noise/gce_table2/analysis/wang2018_cnn/last/table4.csv" in out
