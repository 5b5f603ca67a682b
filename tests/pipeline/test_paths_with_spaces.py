"""Issue 15, defects 1, 2 and 6: paths with spaces, quotes and non-ASCII characters.

Unquoted, `> {log}` with results_dir "out put" redirects into a file named `out` and hands
`put/...` to the command: a stranger's file is overwritten. Every path is quoted now; the
sentinel files named after the first word of each path must keep their bytes.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pipeline_with_spaces_quotes_and_unicode(tmp_path, uci_source, splits_source):
    weird = "out put 'q' é"
    sentinels = {tmp_path / "out": b"someone else's file\n",
                 tmp_path / "my": b"another one\n"}
    for path, data in sentinels.items():
        path.write_bytes(data)
    source_dir = tmp_path / "my data"  # a source path with a space
    source_dir.mkdir()
    (source_dir / "data.tar.gz").symlink_to(uci_source)
    (source_dir / "splits.tar.gz").symlink_to(splits_source)
    config = {"datasets": ["iris", "lenses"], "archs": ["linear"], "losses": ["ce", "el", "focal"],
              "seeds": [0], "lrs": [0.01], "epochs": 1, "protocols": ["klambauer"],
              "results_dir": f"{weird}/results", "logs_dir": f"{weird}/logs",
              "source": str(source_dir / "data.tar.gz"),
              "splits_source": str(source_dir / "splits.tar.gz"),
              "studies": [], "gpu_studies": ["mixing_table1"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    env = {**os.environ, "LOSSBENCH_CACHE": str(REPO / "data" / "cache"), "MPLBACKEND": "Agg",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("LOSSBENCH_UCI121", None)  # the config's spaced source must be what is read
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "-d", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
                           "--cores", "2"], capture_output=True, text=True, env=env,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for path, data in sentinels.items():
        assert path.read_bytes() == data, f"{path} was overwritten"
    results = tmp_path / weird / "results"
    summary = pd.read_csv(results / "uci" / "klambauer" / "summary.csv")
    assert set(summary["dataset"]) == {"iris", "lenses"}
    assert (results / "README.md").is_file()
    assert "not run: data not configured" in (results / "README.md").read_text()
    strays = [p.name for p in tmp_path.iterdir()]
    assert sorted(strays) == sorted([".snakemake", "config.yaml", "my", "my data", "out", weird])


def test_train_out_that_is_a_file_fails_before_training(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    before = _digest(out)
    code = main(["train", "--dataset", "iris", "--model", "mlp", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--out" in err and "not a folder" in err and len(err.strip().splitlines()) == 1
    assert _digest(out) == before
