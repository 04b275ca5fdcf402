"""The scale profile's meter counts what the local engines did in a real simulation (every request
the local replicas took, every step) and leaves the engine class as it found it."""

from __future__ import annotations

import sys

from simroute.config import REPO_ROOT, compose
from simroute.engine.replica import Replica
from simroute.runner.experiment import arm_job

sys.path.insert(0, str(REPO_ROOT / "experiments"))
from scale_profile import _events, metered


def test_the_meter_counts_every_local_request_and_step_and_restores_the_engine() -> None:
    originals = (Replica._run, Replica.next_wake_s, Replica.add)
    job = arm_job(compose(["workload.n_requests=1500", "progress=false"]), "policy")
    with metered() as m:
        logs = job.logs()
    assert (Replica._run, Replica.next_wake_s, Replica.add) == originals
    att = logs.take(["tier", "status"]).attempts
    local = att.filter((att["tier"] == "local") & (att["status"] != "rejected"))
    assert local.height > 50
    assert m.local_requests == local.height  # every request a local replica took, once
    assert m.engine_steps > m.local_requests and m.kernel_calls > m.local_requests
    assert m.kernel_s > 0
    assert _events(m.envs or []) > 1500  # several SimPy events a request
