"""Atomic writes give stable bytes: reruns leave committed artifacts unchanged."""

import pandas as pd

from bench.io import write_csv


def test_gzipped_csv_is_byte_identical_across_writes(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    first = write_csv(tmp_path / "t.csv.gz", frame).read_bytes()
    second = write_csv(tmp_path / "t.csv.gz", frame).read_bytes()
    assert first == second
    assert pd.read_csv(tmp_path / "t.csv.gz").equals(frame)
    assert not list(tmp_path.glob(".t.csv.gz.*"))  # no temp file left behind


def test_figures_are_byte_identical_across_saves(tmp_path):
    from matplotlib.figure import Figure

    from analysis._io import save_figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0], label="x")
    for ext in ("svg", "png"):
        a = save_figure(fig, tmp_path / f"f.{ext}").read_bytes()
        b = save_figure(fig, tmp_path / f"f.{ext}").read_bytes()
        assert a == b, ext
