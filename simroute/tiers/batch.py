"""Async batch API tier: requests accumulate into batch jobs that complete much later.

Requests submitted to the tier are collected for ``window_s`` seconds (or until the job reaches
``max_requests`` requests or ``max_bytes`` of request file, estimated as ``bytes_per_token`` per
prompt token plus ``bytes_per_request``; the public batch APIs allow 50,000-100,000 requests and
~200-256 MB per job) and then submitted as one job. A job's completion time is log-normal (median
``completion_median_s``, shape ``completion_sigma``); a job that would take longer than the
provider's ``completion_window_s`` (24 h for the public batch APIs) *expires*: its requests end at
the window with status ``expired``. All requests of a job complete together; output is available
at once (first token = end). Requests run, and use the provider's prompt cache, when their job
completes. A job's completion luck is keyed by the accumulation window it opened in (the
``window_s`` grid slot of its opening time) and its number within that slot, so two policies that
batch in the same window get the same job luck (:mod:`simroute.luck`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from simroute import luck
from simroute.economics.prompt_cache import PromptCache
from simroute.errors import ConfigError
from simroute.policy.types import TierState
from simroute.signals import Signal, pending
from simroute.tiers.base import AttemptResult
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.request import Request

_P_COMPLETION = luck.purpose_key("batch.completion")


class BatchTier:
    """Windowed batch submission with long, random completion times.

    Args:
        env: the SimPy environment.
        window_s: accumulation window before a job is submitted (s).
        max_requests: job size limit (requests); a full job is submitted at once.
        completion_median_s: median job completion time (s).
        completion_sigma: log-normal shape of the completion time.
        completion_window_s: provider deadline; longer jobs expire (s).
        seed: the run seed (completion-time luck is keyed by it and the job's window).
        max_bytes: job file size limit (bytes; 0 = none).
        bytes_per_token: request-file bytes per prompt token.
        bytes_per_request: request-file bytes per request (JSON envelope).
        prompt_cache: model -> its :class:`PromptCache` (absent = no caching).
        prefix_ids: the request table's prefix-block ids, by request index (for the prompt cache).
    """

    name = "batch"

    def __init__(
        self,
        env: simpy.Environment,
        window_s: float,
        max_requests: int,
        completion_median_s: float,
        completion_sigma: float,
        completion_window_s: float,
        seed: int,
        max_bytes: float = 0.0,
        bytes_per_token: float = 4.0,
        bytes_per_request: float = 300.0,
        prompt_cache: dict[str, PromptCache] | None = None,
        prefix_ids: PrefixRuns | None = None,
    ) -> None:
        if window_s <= 0 or max_requests < 1 or completion_median_s <= 0 or completion_window_s <= 0:
            raise ConfigError(
                "tiers.batch: window_s, max_requests, completion_median_s and "
                "completion_window_s must be positive"
            )
        self.env = env
        self.window_s = window_s
        self.max_requests = max_requests
        self.completion_median_s = completion_median_s
        self.completion_sigma = completion_sigma
        self.completion_window_s = completion_window_s
        self.seed = seed
        self._slot_jobs: dict[int, int] = {}
        self.max_bytes = max_bytes
        self.bytes_per_token = bytes_per_token
        self.bytes_per_request = bytes_per_request
        self.prompt_cache = prompt_cache or {}
        self.prefix_ids = prefix_ids
        self._pending: list[tuple[Signal, float, Request, str]] = []
        self._bytes = 0.0
        self._running = 0
        self.jobs = 0
        self.expired_jobs = 0

    def submit(self, request: Request, model: str, attempt: int = 0) -> Signal:
        """Add the request to the open job (one job window serves all models).

        A job's window opens with its first request; a job that reaches ``max_requests`` is
        submitted at once and the next request opens a new window.
        """
        ev = pending(self.env)
        size = request.prompt_tokens * self.bytes_per_token + self.bytes_per_request
        if self._pending and self.max_bytes > 0 and self._bytes + size > self.max_bytes:
            self._flush()
        if not self._pending:
            self.env.process(self._window(self.jobs))
        self._pending.append((ev, self.env.now, request, model))
        self._bytes += size
        if len(self._pending) >= self.max_requests:
            self._flush()
        return ev

    def _window(self, job: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(self.window_s)
        if self.jobs == job and self._pending:  # still the job this window was opened for
            self._flush()

    def _flush(self) -> None:
        job, self._pending = self._pending, []
        self._bytes = 0.0
        self.jobs += 1
        slot = int(job[0][1] // self.window_s)
        k = self._slot_jobs.get(slot, 0)
        self._slot_jobs[slot] = k + 1
        self.env.process(self._run(job, luck.normal(self.seed, _P_COMPLETION, slot, k)))

    def _run(
        self, job: list[tuple[Signal, float, Request, str]], z: float
    ) -> Generator[simpy.Event, Any, None]:
        start = self.env.now
        took = self.completion_median_s * float(np.exp(self.completion_sigma * z))
        status = "completed"
        if took > self.completion_window_s:
            took, status = self.completion_window_s, "expired"
            self.expired_jobs += 1
        self._running += len(job)
        yield self.env.timeout(took)
        self._running -= len(job)
        end = self.env.now
        for ev, submit, req, model in job:
            cached = written = 0
            pc = self.prompt_cache.get(model)
            if status == "completed" and pc is not None and self.prefix_ids is not None:
                cached, written = pc.use_row(self.prefix_ids, req.idx, req.prompt_tokens, end)
            ev.succeed(AttemptResult(status, submit, start, end, end, 0.0, 0, 0, cached, written))

    def state(self) -> TierState:
        """Requests waiting for the window to close, and in submitted jobs."""
        return TierState(len(self._pending), self._running, 0)
