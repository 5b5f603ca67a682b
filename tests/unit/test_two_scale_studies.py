"""The two-scale study files (config/studies/two_scale_uci.yaml, two_scale_digits.yaml): their
jobs carry the paper's settings and parse into run specs the suite accepts, the UCI one all on
the stacked engine, the digits one at ~1,000 SGD iterations per run (Fig. 9), before any
training."""

from __future__ import annotations

import math
from pathlib import Path

from _study_jobs import flag_value, job_specs

from bench.data import get_dataset
from bench.losses import make_loss
from bench.studies import load_study
from bench.train import stacked_refusal

REPO = Path(__file__).resolve().parents[2]
STUDIES = REPO / "config" / "studies"
ETAS = {"0.01", "0.1", "1.0"}


def _is_a_cpu_target(name: str) -> None:
    """Hours on 2 cores: a target of its own (results committed), not in the default job."""
    from bench.io import read_yaml

    config = read_yaml(REPO / "config" / "config.yaml", "the workflow config")
    assert name in config["cpu_targets"] and name not in config["studies"]


def test_uci_study_is_one_stack_per_dataset_and_model():
    from bench.data import names

    study = load_study("two_scale_uci", STUDIES)
    assert study.collection == "uci121" and study.datasets == names()
    assert len(study.jobs()) == 2 * len(names())
    _is_a_cpu_target("two_scale_uci")
    assert study.metrics == ["test_top2_pct", "test_acc_at_0.05_pct"]
    assert study.ranked_metrics == ["test_acc_pct", *study.metrics]  # accuracy first
    jobs = {j.id: j.args for j in study.jobs(datasets=["iris"])}
    assert sorted(jobs) == ["iris__linear", "iris__mlp"]
    for model, args in (("linear", jobs["iris__linear"]), ("mlp", jobs["iris__mlp"])):
        specs = job_specs(args)
        assert len(specs) == 11 * 4 * 2  # methods x lrs x seeds
        assert {s.lr for s in specs} == {0.1, 0.01, 0.005, 0.001}
        assert {s.seed for s in specs} == {0, 1}
        assert all((s.protocol, s.epochs, s.batch_size, s.momentum, s.model) ==
                   ("klambauer", 50, 8, 0.9, model) for s in specs)
        methods = {s.method for s in specs}
        assert {"ce", "one_scale"} < methods
        for variant in ("two_scale", "two_scale_fixed", "two_scale_sep"):
            etas = {m.split("=")[1].rstrip(")") for m in methods if m.startswith(variant + "(")}
            assert etas == ETAS, variant
        for spec in specs:  # every method trains in the stacked engine
            loss = make_loss(spec.loss, **dict(spec.loss_params))
            assert stacked_refusal(spec, loss, (4,), 3) is None, spec.method


def test_digits_study_runs_the_papers_mnist_settings_for_1000_iterations():
    study = load_study("two_scale_digits", STUDIES)
    jobs = study.jobs()
    assert len(jobs) == 3 * 1 * 9  # datasets x models (fc2) x losses
    _is_a_cpu_target("two_scale_digits")
    by_id = {j.id: j.args for j in jobs}
    etas = {i.rsplit("__", 1)[1] for i in by_id if i.startswith("digits__fc2__two_scale_eta")}
    assert etas == {f"two_scale_eta_{e}_" for e in ("0.01", "0.1", "1.0", "10.0", "100.0")}
    for job in jobs:
        specs = job_specs(job.args)
        assert len(specs) == 30 and {s.seed for s in specs} == set(range(30))
        spec = specs[0]
        assert (spec.lr, spec.batch_size, spec.momentum, spec.eval_every, spec.protocol) == \
            (0.1, 128, 0.0, 100, "random")
        assert spec.save_predictions_at[-1] == spec.epochs  # histograms at the end
        assert stacked_refusal(spec, make_loss(spec.loss, **dict(spec.loss_params)),
                               (1, 8, 8), 10) is not None  # eval_every: the torch trainer
    # digits ships with scikit-learn: its 112 epochs are the paper's ~1,000 iterations
    ds = get_dataset("digits")
    batches = math.ceil(len(ds.splits("random")[0][0]) / 128)
    epochs = int(flag_value(by_id["digits__fc2__ce"], "--epochs"))
    assert 1000 <= epochs * batches < 1000 + batches
