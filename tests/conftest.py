"""Shared test setup: fixed seeds, Agg backend, figures closed, real-data source discovery."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
_DEFAULT_SHARED = REPO.parent / "shared" / "uci121"


def _uci_source() -> str | None:
    env = os.environ.get("LOSSBENCH_UCI121")
    if env:
        return env
    candidate = _DEFAULT_SHARED / "data.tar.gz"
    return str(candidate) if candidate.exists() else None


def _splits_source() -> str | None:
    env = os.environ.get("LOSSBENCH_UCI121_SPLITS")
    if env:
        return env
    candidate = _DEFAULT_SHARED / "klambauer_splits.tar.gz"
    return str(candidate) if candidate.exists() else None


@pytest.fixture(autouse=True)
def _fixed_seed():
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def uci_source() -> str:
    """Path of the UCI-121 tarball/folder; skips real-data tests when none is configured."""
    src = _uci_source()
    if src is None:
        pytest.skip(
            "UCI-121 source not configured: set LOSSBENCH_UCI121 to data.tar.gz "
            "(CI points it at ../shared/uci121/data.tar.gz)"
        )
    return src


@pytest.fixture(scope="session")
def splits_source() -> str:
    """Path of the Klambauer split tarball/folder; skips when none is configured."""
    src = _splits_source()
    if src is None:
        pytest.skip(
            "Klambauer splits not configured: set LOSSBENCH_UCI121_SPLITS to "
            "klambauer_splits.tar.gz (CI points it at ../shared/uci121/)"
        )
    return src


@pytest.fixture(scope="module")
def one_thread():
    """One torch intra-op thread for a module (``pytestmark = pytest.mark.usefixtures(
    "one_thread")``): tiny tensors only lose time to a second contending thread (small LSTM
    steps on a shared CPU ran ~50x slower), and a spec's ``threads`` default is 1 too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

