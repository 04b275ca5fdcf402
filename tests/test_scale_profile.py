"""The scale profile's meter counts what the local engines did in a real simulation (every kernel
call and step; every request the local replicas took, from the records) and leaves the kernel
functions and SimPy's class as it found them."""

from __future__ import annotations

import sys

import pytest
import simpy

from simroute.config import REPO_ROOT, compose
from simroute.engine import kernel
from simroute.engine.replica import Replica
from simroute.runner.experiment import arm_job

sys.path.insert(0, str(REPO_ROOT / "experiments"))
from scale_profile import events, local_load, metered


def _patched() -> tuple[object, ...]:
    return (kernel.run, kernel.next_wake, simpy.Environment.__init__)


def test_the_meter_counts_every_local_request_and_step_and_restores_the_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    originals = _patched()
    job = arm_job(compose(["workload.n_requests=1500", "progress=false"]), "policy")
    added: list[tuple[int, int]] = []
    add = Replica.add

    def counted(self: Replica, prompt_tokens: int, max_tokens: int, **k: object) -> int:
        added.append((prompt_tokens, max_tokens))
        return add(self, prompt_tokens, max_tokens, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Replica, "add", counted)  # the suite runs interpreted: the replica's own
    with metered() as m:
        logs = job.logs()
    assert _patched() == originals
    load = local_load(job, logs)
    assert load.requests > 50
    assert (load.requests, load.prompt_tokens, load.output_tokens) == (  # every request a replica took
        len(added),
        sum(p for p, _ in added),
        sum(o for _, o in added),
    )
    assert m.engine_steps > load.requests and min(m.run_calls, m.wake_calls) > load.requests
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
