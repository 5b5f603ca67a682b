"""A non-editable install works from another directory: package data, no repository paths."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_runs_from_another_directory(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(REPO)], check=True,
                   capture_output=True)
    wheel = next((tmp_path / "dist").glob("lossbench-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "bench/data/uci/klambauer_splits_sha256.csv" in names
    assert "analysis/paper_tables/mixing_table4.csv" in names  # paper tables ship too
    assert not any(n.startswith(("tests/", "results/", "data/")) for n in names)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "LOSSBENCH_CACHE": str(tmp_path / "cache")}
    code = ("import bench, bench.data.uci._load as l; "
            f"assert str(bench.__file__).startswith({str(site)!r}), bench.__file__; "
            "print(len(l._manifest()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, text=True,
                         capture_output=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 300  # the packaged split manifest was read
    if os.environ.get("LOSSBENCH_UCI121"):
        cli = subprocess.run([sys.executable, "-m", "bench.cli", "datasets", "--format", "csv"],
                             cwd=work, env=env, text=True, capture_output=True)
        assert "iris,150,4,3,ok" in cli.stdout, cli.stderr[-500:]
