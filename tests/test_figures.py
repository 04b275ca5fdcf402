"""Figures are byte-reproducible: the same figure saved twice gives identical PNG and SVG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simroute.analysis.plots import plt, save_figure


def _draw(path: Path) -> None:
    """A small figure with what makes SVG ids vary: lines, markers, a clip path, text and a legend."""
    fig, ax = plt.subplots(figsize=(3, 2))
    x = np.linspace(0.0, 1.0, 20)
    ax.plot(x, x**2, marker="o", label="a")
    ax.fill_between(x, x**2 - 0.1, x**2 + 0.1, alpha=0.2, label="band")
    ax.scatter(x, x, s=8, label="b")
    ax.set_xlabel("x (s)")
    ax.legend()
    save_figure(fig, path, dpi=72)


def test_save_figure_is_byte_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "f.png", tmp_path / "b" / "f.png"
    a.parent.mkdir()
    b.parent.mkdir()
    _draw(a)
    _draw(b)
    assert a.read_bytes() == b.read_bytes()
    svg_a, svg_b = a.with_suffix(".svg").read_bytes(), b.with_suffix(".svg").read_bytes()
    assert svg_a == svg_b
    assert b"<dc:date>" not in svg_a and b"Matplotlib v" not in svg_a  # no save time, no version
    assert b"Software" not in a.read_bytes()
    assert plt.get_fignums() == []  # closed


def test_save_figure_png_only(tmp_path: Path) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    save_figure(fig, tmp_path / "f.png", dpi=50, svg=False)
    assert (tmp_path / "f.png").exists() and not (tmp_path / "f.svg").exists()
