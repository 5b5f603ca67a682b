"""Label noise (GCE paper, Zhang & Sabuncu 2018, Sec. 3.1 and 4.2): rates, T, tables, splits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.errors import LossbenchError
from bench.noise import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    corrupt,
    corrupt_split,
    dump_labels,
    empirical_transition,
    list_mappings,
    list_noise_kinds,
    noise_seed,
    realised_rate,
    sample_labels,
    transition_matrix,
)

C10 = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
FASHION = {name: i for i, name in enumerate(FASHION_MNIST_CLASSES)}
CIFAR10_SOURCES = [C10[n] for n in ("truck", "bird", "deer", "cat", "dog")]


def balanced(n: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % c).astype(np.int64)


# Expected per-label flip probability from the paper's wording, not from the returned T.
CASES = [  # kind, mapping, c, flip probability of a label of class k given eta
    ("uniform", None, 10, lambda k, eta: eta),
    ("uniform_any", None, 10, lambda k, eta: eta * 9 / 10),
    ("uniform", None, 3, lambda k, eta: eta),
    ("pair", None, 7, lambda k, eta: eta),
    ("pair", "cifar10", 10, lambda k, eta: eta if k in CIFAR10_SOURCES else 0.0),
]


@pytest.mark.parametrize("kind,mapping,c,flip", CASES)
def test_realised_rate_within_binomial_tolerance(kind, mapping, c, flip):
    for n in (300, 3000):
        for rate in (0.1, 0.4):
            for seed in range(10):
                y = np.random.default_rng(1000 + seed).integers(0, c, size=n)
                y_noisy, _ = corrupt(y, c, kind, rate, seed, mapping=mapping)
                p = np.array([flip(k, rate) for k in y])
                expected = p.mean()
                sigma = math.sqrt((p * (1 - p)).sum()) / n
                got = realised_rate(y, y_noisy)
                assert abs(got - expected) <= 4 * sigma + 1e-12, (kind, n, rate, seed, got)


@pytest.mark.parametrize("kind,mapping,c", [(k, m, c) for k, m, c, _ in CASES])
def test_returned_transition_matches_empirical_flips(kind, mapping, c):
    n = 100_000
    y = balanced(n, c)
    y_noisy, T = corrupt(y, c, kind, 0.35, seed=3, mapping=mapping)
    assert y_noisy.dtype == np.int64 and y_noisy.shape == y.shape
    E = empirical_transition(y, y_noisy, c)
    sigma = np.sqrt(T * (1 - T) / (n / c))
    assert np.all(np.abs(E - T) <= 5 * sigma + 1e-12)
    assert np.all(E[T == 0] == 0)  # a zero-probability flip never happens


class _FixedDraws:
    """A stand-in Generator whose uniform draws are chosen by the test."""

    def __init__(self, u):
        self.u = np.asarray(u, dtype=float)

    def random(self, size):
        return self.u[:size]


def test_sampler_never_draws_a_zero_probability_class():
    # row sums to 0.9999999999999999 in floats; u = largest double < 1 must not reach class 4
    T = np.array([[0.7, 0.1, 0.1, 0.1, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]] + [[0.2] * 5] * 3)
    top = np.nextafter(1.0, 0.0)
    assert sample_labels(np.array([0]), T, _FixedDraws([top]))[0] == 3
    # u = 0 exactly must skip the empty class 0 of row 1
    assert sample_labels(np.array([1]), T, _FixedDraws([0.0]))[0] == 1


def test_uniform_closed_forms():
    eta, c = 0.6, 5
    T = transition_matrix(c, "uniform", eta)
    assert np.allclose(np.diag(T), 1 - eta)
    assert np.allclose(T[~np.eye(c, dtype=bool)], eta / (c - 1))
    T_any = transition_matrix(c, "uniform_any", eta)
    assert np.allclose(np.diag(T_any), 1 - eta + eta / c)
    assert np.allclose(T_any[~np.eye(c, dtype=bool)], eta / c)
    for kind in list_noise_kinds():
        rate = 0.0 if kind in ("none", "clean") else 0.3
        assert np.allclose(transition_matrix(c, kind, rate).sum(axis=1), 1.0)


def test_uniform_never_lands_on_itself_uniform_any_does_at_eta_over_c():
    n, c, eta = 50_000, 10, 0.8
    y = balanced(n, c)
    y_u, _ = corrupt(y, c, "uniform", eta, seed=0)
    y_a, _ = corrupt(y, c, "uniform_any", eta, seed=0)
    sigma = math.sqrt(eta * (1 - eta) / n)
    assert abs(realised_rate(y, y_u) - eta) < 4 * sigma  # every drawn flip is a change
    # uniform_any: a share eta is resampled, eta / c of all labels land on their own class
    self_share = eta - realised_rate(y, y_a)
    assert abs(self_share - eta / c) < 4 * sigma
    assert abs(realised_rate(y, y_a) - eta * (c - 1) / c) < 4 * sigma
    # uniform spreads its flips evenly over the other classes
    E = empirical_transition(y, y_u, c)
    off = E[~np.eye(c, dtype=bool)]
    assert np.allclose(off, eta / (c - 1), atol=0.015)


def test_cifar10_pairs_by_name_and_index():
    eta = 0.3
    T = transition_matrix(10, "pair", eta, mapping="cifar10")
    expected = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}  # truck->automobile, bird->airplane, deer->horse,
    assert {C10["truck"]: C10["automobile"], C10["bird"]: C10["airplane"],  # cat<->dog
            C10["deer"]: C10["horse"], C10["cat"]: C10["dog"],
            C10["dog"]: C10["cat"]} == expected
    for src in range(10):
        row = np.zeros(10)
        if src in expected:
            row[src], row[expected[src]] = 1 - eta, eta
        else:
            row[src] = 1.0
        assert np.allclose(T[src], row), CIFAR10_CLASSES[src]


def test_fashion_mnist_pairs():
    eta = 0.2
    T = transition_matrix(10, "pair", eta, mapping="fashion_mnist")
    # boot->sneaker->sandal, pullover->shirt, coat<->dress
    expected = {9: 7, 7: 5, 2: 6, 4: 3, 3: 4}
    assert {FASHION["Ankle boot"]: FASHION["Sneaker"], FASHION["Sneaker"]: FASHION["Sandal"],
            FASHION["Pullover"]: FASHION["Shirt"], FASHION["Coat"]: FASHION["Dress"],
            FASHION["Dress"]: FASHION["Coat"]} == expected
    for src in range(10):
        flips = {int(j) for j in np.flatnonzero(T[src]) if j != src}
        assert flips == ({expected[src]} if src in expected else set())
        assert T[src, src] == pytest.approx(1 - eta if src in expected else 1.0)


def test_named_mapping_follows_given_class_names():
    names = list(CIFAR10_CLASSES)[::-1]  # a dataset that lists its classes in another order
    T = transition_matrix(10, "pair", 0.4, mapping="cifar10", class_names=names)
    truck, auto = names.index("truck"), names.index("automobile")
    cat, dog = names.index("cat"), names.index("dog")
    assert T[truck, auto] == pytest.approx(0.4) and T[cat, dog] == T[dog, cat] == 0.4
    upper = [n.upper().replace(" ", "_") for n in FASHION_MNIST_CLASSES]  # ANKLE_BOOT etc.
    T = transition_matrix(10, "pair", 0.4, mapping="fashion_mnist", class_names=upper)
    assert T[upper.index("ANKLE_BOOT"), upper.index("SNEAKER")] == pytest.approx(0.4)
    bad = list(CIFAR10_CLASSES)
    bad[bad.index("truck")] = "lorry"
    with pytest.raises(LossbenchError, match="class_names.*truck"):
        transition_matrix(10, "pair", 0.4, mapping="cifar10", class_names=bad)


def test_cifar100_circular_and_next():
    eta = 0.25
    T = transition_matrix(100, "pair", eta, mapping="cifar100")
    for i in range(100):
        assert T[i, i] == pytest.approx(1 - eta) and T[i, (i + 1) % 100] == pytest.approx(eta)
    assert T[99, 0] == pytest.approx(eta)
    assert np.count_nonzero(T) == 200
    assert np.array_equal(T, transition_matrix(100, "pair", eta))  # default mapping 'next'
    with pytest.raises(LossbenchError, match="n_classes"):
        transition_matrix(10, "pair", eta, mapping="cifar100")


def test_superclass_flips_stay_in_superclass():
    rng = np.random.default_rng(7)
    coarse = rng.permutation(np.repeat(np.arange(20), 5))  # fine -> coarse, scattered
    y = balanced(20_000, 100)
    y_noisy, T = corrupt(y, 100, "pair", 0.4, seed=1, mapping="cifar100_superclass",
                         super_class=coarse)
    changed = y != y_noisy
    assert changed.mean() == pytest.approx(0.4, abs=0.02)
    assert np.array_equal(coarse[y], coarse[y_noisy])
    for group in range(20):
        members = np.flatnonzero(coarse == group)
        for a, b in zip(members, np.roll(members, -1), strict=True):
            assert T[a, b] == pytest.approx(0.4)
    # the index blocks of Patrini et al.'s public code: {0..4} cycles 0->1->...->4->0
    T_blocks = transition_matrix(100, "pair", 0.4, mapping="cifar100_superclass",
                                 super_class=np.arange(100) // 5)
    assert T_blocks[0, 1] == T_blocks[4, 0] == T_blocks[99, 95] == pytest.approx(0.4)
    with pytest.raises(LossbenchError, match="super_class"):
        transition_matrix(100, "pair", 0.4, mapping="cifar100_superclass")


def test_corrupt_split_keeps_test_clean():
    n, c = 3000, 10
    y = balanced(n, c)
    idx = np.random.default_rng(2).permutation(n)
    train, val, test = idx[:2000], idx[2000:2300], idx[2300:]
    y_noisy, T, info = corrupt_split(y, (train, val, test), c, "uniform", 0.5, 0, "toy")
    assert np.array_equal(y_noisy[test], y[test])
    assert realised_rate(y[val], y_noisy[val]) > 0.35  # validation labels are noisy too
    assert info == {"noise_kind": "uniform", "noise_rate": 0.5,
                    "noise_realised_train": realised_rate(y[train], y_noisy[train])}
    assert abs(info["noise_realised_train"] - 0.5) < 4 * math.sqrt(0.25 / 2000)
    assert np.allclose(T, transition_matrix(c, "uniform", 0.5))
    # train noise does not depend on the validation part
    y_noisy2, _, _ = corrupt_split(y, (train, val[:100], test), c, "uniform", 0.5, 0, "toy")
    assert np.array_equal(y_noisy2[train], y_noisy[train])
    with pytest.raises(LossbenchError, match="split.*overlap"):
        corrupt_split(y, (train, val, np.concatenate([test, val[:1]])), c, "uniform", 0.5, 0,
                      "toy")


def test_deterministic_given_seed():
    y = balanced(5000, 10)
    for kind in ("uniform", "uniform_any", "pair"):
        a, _ = corrupt(y, 10, kind, 0.3, seed=11)
        b, _ = corrupt(y.copy(), 10, kind, 0.3, seed=11)
        other, _ = corrupt(y, 10, kind, 0.3, seed=12)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, other)


def test_noise_seed_is_pinned_and_separates_cells():
    # pinned: a change here silently changes every noisy benchmark's labels
    assert noise_seed("cifar10", "train", 0, "uniform", 0.4) == 244206003
    cells = {noise_seed(*cell) for cell in [
        ("cifar10", "train", 0, "uniform", 0.4), ("cifar10", "val", 0, "uniform", 0.4),
        ("cifar10", "train", 1, "uniform", 0.4), ("cifar10", "train", 0, "pair", 0.4),
        ("cifar10", "train", 0, "uniform", 0.2), ("cifar100", "train", 0, "uniform", 0.4)]}
    assert len(cells) == 6 and all(0 <= s < 2**32 for s in cells)


def test_rate_zero_changes_nothing():
    y = balanced(1000, 4)
    for kind in list_noise_kinds():
        y_noisy, T = corrupt(y, 4, kind, 0.0, seed=5)
        assert np.array_equal(y_noisy, y) and np.array_equal(T, np.eye(4))


def test_empirical_transition_and_dump(tmp_path):
    y = np.array([0, 0, 1, 1, 1, 1])
    y_noisy = np.array([0, 1, 1, 1, 0, 0])
    E = empirical_transition(y, y_noisy, 3)
    assert np.allclose(E[:2], [[0.5, 0.5, 0], [0.5, 0.5, 0]])
    assert np.all(np.isnan(E[2]))  # class 2 absent: no evidence
    assert realised_rate(y, y_noisy) == pytest.approx(0.5)
    path = dump_labels(tmp_path / "labels.csv", y, y_noisy)
    back = pd.read_csv(path)
    assert list(back.columns) == ["index", "y", "y_noisy"]
    assert np.array_equal(back["y_noisy"], y_noisy) and np.array_equal(back["index"], range(6))


Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize("call,param", [
    (lambda: corrupt(Y, 3, "uniform", -0.1, 0), "rate"),
    (lambda: corrupt(Y, 3, "uniform", 1.1, 0), "rate"),
    (lambda: corrupt(Y, 3, "uniform", float("nan"), 0), "rate"),
    (lambda: corrupt(Y, 3, "uniform", "0.2", 0), "rate"),
    (lambda: corrupt(Y, 3, "pair", 0.6, 0), "rate.*majority"),
    (lambda: corrupt(Y, 3, "none", 0.2, 0), "rate"),
    (lambda: corrupt(Y, 1, "uniform", 0.2, 0), "n_classes"),
    (lambda: corrupt(Y, 2.5, "uniform", 0.2, 0), "n_classes"),
    (lambda: corrupt(Y, 2, "uniform", 0.2, 0), "'y'.*0, 1"),
    (lambda: corrupt(Y.astype(float), 3, "uniform", 0.2, 0), "'y'.*integer"),
    (lambda: corrupt(Y[None], 3, "uniform", 0.2, 0), "'y'.*1-D"),
    (lambda: corrupt(Y, 3, "uniform", 0.2, -1), "seed"),
    (lambda: corrupt(Y, 3, "gaussian", 0.2, 0), "noise kind 'gaussian'.*uniform, uniform_any"),
    (lambda: corrupt(Y, 3, "pair", 0.2, 0, mapping="imagenet"), "noise mapping.*cifar10"),
    (lambda: corrupt(Y, 3, "uniform", 0.2, 0, mapping="next"), "mapping"),
    (lambda: corrupt(Y, 3, "pair", 0.2, 0, mapping="cifar10"),
     "cifar10.*10 classes.*n_classes = 3"),
    (lambda: corrupt(Y, 3, "pair", 0.2, 0, mapping="cifar10", class_names=["a"]),
     "class_names.*3 names"),
    (lambda: realised_rate(Y, Y[:3]), "y_noisy"),
    (lambda: corrupt_split(Y, (Y[:2], Y[2:]), 3, "uniform", 0.2, 0, "d"), "split"),
    (lambda: corrupt_split(Y, ([0], [1], [7]), 3, "uniform", 0.2, 0, "d"), "split.*test"),
])
def test_bad_input_names_the_parameter(call, param):
    with pytest.raises(LossbenchError, match=param):
        call()


def test_registries_list_the_documented_names():
    assert list_noise_kinds() == ["none", "clean", "uniform", "uniform_any", "pair"]
    assert set(list_mappings()) == {"cifar10", "fashion_mnist", "next", "cifar100",
                                    "cifar100_superclass"}
