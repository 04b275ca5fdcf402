"""Provider prompt caches: which prompt tokens an API call reads from cache, and which it writes.

Providers cache prompt prefixes for minutes (OpenAI automatically, Anthropic with cache-control
breakpoints) and bill cached tokens at a discount (and, for Anthropic, writes at a surcharge). A
:class:`PromptCache` per (tier, model) keeps the request table's prefix-block ids with an expiry
time: a call hits the longest run of its leading blocks that is still cached (capped at its prompt
length - 1, and only when at least ``min_tokens`` long), and refreshes / writes all its blocks. A
newly written block becomes readable only when the writing call's prefill is done (``ready_s``):
concurrent calls do not hit an entry whose first write has not finished.
"""

from __future__ import annotations

import numpy as np


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
        self._expiry: dict[int, float] = {}
        self._ready: dict[int, float] = {}
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
        exp, ready = self._expiry, self._ready
        ready_at = now if ready_s is None else ready_s
        hit = 0
        for h in ids.tolist():
            if exp.get(h, -1.0) > now and ready.get(h, np.inf) <= now:
                hit += 1
            else:
                break
        cached = min(hit * self.block_tokens, max(prompt_tokens - 1, 0))
        if cached < self.min_tokens:
            cached = 0
        prefix = min(len(ids) * self.block_tokens, prompt_tokens)
        written = max(prefix - max(cached, hit * self.block_tokens), 0) if prefix >= self.min_tokens else 0
        until = now + self.ttl_s
        for h in ids.tolist():
            if (
                exp.get(h, -1.0) <= now or ready.get(h, np.inf) > ready_at
            ):  # expired or new: this call writes it
                ready[h] = ready_at
            exp[h] = until
        if len(exp) > self._purge_at:
            self._expiry = {k: v for k, v in exp.items() if v > now}
            self._ready = {k: ready[k] for k in self._expiry}
            self._purge_at = max(1 << 16, 2 * len(self._expiry))
        if cached:
            self.hits += 1
        return cached, written
