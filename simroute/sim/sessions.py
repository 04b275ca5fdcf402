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

import numba
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


_STATE_CODE = {ANSWERED: 1, UNANSWERED: 2, CANCELLED_GATE: 3}
"""A gating request's terminal state as a code (0: not terminal yet)."""


class SessionGate:
    """Which steps wait for which gating requests, the gating requests' terminal states and each
    session's remaining retry budget — without a SimPy process or event per waiting step, and in
    arrays (gates left per step; per gating request, the steps it gates and its state), not a
    Python object per step.

    Built from every row's ``after_ids`` at the start; when the last gate of a step is terminal,
    ``on_ready(row)`` is called (from a SimPy event processed at that time, so a step is released
    exactly where a SimPy ``AllOf`` over per-gate events would release it). Steps that become ready
    together are released in row order.

    Args:
        env: SimPy environment.
        session_retry: unanswered steps a session survives.
        on_ready: called with a step's row when all its gates are terminal.
        after_offsets: row ``i``'s gates are ``after_ids[after_offsets[i]:after_offsets[i + 1]]``
            (length rows + 1).
        after_ids: the request ids every row waits for, row after row.
    """

    def __init__(
        self,
        env: simpy.Environment,
        session_retry: int,
        on_ready: Callable[[int], None],
        after_offsets: np.ndarray,
        after_ids: np.ndarray,
    ) -> None:
        self.env = env
        self.session_retry = session_retry
        self.on_ready = on_ready
        counts = np.diff(after_offsets)
        self.gated = counts > 0
        """Per row: whether it waits for any request."""
        self._left = counts.astype(np.int64)
        rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        by_gate = np.argsort(after_ids, kind="stable")  # within a gate: its steps in row order
        self._gate_ids, first = np.unique(after_ids[by_gate], return_index=True)
        self._steps_off = np.append(first, len(by_gate)).astype(np.int64)
        self._steps = rows[by_gate]
        self._state = np.zeros(len(self._gate_ids), dtype=np.int8)
        self._forgiven: dict[int, set[int]] = {}
        self._slots: np.ndarray | None = None  # request id -> slot, when the ids are dense
        ids = self._gate_ids
        if len(ids) and ids[0] >= 0 and ids[-1] < 4 * len(ids) + 1024:
            table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
            table[ids] = np.arange(len(ids))
            self._slots = table

    def _slot(self, request_id: int) -> int:
        """The gating request's index in the gate arrays (-1: it gates no step): from the id
        table when the ids are dense (e.g. row numbers), else by binary search."""
        if self._slots is not None:
            return int(self._slots[request_id]) if 0 <= request_id < len(self._slots) else -1
        k = int(np.searchsorted(self._gate_ids, request_id))
        return k if k < len(self._gate_ids) and self._gate_ids[k] == request_id else -1

    def finish(self, request_id: int, state: str) -> None:
        """Mark ``request_id`` terminal with ``state`` (answered / unanswered / cancelled); the steps
        it gates are counted down when the event scheduled here is processed."""
        k = self._slot(request_id)
        if k < 0 or self._state[k]:
            return
        self._state[k] = _STATE_CODE[state]
        waiting = self._steps[self._steps_off[k] : self._steps_off[k + 1]].tolist()
        ev = self.env.event()
        ev.callbacks.append(lambda _ev: self._count_down(waiting))
        ev.succeed(state)

    def _count_down(self, waiting: list[int]) -> None:
        left = self._left
        for row in waiting:
            left[row] -= 1
            if left[row] == 0:
                self.on_ready(row)

    def may_go_on(self, session_id: int, after_ids: Sequence[int]) -> bool:
        """Whether a step may be issued once its gates are terminal: every gate answered, or each
        unanswered one forgiven within the session's ``session_retry`` budget (never a cancelled one)."""
        forgiven = self._forgiven.get(session_id, set())
        ok = True
        for i in after_ids:
            state = int(self._state[self._slot(int(i))])
            if not ok or state == _STATE_CODE[ANSWERED] or int(i) in forgiven:
                continue
            if state == _STATE_CODE[CANCELLED_GATE] or len(forgiven) >= self.session_retry:
                ok = False
                continue
            forgiven.add(int(i))
            self._forgiven[session_id] = forgiven
        return ok
