"""The table behind :class:`~simroute.economics.prompt_cache.PromptCache`: an open-addressing map
of prefix-block id -> (expiry s, readable-from s) in NumPy arrays, and the Numba kernels over it
(kept apart from the cache's Python side, which runs compiled: Numba needs these functions'
bytecode)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

_EMPTY = np.iinfo(np.int64).min  # marks a free slot: an id of this one value is never cached
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: 2**64 / golden ratio
MIN_BITS = 10  # a new table has 2**10 slots


@numba.njit(cache=True)
def _slot(keys, h, shift):  # type: ignore[no-untyped-def]
    """The slot of id ``h`` in the open-addressing table ``keys`` (linear probing from the top
    ``64 - shift`` bits of ``h`` times the golden constant): where it is, or the free slot where it
    goes."""
    mask = keys.shape[0] - 1
    i = np.int64((np.uint64(h) * _GOLDEN) >> np.uint64(shift))
    while keys[i] != h and keys[i] != _EMPTY:
        i = (i + 1) & mask
    return i


@numba.njit(cache=True)
def _leading_hits(keys, exp, ready, shift, start, length, a, b, now):  # type: ignore[no-untyped-def]
    """How many of the leading ids of runs ``a .. b - 1`` are cached and readable at ``now`` (s)."""
    hit = 0
    for k in range(a, b):
        for h in range(start[k], start[k] + length[k]):
            i = _slot(keys, h, shift)
            if h == _EMPTY or keys[i] != h or exp[i] <= now or ready[i] > now:
                return hit
            hit += 1
    return hit


@numba.njit(cache=True)
def use_kernel(keys, exp, ready, meta, row_runs, start, length, row, now, ready_at, until):  # type: ignore[no-untyped-def]
    """Numba kernel over the table ``keys`` / ``exp`` / ``ready`` (``meta`` = [entries, shift])
    for the prefix ids of row ``row`` of a :class:`~simroute.workload.prefix_runs.PrefixRuns`
    (``row_runs``, ``start``, ``length``; read as runs, never expanded): the leading ids cached and
    readable at ``now`` (s), then every id refreshed until ``until`` (s) — an id this call writes
    (new or expired) or whose pending write finishes later becomes readable at ``ready_at`` (s). An
    absent id reads as expiry -1 and readiness infinity.

    Returns ``(hit ids, ids)``; ``(-1, ids)`` with the table unchanged when the ids might not fit
    with it at most half full (:meth:`PromptCache.use_row` rebuilds it and calls again)."""
    a, b = row_runs[row], row_runs[row + 1]
    n = 0
    for k in range(a, b):
        n += length[k]
    if 2 * (meta[0] + n) > keys.shape[0]:
        return -1, n
    shift = meta[1]
    hit = _leading_hits(keys, exp, ready, shift, start, length, a, b, now)
    for k in range(a, b):
        for h in range(start[k], start[k] + length[k]):
            if h == _EMPTY:  # the free-slot marker: never stored (request-table ids are >= 0)
                continue
            i = _slot(keys, h, shift)
            if keys[i] != h:
                keys[i], exp[i], ready[i] = h, -1.0, np.inf
                meta[0] += 1
            if exp[i] <= now or ready[i] > ready_at:
                ready[i] = ready_at
            exp[i] = until
    return hit, n


@numba.njit(cache=True)
def _live(keys, exp, alive_after):  # type: ignore[no-untyped-def]
    """How many entries of the table ``keys`` / ``exp`` expire after ``alive_after`` (s)."""
    n = 0
    for j in range(keys.shape[0]):
        if keys[j] != _EMPTY and exp[j] > alive_after:
            n += 1
    return n


@numba.njit(cache=True)
def _rebuild(keys, exp, ready, alive_after, nkeys, nexp, nready, shift):  # type: ignore[no-untyped-def]
    """Copy the entries of the old table whose expiry is after ``alive_after`` (s) into the empty
    new table ``nkeys`` / ``nexp`` / ``nready`` (hashed with ``shift``); returns their count."""
    n = 0
    for j in range(keys.shape[0]):
        h = keys[j]
        if h != _EMPTY and exp[j] > alive_after:
            i = _slot(nkeys, h, shift)
            nkeys[i], nexp[i], nready[i] = h, exp[j], ready[j]
            n += 1
    return n


def use_reference(
    exp: dict[int, float], ready: dict[int, float], ids: np.ndarray, now: float, ready_at: float, until: float
) -> int:
    """Plain-Python reference of :func:`use_kernel` over two dicts (used by the tests)."""
    hit = 0
    for h in ids.tolist():
        if exp.get(h, -1.0) > now and ready.get(h, np.inf) <= now:
            hit += 1
        else:
            break
    for h in ids.tolist():
        if exp.get(h, -1.0) <= now or ready.get(h, np.inf) > ready_at:
            ready[h] = ready_at
        exp[h] = until
    return hit


@dataclass(frozen=True)
class Table:
    """An open-addressing id -> (expiry s, readable-from s) table: ``keys`` (``_EMPTY`` = free),
    ``exp``, ``ready`` of 2**bits slots, and ``meta`` = [entries, 64 - bits]."""

    keys: np.ndarray
    exp: np.ndarray
    ready: np.ndarray
    meta: np.ndarray

    @classmethod
    def empty(cls, bits: int | None = None) -> Table:
        """An empty table of 2**bits slots (default :data:`MIN_BITS`, read when called)."""
        bits = MIN_BITS if bits is None else bits
        n = 1 << bits
        return cls(
            np.full(n, _EMPTY, dtype=np.int64),
            np.empty(n, dtype=np.float64),
            np.empty(n, dtype=np.float64),
            np.array([0, 64 - bits], dtype=np.int64),
        )

    @property
    def size(self) -> int:
        """Entries held."""
        return int(self.meta[0])

    def rebuilt(self, room: int, alive_after: float = -np.inf) -> Table:
        """A new table with the entries whose expiry is after ``alive_after`` (s; default all),
        at most a quarter full once ``room`` more entries are added (so that at least as many
        more go in before it is half full and rebuilt again), and never smaller than this one (a
        purge keeps the size the traffic grew it to, rather than growing back step by step)."""
        keep = int(_live(self.keys, self.exp, alive_after))  # one pass, no whole-table temporaries
        bits = max(MIN_BITS, int(4 * (keep + room)).bit_length(), len(self.keys).bit_length() - 1)
        new = Table.empty(bits)
        new.meta[0] = _rebuild(
            self.keys, self.exp, self.ready, alive_after, new.keys, new.exp, new.ready, new.meta[1]
        )
        return new

    def entries(self) -> tuple[dict[int, float], dict[int, float]]:
        """The table as (id -> expiry, id -> readable-from) dicts (for tests)."""
        held = self.keys != _EMPTY
        keys = self.keys[held].tolist()
        exp = dict(zip(keys, self.exp[held].tolist(), strict=True))
        return exp, dict(zip(keys, self.ready[held].tolist(), strict=True))
