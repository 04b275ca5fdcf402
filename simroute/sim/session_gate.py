"""The gate of closed-loop sessions (:mod:`simroute.sim.sessions`): which steps wait for which
requests, and when the last of them is terminal, the step's release.

Its per-request paths run compiled (:mod:`simroute.compiled`) and read and write its arrays through
their ``memoryview`` (plain Python ints, no NumPy scalar per access).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import simpy

from simroute.signals import pending

ANSWERED = "answered"
UNANSWERED = "unanswered"
CANCELLED_GATE = "cancelled"


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
        self._left_arr = counts.astype(np.int64)
        self._left: memoryview = self._left_arr.data  # element access without NumPy scalars
        rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        by_gate = np.argsort(after_ids, kind="stable")  # within a gate: its steps in row order
        self._gate_ids, first = np.unique(after_ids[by_gate], return_index=True)
        self._steps_off: Sequence[int] = np.append(first, len(by_gate)).astype(np.int64).data
        self._steps: Sequence[int] = np.ascontiguousarray(rows[by_gate]).data
        self._state_arr = np.zeros(len(self._gate_ids), dtype=np.int8)
        self._state: memoryview = self._state_arr.data
        self._forgiven: dict[int, set[int]] = {}
        self._slots: Sequence[int] | None = None  # request id -> slot, when the ids are dense
        ids = self._gate_ids
        if len(ids) and ids[0] >= 0 and ids[-1] < 4 * len(ids) + 1024:
            table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
            table[ids] = np.arange(len(ids))
            self._slots = table.data

    def _slot(self, request_id: int) -> int:
        """The gating request's index in the gate arrays (-1: it gates no step): from the id
        table when the ids are dense (e.g. row numbers), else by binary search."""
        if self._slots is not None:
            return self._slots[request_id] if 0 <= request_id < len(self._slots) else -1
        k = int(np.searchsorted(self._gate_ids, request_id))
        return k if k < len(self._gate_ids) and self._gate_ids[k] == request_id else -1

    def finish(self, request_id: int, state: str) -> None:
        """Mark ``request_id`` terminal with ``state`` (answered / unanswered / cancelled); the steps
        it gates are counted down when the event scheduled here is processed."""
        k = self._slot(request_id)
        if k < 0 or self._state[k]:
            return
        self._state[k] = _STATE_CODE[state]
        waiting = list(self._steps[self._steps_off[k] : self._steps_off[k + 1]])
        ev = pending(self.env)
        ev.add_callback(lambda _ev: self._count_down(waiting))
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
            state = self._state[self._slot(int(i))]
            if not ok or state == _STATE_CODE[ANSWERED] or int(i) in forgiven:
                continue
            if state == _STATE_CODE[CANCELLED_GATE] or len(forgiven) >= self.session_retry:
                ok = False
                continue
            forgiven.add(int(i))
            self._forgiven[session_id] = forgiven
        return ok
