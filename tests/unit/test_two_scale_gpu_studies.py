"""The two-scale paper's GPU study files (config/studies/two_scale_{mnist,cifar10,cifar100}.yaml):
every job parses into run specs the suite accepts with the paper's settings (Secs. 3.2-3.5),
and the MNIST epochs cover the paper's 1,000 SGD iterations on official_val10's training part
(Fig. 9), before any data or GPU."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _study_jobs import job_specs

from bench.data.arrays import ArrayDataset
from bench.losses import make_loss
from bench.studies import load_study

STUDIES = Path(__file__).resolve().parents[2] / "config" / "studies"
# study -> (dataset, model, epochs, eval_every, methods, seeds)
EXPECTED = {
    "two_scale_mnist": ("mnist", "fc2", 3, 100, 7, 30),
    "two_scale_cifar10": ("cifar10", "lenet5", 50, 2000, 10, 10),
    "two_scale_cifar100": ("cifar100", "lenet5", 128, 2000, 5, 10),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_jobs_carry_the_papers_settings(name: str):
    dataset, model, epochs, eval_every, n_methods, n_seeds = EXPECTED[name]
    study = load_study(name, STUDIES)
    assert study.gpu and study.config["baseline"] == "one_scale"
    specs = [s for job in study.jobs() for s in job_specs(job.args)]
    assert len(specs) == n_methods * n_seeds
    assert len({s.method for s in specs}) == n_methods and "one_scale" in study.methods()
    assert {s.seed for s in specs} == set(range(n_seeds))
    for spec in specs:
        assert (spec.dataset, spec.model, spec.epochs, spec.eval_every) == \
            (dataset, model, epochs, eval_every)
        assert (spec.lr, spec.batch_size, spec.momentum, spec.weight_decay, spec.schedule) == \
            (0.1, 128, 0.0, 0.0, "constant")  # plain SGD, Sec. 3.2
        make_loss(spec.loss, **dict(spec.loss_params))


def test_cifar100_saves_the_histograms_at_the_end():
    specs = job_specs(load_study("two_scale_cifar100", STUDIES).jobs()[0].args)
    assert specs[0].save_predictions_at[-1] == specs[0].epochs == 128


@pytest.mark.parametrize(("n_train", "n_test", "steps"), [(60000, 10000, 422),
                                                          (50000, 10000, 352)])
def test_official_val10_steps_per_epoch(n_train: int, n_test: int, steps: int):
    """MNIST's 60k and CIFAR's 50k training images less the 10 % hold-out, at batch 128: the
    step counts the study files' comments give (422 and 352)."""
    y = np.arange(n_train + n_test) % 10
    ds = ArrayDataset("toy", np.zeros((y.size, 1), np.uint8), y, 10,
                      test_idx=np.arange(n_train, n_train + n_test))
    fit, _, _ = ds.splits("official_val10")[0]
    assert math.ceil(len(fit) / 128) == steps


def test_mnist_epochs_cover_the_papers_1000_iterations():
    epochs = job_specs(load_study("two_scale_mnist", STUDIES).jobs()[0].args)[0].epochs
    assert (epochs - 1) * 422 < 1000 <= epochs * 422  # the fewest epochs reaching step 1,000
