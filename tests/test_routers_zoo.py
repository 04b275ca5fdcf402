"""The router zoo: decisions on hand-built requests, calibration, learning, deadline safety."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_request
from simroute.policy import registry
from simroute.policy.catalog import ModelCatalog
from simroute.policy.registry import PolicyContext
from simroute.policy.routers import CostAwareRouter, ThompsonRouter, WinRateRouter
from simroute.policy.selectors import ABSelector
from simroute.policy.types import Label, Risk, TierState
from simroute.policy.verifiers import NoisyVerifier, OracleVerifier

SAFE = Risk(0.0, False)


class State:
    def __init__(self, local_queue: int = 0) -> None:
        self.q = local_queue

    def tier(self, name: str) -> TierState:
        return TierState(self.q if name == "local" else 0, 0, 64)


def test_cost_aware_picks_the_cheapest_adequate_tier(catalog: ModelCatalog) -> None:
    r = CostAwareRouter(catalog, min_quality=0.75)
    easy = Label("draft_reply", 1.0)
    assert r.route(make_request(deadline_s=60), easy, SAFE, State()).tier == "local"
    assert r.route(make_request(deadline_s=60), easy, SAFE, State(1000)).tier == "realtime"  # congested
    # no local model reaches 0.75 on migrations: an API tier; batch when the deadline allows
    hard = Label("db_migration", 1.0)
    assert r.route(make_request(deadline_s=60), hard, SAFE, State()).tier == "realtime"
    assert r.route(make_request(deadline_s=86_400), hard, SAFE, State()).tier == "batch"
    assert r.route(make_request(deadline_s=86_400), hard, Risk(0.9, True), State()).strong


def test_win_rate_router_calibrates_to_the_target_share(catalog: ModelCatalog) -> None:
    r = WinRateRouter(catalog, target_strong_share=0.3, warmup=100, use_batch=False)
    g = np.random.default_rng(0)
    skills = list(catalog.by_tier["realtime"][0].expected_quality)
    strong = 0
    n = 4000
    for _ in range(n):
        label = Label(skills[int(g.integers(len(skills)))], 1.0)
        risk = Risk(float(g.random()), False)
        strong += r.route(make_request(deadline_s=60), label, risk, State()).tier == "realtime"
    assert strong / n == pytest.approx(0.3, abs=0.04)


def test_thompson_learns_from_verdicts(catalog: ModelCatalog) -> None:
    r = ThompsonRouter(catalog, seed=0, min_quality=0.8)
    label = Label("code_change", 1.0)
    for _ in range(200):  # local keeps failing, real-time keeps succeeding
        r.observe(make_request(), label, "local", "m", False)
        r.observe(make_request(), label, "realtime", "m", True)
    picks = [r.route(make_request(deadline_s=60), label, SAFE, State()).tier for _ in range(100)]
    assert picks.count("realtime") == 100
    assert r.alpha[("code_change", "realtime")] > 200


def test_ab_selector_split_is_stable_and_proportional(ctx: PolicyContext) -> None:
    sel = registry.build(
        "selector",
        {
            "name": "ab",
            "a": {"name": "strongest"},
            "b": {"name": "threshold", "threshold": 0.0},
            "share_b": 0.25,
        },
        ctx,
    )
    assert isinstance(sel, ABSelector)
    arms = [sel.arm(make_request(i=i, request_id=i)) for i in range(4000)]
    assert arms.count("b") / 4000 == pytest.approx(0.25, abs=0.03)
    assert arms == [sel.arm(make_request(i=i, request_id=i)) for i in range(4000)]


def test_ab_selector_children_get_the_runs_skills_and_seed(
    ctx: PolicyContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The children of an A/B selector are built with the run's context (they once got no skills and
    seed 0)."""
    seen: list[tuple[tuple[str, ...], int]] = []

    class Recording:
        def __init__(self, skills: tuple[str, ...], seed: int) -> None:
            seen.append((skills, seed))

    monkeypatch.setitem(registry.REGISTRY["selector"], "recording", Recording)
    run_ctx = PolicyContext(ctx.skills, ctx.catalog, seed=7)
    registry.build(
        "selector", {"name": "ab", "a": {"name": "recording"}, "b": {"name": "recording"}}, run_ctx
    )
    assert seen == [(ctx.skills, 7), (ctx.skills, 7)]


def test_verifiers() -> None:
    assert OracleVerifier().accept(make_request(), True, 0.01)
    assert not OracleVerifier().accept(make_request(), False, 0.99)
    v = NoisyVerifier(false_accept=0.1, false_reject=0.05)
    us = (np.arange(10_000) + 0.5) / 10_000
    assert np.mean([v.accept(make_request(), False, u) for u in us]) == pytest.approx(0.1, abs=1e-3)
    assert np.mean([not v.accept(make_request(), True, u) for u in us]) == pytest.approx(0.05, abs=1e-3)


ROUTER_CONFIGS = [
    {"name": "rules"},
    {"name": "static", "tier": "batch"},
    {"name": "cost_aware", "min_quality": 0.1},
    {"name": "win_rate", "threshold": 10.0},
    {"name": "thompson", "min_quality": 0.0},
]


@settings(max_examples=200, deadline=None)
@given(
    deadline=st.floats(1.0, 86_399.0),
    idx=st.integers(0, len(ROUTER_CONFIGS) - 1),
    skill=st.sampled_from(["draft_reply", "code_change", "eval_traces", "db_migration"]),
    risky=st.booleans(),
    queue=st.integers(0, 500),
)
def test_no_router_sends_a_request_that_cannot_wait_to_batch(ctx, deadline, idx, skill, risky, queue) -> None:
    router = registry.build("router", ROUTER_CONFIGS[idx], ctx)
    route = router.route(
        make_request(deadline_s=deadline), Label(skill, 1.0), Risk(0.9 if risky else 0.0, risky), State(queue)
    )
    assert route.tier != "batch"


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=80),
    q=st.floats(0, 1),
)
def test_running_quantile_equals_numpy(values: list[float], q: float) -> None:
    """The win-rate router's O(log n) threshold is exactly np.quantile of the scores seen."""
    from simroute.policy.running_quantile import RunningQuantile

    rq = RunningQuantile(q)
    for k, v in enumerate(values):
        rq.add(v)
        assert rq.value() == float(np.quantile(values[: k + 1], q))
