"""The real Snakemake workflow on real data: dry run, lint, a tiny full run, resume after a kill.

Each run uses its own working directory (``snakemake -d``) and a tiny config (3 datasets, one
of them absent from the source, 2 epochs), so it never touches the committed results/.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import dry_run, job_counts

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "datasets": ["iris", "lenses", "fertility", "miniboone"],  # miniboone: absent offline
    "archs": ["linear"],
    "losses": ["ce", "el", "focal"],
    "seeds": [0],
    "lrs": [0.01, 0.001],
    "epochs": 2,
    "results_dir": "results",
    "logs_dir": "logs",
    "studies": [],  # the UCI pipeline only (images_small has tests of its own)
    "gpu_studies": [],
}


@pytest.fixture
def workdir(tmp_path: Path, uci_source: str, splits_source: str, monkeypatch) -> Path:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    monkeypatch.setenv("LOSSBENCH_UCI121", uci_source)
    monkeypatch.setenv("LOSSBENCH_UCI121_SPLITS", splits_source)
    monkeypatch.setenv("LOSSBENCH_CACHE", str(REPO / "data" / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def _cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]


def _snakemake(workdir: Path, *args: str) -> str:
    proc = subprocess.run(_cmd(workdir, *args), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _mtimes(workdir: Path) -> dict[str, int]:
    runs = workdir / "results" / "uci" / "klambauer" / "runs"
    return {str(p.relative_to(runs)): p.stat().st_mtime_ns for p in runs.glob("*/summary.csv")}


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "good condition" in proc.stdout + proc.stderr


def test_dry_run_of_the_default_config_plans_every_stage(tmp_path: Path):
    counts = job_counts(dry_run(tmp_path, None))
    for rule in ("datasets", "labels", "collect", "select_scores", "analyze", "report"):
        assert rule in counts, rule
    # the default config analyses each protocol x 2 archs x (2 seeds + their mean)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    n_analyze = len(config["protocols"]) * len(config["archs"]) * (len(config["seeds"]) + 1)
    assert counts["analyze"] == n_analyze, counts


@pytest.mark.parametrize("study, n_train, n_analyze, score", [
    ("mixing_glue", 7 * 4 * 4, 1, "test_score_pct"),  # tasks x regimes x seeds; mean only
    ("mixing_table3", 5 * 8, 5, "test_acc_pct"),  # models x seeds; blocks per model
])
def test_text_study_targets_plan_gpu_jobs_ranked_by_their_score(tmp_path: Path, study, n_train,
                                                                 n_analyze, score):
    out = dry_run(tmp_path, study, "-p", "--resources", "gpu=1")
    counts = job_counts(out)
    assert counts["study_train"] == n_train and counts["study_analyze"] == n_analyze
    assert re.search(r"resources: .*gpu=1", out)  # each train job holds the GPU
    analyze = [line for line in out.splitlines() if "lossbench analyze" in line]
    assert len(analyze) == n_analyze and all(f"--score-col {score} " in a for a in analyze)


def test_tiny_run_reports_missing_data_and_redoes_only_what_is_gone(workdir: Path):
    _snakemake(workdir)
    results = workdir / "results"
    report = (results / "README.md").read_text()
    assert "miniboone" in report
    summary = (results / "uci" / "klambauer" / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 3 * 3  # header + 3 datasets x 3 losses (1 seed, 1 arch)
    for name in ("table4.csv", "friedman.json", "cd_diagram.png", "performance_profile.png"):
        assert (results / "uci" / "klambauer" / "analysis" / "linear" / "mean" / name).is_file()
    assert "Nothing to be done" in _snakemake(workdir, "-n")

    before = _mtimes(workdir)
    # one job's output and the collected table are lost: only that job and what follows rerun
    (workdir / "results/uci/klambauer/runs/lenses/summary.csv").unlink()
    (workdir / "results/uci/klambauer/summary.csv").unlink()
    plan = _snakemake(workdir, "-n")
    assert any(line.split() == ["train", "1"] for line in plan.splitlines()), plan
    _snakemake(workdir)
    after = _mtimes(workdir)
    assert after.keys() == before.keys()
    changed = [k for k in before if after[k] != before[k]]
    assert changed == ["lenses/summary.csv"]


def _finished_train_outputs(log: str) -> set[str]:
    """summary.csv paths of the train jobs the Snakemake log reports as finished."""
    outputs, finished = {}, set(re.findall(r"Finished jobid: (\d+) \(Rule: train\)", log))
    for block in log.split("rule train:")[1:]:
        out = re.search(r"output: (\S+/summary\.csv)", block)
        job = re.search(r"jobid: (\d+)", block)
        if out and job:
            outputs[job.group(1)] = out.group(1)
    return {outputs[j] for j in finished if j in outputs}


def test_killed_run_resumes_without_redoing_finished_jobs(workdir: Path):
    log_path = workdir / "snakemake.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(_cmd(workdir, "-j", "1"), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.time() + 300
        while (not _finished_train_outputs(log_path.read_text()) and time.time() < deadline
               and proc.poll() is None):
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=600)  # a loaded machine (parallel tests) is slow to stop
    finished = _finished_train_outputs(log_path.read_text())
    assert finished, "no train job finished before the kill"
    stamps = {f: (workdir / f).stat().st_mtime_ns for f in finished}
    _snakemake(workdir)
    assert len(_mtimes(workdir)) == 3
    assert all((workdir / f).stat().st_mtime_ns == t for f, t in stamps.items())
    assert (workdir / "results" / "README.md").is_file()


def test_second_pipeline_on_the_same_folder_is_refused_while_the_first_runs(workdir: Path):
    """Two `snakemake` runs on one results folder: the second is refused by Snakemake's lock
    (one clear message, nothing written by it) and the first finishes unharmed."""
    with open(workdir / "first.log", "w") as log:
        first = subprocess.Popen(_cmd(workdir, "-j", "1"), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while not (workdir / ".snakemake" / "locks").is_dir() or not any(
                (workdir / ".snakemake" / "locks").iterdir()):
            assert first.poll() is None and time.time() < deadline, "first run never locked"
            time.sleep(0.05)
        second = subprocess.run(_cmd(workdir), capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
        assert first.wait(timeout=900) == 0
    assert len(_mtimes(workdir)) == 3 and (workdir / "results" / "README.md").is_file()
