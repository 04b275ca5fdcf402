"""Provider prompt caches: which prompt tokens an API call reads from cache, and which it writes.

Providers cache prompt prefixes for minutes (OpenAI automatically, Anthropic with cache-control
breakpoints) and bill cached tokens at a discount (and, for Anthropic, writes at a surcharge). A
:class:`PromptCache` per (tier, model) keeps the request table's prefix-block ids with an expiry
time: a call hits the longest run of its leading blocks that is still cached (capped at its prompt
length - 1, and only when at least ``min_tokens`` long), and refreshes / writes all its blocks. A
newly written block becomes readable only when the writing call's prefill is done (``ready_s``):
concurrent calls do not hit an entry whose first write has not finished. The per-block loops are a
Numba kernel over an open-addressing table in NumPy arrays that reads a call's ids as the runs of
consecutive ids the request table holds (:mod:`simroute.economics.prompt_cache_table`, with a
plain-Python reference over dicts); this side runs compiled (:mod:`simroute.compiled`).
"""

from __future__ import annotations

import numpy as np

from simroute.economics.prompt_cache_table import Table, use_kernel
from simroute.workload.prefix_runs import PrefixRuns


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
        self._table = Table.empty()
        self._now = -np.inf  # the latest use (s): uses come in time order
        self.hits = 0
        self.lookups = 0

    def use(
        self, ids: np.ndarray, prompt_tokens: int, now: float, ready_s: float | None = None
    ) -> tuple[int, int]:
        """:meth:`use_row` for a call whose prefix ids are given flat (each id a run of one)."""
        n = len(ids)
        runs = PrefixRuns(
            np.array([0, n], dtype=np.int64), np.ascontiguousarray(ids, dtype=np.int64), np.ones(n, np.int64)
        )
        return self.use_row(runs, 0, prompt_tokens, now, ready_s)

    def use_row(
        self, runs: PrefixRuns, row: int, prompt_tokens: int, now: float, ready_s: float | None = None
    ) -> tuple[int, int]:
        """Look up and then store the prefix ids of row ``row`` of ``runs`` for a call at time
        ``now`` (s; never earlier than the previous call's, else ValueError) whose prefill ends at
        ``ready_s`` (default ``now``): blocks it writes are readable from then on.

        Returns (cached tokens read, prefix tokens newly written).
        """
        if now < self._now:  # a purge drops the entries expired by then: time must not go back
            raise ValueError(f"prompt cache used at {now} s after a use at {self._now} s")
        self._now = now
        self.lookups += 1
        ready_at = now if ready_s is None else ready_s
        until = now + self.ttl_s
        tab = self._table
        args = (runs.row_runs, runs.start, runs.length, row, now, ready_at, until)
        hit: int
        n: int
        hit, n = use_kernel(tab.keys, tab.exp, tab.ready, tab.meta, *args)
        if hit < 0:  # at most half full: drop the expired entries (grown if the rest need it)
            tab = self._table = tab.rebuilt(n, alive_after=now)
            hit, n = use_kernel(tab.keys, tab.exp, tab.ready, tab.meta, *args)
        cached = min(hit * self.block_tokens, max(prompt_tokens - 1, 0))
        if cached < self.min_tokens:
            cached = 0
        prefix = min(n * self.block_tokens, prompt_tokens)
        written = max(prefix - max(cached, hit * self.block_tokens), 0) if prefix >= self.min_tokens else 0
        if cached:
            self.hits += 1
        return cached, written
