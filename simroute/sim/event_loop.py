"""SimPy's event loop, run to the end in compiled code.

:func:`run_all` does what ``simpy.Environment.run()`` does without ``until``: it takes the events
off the environment's queue in SimPy's order (time, priority, then scheduling order), sets the
clock, runs each event's callbacks and raises a failed event's exception that no process handled;
only its loop is compiled (:mod:`simroute.compiled`), so it saves SimPy's per-event Python call
(``Environment.step``). The processes and queue are SimPy's own, the events SimPy's or ours
(:class:`~simroute.signals.Signal`, read natively). Tested to give the same results as
``env.run()``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import simpy

from simroute.signals import Signal


def run_all(env: simpy.Environment) -> None:
    """Process every event scheduled in ``env`` (and those they schedule) until none is left."""
    queue: list[Any] = env._queue  # entries (time, priority, order, event); events read as Any
    pop = heapq.heappop
    while queue:
        now, _priority, _eid, event = pop(queue)
        env._now = now
        if isinstance(event, Signal):  # ours: read natively, and it never fails
            done = event.callbacks
            event.callbacks = None
            assert done is not None  # a signal is scheduled once
            for callback in done:
                callback(event)
            continue
        callbacks: list[Callable[[Any], None]] = event.callbacks
        event.callbacks = None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            # a failure no process handled: raised as SimPy raises it (a copy, the original its cause)
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc
