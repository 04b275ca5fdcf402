"""A running quantile in O(log n) per observation: two heaps around the order statistic.

``np.quantile(seen, q)`` (the ``linear`` method) interpolates between the k-th and (k+1)-th
smallest values, k = floor((n - 1) q). The lower heap (a max-heap) holds the k + 1 smallest values
and the upper heap (a min-heap) the rest; each new value moves at most one element between them. The
value equals ``np.quantile`` exactly (the same interpolation formula; tested).
"""

from __future__ import annotations

import heapq
import math


class RunningQuantile:
    """The ``q`` quantile (0..1) of all values added so far."""

    def __init__(self, q: float) -> None:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        self.q = q
        self._lower: list[float] = []  # negated: a max-heap of the k + 1 smallest
        self._upper: list[float] = []  # a min-heap of the rest
        self.n = 0

    def add(self, x: float) -> None:
        """Observe one value."""
        if self._lower and x > -self._lower[0]:
            heapq.heappush(self._upper, x)
        else:
            heapq.heappush(self._lower, -x)
        self.n += 1
        want = self._index() + 1
        while len(self._lower) > want:
            heapq.heappush(self._upper, -heapq.heappop(self._lower))
        while len(self._lower) < want:
            heapq.heappush(self._lower, -heapq.heappop(self._upper))

    def _index(self) -> int:
        return math.floor((self.n - 1) * self.q)

    def value(self) -> float:
        """``np.quantile(values, q)`` of the values added (NaN when none)."""
        if self.n == 0:
            return math.nan
        h = (self.n - 1) * self.q
        gamma = h - math.floor(h)
        a = -self._lower[0]
        b = self._upper[0] if self._upper and gamma > 0 else a
        diff = b - a
        return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
