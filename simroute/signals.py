"""Our own events on SimPy's queue: the timeouts and triggers of a request's lifecycle and its tiers
made without SimPy's Python.

A :class:`Signal` is an event as SimPy's loop and processes read one (``callbacks``, ``_ok``,
``_value``), scheduled exactly as ``Environment.schedule`` schedules (a heap entry of time,
priority and the environment's next event id), so the events run in the order SimPy's own would
(tested): :func:`timeout` is ``env.timeout``, :func:`pending` is ``env.event()`` and
:meth:`Signal.succeed` its ``succeed``. Compiled (:mod:`simroute.compiled`), a signal is a native
object: made, scheduled and processed (:func:`~simroute.sim.event_loop.run_all`) without a
Python call or attribute dictionary. Signals never fail.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, PENDING


class Signal:
    """An event that never fails: pending until :meth:`succeed`, or triggered when made (a
    timeout's). ``callbacks`` is None once processed."""

    def __init__(self, env: simpy.Environment, value: Any = PENDING) -> None:
        self.env = env
        self.callbacks: list[Callable[[Any], None]] | None = []
        self._ok = True
        self._value: Any = value

    @property
    def value(self) -> Any:
        """The value it was triggered with."""
        return self._value

    def add_callback(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(self)`` when it is processed (after the callbacks added before)."""
        assert self.callbacks is not None, "a processed signal takes no callback"
        self.callbacks.append(callback)

    def succeed(self, value: Any = None) -> Signal:
        """Trigger it with ``value`` now, as ``simpy.Event.succeed`` does (RuntimeError if it was
        triggered already)."""
        if self._value is not PENDING:
            raise RuntimeError(f"{self} has already been triggered")
        self._value = value
        schedule(self.env, self, NORMAL, 0.0)
        return self


Waitable = simpy.Event | Signal
"""What a lifecycle step or a tier's attempt waits for: a SimPy event or one of ours."""


def schedule(env: simpy.Environment, event: Any, priority: int, delay: float) -> None:
    """Put ``event`` on ``env``'s queue ``delay`` s from now, as ``env.schedule`` does."""
    queue: list[Any] = env._queue
    heapq.heappush(queue, (env._now + delay, priority, next(env._eid), event))


def timeout(env: simpy.Environment, delay: float, value: Any = None, priority: int = NORMAL) -> Signal:
    """``env.timeout(delay, value)``: a signal processed ``delay`` s from now with ``value``
    (at ``priority``; ValueError for a negative delay, as SimPy)."""
    if delay < 0:
        raise ValueError(f"Negative delay {delay}")
    ev = Signal(env, value)
    schedule(env, ev, priority, delay)
    return ev


def pending(env: simpy.Environment) -> Signal:
    """``env.event()``: a signal processed after :meth:`Signal.succeed`."""
    return Signal(env)
