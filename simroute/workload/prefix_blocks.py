"""Prefix-block ids of synthetic sessions as flat arrays (a Numba kernel), and a Polars list column
built from flat arrays without a Python object per block.

The block layout is the synthetic workload's (:mod:`simroute.workload.synthetic`): a request's
``prefix_hashes`` are its skill's system-prompt blocks (ids ``k * 10_000 ...`` for skill index ``k``)
followed by its context blocks — the first ``keep`` blocks of the previous step's context (carried)
and ``n_blocks - keep`` new ids — when the system prompt is a whole number of blocks, else the
system-prompt blocks alone. A first step that repeats an earlier row word for word gets that row's
prompt and blocks, and its session goes on from the repeated row's context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

SKILL_ID_STRIDE = 10_000
"""System-prompt block ids of skill ``k`` start at ``k * SKILL_ID_STRIDE``."""


@dataclass(frozen=True)
class SessionBlocks:
    """Per generated row (in generation order): prompt tokens, context tokens, context blocks,
    carried blocks, the row whose context is carried (-1: none), the first new block id and the row
    whose blocks a word-for-word repeat reuses (-1: its own)."""

    prompt: np.ndarray
    ctx_tokens: np.ndarray
    n_blocks: np.ndarray
    keep: np.ndarray
    ctx_row: np.ndarray
    start_id: np.ndarray
    same_as: np.ndarray


@numba.njit(cache=True)
def _walk(sk, step, fresh, out, sys_tokens, growth, hi, block, copy_row, first_id):  # type: ignore[no-untyped-def]
    """Scalar walk over the rows (generation order): see :class:`SessionBlocks`."""
    total = len(sk)
    prompt = np.empty(total, np.int64)
    ctx_tok = np.zeros(total, np.int64)
    n_blocks = np.zeros(total, np.int64)
    keep = np.zeros(total, np.int64)
    ctx_row = np.full(total, -1, np.int64)
    start_id = np.zeros(total, np.int64)
    same_as = np.full(total, -1, np.int64)
    first_ctx = np.full(total, -1, np.int64)
    next_id = first_id
    cur = -1
    cur_tokens = 0
    for i in range(total):
        k = sk[i]
        j = copy_row[i]
        if j >= 0:  # a word-for-word repeat: the repeated row's prompt and blocks, its context
            prompt[i] = prompt[j]
            same_as[i] = j if same_as[j] < 0 else same_as[j]
            cur = first_ctx[j]
            cur_tokens = ctx_tok[cur]
            first_ctx[i] = cur
            continue
        carried = 0 if step[i] == 0 else int(growth[k] * (cur_tokens + out[i - 1]))
        ctx = min(carried + fresh[i], hi[k])
        carried = min(carried, ctx, cur_tokens)
        keep[i] = carried // block
        n_blocks[i] = ctx // block
        ctx_row[i] = cur
        start_id[i] = next_id
        next_id += max(n_blocks[i] - keep[i], 0)
        prompt[i] = sys_tokens[k] + ctx
        ctx_tok[i] = ctx
        cur = i
        cur_tokens = ctx
        if step[i] == 0:
            first_ctx[i] = i
    return prompt, ctx_tok, n_blocks, keep, ctx_row, start_id, same_as


def session_blocks(
    sk: np.ndarray,
    step: np.ndarray,
    fresh: np.ndarray,
    out: np.ndarray,
    sys_tokens: np.ndarray,
    growth: np.ndarray,
    hi: np.ndarray,
    block: int,
    copy_row: np.ndarray,
) -> SessionBlocks:
    """Walk the generated rows: ``sk`` skill index, ``step`` step in session, ``fresh`` fresh
    prompt tokens, ``out`` output tokens, per skill ``sys_tokens`` (system prompt, tokens),
    ``growth`` (context share carried) and ``hi`` (context cap, tokens); ``block`` tokens per
    block; ``copy_row`` the row a first step repeats word for word (-1: none)."""
    first_id = len(sys_tokens) * SKILL_ID_STRIDE
    arrays = _walk(
        sk.astype(np.int64),
        step.astype(np.int64),
        fresh.astype(np.int64),
        out.astype(np.int64),
        sys_tokens.astype(np.int64),
        growth.astype(np.float64),
        hi.astype(np.int64),
        int(block),
        copy_row.astype(np.int64),
        first_id,
    )
    return SessionBlocks(*arrays)


@numba.njit(cache=True)
def _fill(order, sk, sys_blocks, with_ctx, n_blocks, keep, ctx_row, start_id, same_as):  # type: ignore[no-untyped-def]
    """Flat block ids of the rows ``order`` (offsets, values); see :func:`prefix_blocks`."""
    total = len(sk)
    pos = np.full(total, -1, np.int64)
    for p in range(len(order)):
        pos[order[p]] = p
    lens = np.zeros(len(order), np.int64)
    for p in range(len(order)):
        r = order[p]
        src = r if same_as[r] < 0 else same_as[r]
        k = sk[src]
        lens[p] = sys_blocks[k] + (n_blocks[src] if with_ctx[k] else 0)
    off = np.zeros(len(order) + 1, np.int64)
    for p in range(len(order)):
        off[p + 1] = off[p] + lens[p]
    vals = np.empty(off[-1], np.int64)
    for i in range(total):  # generation order: a carried or repeated row is filled before its users
        p = pos[i]
        if p < 0:
            continue
        k = sk[i]
        o = off[p]
        if same_as[i] >= 0:
            q = pos[same_as[i]]
            vals[o : o + lens[p]] = vals[off[q] : off[q] + lens[p]]
            continue
        s = sys_blocks[k]
        for b in range(s):
            vals[o + b] = k * 10_000 + b
        if not with_ctx[k]:
            continue
        kp = keep[i]
        if kp > 0:
            c = off[pos[ctx_row[i]]] + s
            vals[o + s : o + s + kp] = vals[c : c + kp]
        for b in range(n_blocks[i] - kp):
            vals[o + s + kp + b] = start_id[i] + b
    return off, vals


def prefix_blocks(
    order: np.ndarray, sk: np.ndarray, sys_tokens: np.ndarray, block: int, walk: SessionBlocks
) -> tuple[np.ndarray, np.ndarray]:
    """The prefix-block ids of the generated rows ``order`` as flat arrays (offsets of length
    ``len(order) + 1``, values): the straightforward reference that :func:`prefix_block_runs`, which
    the generator uses, is tested against. Every row a kept row carries from or repeats must be kept (earlier
    steps and earlier sessions arrive first, so the earliest arrivals always are)."""
    return _fill(*_fill_args(order, sk, sys_tokens, block, walk))  # type: ignore[no-any-return]


def _fill_args(
    order: np.ndarray, sk: np.ndarray, sys_tokens: np.ndarray, block: int, walk: SessionBlocks
) -> tuple[np.ndarray, ...]:
    """The arguments of :func:`_fill` and :func:`_fill_runs`: rows, skills, system-prompt blocks
    per skill, whether a skill's context is block-aligned, and the walk's per-row arrays."""
    return (
        order.astype(np.int64),
        sk.astype(np.int64),
        (sys_tokens // block).astype(np.int64),
        (sys_tokens % block) == 0,
        walk.n_blocks,
        walk.keep,
        walk.ctx_row,
        walk.start_id,
        walk.same_as,
    )


@numba.njit(cache=True)
def _take_ids(rs, rl, first, count, skip, take, out_s, out_l, n, row0):  # type: ignore[no-untyped-def]
    """Append ids ``skip .. skip + take - 1`` of the row whose runs are ``first .. first + count - 1``
    to the runs ``out_s``/``out_l`` (``n`` used, the current row's from ``row0``); return the new
    ``n``."""
    for r in range(first, first + count):
        if take <= 0:
            break
        length = rl[r]
        if skip >= length:
            skip -= length
            continue
        use = min(length - skip, take)
        n = _append(out_s, out_l, n, row0, rs[r] + skip, use)
        take -= use
        skip = 0
    return n


@numba.njit(cache=True)
def _append(out_s, out_l, n, row0, start, length):  # type: ignore[no-untyped-def]
    """Append the run (``start``, ``length``) to the current row (runs from ``row0``), merged into
    its last run when it continues it; return the new number of runs."""
    if length <= 0:
        return n
    if n > row0 and out_s[n - 1] + out_l[n - 1] == start:
        out_l[n - 1] += length
        return n
    out_s[n] = start
    out_l[n] = length
    return n + 1


@numba.njit(cache=True)
def _fill_runs(order, sk, sys_blocks, with_ctx, n_blocks, keep, ctx_row, start_id, same_as):  # type: ignore[no-untyped-def]
    """The ids of :func:`_fill` as maximal runs per row (runs per kept row, starts, lengths), never
    flat: a row's runs are its system-prompt run, the first ``keep`` context ids of the row it
    carries from (taken from that row's runs) and its new ids; a repeat shares its source's runs."""
    total = len(sk)
    pos = np.full(total, -1, np.int64)
    for p in range(len(order)):
        pos[order[p]] = p
    first = np.zeros(total, np.int64)
    count = np.zeros(total, np.int64)
    cap = 4 * len(order) + 16
    rs = np.empty(cap, np.int64)
    rl = np.empty(cap, np.int64)
    n = 0
    for i in range(total):  # generation order: a carried or repeated row is done before its users
        if pos[i] < 0:
            continue
        if same_as[i] >= 0:
            first[i] = first[same_as[i]]
            count[i] = count[same_as[i]]
            continue
        k = sk[i]
        c = ctx_row[i]
        need = 2 + (count[c] if c >= 0 else 0)
        if n + need > cap:
            cap = 2 * cap + need
            rs2 = np.empty(cap, np.int64)
            rl2 = np.empty(cap, np.int64)
            rs2[:n] = rs[:n]
            rl2[:n] = rl[:n]
            rs, rl = rs2, rl2
        row0 = n
        s = sys_blocks[k]
        n = _append(rs, rl, n, row0, k * 10_000, s)
        if with_ctx[k]:
            kp = keep[i]
            if kp > 0:
                n = _take_ids(rs, rl, first[c], count[c], s, kp, rs, rl, n, row0)
            n = _append(rs, rl, n, row0, start_id[i], n_blocks[i] - kp)
        first[i] = row0
        count[i] = n - row0
    row_runs = np.zeros(len(order) + 1, np.int64)
    for p in range(len(order)):
        row_runs[p + 1] = row_runs[p] + count[order[p]]
    start = np.empty(row_runs[-1], np.int64)
    length = np.empty(row_runs[-1], np.int64)
    for p in range(len(order)):
        r, o, m = first[order[p]], row_runs[p], count[order[p]]
        start[o : o + m] = rs[r : r + m]
        length[o : o + m] = rl[r : r + m]
    return row_runs, start, length


def prefix_block_runs(
    order: np.ndarray, sk: np.ndarray, sys_tokens: np.ndarray, block: int, walk: SessionBlocks
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ids of :func:`prefix_blocks` as maximal runs of consecutive ids per row (runs per row
    as offsets of length ``len(order) + 1``, run starts, run lengths), built without the flat ids
    (about 700 MiB at a million rows); equal to encoding :func:`prefix_blocks`'s ids (tested)."""
    return _fill_runs(*_fill_args(order, sk, sys_tokens, block, walk))  # type: ignore[no-any-return]


def list_column(name: str, offsets: np.ndarray, values: np.ndarray, chunk_rows: int = 65_536) -> pl.Series:
    """A ``List(Int64)`` column from flat arrays: row ``i`` is ``values[offsets[i]:offsets[i+1]]``.

    Built in chunks of ``chunk_rows`` rows (group-by of each chunk's values by row, empty rows filled
    in), so the transient memory is a few chunk-sized arrays, not one Python list per row."""
    n = len(offsets) - 1
    parts: list[pl.Series] = []
    for a in range(0, n, chunk_rows):
        b = min(a + chunk_rows, n)
        lo, hi = int(offsets[a]), int(offsets[b])
        lens = np.diff(offsets[a : b + 1])
        rows = np.repeat(np.arange(b - a, dtype=np.int64), lens)
        grouped = (
            pl.DataFrame({"row": rows, name: values[lo:hi]})
            .group_by("row", maintain_order=True)
            .agg(pl.col(name))
        )
        full = pl.DataFrame({"row": np.arange(b - a, dtype=np.int64)}).join(
            grouped, on="row", how="left", maintain_order="left"
        )
        parts.append(full[name].fill_null(pl.lit([], dtype=pl.List(pl.Int64))))
    if not parts:
        return pl.Series(name, [], dtype=pl.List(pl.Int64))
    return pl.concat(parts, rechunk=True).alias(name)
