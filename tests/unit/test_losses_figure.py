"""Fig. 1 of the mixing paper (analysis.gradient_figure) from the implemented losses."""

from __future__ import annotations

import numpy as np

from analysis import gradient_figure


def test_curves_match_eq13_and_maxima():
    p_y, curves = gradient_figure.gradient_curves(n_points=199)
    np.testing.assert_allclose(curves["CE"], 1 - p_y, rtol=1e-10)
    np.testing.assert_allclose(curves["EL"], p_y * (1 - p_y), rtol=1e-10)
    for F in (0.1, 0.2, 0.3, 0.4):
        g = curves[f"α = 1, β = 1/(1−2F), F = {F:g}"]
        b = 1 / (1 - 2 * F)
        np.testing.assert_allclose(g, (1 + b * p_y) * (1 - p_y), rtol=1e-10)
        assert abs(p_y[np.argmax(g)] - F) <= 0.005 + 1e-12


def test_main_writes_png_and_svg(tmp_path):
    assert gradient_figure.main(["--out", str(tmp_path / "figures")]) == 0
    for ext in ("png", "svg"):
        assert (tmp_path / "figures" / f"gradients.{ext}").stat().st_size > 1000
