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
    """A ``List(Int64)`` column of ids -> the ``List(Int64)`` column of their runs."""
    runs: Sequence[np.ndarray] = [encode_one(np.asarray(v, dtype=np.int64)) for v in column.to_list()]
    return list_column(column.name, runs)


def decode(runs: pl.Series) -> pl.Series:
    """The inverse of :func:`encode`: runs per row -> the ids per row (``List(Int64)``).

    Raises:
        ValueError: a row with an odd number of values or a run length below 1.
    """
    n = runs.len()
    lengths = runs.list.len().to_numpy()
    if (lengths % 2).any():
        raise ValueError(f"row {int(np.flatnonzero(lengths % 2)[0]) + 1}: odd number of values")
    flat = runs.explode().drop_nulls().to_numpy().astype(np.int64, copy=False)
    starts, run_len = flat[0::2], flat[1::2]
    if (run_len < 1).any():
        raise ValueError("a run length below 1")
    run_row = np.repeat(np.arange(n), lengths // 2)
    ids_per_row = np.bincount(run_row, weights=run_len, minlength=n).astype(np.int64)
    total = int(run_len.sum())
    # ids = start of the run + position within it
    run_first = np.cumsum(run_len) - run_len
    values = np.repeat(starts - run_first, run_len) + np.arange(total, dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(ids_per_row)))
    return list_column(runs.name, [values[offsets[i] : offsets[i + 1]] for i in range(n)])
