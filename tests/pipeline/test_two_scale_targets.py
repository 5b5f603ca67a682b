"""`snakemake -n` of the two-scale paper's targets (Berlyand et al. 2021, Secs. 3.2-3.5): the
GPU studies (MNIST Fig. 9, CIFAR-10 Figs. 8/10/11, CIFAR-100 Figs. 1-7) plan every job with a
GPU and the paper's settings on its command line; the CPU ones (the digit sets, UCI-121) plan
theirs without one. No data is read: a dry run needs no MNIST or CIFAR, and the UCI study's
availability table is written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, dry_run, job_counts, rule_blocks

pytestmark = [pytest.mark.pipeline]

DATA_ENV = ("LOSSBENCH_MNIST", "LOSSBENCH_CIFAR10", "LOSSBENCH_CIFAR100", "LOSSBENCH_UCI121",
            "LOSSBENCH_UCI121_SPLITS")
UCI_DATASETS = ("abalone", "iris")


@pytest.mark.parametrize(("target", "n_train", "flags"), [
    # 1 dataset x 1 model x 7 losses; the 30 seeds inside a job; 3 epochs = 1,266 steps
    ("two_scale_mnist", 7, ("--epochs 3 ", "--eval-every 100 ", "--momentum 0.0 ")),
    # 10 losses x 10 seeds, one job each
    ("two_scale_cifar10", 10 * 10, ("--epochs 50 ", "--eval-every 2000 ")),
    # 5 losses x 10 seeds; the histograms' predictions at 32, 64 and 128 epochs
    ("two_scale_cifar100", 5 * 10,
     ("--epochs 128 ", "--eval-every 2000 ", "--save-predictions-at 32,64,128 ")),
])
def test_gpu_targets_plan_every_job_with_a_gpu(tmp_path: Path, target, n_train, flags):
    out = dry_run(tmp_path, target, "-p", "--resources", "gpu=1", drop_env=DATA_ENV)
    counts = job_counts(out)
    # one model, selection `last` (the paper's end-of-training numbers): one analysis
    assert counts["study_train"] == n_train and counts["study_analyze"] == 1, counts
    blocks = rule_blocks(out, "study_train")
    assert len(blocks) == n_train
    assert all("gpu=1," in b and f"results/two_scale/{target}/runs/" in b for b in blocks)
    commands = [line for b in blocks for line in b.splitlines() if "lossbench train" in line]
    assert len(commands) == n_train
    for flag in (*flags, "--lrs 0.1 ", "--batch-size 128 ", "--protocol official_val10 ",
                 "--trainer torch "):
        assert all(flag in c for c in commands), flag
    assert "results/two_scale/" + target + "/analysis/" in out and "/last/table4.csv" in out


def test_digits_proxy_plans_27_jobs_and_the_metric_analyses_without_a_gpu(tmp_path: Path):
    out = dry_run(tmp_path, "two_scale_digits", drop_env=DATA_ENV)
    blocks = rule_blocks(out, "study_train")
    counts = job_counts(out)
    assert counts["study_train"] == len(blocks) == 3 * 1 * 9  # datasets x models x losses
    assert all("gpu=0," in b for b in blocks)
    # `metrics:` (top-2, acc@0.05): one grouped analysis per selection (mean, blocks) of fc2
    assert counts["study_analyze_metrics"] == 2
    assert "two_scale_digits/analysis/fc2/blocks/metrics/groups.csv" in out


def test_uci_study_plans_a_stack_per_available_dataset_and_model(tmp_path: Path):
    study = yaml.safe_load((REPO / "config/studies/two_scale_uci.yaml").read_text())
    table = tmp_path / "results/two_scale/two_scale_uci/datasets.csv"
    table.parent.mkdir(parents=True)
    table.write_text("name,n_samples,n_features,n_classes,status\n"
                     + "".join(f"{d},100,4,3,ok\n" for d in UCI_DATASETS)
                     + "adult,48842,14,2,excluded: more than 2000 samples (study max_samples)\n")
    out = dry_run(tmp_path, "two_scale_uci", "-p", drop_env=DATA_ENV)
    blocks = rule_blocks(out, "study_train")
    n_jobs = len(UCI_DATASETS) * len(study["models"])
    assert job_counts(out)["study_train"] == len(blocks) == n_jobs
    assert all("gpu=0," in b for b in blocks)
    assert "--dataset adult " not in out  # excluded by the size cap: never trained
