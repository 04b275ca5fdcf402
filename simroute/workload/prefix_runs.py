"""A request table's prefix-block ids held as runs of consecutive ids, for the simulation.

An agent session's calls share long prefixes whose block ids count up one by one, so a row's ids
``[0, 1, 2, 40_000, 40_001]`` hold as the runs ``(0, 3), (40_000, 2)``. The synthetic agent fleet
has about 91 ids a row in about 3 runs, so the runs take about a twelfth of the flat ids' memory
(at a million requests: about 700 MiB of flat ids). The tiers expand one row's ids when they need
them (:meth:`PrefixRuns.ids`); the expanded ids equal the table's ``prefix_hashes`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from simroute.workload.prefix_blocks import list_column

CHUNK_ROWS = 65_536
"""Rows encoded at a time: the transient memory is a chunk's ids, not the whole table's."""


@numba.njit(cache=True)
def _expand(start, length):  # type: ignore[no-untyped-def]
    """The ids of the runs (``start``, ``length``) one after another."""
    out = np.empty(length.sum(), np.int64)
    o = 0
    for r in range(len(start)):
        for j in range(length[r]):
            out[o + j] = start[r] + j
        o += length[r]
    return out


@dataclass(frozen=True)
class PrefixRuns:
    """Prefix-block ids of ``n`` rows as runs: row ``i``'s runs are ``start[k]``, ``length[k]``
    (ids ``start[k] .. start[k] + length[k] - 1``) for ``k`` in ``row_runs[i] .. row_runs[i + 1] - 1``.
    A run never crosses a row boundary."""

    row_runs: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.row_runs) - 1

    @property
    def nbytes(self) -> int:
        """Bytes held by the three arrays."""
        return int(self.row_runs.nbytes + self.start.nbytes + self.length.nbytes)

    def ids(self, i: int) -> np.ndarray:
        """Row ``i``'s prefix-block ids (int64, a new array; empty when it has none)."""
        a, b = int(self.row_runs[i]), int(self.row_runs[i + 1])
        if b - a == 1:
            s = int(self.start[a])
            return np.arange(s, s + int(self.length[a]), dtype=np.int64)
        if a == b:
            return np.zeros(0, dtype=np.int64)
        return _expand(self.start[a:b], self.length[a:b])  # type: ignore[no-any-return]

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """All rows' ids as flat arrays (offsets of length ``n + 1``, values): for tests and small
        tables."""
        cum = np.zeros(len(self.length) + 1, dtype=np.int64)
        np.cumsum(self.length, out=cum[1:])
        off = cum[self.row_runs]
        return off, _expand(self.start, self.length)

    def rows(self, a: int, b: int) -> PrefixRuns:
        """Rows ``a`` to ``b - 1`` (views of this object's arrays)."""
        lo, hi = int(self.row_runs[a]), int(self.row_runs[b])
        return PrefixRuns(self.row_runs[a : b + 1] - lo, self.start[lo:hi], self.length[lo:hi])

    def column(self, name: str, chunk_rows: int = CHUNK_ROWS) -> pl.Series:
        """The ``List(Int64)`` column of the ids, built ``chunk_rows`` rows at a time and left in
        those chunks (not copied into one), so only one chunk's ids are ever flat besides it."""
        n = len(self)
        if n == 0:
            return pl.Series(name, [], dtype=pl.List(pl.Int64))
        chunks = [self.rows(a, min(a + chunk_rows, n)) for a in range(0, n, chunk_rows)]
        parts = [list_column(name, *c.flat()) for c in chunks]
        return pl.concat(parts, rechunk=False)

    @classmethod
    def from_flat(cls, offsets: np.ndarray, values: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> PrefixRuns:
        """Encode flat ids (row ``i``: ``values[offsets[i]:offsets[i + 1]]``), ``chunk_rows`` rows at
        a time."""
        n = len(offsets) - 1
        parts = [_encode(offsets[a : min(a + chunk_rows, n) + 1], values) for a in range(0, n, chunk_rows)]
        return _join(parts, n)

    @classmethod
    def from_column(cls, column: pl.Series, chunk_rows: int = CHUNK_ROWS) -> PrefixRuns:
        """Encode a ``List(Int64)`` column of ids, ``chunk_rows`` rows at a time (only one chunk's
        ids are ever flat at once)."""
        n = column.len()
        parts = []
        for a in range(0, n, chunk_rows):
            part = column.slice(a, min(chunk_rows, n - a))
            off = np.zeros(part.len() + 1, dtype=np.int64)
            np.cumsum(part.list.len().fill_null(0).to_numpy(), out=off[1:])
            values = part.explode(empty_as_null=False).to_numpy().astype(np.int64, copy=False)
            parts.append(_encode(off, values))
        return _join(parts, n)


@dataclass(frozen=True)
class _Part:
    """Runs of a chunk of rows: runs per row, run starts, run lengths."""

    per_row: np.ndarray
    start: np.ndarray
    length: np.ndarray


def _encode(offsets: np.ndarray, values: np.ndarray) -> _Part:
    """Runs of the rows ``values[offsets[i]:offsets[i + 1]]`` (``offsets`` may start past 0)."""
    lo, hi = int(offsets[0]), int(offsets[-1])
    v = values[lo:hi]
    rel = offsets - lo
    is_start = np.ones(len(v), dtype=bool)
    if len(v) > 1:
        is_start[1:] = np.diff(v) != 1
    row_first = rel[:-1][np.diff(rel) > 0]
    is_start[row_first] = True
    first = np.flatnonzero(is_start)
    length = np.diff(np.append(first, len(v)))
    per_row = np.diff(np.searchsorted(first, rel))
    return _Part(per_row.astype(np.int64), v[first].astype(np.int64), length.astype(np.int64))


def _join(parts: list[_Part], n: int) -> PrefixRuns:
    """The runs of all chunks, in row order."""
    row_runs = np.zeros(n + 1, dtype=np.int64)
    if parts:
        np.cumsum(np.concatenate([p.per_row for p in parts]), out=row_runs[1:])
        start = np.concatenate([p.start for p in parts])
        length = np.concatenate([p.length for p in parts])
    else:
        start = length = np.zeros(0, dtype=np.int64)
    return PrefixRuns(row_runs, start, length)
