"""An image run killed (SIGKILL) after a checkpoint resumes from it and ends with the same
tables as an uninterrupted run: generated CIFAR-10-format data through the real loader."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.data.images.synth import write_cifar_archive

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]


def _cmd(archive: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "train", "--dataset", "cifar10", "--source",
            str(archive), "--protocol", "official", "--model", "lenet5", "--losses", "ce",
            "--seeds", "0", "--lrs", "0.05", "--epochs", "4", "--batch-size", "32",
            "--augment", "cifar_standard", "--trainer", "torch", "--no-progress",
            "--out", str(out)]


def test_sigkill_after_a_checkpoint_then_rerun_equals_uninterrupted(tmp_path):
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", n_per_batch=48)
    env = {**os.environ, "LOSSBENCH_CACHE": str(tmp_path / "cache")}
    whole = tmp_path / "whole"
    subprocess.run(_cmd(archive, whole), env=env, check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(archive, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list((killed / "checkpoints").glob("*.pt")) and time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail("the run ended before writing a checkpoint")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.csv").exists()
    resumed = subprocess.run(_cmd(archive, killed), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resum" in resumed.stdout + resumed.stderr  # it said it resumed
    for name in ("epochs.csv", "summary.csv"):
        assert (killed / name).read_bytes() == (whole / name).read_bytes()
    assert not list((killed / "checkpoints").glob("*.pt"))  # removed once complete
