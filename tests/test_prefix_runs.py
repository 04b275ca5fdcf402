"""Prefix ids held as runs give back exactly the table's ids, whatever the chunking."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.synthetic import generate


def _rows(seed: int, n: int) -> list[np.ndarray]:
    """Random rows of 0-4 runs each (empty rows, runs that touch across a row boundary and runs
    that continue one another included)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(0, 5))
        starts, lens = rng.integers(0, 40, k), rng.integers(1, 6, k)
        parts = [np.arange(s, s + m) for s, m in zip(starts, lens, strict=True)]
        rows.append(np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64))
    return rows


def _flat(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=off[1:])
    return off, np.concatenate(rows)


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 10_000])
def test_runs_give_back_every_row(chunk_rows: int) -> None:
    rows = _rows(1, 2_000)
    off, vals = _flat(rows)
    runs = PrefixRuns.from_flat(off, vals, chunk_rows)
    for i, r in enumerate(rows):
        assert np.array_equal(runs.ids(i), r)
        assert runs.ids(i).dtype == np.int64
    got_off, got_vals = runs.flat()
    assert np.array_equal(got_off, off) and np.array_equal(got_vals, vals)
    col = PrefixRuns.from_column(pl.Series("p", rows, dtype=pl.List(pl.Int64)), chunk_rows)
    assert np.array_equal(col.row_runs, runs.row_runs)
    assert np.array_equal(col.start, runs.start) and np.array_equal(col.length, runs.length)
    assert col.column("p", chunk_rows).to_list() == [r.tolist() for r in rows]


def test_runs_are_maximal_within_a_row() -> None:
    runs = PrefixRuns.from_flat(np.array([0, 5, 5, 7]), np.array([3, 4, 5, 9, 10, 11, 12]))
    assert runs.row_runs.tolist() == [0, 2, 2, 3]  # a run does not cross into the next row
    assert runs.start.tolist() == [3, 9, 11] and runs.length.tolist() == [3, 2, 2]
    assert len(runs) == 3 and runs.ids(1).size == 0


def test_synthetic_fleet_ids_compress_and_round_trip(cfg, skills) -> None:
    table = generate(dict(cfg["workload"]) | {"n_requests": 3_000}, skills, 4)
    col = table.df["prefix_hashes"]
    runs = PrefixRuns.from_column(col, chunk_rows=500)
    for i, ids in enumerate(col.to_list()):
        assert runs.ids(i).tolist() == ids
    flat_bytes = 8 * int(col.list.len().sum())
    assert runs.nbytes < flat_bytes / 4  # the point of holding runs
