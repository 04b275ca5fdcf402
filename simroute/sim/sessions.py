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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import simpy

from simroute.errors import ConfigError

REPLAYS: tuple[str, ...] = ("closed_loop", "open_loop")
"""Values of ``workload.replay``."""

ANSWERED = "answered"
UNANSWERED = "unanswered"
CANCELLED_GATE = "cancelled"


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
    ``after_ids``, rows in issue order within each session.
    """
    own = df["deadline_s"].to_numpy().astype(np.float64)
    gating = set(df["after_ids"].explode().drop_nulls().to_list())
    if not gating:
        return own
    rest = (
        df.select(pl.col("deadline_s").reverse().cum_min().reverse().over("session_id").alias("rest"))["rest"]
        .to_numpy()
        .astype(np.float64)
    )
    has_dependents = df["request_id"].is_in(list(gating)).to_numpy()
    return np.where(has_dependents, rest, own)


class SessionGate:
    """The completion events of gating requests and each session's remaining retry budget.

    Args:
        env: SimPy environment.
        gating_ids: request ids some other request waits for.
        session_retry: unanswered steps a session survives.
    """

    def __init__(self, env: simpy.Environment, gating_ids: Sequence[int], session_retry: int) -> None:
        self.env = env
        self.done: dict[int, simpy.Event] = {int(i): env.event() for i in gating_ids}
        self.session_retry = session_retry
        self._forgiven: dict[int, set[int]] = {}

    def finish(self, request_id: int, state: str) -> None:
        """Mark ``request_id`` terminal with ``state`` (answered / unanswered / cancelled)."""
        ev = self.done.get(request_id)
        if ev is not None and not ev.triggered:
            ev.succeed(state)

    def wait(self, after_ids: Sequence[int]) -> simpy.Event:
        """An event that fires when every request in ``after_ids`` is terminal."""
        return simpy.AllOf(self.env, [self.done[int(i)] for i in after_ids])

    def may_go_on(self, session_id: int, after_ids: Sequence[int]) -> bool:
        """Whether a step may be issued once its gates are terminal: every gate answered, or each
        unanswered one forgiven within the session's ``session_retry`` budget (never a cancelled one)."""
        forgiven = self._forgiven.setdefault(session_id, set())
        for i in after_ids:
            state = self.done[int(i)].value
            if state == ANSWERED or int(i) in forgiven:
                continue
            if state == CANCELLED_GATE or len(forgiven) >= self.session_retry:
                return False
            forgiven.add(int(i))
        return True
