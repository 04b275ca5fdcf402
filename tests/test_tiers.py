"""Tiers in a bare SimPy environment: timing, queueing, rejection, batching and expiry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy

from conftest import make_request
from simroute.engine import kernel as K
from simroute.engine.config import EngineConfig
from simroute.engine.replica import Replica
from simroute.engine.steptime import LinearStepTime
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


ENGINE = EngineConfig(
    max_num_batched_tokens=512, max_num_seqs=4, block_size=16, num_gpu_blocks=64, max_model_len=2048
)
STEP = LinearStepTime(const_s=0.01, per_prefill_token_s=1e-4, per_decode_s=1e-3)


def _pool(**kw: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "model": MODEL,
        "replicas": 1,
        "gpus_per_replica": 1,
        "max_queue": 10,
        "engine": ENGINE,
        "step_time": STEP,
    }
    base.update(kw)
    return PoolSpec(**base)


def test_local_tier_matches_the_bare_engine(env: simpy.Environment) -> None:
    """Driven by SimPy (with unrelated events in between), the tier's results equal a bare
    engine replaying the same arrivals: the driver's look-ahead never changes the schedule."""
    tier = LocalTier(env, [_pool(max_queue=1000)], gpu_hour_usd=2.0)
    g = np.random.default_rng(3)
    n = 40
    arr = np.cumsum(g.exponential(0.05, n))
    p, o = g.integers(1, 300, n), g.integers(1, 60, n)

    def noise() -> Any:  # unrelated events at odd times, to cut the driver's look-ahead
        while env.now < arr[-1] + 5:
            yield env.timeout(float(g.exponential(0.013)))

    env.process(noise())
    res = _collect(
        env,
        tier,
        [
            (float(a), make_request(prompt_tokens=int(pp), output_tokens=int(oo)))
            for a, pp, oo in zip(arr, p, o, strict=True)
        ],
    )
    rep = Replica(ENGINE, STEP, mode="time")
    for a, pp, oo in zip(arr, p, o, strict=True):
        rep.add(int(pp), int(oo), arrival_s=float(a))
    rep.run_until()
    np.testing.assert_allclose([r.end_s for r in res], rep.request_time(K.DONET), rtol=0, atol=1e-12)
    np.testing.assert_allclose([r.first_token_s for r in res], rep.request_time(K.FIRSTT), rtol=0, atol=1e-12)
    assert all(r.status == "completed" for r in res)


def test_local_rejects_when_queue_full_or_request_cannot_fit(env: simpy.Environment) -> None:
    tier = LocalTier(env, [_pool(max_queue=1)], gpu_hour_usd=2.0)
    small = {"prompt_tokens": 200, "output_tokens": 20}
    reqs = [(0.0, make_request(**small)) for _ in range(6)]
    reqs.append((0.5, make_request(prompt_tokens=1500, output_tokens=10)))
    res = _collect(env, tier, reqs)
    # four seats, then a queue of one; the sixth is refused; the last needs 95 blocks of a
    # 63-block cache and can never fit
    assert [r.status for r in res] == ["completed"] * 5 + ["rejected", "rejected"]


def test_local_join_shortest_queue(env: simpy.Environment) -> None:
    tier = LocalTier(env, [_pool(replicas=2)], gpu_hour_usd=2.0)
    small = {"prompt_tokens": 200, "output_tokens": 20}
    res = _collect(env, tier, [(0.0, make_request(**small)), (0.0, make_request(**small))])
    assert res[0].end_s == res[1].end_s  # each alone on its own replica
    assert tier.n_gpus == 2
    assert [e.rep.steps > 0 for e in tier.engines[MODEL]] == [True, True]


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
