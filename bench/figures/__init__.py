"""Figures drawn from the implemented code itself (losses, models), not from result tables.

Result-table figures (CD diagrams, profiles) belong to `analysis`; these need `bench` (and
torch), which `analysis` never imports. A figure module registers a builder
``make_figure() -> matplotlib Figure`` with ``register_figure``; `lossbench figure NAME --out
FILE.png` writes it as PNG and SVG side by side (byte-stable, `bench.io.save_figure_pair`).
"""

from __future__ import annotations

from bench.registry import Registry

FIGURES = Registry("figure")
register_figure = FIGURES.register


def list_figures() -> list[str]:
    return FIGURES.names()


def make_figure(name: str):
    """The matplotlib Figure registered as ``name`` (unknown names list the known ones)."""
    return FIGURES.get(name).builder()


from bench.figures import gradients  # noqa: E402,F401  (registers on import)

__all__ = ["FIGURES", "list_figures", "make_figure", "register_figure"]
