"""The scale profile's meter counts what the local engines did in a real simulation (every request
the local replicas took, every step) and leaves the engine and SimPy classes as it found them."""

from __future__ import annotations

import sys

import pytest
import simpy

from simroute.config import REPO_ROOT, compose
from simroute.engine.replica import Replica
from simroute.runner.experiment import arm_job

sys.path.insert(0, str(REPO_ROOT / "experiments"))
from scale_profile import events, metered


def _patched() -> tuple[object, ...]:
    return (Replica._run, Replica.next_wake_s, Replica.add, simpy.Environment.__init__)


def test_the_meter_counts_every_local_request_and_step_and_restores_the_classes() -> None:
    originals = _patched()
    job = arm_job(compose(["workload.n_requests=1500", "progress=false"]), "policy")
    with metered() as m:
        logs = job.logs()
    assert _patched() == originals
    att = logs.take(["tier", "status"]).attempts
    local = att.filter((att["tier"] == "local") & (att["status"] != "rejected"))
    assert local.height > 50
    assert m.local_requests == local.height  # every request a local replica took, once
    assert m.engine_steps > m.local_requests and min(m.run_calls, m.wake_calls) > m.local_requests
    assert m.kernel_s > 0
    assert len(m.envs) == 1
    n = events(m.envs)
    assert n > 1500 and events(m.envs) == n  # several events a request; reading leaves the count


def _fail_while_metered(seen: list[tuple[object, ...]]) -> None:
    with metered():
        seen.append(_patched())
        raise RuntimeError("boom")


def test_the_meter_restores_the_classes_when_the_run_fails() -> None:
    originals, seen = _patched(), []
    with pytest.raises(RuntimeError, match="boom"):
        _fail_while_metered(seen)
    assert seen[0] != originals and _patched() == originals
