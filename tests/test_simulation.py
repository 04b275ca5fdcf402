"""End-to-end simulation in-process: conservation, outcome consistency, costs, determinism, CRN."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simroute.analysis.summary import summarize
from simroute.economics.prices import PriceTable
from simroute.outcomes import OUTCOMES
from simroute.policy.registry import PolicyContext
from simroute.records import SimResult
from simroute.sim.build import build_policies, setup
from simroute.sim.run import simulate
from simroute.tiers.local import LocalTier
from simroute.workload.skills import SkillCatalog


def run(
    cfg: dict[str, Any],
    skills: SkillCatalog,
    prices: PriceTable,
    n: int = 1500,
    arm: str = "policy",
    seed: int = 0,
) -> SimResult:
    cfg = copy.deepcopy(cfg)
    cfg["workload"]["n_requests"] = n
    inp = setup(cfg, seed)
    policies = build_policies(cfg[arm], PolicyContext(inp.skills.names, inp.catalog, seed))
    return simulate(inp.table, policies, cfg["tiers"], inp.catalog, inp.quality, seed, progress=False)


def check_conservation(res: SimResult, n: int, cfg: dict[str, Any]) -> None:
    r, a = res.requests, res.attempts
    assert r.height == n
    assert r["request_id"].to_list() == list(range(n))  # each request exactly once
    assert set(r["outcome"].unique().to_list()) <= set(OUTCOMES)
    counts = r.group_by("outcome").len()
    assert int(counts["len"].sum()) == n
    assert a.height == int(r["attempts"].sum())
    # the response cache: one lookup outcome per request; a hit has no attempt and ends at once
    look = r["cache_lookup"].value_counts()
    assert int(look["count"].sum()) == n
    hits = r.filter(pl.col("final_tier") == "cache")
    assert (hits["attempts"] == 0).all() and hits["cache_lookup"].is_in(["exact", "semantic"]).all()
    assert hits["outcome"].cast(pl.String).is_in(["succeeded", "failed"]).all()
    assert set(hits["cache_source_id"].to_list()) <= set(r["request_id"].to_list())
    issued = ~pl.col("final_tier").is_in(["cache", "none"])
    assert (r.filter(issued)["attempts"] >= 1).all()
    gone = r.filter(pl.col("outcome") == "cancelled")  # closed loop: never issued, nothing spent
    assert (gone["final_tier"] == "none").all() and (gone["attempts"] == 0).all()
    assert gone["e2e_s"].is_nan().all() and not gone["deadline_met"].any()
    assert (gone["cost_total_usd"] == gone["cost_local_usd"]).all() and (
        r["final_tier"] == "none"
    ).sum() == gone.height
    if res.cache_counts:
        for k in ("exact", "semantic", "miss", "bypass"):
            assert res.cache_counts[k] == int((r["cache_lookup"] == k).sum())
    r = r.filter(issued)
    last = a.group_by("request_index").agg(pl.all().last()).sort("request_index")
    deadline_at = (r["arrival_s"] + r["deadline_s"]).to_numpy()
    end = last["end_s"].to_numpy()
    outcome = r["outcome"].cast(pl.String).to_numpy()
    ok = last["success"].to_numpy()
    status = last["status"].to_numpy()
    assert np.all(ok[outcome == "succeeded"]) and np.all(
        end[outcome == "succeeded"] <= deadline_at[outcome == "succeeded"]
    )
    done_at = (r["arrival_s"] + r["e2e_s"]).to_numpy()  # after the last check, too
    assert np.all(done_at[outcome == "timed_out"] > deadline_at[outcome == "timed_out"])
    assert np.all(status[outcome == "dropped"] == "rejected")
    assert np.all(np.isin(status[outcome == "failed"], ["completed", "expired", "error"]))
    assert int(r["api_retries"].sum()) == int(a["retries"].sum())
    assert not np.any(r["correct"].to_numpy()[outcome == "failed"])  # (a right answer can be rejected)
    assert np.all(r["deadline_met"].to_numpy() == (done_at <= deadline_at))
    assert np.all(r["correct"].to_numpy() == (last["accepted"].to_numpy() & ok))
    assert np.all(r["correct"].to_numpy()[outcome == "succeeded"])
    assert np.all(r["deadline_met"].to_numpy()[outcome == "succeeded"])
    assert r["final_tier"].to_list() == last["tier"].to_list()
    # cost accounting: per-request parts add up; local share sums to the provisioned cost
    np.testing.assert_allclose(
        res.requests["cost_total_usd"].sum(),
        res.requests["cost_api_usd"].sum()
        + res.local_fixed_usd
        + res.requests["cost_classifier_usd"].sum()
        + res.requests["cost_verifier_usd"].sum()
        + res.requests["cost_cache_usd"].sum(),
        rtol=1e-9,
    )
    np.testing.assert_allclose(res.requests["cost_local_usd"].sum(), res.local_fixed_usd, rtol=1e-9)
    np.testing.assert_allclose(r["cost_api_usd"].sum(), a["cost_usd"].sum(), rtol=1e-9)
    assert (a.filter(pl.col("status") != "completed")["cost_usd"] == 0).all()


def test_router_first_conserves_requests(cfg, skills, prices) -> None:
    res = run(cfg, skills, prices)
    check_conservation(res, 1500, cfg)
    assert set(res.requests["first_tier"].unique()) == {"local", "batch", "realtime", "cache", "none"}


def test_baseline_is_all_realtime_on_the_strongest_model(cfg, skills, prices) -> None:
    res = run(cfg, skills, prices, arm="baseline")
    check_conservation(res, 1500, cfg)
    assert set(res.requests["final_tier"].unique().to_list()) <= {"realtime", "cache", "none"}
    # the strongest by what the policies know (their offline-evaluated expectations)
    inp = setup(cfg, 0)
    first = res.attempts.filter(pl.col("attempt") == 0).join(
        res.requests.select(pl.col("request_id").alias("request_index"), "skill_pred"), on="request_index"
    )
    top = {s: inp.catalog.strongest("realtime", s).model for s in inp.skills.names}
    assert all(top[s] == m for s, m in zip(first["skill_pred"], first["model"], strict=True))
    assert res.local_fixed_usd == 0.0


def test_simulation_is_deterministic(cfg, skills, prices) -> None:
    a, b = run(cfg, skills, prices, seed=4), run(cfg, skills, prices, seed=4)
    assert a.requests.equals(b.requests) and a.attempts.equals(b.attempts)
    c = run(cfg, skills, prices, seed=5)
    assert not a.requests.equals(c.requests)


def test_common_random_numbers_pair_the_arms(cfg, skills, prices) -> None:
    """Both arms draw a request's first-attempt success from the same uniform, so on requests where
    they used the same model on the first attempt, their first-attempt results agree exactly."""
    pol, base = run(cfg, skills, prices), run(cfg, skills, prices, arm="baseline")
    a0 = pol.attempts.filter(pl.col("attempt") == 0)
    b0 = base.attempts.filter(pl.col("attempt") == 0)
    j = a0.join(b0, on="request_index", suffix="_b").sort("request_index")  # cache hits have none
    same = (j["model"] == j["model_b"]) & (j["tier"] == "realtime") & (j["status"] == "completed")
    assert same.sum() > 20
    assert (j.filter(same)["success"] == j.filter(same)["success_b"]).all()


def test_summary_counts_add_up(cfg, skills, prices) -> None:
    res, base = run(cfg, skills, prices), run(cfg, skills, prices, arm="baseline")
    s = summarize(res, {"policy": "x"}, base)
    assert sum(s["outcomes"].values()) == 1500
    assert sum(s["tier_share"]["served"].values()) == pytest.approx(1.0)
    assert s["cost"]["total_usd"] == pytest.approx(
        sum(s["cost"]["by_tier_usd"].values())
        + s["cost"]["classifier_usd"]
        + s["cost"]["verifier_usd"]
        + s["cost"]["response_cache_lookups_usd"]
    )
    assert s["baseline"]["cost_reduction"] == pytest.approx(
        1 - s["cost_total_usd"] / s["baseline"]["cost_total_usd"]
    )
    assert s["latency"]["by_urgency"]["batchable"]["e2e_s"]["p50"] > 600  # batch window


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 400),
    replicas=st.integers(1, 2),
    seats=st.integers(1, 8),
    max_queue=st.integers(0, 4),
    max_attempts=st.integers(1, 3),
    completion=st.sampled_from([30.0, 3600.0, 200_000.0]),
    rate=st.sampled_from([0.5, 5.0, 50.0]),
    seed=st.integers(0, 1000),
    rpm=st.sampled_from([0, 30, 600]),
    error_rate=st.sampled_from([0.0, 0.3]),
    outage=st.booleans(),
    repeats=st.booleans(),
    ttl=st.sampled_from([5.0, 86_400.0]),
    sticky=st.booleans(),
)
def test_conservation_under_stress(
    cfg,
    skills,
    prices,
    n,
    replicas,
    seats,
    max_queue,
    max_attempts,
    completion,
    rate,
    seed,
    rpm,
    error_rate,
    outage,
    repeats,
    ttl,
    sticky,
) -> None:
    """Tiny local pools (drops), expiring batch jobs, short attempt budgets, API rate limits, errors
    and outages, many repeats with a short- or long-lived response cache, sticky sessions or not:
    still exactly one terminal state per request, and the accounting holds."""
    c = copy.deepcopy(cfg)
    if repeats:
        for p in c["skills"]["profiles"].values():
            p["repeat"] = {"exact": 0.4, "near": 0.3}
    c["policy"]["response_cache"]["ttl_s"] = ttl
    c["policy"]["sticky_sessions"] = sticky
    for p in c["tiers"]["local"]["pools"]:
        p["engine"].update(max_num_seqs=seats)
        p.update(replicas=replicas, max_queue=max_queue)
    rt = c["tiers"]["realtime"]
    rt["rate_limits"]["default"] = {"rpm": rpm, "tpm": 0}
    rt["faults"] = {"error_rate": error_rate, "outages": [{"start_s": 0.0, "end_s": 120.0}] if outage else []}
    rt["retry"] = {"max_retries": 2, "backoff_base_s": 2.0, "backoff_max_s": 30.0, "jitter": 0.5}
    c["tiers"]["batch"].update(completion_median_s=completion, completion_sigma=0.0)
    c["policy"]["escalation"]["max_attempts"] = max_attempts
    c["policy"]["router"]["overflow_queue"] = 10_000  # never overflow: force local queueing/drops
    c["workload"]["arrival"]["rate_per_s"] = rate
    res = run(c, skills, prices, n=n, seed=seed)
    check_conservation(res, n, c)
    if completion > 86_400:
        assert res.batch_jobs == res.batch_expired_jobs
    if outage and rpm == 0 and error_rate == 0:  # the first calls hit the outage and were retried
        first_rt = res.attempts.filter((pl.col("tier") == "realtime") & (pl.col("submit_s") < 100))
        assert first_rt.height == 0 or int(first_rt["retries"].sum()) > 0


def test_engine_fast_forward_changes_nothing_in_a_full_simulation(cfg, skills, prices, monkeypatch) -> None:
    """The local tier wakes its engines only at the ends of pure-decode stretches and jumps over
    them; the simulation must be byte-identical to the reference that wakes every engine at every
    step and steps it (SimPy event order depends on exact times): tables, busy time included."""
    a = run(cfg, skills, prices, n=3000)
    monkeypatch.setattr(LocalTier, "stepwise", True)
    b = run(cfg, skills, prices, n=3000)
    assert a.attempts.equals(b.attempts)
    assert a.requests.equals(b.requests)
    assert (a.attempts["tier"] == "local").sum() > 300


def test_cascade_counts_undetected_failures_and_wasted_escalations(cfg, skills, prices) -> None:
    """With a noisy verifier some wrong answers are accepted (outcome failed, flagged undetected)
    and some right ones rejected (escalated although correct); accounting still closes."""
    c = copy.deepcopy(cfg)
    c["policy"]["verifier"] = {"name": "noisy", "false_accept": 0.3, "false_reject": 0.2, "latency_s": 0.5}
    res = run(c, skills, prices, n=2000)
    check_conservation_basic(res, 2000)
    r, a = res.requests, res.attempts
    und = r.filter(pl.col("undetected_failure"))
    assert und.height > 0 and und["outcome"].cast(pl.String).is_in(["failed", "timed_out"]).all()
    assert not und["correct"].any()
    wasted = a.filter(pl.col("success") & ~pl.col("accepted"))
    assert wasted.height > 0
    # a request whose correct answer was rejected went on to another attempt or ended failed
    first_wasted = wasted.filter(pl.col("attempt") == 0)["request_index"].to_list()
    assert (r[first_wasted]["attempts"] > 1).any()


def check_conservation_basic(res: SimResult, n: int) -> None:
    r = res.requests
    assert r.height == n and r["request_id"].n_unique() == n
    assert int(r.group_by("outcome").len()["len"].sum()) == n
    assert res.attempts.height == int(r["attempts"].sum())


def test_classifier_latency_and_cost_count(cfg, skills, prices) -> None:
    c = copy.deepcopy(cfg)
    c["policy"]["response_cache"]["enabled"] = False  # a cache hit skips classification
    base = run(c, skills, prices, n=500)
    c["policy"]["classifier"] = {"name": "noisy", "accuracy": 0.9, "latency_s": 0.25, "cost_usd": 1e-4}
    slow = run(c, skills, prices, n=500)
    issued = slow.requests.filter(pl.col("outcome") != "cancelled")  # cancelled: never classified
    assert slow.requests["cost_classifier_usd"].sum() == pytest.approx(issued.height * 1e-4)
    # every issued request waits for its classification before anything else happens
    assert (issued["e2e_s"] >= 0.25).all()
    assert slow.requests["cost_total_usd"].sum() == pytest.approx(
        slow.requests["cost_api_usd"].sum()
        + slow.local_fixed_usd
        + slow.requests["cost_verifier_usd"].sum()
        + issued.height * 1e-4
    )
    assert base.requests["cost_classifier_usd"].sum() == 0.0
