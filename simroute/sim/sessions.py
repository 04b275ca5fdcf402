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

from collections.abc import Callable, Mapping, Sequence
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
    """Which steps wait for which gating requests, the gating requests' terminal states and each
    session's remaining retry budget — without a SimPy process or event per waiting step.

    A step is registered with its ``after_ids`` at the start; when the last of them is terminal,
    ``on_ready(key)`` is called (from a SimPy event processed at that time, so a step is released
    exactly where a SimPy ``AllOf`` over per-gate events would release it).

    Args:
        env: SimPy environment.
        session_retry: unanswered steps a session survives.
        on_ready: called with a registered step's key when all its gates are terminal.
    """

    def __init__(self, env: simpy.Environment, session_retry: int, on_ready: Callable[[int], None]) -> None:
        self.env = env
        self.session_retry = session_retry
        self.on_ready = on_ready
        self._state: dict[int, str] = {}
        self._waiting: dict[int, list[int]] = {}
        self._left: dict[int, int] = {}
        self._readers: dict[int, int] = {}
        self._forgiven: dict[int, set[int]] = {}

    def register(self, key: int, after_ids: Sequence[int]) -> None:
        """Step ``key`` waits for every request id in ``after_ids`` (registration order is release
        order among steps that become ready together)."""
        self._left[key] = len(after_ids)
        for i in after_ids:
            self._waiting.setdefault(int(i), []).append(key)
            self._readers[int(i)] = self._readers.get(int(i), 0) + 1

    def finish(self, request_id: int, state: str) -> None:
        """Mark ``request_id`` terminal with ``state`` (answered / unanswered / cancelled); the steps
        it gates are counted down when the event scheduled here is processed."""
        waiting = self._waiting.pop(request_id, None)
        if waiting is None:
            return
        self._state[request_id] = state
        ev = self.env.event()
        ev.callbacks.append(lambda _ev: self._count_down(waiting))
        ev.succeed(state)

    def _count_down(self, waiting: list[int]) -> None:
        for key in waiting:
            self._left[key] -= 1
            if self._left[key] == 0:
                del self._left[key]
                self.on_ready(key)

    def may_go_on(self, session_id: int, after_ids: Sequence[int]) -> bool:
        """Whether a step may be issued once its gates are terminal: every gate answered, or each
        unanswered one forgiven within the session's ``session_retry`` budget (never a cancelled one).
        Called once per released step (it forgets gate states no other step will read)."""
        forgiven = self._forgiven.get(session_id, set())
        ok = True
        for i in after_ids:
            state = self._state[int(i)]
            if not ok or state == ANSWERED or int(i) in forgiven:
                continue
            if state == CANCELLED_GATE or len(forgiven) >= self.session_retry:
                ok = False
                continue
            forgiven.add(int(i))
            self._forgiven[session_id] = forgiven
        for i in after_ids:
            self._readers[int(i)] -= 1
            if self._readers[int(i)] == 0:
                del self._readers[int(i)], self._state[int(i)]
        return ok
