"""Nightly evaluator, distillation and multi-day runs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import compose_cfg
from simroute.feedback.distillation import Distiller, learning_curve
from simroute.feedback.evaluator import NightlyEvaluator
from simroute.policy.routers import RuleRouter
from simroute.runner.multiday import run_multiday
from simroute.sim.build import setup


def _attempts(skill: str, tier: str, model: str, n: int, success_rate: float) -> pl.DataFrame:
    k = round(n * success_rate)
    return pl.DataFrame(
        {
            "skill_pred": [skill] * n,
            "tier": [tier] * n,
            "model": [model] * n,
            "status": ["completed"] * n,
            "success": [True] * k + [False] * (n - k),
            "accepted": [True] * k + [False] * (n - k),
            "prompt_tokens": [1000] * n,
            "output_tokens": [100] * n,
        }
    )


def test_replay_evaluator_removes_the_escalation_bias() -> None:
    """A strong model that only sees the requests a weak model failed looks worse than it is to an
    evaluator of observed attempts; re-running a sample on every model (replay) recovers it."""
    est: dict[str, float] = {}
    for mode in ("observed", "first", "replay"):
        inp = setup(compose_cfg(["workload.n_requests=10"]), 0)  # fresh catalogue per mode
        q = inp.quality
        weak, strong, skill = "local/llama-3.1-8b-instruct", "claude-sonnet-4-5", "code_change"
        g = np.random.default_rng(7)
        n = 6000
        d = g.normal(0.2, 1.0, n)
        pw = np.array([q.p_success(weak, skill, x) for x in d])
        ps = np.array([q.p_success(strong, skill, x) for x in d])
        ok_w = g.random(n) < pw
        esc = np.flatnonzero(~ok_w)
        ok_s = g.random(len(esc)) < ps[esc]
        att = pl.DataFrame(
            {
                "request_index": np.r_[np.arange(n), esc],
                "attempt": np.r_[np.zeros(n, int), np.ones(len(esc), int)],
                "skill_pred": skill,
                "skill": skill,
                "difficulty": np.r_[d, d[esc]],
                "tier": ["local"] * n + ["realtime"] * len(esc),
                "model": [weak] * n + [strong] * len(esc),
                "status": "completed",
                "success": np.r_[ok_w, ok_s],
                "prompt_tokens": 1000,
                "output_tokens": 100,
            }
        )
        ev = NightlyEvaluator(accuracy=1.0, prior_strength=1.0, sample_share=0.5, mode=mode)
        offer = next(o for o in inp.catalog.by_tier["realtime"] if o.model == strong)
        prior = offer.expected_quality[skill]
        out = ev.night(att, inp.catalog, inp.prices, None, np.random.default_rng(1), q)
        est[mode] = offer.expected_quality[skill]
        if mode == "replay":
            assert out["evaluator_replay_usd"] > 0
    truth = float(ps.mean())
    assert est["observed"] < truth - 0.03  # judged only on the hard, escalated requests
    assert est["first"] == prior  # no first attempt ever went to the strong model: prior kept
    assert est["replay"] == pytest.approx(truth, abs=0.015)


def test_evaluator_moves_the_local_threshold_in_the_right_direction(cfg) -> None:
    inp = setup(compose_cfg(["workload.n_requests=10"]), 0)
    for o in inp.catalog.by_tier["local"]:  # what the offline evaluation said: not good enough
        o.expected_quality["code_change"] = 0.4
    router = RuleRouter(inp.catalog, local_min_quality=0.7)
    local = inp.catalog.by_tier["local"][0]
    assert not router.local_ok["code_change"]  # prior: no local model good enough for code changes
    ev = NightlyEvaluator(accuracy=1.0, prior_strength=20)
    before = local.expected_quality["code_change"]
    out = ev.night(
        _attempts("code_change", "local", local.model, 400, 0.95),
        inp.catalog,
        inp.prices,
        router,
        np.random.default_rng(0),
    )
    assert local.expected_quality["code_change"] > before
    assert router.local_ok["code_change"]  # evidence of success opens the local route
    ev.night(
        _attempts("code_change", "local", local.model, 4000, 0.2),
        inp.catalog,
        inp.prices,
        router,
        np.random.default_rng(1),
    )
    assert not router.local_ok["code_change"]  # and evidence of failure closes it again
    assert out["evaluator_cost_usd"] == pytest.approx(400 * 1100 * 7.5e-8 + 400 * 50 * 3e-7)


@pytest.mark.parametrize(("debias", "expected"), [(False, 0.75), (True, 1.0)])
def test_evaluator_noise_and_its_correction(debias: bool, expected: float) -> None:
    """A 75 %-accurate judge sees a perfect model succeed 75 % of the time; debiasing recovers 100 %."""
    inp = setup(compose_cfg(["workload.n_requests=10"]), 0)
    o = inp.catalog.by_tier["realtime"][0]
    ev = NightlyEvaluator(accuracy=0.75, prior_strength=1, debias=debias)
    att = _attempts("draft_reply", "realtime", o.model, 20_000, 1.0)
    ev.night(att, inp.catalog, inp.prices, None, np.random.default_rng(0))
    assert o.expected_quality["draft_reply"] == pytest.approx(expected, abs=0.02)


@settings(max_examples=50, deadline=None)
@given(a=st.floats(0, 1e6), b=st.floats(0, 1e6), gain=st.floats(0, 5), half=st.floats(1, 1e5))
def test_learning_curve_is_monotone_and_capped(a: float, b: float, gain: float, half: float) -> None:
    lo, hi = sorted((a, b))
    ga, gb = learning_curve(np.array([lo, hi]), gain, half)
    assert 0 <= ga <= gb <= gain + 1e-12


def test_distillation_raises_local_ability_from_teacher_examples() -> None:
    inp = setup(compose_cfg(["workload.n_requests=10"]), 0)
    d = Distiller(gain_max=1.0, examples_half=100, usd_per_example=0.01)
    local = inp.catalog.by_tier["local"][0]
    i, j = inp.quality.models.index(local.model), inp.quality.skills.index("code_change")
    base, q0 = inp.quality.ability[i, j], local.expected_quality["code_change"]
    out = d.night(
        _attempts("code_change", "realtime", "gpt-4.1", 300, 0.9), inp.quality, inp.catalog, inp.skills
    )
    assert out["distilled_examples"] == 270 and out["distillation_cost_usd"] == pytest.approx(2.7)
    assert inp.quality.ability[i, j] == pytest.approx(base + 1.0 * (1 - 2 ** (-270 / 100)))
    # only the world changed: the policies learn the gain through the evaluator, not from here
    assert local.expected_quality["code_change"] == q0
    for _ in range(20):
        d.night(
            _attempts("code_change", "realtime", "gpt-4.1", 1000, 1.0), inp.quality, inp.catalog, inp.skills
        )
    assert inp.quality.ability[i, j] <= base + 1.0 + 1e-12  # capped


def test_multiday_run_is_deterministic_and_accounts_every_day() -> None:
    """Two runs in one process agree bit for bit (this caught a tier-order dependence in the
    evaluator's updates of a model's batch and real-time offers, which share its quality)."""
    over = [
        "experiment=fleet_14d",
        "multiday.days=3",
        "workload.arrival.rate_per_s=0.02",
        "workload.n_requests=20000",
    ]
    a, sa = run_multiday(compose_cfg(over))
    b, _ = run_multiday(compose_cfg(over))
    assert a.equals(b)
    assert a["day"].to_list() == [1, 2, 3]
    assert sa["requests"] == int(a["n_requests"].sum())
    shares = a.select(
        pl.sum_horizontal("share_local", "share_batch", "share_realtime", "share_cache", "share_none")
    )
    assert np.allclose(shares.to_series().to_numpy(), 1.0)
    assert (a["evaluator_cost_usd"] > 0).all() and (a["distillation_cost_usd"] > 0).all()


def test_daily_local_skills_says_what_the_router_sends_local() -> None:
    """``local_skills`` is a String column for every router (None without the local rule), so the
    daily tables of different architectures concatenate (fleet_14d.py writes them into one CSV)."""
    small = ["multiday.days=2", "workload.arrival.rate_per_s=0.005", "workload.n_requests=3000"]
    base = ["experiment=fleet_14d", *small, "multiday.distillation.enabled=false"]
    rt, _ = run_multiday(compose_cfg([*base, "policy=all_realtime", "multiday.evaluator.enabled=false"]))
    rf, _ = run_multiday(compose_cfg(base))
    assert rt.schema["local_skills"] == rf.schema["local_skills"] == pl.String
    assert rt["local_skills"].is_null().all()
    day1 = set(rf["local_skills"][0].split(";"))
    assert day1 and day1 <= set(setup(compose_cfg(base), 0).skills.names)
    assert pl.concat([rt, rf], how="diagonal").height == 4
