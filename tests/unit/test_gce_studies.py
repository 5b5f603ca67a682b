"""The GCE paper's study files (config/studies/gce_table1.yaml, gce_table2.yaml) and the CPU
proxy (noise_images_small.yaml): the jobs carry the paper's settings, and every job's flags
parse into run specs the suite accepts (models, losses, noise kinds, protocol), before any data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _study_jobs import flag_value, job_specs

from bench.errors import LossbenchError
from bench.losses import make_loss
from bench.studies import load_study

REPO = Path(__file__).resolve().parents[2]
STUDIES = REPO / "config" / "studies"
TABLE1_NOISE = ["uniform:0.2", "uniform:0.4", "uniform:0.6", "uniform:0.8", "pair:0.1",
                "pair:0.2", "pair:0.3", "pair:0.4"]


def test_table1_jobs_follow_the_papers_settings_per_dataset():
    jobs = {j.id: j.args for j in load_study("gce_table1", STUDIES).jobs()}
    assert len(jobs) == 3 * 6 * 5
    expected = {"fashion_mnist": ("resnet18", "120", "40,80", "fashion_mnist"),
                "cifar10": ("resnet34", "120", "40,80", "cifar10"),
                "cifar100": ("resnet34", "150", "80,120", "cifar100")}
    for dataset, (model, epochs, milestones, mapping) in expected.items():
        args = jobs[f"{dataset}__{model}__ce__0"]
        assert flag_value(args, "--epochs") == epochs
        assert flag_value(args, "--milestones") == milestones
        assert flag_value(args, "--noise") == ",".join(TABLE1_NOISE)
        assert flag_value(args, "--noise-mapping") == mapping
        for flag, value in (("--lrs", "0.01"), ("--batch-size", "128"), ("--momentum", "0.9"),
                            ("--weight-decay", "0.0001"), ("--augment", "gce_standard"),
                            ("--protocol", "official_val10"), ("--optimizer", "sgd")):
            assert flag_value(args, flag) == value, flag
    losses_seeds = {tuple(i.split("__", 2)[2].rsplit("__", 1)) for i in jobs}
    assert {loss for loss, _ in losses_seeds} == {"ce", "mae", "gce", "trunc_gce",
                                                  "forward_T_True_", "forward"}
    assert {seed for _, seed in losses_seeds} == {"0", "1", "2", "3", "4"}


@pytest.mark.parametrize(("job", "n_epochs", "prune"), [
    ("cifar10__resnet34__trunc_gce__0", 120, list(range(40, 120, 10))),
    ("fashion_mnist__resnet18__trunc_gce__3", 120, list(range(40, 120, 10))),
    ("cifar100__resnet34__trunc_gce__4", 150, list(range(80, 150, 10))),
])
def test_table1_truncated_lq_prunes_at_the_papers_epochs(job, n_epochs, prune):
    args = {j.id: j.args for j in load_study("gce_table1", STUDIES).jobs()}[job]
    specs = job_specs(args)
    assert len(specs) == len(TABLE1_NOISE)  # the noise levels train inside the job
    loss = make_loss(specs[0].loss, **dict(specs[0].loss_params))
    assert loss.prune_epochs(n_epochs) == prune


def test_every_gce_job_parses_into_specs_the_suite_accepts():
    for name in ("gce_table1", "gce_table2", "noise_images_small"):
        for job in load_study(name, STUDIES).jobs():
            specs = job_specs(job.args)
            assert specs, job.id
            # CIFAR-100's trunc_gce fractions reach no other loss of its jobs
            assert all(not s.loss_params or s.loss in ("trunc_gce", "forward") for s in specs)


def test_table1_forward_true_and_estimated_are_two_methods():
    jobs = {j.id: j.args for j in load_study("gce_table1", STUDIES).jobs()}
    true_t = job_specs(jobs["cifar10__resnet34__forward_T_True___0"])
    hat = job_specs(jobs["cifar10__resnet34__forward__0"])
    assert {s.method for s in true_t} == {"forward(T=True)"}
    assert {s.method for s in hat} == {"forward"}
    assert {dict(s.noise)["kind"] for s in hat} == {"uniform", "pair"}


def test_table2_open_set_and_its_closed_set_twin():
    study = load_study("gce_table2", STUDIES)
    jobs = {j.id: j.args for j in study.jobs()}
    assert len(jobs) == 2 * 5 * 5
    closed = jobs["cifar10__wang2018_cnn__ce__0"]
    open_ = jobs["cifar10_open_set__wang2018_cnn__ce__0"]
    assert flag_value(closed, "--noise") == "uniform:0.4" and "--noise" not in open_
    for args in (closed, open_):
        for flag, value in (("--epochs", "100"), ("--optimizer", "adam"), ("--lrs", "0.001"),
                            ("--augment", "normalize"), ("--batch-size", "128")):
            assert flag_value(args, flag) == value, flag
    trunc = job_specs(jobs["cifar10_open_set__wang2018_cnn__trunc_gce__2"])[0]
    assert make_loss("trunc_gce", **dict(trunc.loss_params)).prune_epochs(100) == \
        list(range(10, 100, 10))  # "started pruning ... after 10 epochs at 10-epoch intervals"
    assert study.config["selections"] == ["last"]


def test_gce_studies_are_gpu_targets_and_name_their_data(monkeypatch):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert {"gce_table1", "gce_table2"} <= set(config["gpu_studies"])
    assert "noise_images_small" not in config["studies"] + config["gpu_studies"]
    for var in ("LOSSBENCH_CIFAR10", "LOSSBENCH_CIFAR100", "LOSSBENCH_FASHION_MNIST"):
        monkeypatch.delenv(var, raising=False)
    ok, reason = load_study("gce_table1", STUDIES).data_status()
    assert not ok and all(v in reason for v in ("LOSSBENCH_FASHION_MNIST", "LOSSBENCH_CIFAR10",
                                                "LOSSBENCH_CIFAR100"))
    table2 = load_study("gce_table2", STUDIES)
    monkeypatch.setenv("LOSSBENCH_CIFAR10", "/data/cifar-10-python.tar.gz")
    ok, reason = table2.data_status()
    assert not ok and "LOSSBENCH_CIFAR100" in reason  # the open-set images' source
    monkeypatch.setenv("LOSSBENCH_CIFAR100", "/data/cifar-100-python.tar.gz")
    assert table2.data_status() == (True, "")


def test_proxy_runs_the_noise_grid_with_clean_labels_and_five_seeds():
    study = load_study("noise_images_small", STUDIES)
    jobs = study.jobs()
    assert len(jobs) == 3 * 6 and not study.gpu
    specs = job_specs(jobs[0].args)
    noises = {tuple(sorted(dict(s.noise).items())) for s in specs}
    assert () in noises and len(noises) == 9  # clean + 4 uniform + 4 pair levels
    assert {dict(n).get("mapping") for n in noises if dict(n).get("kind") == "pair"} == {"next"}
    assert len({s.seed for s in specs}) >= 5 and {s.model for s in specs} == {"lenet5"}
    assert max(dict(n).get("rate", 0) for n in noises) == 0.8


def test_scoped_loss_params_skip_jobs_without_that_loss_but_typos_still_fail():
    base = ("--dataset", "digits", "--model", "lenet5", "--seeds", "0", "--lrs", "0.01")
    specs = job_specs((*base, "--losses", "ce", "--loss-param", "trunc_gce:prune_start=0.5"))
    assert [s.method for s in specs] == ["ce"]
    specs = job_specs((*base, "--losses", "ce,trunc_gce", "--loss-param", "trunc_gce:k=0.4"))
    assert [s.method for s in specs] == ["ce", "trunc_gce(k=0.4)"]
    with pytest.raises(LossbenchError, match="'trunc_gc' is not one of ce"):
        job_specs((*base, "--losses", "ce", "--loss-param", "trunc_gc:k=0.4"))
    with pytest.raises(LossbenchError, match="NAME=VALUE"):
        job_specs((*base, "--losses", "ce", "--loss-param", "trunc_gce:k"))


def test_losses_cli_labels_forward_with_the_true_matrix(capsys):
    from bench.cli import main

    assert main(["losses", "--select", "ce", "forward(T=True)", "forward", "--format",
                 "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == ["forward(T=True),Forward (T=True)", "forward,Forward"]
