"""Closed-loop sessions: a step is issued when the steps it waits for are done, plus its think time.

In a closed-loop replay (``workload.replay: closed_loop``) a request with ``after_ids`` is issued at
``max(completion of its after_ids) + think_s`` — completion being the simulated time its gating
requests reached their terminal state — so a slower tier delays the rest of the session; a request
without ``after_ids`` is issued at its ``arrival_s``. A sub-agent's first call waits for the parent
call that spawned it; the parent's next call waits for the sub-agent's last call.

A gating request that ends without an answer (``failed`` without an accepted answer, ``dropped``,
``timed_out``, or itself ``cancelled``) ends the rest of its session: its dependents are
``cancelled`` without running. A wrong answer the verifier accepted (an undetected failure) is an
answer: the agent cannot tell and goes on (the session is not a success). ``workload.session_retry``
(default 0) lets a session survive that many unanswered steps (the agent re-asks in its next step);
a ``cancelled`` gate always cancels.

Batch safety: a step that gates later steps is routed with the shortest deadline of the rest of its
session (the minimum ``deadline_s`` over it and every later request of its session), so a deadline-
aware router sends it to the batch tier only if the whole rest of the session can wait.

Open-loop replay (``workload.replay: open_loop``) ignores ``after_ids`` and issues every request at
its ``arrival_s`` (for request streams without sessions, e.g. Azure or BurstGPT traces).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import polars as pl

from simroute.errors import ConfigError

REPLAYS: tuple[str, ...] = ("closed_loop", "open_loop")
"""Values of ``workload.replay``."""


@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    """How requests are released: closed loop (sessions gate on ``after_ids``) or open loop, and how
    many unanswered steps a closed-loop session survives (``session_retry``)."""

    closed_loop: bool = True
    session_retry: int = 0

    @classmethod
    def from_config(cls, workload: Mapping[str, Any]) -> ReplayConfig:
        """Read ``workload.replay`` (default ``closed_loop``) and ``workload.session_retry`` (default 0)."""
        mode = str(workload.get("replay", "closed_loop"))
        if mode not in REPLAYS:
            raise ConfigError(f"workload.replay: expected one of {list(REPLAYS)}, got {mode!r}")
        retry = workload.get("session_retry", 0)
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ConfigError(f"workload.session_retry: expected an integer >= 0 (steps), got {retry!r}")
        return cls(closed_loop=mode == "closed_loop", session_retry=retry)


def route_deadlines(df: pl.DataFrame) -> np.ndarray:
    """Per row: the deadline (s) a router sees in a closed-loop run.

    A request some later request waits for gets the minimum ``deadline_s`` over itself and every
    later row of its session (the rest of the session must be able to wait); any other request
    keeps its own ``deadline_s``. ``df`` has ``request_id``, ``session_id``, ``deadline_s`` and
    ``after_ids``, rows in issue order within each session. Column kernels only: at 10 M requests
    a Polars window over the sessions took about 2 GiB of temporaries, a set of the gating ids
    more.
    """
    own = df["deadline_s"].to_numpy().astype(np.float64)
    gating = df["after_ids"].explode().drop_nulls().unique()
    if not len(gating):
        return own
    session = (df["session_id"].rank("dense").to_numpy() - 1).astype(np.int64)
    rest = _rest_of_session_min(own, session, int(session.max()) + 1)
    has_dependents = df["request_id"].is_in(gating.implode()).to_numpy()
    return np.where(has_dependents, rest, own)


@numba.njit(cache=True)
def _rest_of_session_min(deadline_s: np.ndarray, session: np.ndarray, n_sessions: int) -> np.ndarray:
    """Per row: the minimum of ``deadline_s`` over the row and every later row of its session
    (``session``: a code in ``[0, n_sessions)`` per row), scanned from the last row back."""
    rest = np.empty_like(deadline_s)
    low = np.full(n_sessions, np.inf)
    for i in range(len(deadline_s) - 1, -1, -1):
        k = session[i]
        low[k] = min(low[k], deadline_s[i])
        rest[i] = low[k]
    return rest
