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
    col = table.with_prefix_column().df["prefix_hashes"]
    runs = PrefixRuns.from_column(col, chunk_rows=500)
    for i, ids in enumerate(col.to_list()):
        assert runs.ids(i).tolist() == ids
    flat_bytes = 8 * int(col.list.len().sum())
    assert runs.nbytes < flat_bytes / 4  # the point of holding runs


def _walk_inputs(seed: int, total: int, sys_tokens: list[int]) -> dict[str, np.ndarray]:
    """Random sessions of 1-6 steps (skills, fresh and output tokens), some first steps repeating
    an earlier first step word for word."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 7, total)
    steps = steps[: int(np.searchsorted(np.cumsum(steps), total)) + 1]
    step = np.concatenate([np.arange(m) for m in steps])[:total]
    sess_skill = rng.integers(0, len(sys_tokens), len(steps))
    sk = np.repeat(sess_skill, steps)[:total]
    copy_row = np.full(total, -1, dtype=np.int64)
    firsts = np.flatnonzero(step == 0)
    for a in firsts[1:]:
        same = firsts[(firsts < a) & (sk[firsts] == sk[a])]
        if len(same) and rng.random() < 0.2:  # repeat an earlier first step of the same skill
            copy_row[a] = int(rng.choice(same))
    return {
        "sk": sk,
        "step": step,
        "fresh": rng.integers(1, 900, total),
        "out": rng.integers(1, 400, total),
        "copy_row": copy_row,
    }


@pytest.mark.parametrize(
    ("seed", "sys_tokens"), [(0, [64, 128, 0]), (1, [100, 64]), (2, [32]), (3, [640, 16, 48])]
)
def test_runs_built_directly_equal_the_flat_ids_encoded(seed: int, sys_tokens: list[int]) -> None:
    from simroute.workload.prefix_blocks import prefix_block_runs, prefix_blocks, session_blocks

    x = _walk_inputs(seed, 3_000, sys_tokens)
    k = len(sys_tokens)
    sys_arr = np.array(sys_tokens, dtype=np.int64)
    walk = session_blocks(
        x["sk"],
        x["step"],
        x["fresh"],
        x["out"],
        sys_arr,
        np.full(k, 0.8),
        np.full(k, 4_000),
        16,
        x["copy_row"],
    )
    order = np.random.default_rng(seed).permutation(len(x["sk"]))
    ref = PrefixRuns.from_flat(*prefix_blocks(order, x["sk"], sys_arr, 16, walk))
    got = PrefixRuns(*prefix_block_runs(order, x["sk"], sys_arr, 16, walk))
    assert (x["copy_row"] >= 0).sum() > 50  # repeats are exercised
    assert ref.start.size > len(order)  # several runs a row: carried context, new ids
    assert np.array_equal(got.row_runs, ref.row_runs)
    assert np.array_equal(got.start, ref.start) and np.array_equal(got.length, ref.length)


def test_a_table_holding_runs_checks_them_and_keeps_them_through_row_operations(cfg, skills) -> None:
    from simroute.errors import InputError
    from simroute.workload.respace import respace_sessions
    from simroute.workload.schema import RequestTable

    table = generate(dict(cfg["workload"]) | {"n_requests": 400}, skills, 4)
    assert table.prefixes is not None and table.df["prefix_hashes"].list.len().sum() == 0
    ids = table.with_prefix_column().df["prefix_hashes"].to_list()
    assert [table.prefix_ids().ids(i).tolist() for i in range(len(table))] == ids
    assert table.rows(100, 250).with_prefix_column().df["prefix_hashes"].to_list() == ids[100:250]
    moved = respace_sessions(table, 30.0).df  # re-sorted rows carry their ids
    by_id = dict(zip(table.df["request_id"].to_list(), ids, strict=True))
    assert all(
        by_id[r] == h for r, h in zip(moved["request_id"], moved["prefix_hashes"].to_list(), strict=True)
    )

    def rebuilt(prefixes: PrefixRuns, df: pl.DataFrame = table.df) -> RequestTable:
        return RequestTable(df, "t.parquet", table.block_tokens, table.skills, prefixes=prefixes)

    with pytest.raises(InputError, match="prefix ids for 399 rows, the table has 400"):
        rebuilt(table.prefixes.rows(0, 399))
    neg = PrefixRuns(table.prefixes.row_runs, table.prefixes.start.copy(), table.prefixes.length)
    neg.start[neg.row_runs[7]] = -5
    with pytest.raises(InputError, match="block ids >= 0") as ei:
        rebuilt(neg)
    assert (ei.value.row, ei.value.column) == (8, "prefix_hashes")
    with pytest.raises(InputError, match="both as runs and as prefix_hashes lists"):
        rebuilt(table.prefixes, table.with_prefix_column().df)
