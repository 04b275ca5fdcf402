"""Tiers in a bare SimPy environment: timing, queueing, rejection, batching and expiry."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
import simpy

from conftest import make_request
from simroute.config import CONF_DIR, TRACES_DIR, compose
from simroute.economics.prompt_cache import PromptCache
from simroute.engine import kernel as K
from simroute.engine.config import EngineConfig
from simroute.engine.gpu_hardware import BUILTIN
from simroute.engine.gpu_model import gpu_step_time, load_coefficients
from simroute.engine.model_arch import load_arch
from simroute.engine.profiles import ProfileStepTime
from simroute.engine.replica import Replica
from simroute.engine.steptime import LinearStepTime
from simroute.errors import ConfigError, InputError
from simroute.policy.types import TierState
from simroute.tiers.base import AttemptResult, delay_until
from simroute.tiers.batch import BatchTier
from simroute.tiers.latency_fit import LatencySpec, fit_profiles, fit_report, ks_distance
from simroute.tiers.local import LocalTier, PoolSpec
from simroute.tiers.realtime import LatencyModel, Outage, RateLimit, RealtimeTier, RetryPolicy
from simroute.workload.prefix_runs import PrefixRuns

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
    engine replaying the same arrivals: waking the engine only at stretch ends never changes the
    schedule, and the state it reports between wake-ups is current."""
    tier = LocalTier(env, [_pool(max_queue=1000)], gpu_hour_usd=2.0)
    g = np.random.default_rng(3)
    n = 40
    arr = np.cumsum(g.exponential(0.05, n))
    p, o = g.integers(1, 300, n), g.integers(1, 60, n)

    def counted() -> TierState:  # the tier's state counted afresh
        engines = [e.rep for es in tier.engines.values() for e in es]
        return TierState(
            sum(r.num_waiting + r.num_pending for r in engines),
            sum(r.num_running for r in engines),
            sum(r.config.max_num_seqs for r in engines),
        )

    states_right = []

    def noise() -> Any:  # unrelated events at odd times, reading the tier's state between wake-ups
        while env.now < arr[-1] + 5:
            states_right.append(tier.state() == counted())  # the remembered state is current
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
    assert len(states_right) > 100 and all(states_right)


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
        seed=0,
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
        seed=0,
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
        seed=0,
    )
    (res,) = _collect(env, tier, [(0.0, make_request())])
    assert res.status == "expired" and res.end_s == 60 + 86400
    assert tier.expired_jobs == 1


def _rt(env: simpy.Environment, **kw: Any) -> RealtimeTier:
    args: dict[str, Any] = {
        "latency": {
            "*": LatencyModel(LatencySpec(0.5, 0.0, 0.02, 0.0)),
            "fast": LatencyModel(LatencySpec(0.1, 0.0, 0.005, 0.0)),
        },
        "limits": {"*": RateLimit()},
        "retry": RetryPolicy(),
        "error_rate": 0.0,
        "outages": [],
        "max_concurrency": 0,
        "seed": 0,
    }
    args.update(kw)
    return RealtimeTier(env, **args)


def test_realtime_latency_model(env: simpy.Environment) -> None:
    tier = _rt(env)
    (a,) = _collect(env, tier, [(1.0, make_request(output_tokens=101))], model="slow")
    assert a.first_token_s == pytest.approx(1.5)
    assert a.end_s == pytest.approx(1.5 + 100 * 0.02)
    env2 = simpy.Environment()
    (b,) = _collect(env2, _rt(env2), [(0.0, make_request(output_tokens=101))], model="fast")
    assert b.end_s == pytest.approx(0.1 + 100 * 0.005)


def test_realtime_concurrency_cap_queues(env: simpy.Environment) -> None:
    tier = _rt(env, max_concurrency=1)
    a, b = _collect(
        env, tier, [(0.0, make_request(output_tokens=1)), (0.0, make_request(output_tokens=1))], "m"
    )
    assert b.start_s == pytest.approx(a.end_s)


def test_latency_draws_follow_the_fitted_distribution() -> None:
    """KS test (fixed seed) of 4,000 draws against the log-normal fitted to LLMPerf together/70b."""
    fits = fit_profiles(TRACES_DIR / "llmperf_2023_individual.csv.gz")
    spec = fits["together/70b"]
    model = LatencyModel(spec)
    g = np.random.default_rng(7)
    draws = np.array([model.draw(float(g.random()), float(g.random())) for _ in range(4000)])
    crit = 1.63 / np.sqrt(4000)  # alpha = 0.01
    assert ks_distance(draws[:, 0], spec.ttft_median_s, spec.ttft_sigma) < crit
    assert ks_distance(draws[:, 1], spec.itl_median_s, spec.itl_sigma) < crit
    # the fit itself is close to the measured requests (TTFT p50 0.64 s in the shared stats)
    assert spec.ttft_median_s == pytest.approx(0.62, abs=0.03)
    assert spec.itl_median_s == pytest.approx(0.0153, rel=0.1)


def test_fit_report_covers_every_profile() -> None:
    rep = fit_report(TRACES_DIR / "llmperf_2023_individual.csv.gz")
    assert rep.height == 19
    assert (rep["ttft_ks"] < 0.5).all()


def test_rate_limit_429s_retry_with_backoff_then_fail_at_deadline(env: simpy.Environment) -> None:
    tier = _rt(
        env, limits={"*": RateLimit(rpm=2)}, retry=RetryPolicy(max_retries=3, backoff_base_s=10.0, jitter=0.0)
    )
    reqs = [(0.0, make_request(output_tokens=1, deadline_s=1e6)) for _ in range(3)]
    reqs.append((0.0, make_request(output_tokens=1, deadline_s=5.0)))
    res = _collect(env, tier, reqs, "m")
    assert [r.status for r in res[:2]] == ["completed", "completed"]
    # third: bucket refills at 2/min -> retried after 10 s (and maybe 20 s) then served
    assert res[2].status == "completed" and res[2].rate_limited >= 1 and res[2].start_s >= 10.0
    # fourth: its deadline (5 s) comes before the first backoff ends
    assert res[3].status == "error" and res[3].rate_limited == 1 and res[3].retries == 0
    assert tier.rate_limited >= 2


def test_outage_and_error_rate_are_retried_and_counted(env: simpy.Environment) -> None:
    tier = _rt(
        env,
        outages=[Outage(0.0, 30.0, ("m",))],
        retry=RetryPolicy(max_retries=2, backoff_base_s=4.0, jitter=0.0),
    )
    a, b = _collect(
        env,
        tier,
        [
            (0.0, make_request(output_tokens=1, deadline_s=1e6)),
            (25.0, make_request(output_tokens=1, deadline_s=1e6)),
        ],
        "m",
    )
    assert a.status == "error" and a.retries == 2  # 0, 4, 12 s: all inside the outage
    assert b.status == "completed" and b.retries == 2 and b.start_s == pytest.approx(37.0)
    env2 = simpy.Environment()
    flaky = _rt(env2, error_rate=0.5, retry=RetryPolicy(max_retries=10, backoff_base_s=0.1, jitter=0.0))
    res = _collect(
        env2,
        flaky,
        [(0.0, make_request(request_id=k, output_tokens=1, deadline_s=1e6)) for k in range(200)],
        "m",
    )
    assert all(r.status == "completed" for r in res)
    assert sum(r.retries for r in res) == flaky.errors
    assert 100 < flaky.errors < 300


class _AllProcesses(RealtimeTier):
    """The real-time tier with every call a SimPy process (no one-event path): the reference."""

    def submit(self, request: Any, model: str, attempt: int = 0) -> simpy.Event:
        return self.env.process(
            self._call(request, model, attempt, self._refused(request, model, attempt, 0))
        )


def test_realtime_one_event_calls_equal_process_calls() -> None:
    """Calls served as one timeout event give the results, counters and in-flight counts of the
    same calls run as processes, through rate limits, an outage, errors, retries and deadlines,
    with latencies drawn per request (no two calls end at the same instant)."""
    g = np.random.default_rng(8)
    reqs = [
        (t, make_request(idx=k, request_id=k, prompt_tokens=int(p), output_tokens=int(o), deadline_s=d))
        for k, (t, p, o, d) in enumerate(
            zip(np.sort(g.uniform(0, 120, 300)), g.integers(10, 3000, 300), g.integers(1, 400, 300),
                g.choice([5.0, 60.0, 1e6], 300), strict=True)
        )
    ]  # fmt: skip
    args: dict[str, Any] = {
        "latency": {"*": LatencyModel(LatencySpec(0.5, 0.6, 0.02, 0.4))},
        "limits": {"*": RateLimit(rpm=120, tpm=200_000)},
        "retry": RetryPolicy(max_retries=4, backoff_base_s=1.0, jitter=0.5),
        "outages": [Outage(40.0, 55.0, ("m",))],
        "error_rate": 0.1,
        "max_concurrency": 0,
        "seed": 3,
    }
    shared = [(k % 7) * 100 + np.arange(int(r.prompt_tokens) // 64) for k, (_, r) in enumerate(reqs)]
    prefix_ids = PrefixRuns.from_column(pl.Series([a.tolist() for a in shared], dtype=pl.List(pl.Int64)))
    got, seen = [], []
    for cls in (RealtimeTier, _AllProcesses):
        env = simpy.Environment()
        caches = {"m": PromptCache(ttl_s=30.0, min_tokens=128, block_tokens=64)}
        tier = cls(env, **args, prompt_cache=caches, prefix_ids=prefix_ids)
        in_flight: list[int] = []

        def watch(env: simpy.Environment = env, tier: RealtimeTier = tier, out: list[int] = in_flight) -> Any:
            while env.now < 200:
                out.append(tier.state().in_service)
                yield env.timeout(0.37)

        env.process(watch())
        got.append((_collect(env, tier, reqs, "m"), tier.calls, tier.rate_limited, tier.errors))
        seen.append(in_flight)
    assert got[0] == got[1] and seen[0] == seen[1]
    results = got[0][0]
    assert {r.status for r in results} == {"completed", "error"} and got[0][2] > 0 and got[0][3] > 0
    assert any(r.retries for r in results if r.status == "completed")
    assert sum(r.cached_tokens > 0 for r in results) > 20 and sum(r.written_tokens > 0 for r in results) > 20


def test_batch_bytes_limit_splits_jobs(env: simpy.Environment) -> None:
    tier = BatchTier(
        env,
        window_s=600,
        max_requests=1000,
        completion_median_s=100,
        completion_sigma=0.0,
        completion_window_s=86400,
        seed=0,
        max_bytes=10_000,
        bytes_per_token=4.0,
        bytes_per_request=0.0,
    )
    res = _collect(env, tier, [(0.0, make_request(prompt_tokens=1000)) for _ in range(5)])
    assert tier.jobs == 3  # 4,000 bytes each: two per 10,000-byte job
    assert [r.start_s for r in res] == [0.0, 0.0, 0.0, 0.0, 600.0]


def test_prompt_cache_hits_refreshes_and_expires() -> None:
    pc = PromptCache(ttl_s=300, min_tokens=1024, block_tokens=256)
    ids = np.arange(10, dtype=np.int64)
    assert pc.use(ids, 3000, now=0.0) == (0, 2560)  # cold: writes its 10 blocks
    assert pc.use(ids[:6], 2000, now=100.0) == (1536, 0)  # 6 blocks cached, no new writes
    assert pc.use(ids[:3], 800, now=150.0) == (0, 0)  # below the 1,024-token minimum
    assert pc.use(ids, 3000, now=350.0) == (1536, 1024)  # blocks 6-9 expired at 300 s
    assert pc.use(ids, 3000, now=10_000.0)[0] == 0


def _pools(overrides: list[str]) -> list[PoolSpec]:
    return [PoolSpec.from_config(p) for p in compose(overrides)["tiers"]["local"]["pools"]]


def test_default_local_pools_use_the_gpu_model() -> None:
    """tiers/default.yaml: each pool's step time is the GPU model of its config.json on H100 with
    TP = GPUs per replica and the fitted coefficients; tiers=profile keeps the earlier model."""
    pools = {p.model: p for p in _pools([])}
    coef = load_coefficients(CONF_DIR / "gpu_model.json")
    for model, name, tp in (
        ("local/llama-3.1-8b-instruct", "llama-3.1-8b-instruct", 1),
        ("local/qwen2.5-32b-instruct", "qwen2.5-32b-instruct", 2),
    ):
        spec = pools[model]
        assert spec.gpus_per_replica == tp
        want = gpu_step_time(load_arch(CONF_DIR / "model_configs" / name), BUILTIN["H100"], tp, coef, 8192)
        np.testing.assert_array_equal(spec.step_time.coefficients(), want.coefficients())
        np.testing.assert_array_equal(spec.step_time.table(), want.table())
    for spec in _pools(["tiers=profile"]):
        assert isinstance(spec.step_time, ProfileStepTime)
        assert spec.step_time.linear.per_prefill_attention_pair_s == 0.0


def _alone_ttft(spec: PoolSpec, prompt: int) -> float:
    rep = Replica(spec.engine, spec.step_time, mode="time", capacity=4)
    rep.add(prompt, 1)
    rep.run_until()
    return float(rep.request_time(K.FIRSTT)[0])


def test_gpu_model_prices_attention_over_the_earlier_chunks() -> None:
    """A long prompt prefilled in 8,192-token chunks: each chunk attends to all earlier ones, so
    TTFT grows faster than the prompt (not so with KV reads only)."""
    gpu = {p.model: p for p in _pools([])}["local/llama-3.1-8b-instruct"]
    prof = {p.model: p for p in _pools(["tiers=profile"])}["local/llama-3.1-8b-instruct"]
    assert _alone_ttft(gpu, 65_536) / _alone_ttft(gpu, 16_384) > 5.5
    assert _alone_ttft(prof, 65_536) / _alone_ttft(prof, 16_384) < 4.2


def test_gpu_model_step_time_config_errors() -> None:
    base = compose()["tiers"]["local"]["pools"][0]

    def with_step(**step: Any) -> dict[str, Any]:
        return {**base, "step_time": {"kind": "gpu_model", **step}}

    with pytest.raises(ConfigError, match=r"llama-3.1-8b-instruct\]\.step_time.*unknown key.*'tp'"):
        PoolSpec.from_config(with_step(model_config="llama-3.1-8b-instruct", tp=2))
    with pytest.raises(ConfigError, match=r"step_time\.gpu: unknown GPU 'B300'"):
        PoolSpec.from_config(with_step(model_config="llama-3.1-8b-instruct", gpu="B300"))
    with pytest.raises(ConfigError, match=r"step_time\.model_config: missing"):
        PoolSpec.from_config(with_step(gpu="H100"))
    with pytest.raises(InputError, match=r"no-such-model/config.json: model config not found"):
        PoolSpec.from_config(with_step(model_config="no-such-model"))


def test_delay_until_lands_on_the_time_or_the_first_one_after() -> None:
    """SimPy fires an event at ``now + delay``: ``delay_until`` gives a delay that lands on ``t``, or,
    where no delay reaches it from this ``now``, the first time after it (never before), where the
    plain difference lands early for some times; 0 for a time already past."""
    g = np.random.default_rng(5)
    now, t = (g.uniform(0, 1, 20_000) * 10.0 ** g.integers(-3, 5, 20_000) for _ in range(2))
    later = t > now
    now, t = now[later].tolist(), t[later].tolist()
    d = [delay_until(n, x) for n, x in zip(now, t, strict=True)]
    triples = list(zip(now, t, d, strict=True))
    assert all(n + dd == x or n + dd > x > n + math.nextafter(dd, -math.inf) for n, x, dd in triples)
    exact = sum(n + dd == x for n, x, dd in triples)
    assert exact > 0.97 * len(t)
    assert sum(n + (x - n) < x for n, x in zip(now, t, strict=True)) > 20  # the plain difference: early
    assert delay_until(5.0, 5.0) == 0.0 and delay_until(5.0, 4.0) == 0.0


def test_the_standard_normal_quantile_is_normaldists() -> None:
    """The latency draws' quantile gives ``NormalDist().inv_cdf`` exactly, and its error outside
    (0, 1)."""
    from statistics import NormalDist, StatisticsError

    from simroute.tiers.realtime import _std_normal_quantile

    us = [*np.random.default_rng(4).random(20_000).tolist(), 1e-300, 0.5, 1 - 1e-16, 2.0**-53]
    assert [_std_normal_quantile(u) for u in us] == [NormalDist().inv_cdf(u) for u in us]
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(StatisticsError):
            _std_normal_quantile(bad)
