"""The compiled event loop (:func:`simroute.sim.event_loop.run_all`) against SimPy's ``env.run()``."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
import simpy
from simpy.events import URGENT

from simroute.sim.event_loop import run_all


def _scenario(env: simpy.Environment, trace: list[tuple[float, str]]) -> None:
    """Processes, plain and urgent events and timeouts, many due at the same times, some
    scheduled by callbacks of others: the order they run in is the trace."""

    def worker(name: str, delays: list[float]) -> Generator[simpy.Event, Any, str]:
        for d in delays:
            got = yield env.timeout(d, value=f"{name}@{d}")
            trace.append((env.now, f"{name} got {got}"))
        return name

    def waiter() -> Generator[simpy.Event, Any, None]:
        done = yield env.process(worker("inner", [0.5, 0.0, 1.5]))
        trace.append((env.now, f"waiter saw {done}"))
        ev = env.event()
        urgent = simpy.Event(env)
        urgent._ok, urgent._value = True, "urgent"
        urgent.callbacks.append(lambda e: trace.append((env.now, str(e.value))))
        env.schedule(urgent, URGENT)
        ev.succeed("plain")
        trace.append((env.now, f"waiter resumed with {(yield ev)}"))

    for k in range(4):
        env.process(worker(f"w{k}", [1.0, 0.5 * k, 0.0, 2.0 - 0.5 * k]))
    env.process(waiter())


def _run(runner: Callable[[simpy.Environment], object]) -> tuple[list[tuple[float, str]], float]:
    env = simpy.Environment()
    trace: list[tuple[float, str]] = []
    _scenario(env, trace)
    runner(env)
    return trace, env.now


def test_run_all_processes_the_events_in_simpys_order() -> None:
    want = _run(lambda env: env.run())
    assert len(want[0]) > 15
    assert _run(run_all) == want


def test_run_all_raises_an_unhandled_failure_as_simpy_does() -> None:
    def failing(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(1.0)
        raise ValueError("bad route")

    got = []
    for runner in (lambda env: env.run(), run_all):
        env = simpy.Environment()
        env.process(failing(env))
        with pytest.raises(ValueError, match="bad route") as e:
            runner(env)
        got.append((type(e.value), e.value.args, type(e.value.__cause__), env.now))
    assert got[0] == got[1]


def _simpy_timeout(env: simpy.Environment, delay: float, value: Any = None) -> simpy.Event:
    return env.timeout(delay, value)


def _started(
    start: Callable[[simpy.Environment, Generator[Any, Any, None]], object],
    timeout: Callable[..., Any] = _simpy_timeout,
    event: Callable[[simpy.Environment], Any] = simpy.Event,
    runner: Callable[[simpy.Environment], object] = run_all,
) -> list[tuple[float, str]]:
    """A source starting request bodies with ``start`` (several at equal times, beside processes
    started the SimPy way), each body waiting on timeouts, an already-processed event and an event
    another body triggers: the order everything ran in."""
    env = simpy.Environment()
    trace: list[tuple[float, str]] = []
    shared = event(env)

    def body(k: int) -> Generator[Any, Any, None]:
        trace.append((env.now, f"b{k} start"))
        yield timeout(env, 0.5 * (k % 3))
        if k == 4:
            shared.succeed(f"from b{k}")
        got = yield shared
        trace.append((env.now, f"b{k} saw {got}"))
        done = timeout(env, 0.0, "done")
        yield timeout(env, 1.0)
        trace.append((env.now, f"b{k} {(yield done)}"))  # processed long ago: goes on at once

    def other(k: int) -> Generator[Any, Any, None]:
        trace.append((env.now, f"o{k} start"))
        yield timeout(env, 0.5)
        trace.append((env.now, f"o{k} end"))

    def source() -> Generator[Any, Any, None]:
        for k in range(8):
            if k % 3 == 0:
                yield timeout(env, 0.5)
            env.process(other(k))
            start(env, body(k))

    env.process(source())
    runner(env)
    return trace


def test_a_lifecycle_task_runs_where_a_simpy_process_would() -> None:
    """:func:`~simroute.sim.lifecycle._start_now` starts a request's body at the event position
    ``env.process`` gives it, and resumes it with each event's value as a process would."""
    from simroute.sim.lifecycle import _start_now

    want = _started(lambda env, gen: env.process(gen))
    assert len(want) > 30
    assert _started(_start_now) == want


def test_our_signals_run_where_simpys_events_would() -> None:
    """The same bodies waiting on :mod:`simroute.signals` (timeouts, a pending signal another
    body triggers, one processed long ago) instead of SimPy's events run in the same order, with
    the same values, under SimPy's own loop and under :func:`run_all`."""
    from simroute import signals
    from simroute.sim.lifecycle import _start_now

    want = _started(lambda env, gen: env.process(gen))
    for runner in (lambda env: env.run(), run_all):
        got = _started(_start_now, signals.timeout, signals.pending, runner)
        assert got == want


def test_a_signal_is_triggered_once_and_never_with_a_negative_delay() -> None:
    from simroute import signals

    env = simpy.Environment()
    ev = signals.pending(env)
    ev.succeed(1)
    with pytest.raises(RuntimeError, match="already been triggered"):
        ev.succeed(2)
    with pytest.raises(ValueError, match="Negative delay"):
        signals.timeout(env, -1.0)
    run_all(env)
    assert ev.value == 1 and ev.callbacks is None
