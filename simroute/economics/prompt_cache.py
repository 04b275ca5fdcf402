"""Provider prompt caches: which prompt tokens an API call reads from cache, and which it writes.

Providers cache prompt prefixes for minutes (OpenAI automatically, Anthropic with cache-control
breakpoints) and bill cached tokens at a discount (and, for Anthropic, writes at a surcharge). A
:class:`PromptCache` per (tier, model) keeps the request table's prefix-block ids with an expiry
time: a call hits the longest run of its leading blocks that is still cached (capped at its prompt
length - 1, and only when at least ``min_tokens`` long), and refreshes / writes all its blocks. A
newly written block becomes readable only when the writing call's prefill is done (``ready_s``):
concurrent calls do not hit an entry whose first write has not finished. The per-block loops are a
Numba kernel over typed dicts (:func:`use_kernel`; plain-Python reference :func:`use_reference`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.typed import Dict


@numba.njit(cache=True)
def use_kernel(exp, ready, ids, now, ready_at, until):  # type: ignore[no-untyped-def]
    """Numba kernel: the leading blocks of ``ids`` cached and readable at ``now`` (s), then every
    block refreshed until ``until`` (s) — a block this call writes (new or expired) or whose
    pending write finishes later becomes readable at ``ready_at`` (s). Returns the hit blocks and
    the entries now in ``exp`` (asked here: a typed dict's length from Python costs a call)."""
    hit = 0
    for h in ids:
        if exp.get(h, -1.0) > now and ready.get(h, np.inf) <= now:
            hit += 1
        else:
            break
    for h in ids:
        if exp.get(h, -1.0) <= now or ready.get(h, np.inf) > ready_at:
            ready[h] = ready_at
        exp[h] = until
    return hit, len(exp)


def use_reference(
    exp: dict[int, float], ready: dict[int, float], ids: np.ndarray, now: float, ready_at: float, until: float
) -> int:
    """Plain-Python reference of :func:`use_kernel` (used by the tests)."""
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


@numba.njit(cache=True)
def _purge_kernel(exp, ready, now, new_exp, new_ready):  # type: ignore[no-untyped-def]
    """Copy the entries still alive at ``now`` into the empty ``new_exp`` / ``new_ready``."""
    for k, v in exp.items():
        if v > now:
            new_exp[k] = v
            new_ready[k] = ready[k]


@numba.njit(cache=True)
def _new_table() -> Dict:
    """An empty id -> time table, made in compiled code (cached on disk: ``Dict.empty`` called
    from Python compiles its constructor anew in every process, about half a second)."""
    return Dict.empty(key_type=types.int64, value_type=types.float64)


class PromptCache:
    """One provider model's prompt cache.

    Args:
        ttl_s: seconds a cached prefix block lives after its last use.
        min_tokens: shortest cacheable prefix (tokens; 1,024 at OpenAI and Anthropic).
        block_tokens: tokens per prefix block id of the request table.
    """

    def __init__(self, ttl_s: float, min_tokens: int, block_tokens: int) -> None:
        self.ttl_s = ttl_s
        self.min_tokens = min_tokens
        self.block_tokens = block_tokens
        self._expiry = _new_table()
        self._ready = _new_table()
        self._purge_at = 1 << 16
        self.hits = 0
        self.lookups = 0

    def use(
        self, ids: np.ndarray, prompt_tokens: int, now: float, ready_s: float | None = None
    ) -> tuple[int, int]:
        """Look up and then store the prefix ``ids`` of a call at time ``now`` (s) whose prefill
        ends at ``ready_s`` (default ``now``): blocks it writes are readable from then on.

        Returns (cached tokens read, prefix tokens newly written).
        """
        self.lookups += 1
        ready_at = now if ready_s is None else ready_s
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        hit, size = use_kernel(self._expiry, self._ready, keys, now, ready_at, now + self.ttl_s)
        cached = min(hit * self.block_tokens, max(prompt_tokens - 1, 0))
        if cached < self.min_tokens:
            cached = 0
        prefix = min(len(ids) * self.block_tokens, prompt_tokens)
        written = max(prefix - max(cached, hit * self.block_tokens), 0) if prefix >= self.min_tokens else 0
        if size > self._purge_at:
            exp, ready = _new_table(), _new_table()
            _purge_kernel(self._expiry, self._ready, now, exp, ready)
            self._expiry, self._ready = exp, ready
            self._purge_at = max(1 << 16, 2 * len(exp))
        if cached:
            self.hits += 1
        return cached, written
