"""Lossless run-length encoding of prefix-block ids, so a bundled trace stays small.

An agent session's calls share long prefixes whose block ids count up one by one (block ``k`` of a
conversation keeps its id in every later call), so a call's ids ``[1, 2, ..., 258, 36622, 36623]``
store as the runs ``[1, 258, 36622, 2]`` (start, length, start, length, ...). The 94 million block
ids of the Claude Code trace become about 3 runs per call. :func:`encode` and :func:`decode` are
exact inverses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from simroute.workload.prefix_blocks import list_column as flat_list_column
from simroute.workload.prefix_runs import PrefixRuns


def list_column(name: str, arrays: Sequence[np.ndarray]) -> pl.Series:
    """A ``List(Int64)`` column with one row per array (polars would make equal lengths an Array)."""
    if not arrays:
        return pl.Series(name, [], dtype=pl.List(pl.Int64))
    s = pl.Series(name, [np.asarray(a, dtype=np.int64) for a in arrays])
    return s.cast(pl.List(pl.Int64))


def encode_one(ids: np.ndarray) -> np.ndarray:
    """Runs of consecutive ids as ``[start, length, start, length, ...]`` (int64)."""
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    starts = np.concatenate(([0], breaks))
    lengths = np.diff(np.concatenate((starts, [ids.size])))
    return np.column_stack((ids[starts], lengths)).astype(np.int64).ravel()


def encode(column: pl.Series) -> pl.Series:
    """A ``List(Int64)`` column of ids -> the ``List(Int64)`` column of their runs (as
    :class:`~simroute.workload.prefix_runs.PrefixRuns` finds them, interleaved per row)."""
    runs = PrefixRuns.from_column(column)
    values = np.empty(2 * len(runs.start), dtype=np.int64)
    values[0::2], values[1::2] = runs.start, runs.length
    return flat_list_column(column.name, 2 * runs.row_runs, values)


def decode(runs: pl.Series) -> pl.Series:
    """The inverse of :func:`encode`: runs per row -> the ids per row (``List(Int64)``).

    Raises:
        ValueError: a row with an odd number of values or a run length below 1.
    """
    lengths = runs.list.len().to_numpy()
    if (lengths % 2).any():
        raise ValueError(f"row {int(np.flatnonzero(lengths % 2)[0]) + 1}: odd number of values")
    flat = runs.explode().drop_nulls().to_numpy().astype(np.int64, copy=False)
    starts, run_len = flat[0::2], flat[1::2]
    if (run_len < 1).any():
        raise ValueError("a run length below 1")
    row_runs = np.zeros(runs.len() + 1, dtype=np.int64)
    np.cumsum(lengths // 2, out=row_runs[1:])
    return PrefixRuns(row_runs, starts.copy(), run_len.copy()).column(runs.name)
