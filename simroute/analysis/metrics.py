"""Router metrics of the field: Pareto frontier, AIQ (RouterBench), APGR and CPT (RouteLLM).

* :func:`pareto_frontier` — the runs not dominated in (lower cost, higher quality).
* :func:`aiq` — RouterBench's Average Improvement in Quality: the area under the non-decreasing
  convex hull of the (cost, quality) points, divided by the cost range it spans.
* :func:`apgr` — RouteLLM's Average Performance Gap Recovered: the area under a router's
  quality-vs-strong-call-share curve, with the weak model's quality as 0 and the strong model's as
  1 (trapezoid rule over the curve's points, as in RouteLLM's ``evaluate.py``).
* :func:`cpt` — Call-Performance Threshold: the smallest share of calls to the strong model at
  which the curve reaches ``weak + level · (strong - weak)`` (linear interpolation between points).
"""

from __future__ import annotations

import numpy as np


def pareto_frontier(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points, by increasing cost.

    A point is dominated when another costs no more and is at least as good, and is strictly
    better in one of the two.
    """
    order = np.lexsort((-quality, cost))
    out: list[int] = []
    best = -np.inf
    for i in order:
        if quality[i] > best:
            out.append(int(i))
            best = quality[i]
    return np.array(out, dtype=np.int64)


def _upper_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper convex hull of points sorted by x (monotone chain)."""
    hull: list[tuple[float, float]] = []
    for p in zip(x.tolist(), y.tolist(), strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    hx, hy = zip(*hull, strict=True)
    return np.array(hx), np.array(hy)


def aiq(cost: np.ndarray, quality: np.ndarray) -> float:
    """Area under the non-decreasing convex hull of (cost, quality), per unit of cost range.

    RouterBench (Hu et al., 2024): routers are compared by the quality their achievable
    cost-quality frontier offers on average over the cost range. Points are first reduced to the
    Pareto frontier (which makes the hull non-decreasing), then to its upper convex hull (any point
    between two runs is achievable by mixing them).
    """
    f = pareto_frontier(cost, quality)
    x, y = cost[f].astype(float), quality[f].astype(float)
    if len(x) == 1 or x[-1] == x[0]:
        return float(y.max())
    hx, hy = _upper_hull(x, y)
    return float(np.trapezoid(hy, hx) / (hx[-1] - hx[0]))


def apgr(share: np.ndarray, quality: np.ndarray, weak: float, strong: float) -> float:
    """Average performance gap recovered of a curve (share of strong calls in [0, 1])."""
    o = np.argsort(share, kind="stable")
    s, q = share[o].astype(float), quality[o].astype(float)
    span = s[-1] - s[0]
    area = float(np.trapezoid(q, s))
    return float((area - weak * span) / ((strong - weak) * span))


def cpt(share: np.ndarray, quality: np.ndarray, weak: float, strong: float, level: float) -> float:
    """Smallest strong-call share at which the curve reaches ``weak + level (strong - weak)``."""
    o = np.argsort(share, kind="stable")
    s, q = share[o].astype(float), quality[o].astype(float)
    target = weak + level * (strong - weak)
    hit = np.flatnonzero(q >= target - 1e-12)
    if not len(hit):
        return float("nan")
    k = int(hit[0])
    if k == 0:
        return float(s[0])
    # interpolate on the segment that crosses the target
    return float(s[k - 1] + (target - q[k - 1]) * (s[k] - s[k - 1]) / (q[k] - q[k - 1]))
