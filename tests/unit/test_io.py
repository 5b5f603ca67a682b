"""bench.io: atomic writes with stable bytes (reruns leave committed artifacts unchanged)."""

import gzip
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd

from bench.io import save_figure, save_figure_pair, write_csv, write_json


def test_gzipped_csv_is_byte_identical_across_writes(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    first = write_csv(tmp_path / "t.csv.gz", frame).read_bytes()
    second = write_csv(tmp_path / "t.csv.gz", frame).read_bytes()
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # no mtime in the gzip header
    assert gzip.decompress(first) == frame.to_csv(index=False).encode()
    assert not list(tmp_path.glob(".t.csv.gz.*"))  # no temp file left behind


def test_json_is_strict_and_sorted(tmp_path):
    path = write_json(tmp_path / "x.json", {"b": np.float64("nan"), "a": np.int64(3),
                                            "c": [math.inf, np.float32(0.5)]})
    text = path.read_text()
    assert json.loads(text) == {"a": 3, "b": None, "c": [None, 0.5]}
    assert text.index('"a"') < text.index('"b"') and text.endswith("}\n")
    unsorted = write_json(tmp_path / "y.json", {"z": 1, "a": 2}, indent=2, sort_keys=False)
    assert unsorted.read_text() == '{\n  "z": 1,\n  "a": 2\n}\n'


def test_figures_are_byte_identical_across_saves(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0], label="x")
    for ext in ("svg", "png"):
        a = save_figure(fig, tmp_path / f"f.{ext}").read_bytes()
        b = save_figure(fig, tmp_path / f"f.{ext}").read_bytes()
        assert a == b, ext
    assert b"<dc:date>" not in (tmp_path / "f.svg").read_bytes()
    png, svg = save_figure_pair(fig, tmp_path / "pair.png")
    assert (png.name, svg.name) == ("pair.png", "pair.svg")
    assert png.read_bytes() == (tmp_path / "f.png").read_bytes()


def test_io_imports_no_other_bench_module_and_no_torch():
    """analysis may import bench.io; it must not drag torch or the training code in."""
    code = ("import sys, bench.io; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['bench', 'bench.io']"
