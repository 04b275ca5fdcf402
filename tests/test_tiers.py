"""Tiers in a bare SimPy environment: timing, queueing, rejection, batching and expiry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy

from conftest import make_request
from simroute.tiers.base import AttemptResult
from simroute.tiers.batch import BatchTier
from simroute.tiers.local import LocalTier, PoolSpec
from simroute.tiers.realtime import LatencySpec, RealtimeTier

MODEL = "local/m"


@pytest.fixture
def env() -> simpy.Environment:
    return simpy.Environment()


def _collect(
    env: simpy.Environment, tier: Any, reqs: list[tuple[float, Any]], model: str = MODEL
) -> list[AttemptResult]:
    out: list[AttemptResult] = [None] * len(reqs)  # type: ignore[list-item]

    def go(i: int, at: float, req: Any) -> Any:
        yield env.timeout(at)
        out[i] = yield tier.submit(req, model)

    for i, (at, req) in enumerate(reqs):
        env.process(go(i, at, req))
    env.run()
    return out


def _pool(**kw: Any) -> PoolSpec:
    base = dict(
        model=MODEL,
        replicas=1,
        gpus_per_replica=1,
        max_num_seqs=1,
        prefill_tokens_per_s=1000.0,
        tpot_base_s=0.01,
        tpot_per_seq_s=0.001,
        max_queue=10,
    )
    base.update(kw)
    return PoolSpec(**base)  # type: ignore[arg-type]


def test_local_service_time_and_fcfs_queueing(env: simpy.Environment) -> None:
    tier = LocalTier(env, [_pool()], gpu_hour_usd=2.0)
    r1 = make_request(prompt_tokens=500, output_tokens=100)
    r2 = make_request(prompt_tokens=1000, output_tokens=10)
    a, b = _collect(env, tier, [(0.0, r1), (0.1, r2)])
    # prefill 0.5 s, then 100 steps of (10 ms + 1 ms * 1 running) = 1.1 s
    assert a.start_s == 0.0 and a.end_s == pytest.approx(1.6)
    assert a.first_token_s == pytest.approx(0.5 + 0.011)
    assert b.start_s == pytest.approx(1.6)  # waited for the only seat
    assert b.end_s == pytest.approx(1.6 + 1.0 + 10 * 0.011)
    assert a.busy_s == pytest.approx(1.6)


def test_local_rejects_when_queue_full(env: simpy.Environment) -> None:
    tier = LocalTier(env, [_pool(max_queue=1)], gpu_hour_usd=2.0)
    res = _collect(env, tier, [(0.0, make_request()), (0.0, make_request()), (0.0, make_request())])
    assert [r.status for r in res] == ["completed", "completed", "rejected"]


def test_local_join_shortest_queue(env: simpy.Environment) -> None:
    tier = LocalTier(env, [_pool(replicas=2)], gpu_hour_usd=2.0)
    res = _collect(env, tier, [(0.0, make_request()), (0.0, make_request())])
    assert res[0].start_s == res[1].start_s == 0.0  # two replicas, no waiting
    assert tier.n_gpus == 2


def test_batch_window_and_completion(env: simpy.Environment) -> None:
    tier = BatchTier(
        env,
        window_s=600,
        max_requests=100,
        completion_median_s=1800,
        completion_sigma=0.0,
        completion_window_s=86400,
        rng=np.random.default_rng(0),
    )
    res = _collect(env, tier, [(0.0, make_request()), (100.0, make_request()), (700.0, make_request())])
    assert [r.status for r in res] == ["completed"] * 3
    assert res[0].start_s == res[1].start_s == 600.0
    assert res[0].end_s == res[1].end_s == 2400.0
    assert res[2].start_s == 1300.0  # a new window opened at 700 s
    assert tier.jobs == 2


def test_batch_size_limit_submits_early(env: simpy.Environment) -> None:
    tier = BatchTier(
        env,
        window_s=600,
        max_requests=2,
        completion_median_s=10,
        completion_sigma=0.0,
        completion_window_s=86400,
        rng=np.random.default_rng(0),
    )
    res = _collect(env, tier, [(0.0, make_request()), (5.0, make_request()), (6.0, make_request())])
    assert res[0].start_s == res[1].start_s == 5.0
    assert res[2].start_s == 606.0


def test_batch_expiry(env: simpy.Environment) -> None:
    tier = BatchTier(
        env,
        window_s=60,
        max_requests=10,
        completion_median_s=200_000,
        completion_sigma=0.0,
        completion_window_s=86400,
        rng=np.random.default_rng(0),
    )
    (res,) = _collect(env, tier, [(0.0, make_request())])
    assert res.status == "expired" and res.end_s == 60 + 86400
    assert tier.expired_jobs == 1


def test_realtime_latency_model(env: simpy.Environment) -> None:
    spec = LatencySpec(0.5, 0.0, 0.02, 0.0)
    fast = LatencySpec(0.1, 0.0, 0.005, 0.0)
    tier = RealtimeTier(env, spec, {"fast": fast}, max_concurrency=0, rng=np.random.default_rng(0))
    (a,) = _collect(env, tier, [(1.0, make_request(output_tokens=101))], model="slow")
    assert a.first_token_s == pytest.approx(1.5) and a.end_s == pytest.approx(1.5 + 100 * 0.02)
    env2 = simpy.Environment()
    tier2 = RealtimeTier(env2, spec, {"fast": fast}, max_concurrency=0, rng=np.random.default_rng(0))
    (b,) = _collect(env2, tier2, [(0.0, make_request(output_tokens=101))], model="fast")
    assert b.end_s == pytest.approx(0.1 + 100 * 0.005)


def test_realtime_concurrency_cap_queues(env: simpy.Environment) -> None:
    tier = RealtimeTier(
        env, LatencySpec(1.0, 0.0, 0.01, 0.0), {}, max_concurrency=1, rng=np.random.default_rng(0)
    )
    a, b = _collect(
        env, tier, [(0.0, make_request(output_tokens=1)), (0.0, make_request(output_tokens=1))], "m"
    )
    assert b.start_s == pytest.approx(a.end_s)
