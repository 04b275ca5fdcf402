"""Figures are byte-reproducible: the same figure saved twice gives identical PNG and SVG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from simroute.analysis.plots import ecdf_points, plt, save_figure


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


def test_place_labels_do_not_overlap() -> None:
    """Clustered points (as in the router sweep: near-equal cost and success) get labels that
    overlap neither each other nor any point."""
    from simroute.analysis.labels import place_labels

    x = np.array([50.6, 51.7, 51.8, 52.9, 36.4, 36.5, 34.1, 34.3, 34.8, 37.9, 37.9])
    y = np.array([73.9, 73.9, 74.8, 75.3, 66.1, 65.8, 67.1, 69.5, 67.9, 69.1, 76.6])
    names = [f"policy number {i}" for i in range(len(x))]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.scatter(x, y)
    ax.margins(x=0.22, y=0.12)
    fig.tight_layout()
    anns = place_labels(ax, x, y, names)
    r = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(r) for a in anns]
    pts = ax.transData.transform(np.column_stack([x, y]))
    frame = ax.get_window_extent(r)
    for i, b in enumerate(boxes):
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
        assert not any(b.overlaps(c) for c in boxes[i + 1 :]), names[i]
        assert not any(b.x0 - 3 < px < b.x1 + 3 and b.y0 - 3 < py < b.y1 + 3 for px, py in pts)
    plt.close(fig)


def _daily(local: list[float], skills: list[str] | None, seed: int = 0) -> pl.DataFrame:
    """A daily table (the columns daily_figure reads) with the given local shares."""
    n = len(local)
    d = pl.DataFrame(
        {
            "day": list(range(1, n + 1)),
            "n_requests": [1000 + 50 * i for i in range(n)],
            "share_local": local,
            "success_rate": [0.7 + 0.01 * (seed + i % 2) for i in range(n)],
            "cost_with_feedback_usd": [50.0 + seed + i for i in range(n)],
            "examples_total": [3000.0 * (i + 1) for i in range(n)],
            "seed": [seed] * n,
        }
    )
    return d if skills is None else d.with_columns(pl.Series("local_skills", skills))


def test_local_share_jump_is_explained_from_local_skills() -> None:
    from simroute.analysis.plots import _local_events

    d = _daily([0.3, 0.3, 0.4, 0.41], ["a;b", "a;b", "a;b;code", "a;b;code"])
    c = _daily([0.3, 0.3, 0.31, 0.3], ["a;b"] * 4)
    events = _local_events({"d + distillation": d, "c + evaluator": c})
    assert len(events) == 1
    day, share, rise, text = events[0]
    assert day == 3 and share == 0.4 and rise
    assert text.startswith("day 3, d: code sent local\n")  # never local before: not "again"
    assert "6,000 distilled examples" in text and "30% → 40%" in text
    back = _daily([0.3, 0.2, 0.4], ["a;code", "a", "a;code"])
    assert [t.split("\n")[0] for _, _, _, t in _local_events({"d": back})] == [
        "day 2, d: code no longer sent local",
        "day 3, d: code sent local again",
    ]
    # without local_skills (tables written before the column) only the change of the share is told
    ((_, _, _, bare),) = _local_events({"d": d.drop("local_skills")})
    assert bare == "day 3, d: local share 30% → 40%"


def test_daily_figure_draws_ci_bands_for_several_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simroute.analysis import plots

    bands: list[int] = []
    real = plots.plt.Axes.fill_between
    monkeypatch.setattr(
        plots.plt.Axes, "fill_between", lambda self, *a, **k: bands.append(1) or real(self, *a, **k)
    )
    one = {"b": _daily([0.3] * 5, None)}
    plots.daily_figure(one, tmp_path / "one.png", "one seed")
    assert bands == []
    three = {"b": pl.concat([_daily([0.3 + 0.01 * s] * 5, None, s) for s in range(3)])}
    plots.daily_figure(three, tmp_path / "three.png", "three seeds")
    assert len(bands) == 3  # one band per panel
    assert (tmp_path / "three.svg").exists()


def test_ecdf_points_lie_on_the_cdf_and_are_thinned_only_past_the_limit() -> None:
    x = np.sort(np.random.default_rng(3).lognormal(1.0, 1.0, 100_001))
    px, py = ecdf_points(x, most=1000)
    assert len(px) == 1000
    assert (px[0], py[0]) == (x[0], 1 / len(x)) and (px[-1], py[-1]) == (x[-1], 1.0)
    ranks = np.round(py * len(x)).astype(int) - 1  # each point is (x[i], (i + 1) / n)
    assert np.array_equal(px, x[ranks]) and np.all(np.diff(ranks) > 0)
    assert np.max(np.diff(py)) <= 1.01 / 999  # evenly spaced ranks: no gap wider than 1/(most-1)
    small = np.sort(np.array([3.0, 1.0, 2.0]))
    sx, sy = ecdf_points(small, most=1000)
    assert np.array_equal(sx, small) and np.allclose(sy, [1 / 3, 2 / 3, 1.0])
