"""Fig. 1 of the mixing paper (bench.figures.gradients) from the implemented losses."""

from __future__ import annotations

import numpy as np

from bench.cli import main
from bench.figures import gradients


def test_curves_match_eq13_and_maxima():
    p_y, curves = gradients.gradient_curves(n_points=199)
    np.testing.assert_allclose(curves["CE"], 1 - p_y, rtol=1e-10)
    np.testing.assert_allclose(curves["EL"], p_y * (1 - p_y), rtol=1e-10)
    for F in (0.1, 0.2, 0.3, 0.4):
        g = curves[f"α = 1, β = 1/(1−2F), F = {F:g}"]
        b = 1 / (1 - 2 * F)
        np.testing.assert_allclose(g, (1 + b * p_y) * (1 - p_y), rtol=1e-10)
        assert abs(p_y[np.argmax(g)] - F) <= 0.005 + 1e-12


def test_figure_command_writes_png_and_svg_beside_it(tmp_path, capsys):
    out = tmp_path / "figures" / "gradients.png"
    assert main(["figure", "gradients", "--out", str(out)]) == 0
    png, svg = out.read_bytes(), out.with_suffix(".svg").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert b"<svg" in svg and b"<dc:date>" not in svg
    capsys.readouterr()
    assert main(["figure", "gradients", "--out", str(tmp_path / "g.svg")]) == 2
    assert main(["figure", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "expected a .png path" in err[0] and "Known figures: gradients" in err[1]
