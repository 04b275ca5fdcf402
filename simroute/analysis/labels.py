"""Point labels that do not overlap: greedy placement around each point, with a leader line when a
label has to move away from its point.

Placement works in display units (pixels of the figure as drawn), so call :func:`place_labels` after
the axes limits and the figure layout are final (``tight_layout`` and the legend before it). It is
deterministic: the same points, texts and figure give the same placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_RADII_PT = (7.0, 12.0, 22.0, 34.0, 48.0, 64.0, 84.0)  # distances tried, nearest first (points)
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_PAD_PX = 2.0  # clearance kept around every label (pixels)
_Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
_Seg = tuple[tuple[float, float], tuple[float, float]]  # a leader line, point to label (pixels)
_CROSS_PX2 = 400.0  # penalty of a leader line crossing another or a label (as px² of overlap)


def _overlap(a: _Box, b: _Box) -> float:
    """Area (px²) of the intersection of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def _box(px: float, py: float, dx: int, dy: int, w: float, h: float) -> _Box:
    """Box of a ``w`` x ``h`` px label anchored at (px, py) on the side (dx, dy) points to."""
    x0 = px if dx > 0 else px - w if dx < 0 else px - w / 2
    y0 = py if dy > 0 else py - h if dy < 0 else py - h / 2
    return (x0 - _PAD_PX, y0 - _PAD_PX, x0 + w + _PAD_PX, y0 + h + _PAD_PX)


def _crosses(a: _Seg, b: _Seg) -> bool:
    """Whether two segments properly intersect (shared end points do not count)."""

    def side(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    d1, d2 = side(b[0], b[1], a[0]), side(b[0], b[1], a[1])
    d3, d4 = side(a[0], a[1], b[0]), side(a[0], a[1], b[1])
    return d1 * d2 < 0 and d3 * d4 < 0


def _hits_box(seg: _Seg, box: _Box) -> bool:
    """Whether a segment runs through a box (sampled at 12 points, end points excluded)."""
    (x0, y0), (x1, y1) = seg
    for t in np.linspace(0.0, 1.0, 14)[1:-1]:
        x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        if box[0] < x < box[2] and box[1] < y < box[3]:
            return True
    return False


def _order(xy: np.ndarray) -> list[int]:
    """Most crowded points first (neighbours within 40 px), ties by index: they get the near spots."""
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    crowd = (d < 40.0).sum(axis=1)
    return sorted(range(len(xy)), key=lambda i: (-int(crowd[i]), i))


class _Layout:
    """What is already on the axes (pixels): boxes to keep clear of, leader lines, the frame."""

    def __init__(self, frame: Any, boxes: list[_Box]) -> None:
        self.frame = frame
        self.boxes = boxes
        self.leaders: list[_Seg] = []
        self.label_boxes: list[_Box] = []

    def cost(self, box: _Box, leader: _Seg | None) -> float:
        """Overlap (px²) of ``box`` with everything placed, leader crossings, and distance outside
        the frame (heavily weighted)."""
        f = self.frame
        c = sum(_overlap(box, o) for o in self.boxes)
        c += 1e3 * (max(f.x0 - box[0], 0) + max(box[2] - f.x1, 0))
        c += 1e3 * (max(f.y0 - box[1], 0) + max(box[3] - f.y1, 0))
        if leader is not None:
            c += _CROSS_PX2 * sum(_crosses(leader, s) for s in self.leaders)
            c += _CROSS_PX2 * sum(_hits_box(leader, b) for b in self.label_boxes)
        c += _CROSS_PX2 * sum(_hits_box(s, box) for s in self.leaders)
        return float(c)

    def best_spot(self, px: float, py: float, w: float, h: float, px_per_pt: float) -> tuple[float, int, int]:
        """(radius in points, dx, dy) of the cheapest spot for a ``w`` x ``h`` px label of the point
        (px, py): the first free one going outwards, else the least bad; then mark it taken."""
        best: tuple[float, float, int, int] | None = None
        for r in _RADII_PT:
            for dx, dy in _DIRECTIONS:
                s = r * px_per_pt / (np.hypot(dx, dy) if dx and dy else 1.0)
                ax_, ay = px + dx * s, py + dy * s
                leader = ((px, py), (ax_, ay)) if r > _RADII_PT[0] else None
                c = self.cost(_box(ax_, ay, dx, dy, w, h), leader)
                if best is None or c < best[0]:
                    best = (c, r, dx, dy)
            if best is not None and best[0] == 0.0:
                break
        assert best is not None
        _, r, dx, dy = best
        s = r * px_per_pt / (np.hypot(dx, dy) if dx and dy else 1.0)
        box = _box(px + dx * s, py + dy * s, dx, dy, w, h)
        self.boxes.append(box)
        self.label_boxes.append(box)
        if r > _RADII_PT[0]:
            self.leaders.append(((px, py), (px + dx * s, py + dy * s)))
        return r, dx, dy


def place_labels(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    texts: Sequence[str],
    fontsize: float = 7.5,
    marker_px: float = 5.0,
    avoid: Sequence[Any] = (),
) -> list[Any]:
    """Annotate point ``i`` (data coordinates ``x[i]``, ``y[i]``) with ``texts[i]``, no two labels
    overlapping each other, a marker (``marker_px`` pixels around each point) or the artists in
    ``avoid`` (e.g. the legend), leader lines not crossing, and all inside the axes where there is
    room. Labels further than the nearest ring get a grey leader line. Returns the annotations."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    xy = ax.transData.transform(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))
    boxes: list[_Box] = [(px - marker_px, py - marker_px, px + marker_px, py + marker_px) for px, py in xy]
    for a in avoid:
        b = a.get_window_extent(renderer)
        boxes.append((b.x0, b.y0, b.x1, b.y1))
    layout = _Layout(ax.get_window_extent(renderer), boxes)
    out: list[Any] = [None] * len(texts)
    px_per_pt = fig.dpi / 72.0
    for i in _order(xy):
        probe = ax.text(0, 0, texts[i], fontsize=fontsize)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        r, dx, dy = layout.best_spot(xy[i, 0], xy[i, 1], ext.width, ext.height, px_per_pt)
        s = r / (np.hypot(dx, dy) if dx and dy else 1.0)
        out[i] = ax.annotate(
            texts[i],
            (x[i], y[i]),
            xytext=(dx * s, dy * s),
            textcoords="offset points",
            ha="left" if dx > 0 else "right" if dx < 0 else "center",
            va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            fontsize=fontsize,
            arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.45", "shrinkA": 0, "shrinkB": 3}
            if r > _RADII_PT[0]
            else None,
            zorder=4,
        )
    return out
