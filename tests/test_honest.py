"""Honest comparisons: no policy sees the truth, every draw is paired, every arm gets the same help,
metrics mean what they say, costs are charged as a deployment pays them. Each test fails on the
behaviour before this was fixed."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from simroute.config import CONF_DIR, compose
from simroute.economics.prompt_cache import PromptCache
from simroute.economics.quality import QualityModel
from simroute.policy.registry import PolicyContext
from simroute.policy.types import RequestView
from simroute.records import SimResult
from simroute.runner.experiment import execute
from simroute.sim.build import RunInputs, build_policies, setup
from simroute.sim.run import simulate
from simroute.workload.request import Request

POLICIES = sorted(p.stem for p in (CONF_DIR / "policy").glob("*.yaml"))


def _inputs(n: int = 1200, over: list[str] | None = None) -> tuple[dict[str, Any], RunInputs]:
    cfg = compose([f"workload.n_requests={n}", *(over or [])])
    return cfg, setup(cfg, 0)


def _sim(cfg: dict[str, Any], inp: RunInputs, pcfg: dict[str, Any], seed: int = 0) -> SimResult:
    pol = build_policies(pcfg, PolicyContext(inp.skills.names, inp.catalog, seed))
    return simulate(inp.table, pol, cfg["tiers"], inp.catalog, inp.quality, seed, progress=False)


# --- 1. verification is a real, priced component ---------------------------------------------------


def test_default_run_names_a_priced_judge_and_no_oracle(tmp_path: Path) -> None:
    cfg = compose(["workload.n_requests=800", "figures=false"])
    s = execute(cfg, tmp_path, progress=False)
    assert s["verifier"]["name"] == "judge" and s["verifier"]["model"] == "gpt-4.1-mini"
    assert s["verifier"]["false_accept"] > 0 and s["verifier"]["false_reject"] > 0
    assert s["verifier"]["usd"] > 0 and s["cost"]["verifier_usd"] == pytest.approx(s["verifier"]["usd"])
    assert s["uses_ground_truth"] == [] and s["baseline"]["uses_ground_truth"] == []
    assert s["baseline"]["verifier"]["name"] == "judge"  # the baseline is checked the same way


def test_judge_checks_are_priced_per_completed_attempt() -> None:
    cfg, inp = _inputs()
    res = _sim(cfg, inp, cfg["policy"])
    judge = inp.catalog.offer("realtime", "gpt-4.1-mini")
    done = res.attempts.filter(pl.col("status") == "completed").join(
        res.requests.select(pl.col("request_id").alias("request_index"), "prompt_tokens", "output_tokens"),
        on="request_index",
    )
    tokens_in = (done["prompt_tokens"] + done["output_tokens"] + 300).to_numpy()
    expected = float(np.sum(tokens_in * judge.price_in + 100 * judge.price_out))
    assert res.requests["cost_verifier_usd"].sum() == pytest.approx(expected, rel=1e-9)


def test_oracle_components_are_reported() -> None:
    cfg, inp = _inputs(300)
    pcfg = copy.deepcopy(cfg["policy"])
    pcfg["verifier"] = {"name": "oracle"}
    pcfg["classifier"] = {"name": "oracle"}
    pol = build_policies(pcfg, PolicyContext(inp.skills.names, inp.catalog, 0))
    assert pol.uses_ground_truth() == ["classifier:OracleClassifier", "verifier:OracleVerifier"]
    assert (
        build_policies(cfg["policy"], PolicyContext(inp.skills.names, inp.catalog, 0)).uses_ground_truth()
        == []
    )


def test_without_a_verifier_wrong_answers_are_not_escalated() -> None:
    cfg, inp = _inputs(600)
    pcfg = copy.deepcopy(cfg["policy"])
    pcfg["verifier"] = {"name": "none"}
    res = _sim(cfg, inp, pcfg)
    done = res.attempts.filter(pl.col("status") == "completed")
    assert done["accepted"].all() and res.requests["cost_verifier_usd"].sum() == 0
    # a completed answer, right or wrong, is never followed by another attempt
    retried = res.attempts.filter(pl.col("attempt") > 0).select("request_index", "attempt")
    before = retried.with_columns(pl.col("attempt") - 1).join(res.attempts, on=["request_index", "attempt"])
    assert before.height == retried.height
    assert (before["status"] != "completed").all()
    assert (~done["success"]).any()  # wrong answers were there to escalate
    assert res.requests.filter(~pl.col("correct") & ~pl.col("final_tier").is_in(["cache", "none"]))[
        "undetected_failure"
    ].all()


# --- 3. policies never read the truth -------------------------------------------------------------


def _reachable(obj: Any, seen: set[int] | None = None, depth: int = 0) -> list[Any]:
    """Every object reachable from ``obj`` through attributes, dicts, lists and tuples."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12 or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return []
    seen.add(id(obj))
    out = [obj]
    if isinstance(obj, dict):
        kids = list(obj.keys()) + list(obj.values())
    elif isinstance(obj, (list, tuple, set)):
        kids = list(obj)
    elif isinstance(obj, np.ndarray):
        kids = []
    else:
        kids = list(getattr(obj, "__dict__", {}).values())
        kids += [getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)]
    for k in kids:
        out += _reachable(k, seen, depth + 1)
    return out


@pytest.mark.parametrize("name", POLICIES)
def test_no_shipped_policy_can_reach_the_truth(name: str) -> None:
    """Built from a run's context, no policy layer holds the quality model (true abilities), a world
    request (true skill, difficulty, output length) or the true risk label; and the view a policy
    is handed has none of those fields."""
    cfg, inp = _inputs(200, [f"policy={name}"])
    pol = build_policies(cfg["policy"], PolicyContext(inp.skills.names, inp.catalog, 0))
    layers = [pol.classifier, pol.risk, pol.router, pol.selector, pol.escalation, pol.verifier]
    for obj in _reachable(layers):
        assert not isinstance(obj, (QualityModel, Request, pl.DataFrame)), (name, type(obj))
        assert "difficulty" not in getattr(obj, "__dict__", {}), (name, type(obj))
        assert "hard_truth" not in getattr(obj, "__dict__", {}), (name, type(obj))
    view = {f.name for f in dataclasses.fields(RequestView)}
    assert not view & {"skill", "difficulty", "output_tokens", "u_classify", "hard_truth"}


def test_catalogue_expectations_are_estimates_not_the_truth() -> None:
    _, inp = _inputs(100)
    truth = inp.quality.expected(inp.skills)
    known = np.array(
        [
            [o.expected_quality[s] for s in inp.skills.names]
            for t in inp.catalog.by_tier
            for o in inp.catalog.by_tier[t]
            if t != "batch"
        ]
    )
    rows = [
        inp.quality.models.index(o.model)
        for t in inp.catalog.by_tier
        for o in inp.catalog.by_tier[t]
        if t != "batch"
    ]
    err = np.abs(known - truth[rows])
    assert err.max() > 0.01  # finite judged samples: off the truth
    assert err.mean() < 0.1  # but an informative estimate
    # a change of the world (distillation) does not reach the catalogue by itself
    inp.quality.ability += 3.0
    assert np.array_equal(
        known,
        np.array(
            [
                [o.expected_quality[s] for s in inp.skills.names]
                for t in inp.catalog.by_tier
                for o in inp.catalog.by_tier[t]
                if t != "batch"
            ]
        ),
    )


def test_cache_eligibility_uses_the_predicted_skill() -> None:
    """A cache limited to one skill answers requests *classified* as that skill."""
    cfg, inp = _inputs(2000)
    pcfg = copy.deepcopy(cfg["policy"])
    pcfg["classifier"] = {"name": "noisy", "accuracy": 0.5}
    pcfg["response_cache"]["skills"] = ["draft_reply"]
    r = _sim(cfg, inp, pcfg).requests
    looked = r.filter(pl.col("cache_lookup") != "bypass")
    assert (looked["skill_pred"] == "draft_reply").all()
    assert (looked["skill"] != "draft_reply").any()  # misclassified requests are looked up too


# --- 4. paired randomness -------------------------------------------------------------------------


def test_same_attempt_on_the_same_model_gets_the_same_latency_in_every_policy() -> None:
    cfg, inp = _inputs(1500)
    a = _sim(cfg, inp, cfg["policy"])
    b = _sim(cfg, inp, cfg["baseline"])
    cols = ["request_index", "attempt", "tier", "model", "retries", "start_s", "first_token_s", "end_s"]
    j = a.attempts.select(cols).join(b.attempts.select(cols), on=["request_index", "attempt"], suffix="_b")
    same = j.filter(
        (pl.col("tier") == "realtime")
        & (pl.col("tier_b") == "realtime")
        & (pl.col("model") == pl.col("model_b"))
        & (pl.col("retries") == 0)
        & (pl.col("retries_b") == 0)
        & (pl.col("attempt") == 0)
    )
    assert same.height > 50
    ttft = (same["first_token_s"] - same["start_s"]).to_numpy()
    ttft_b = (same["first_token_s_b"] - same["start_s_b"]).to_numpy()
    np.testing.assert_allclose(ttft, ttft_b, rtol=1e-9)
    np.testing.assert_allclose(
        (same["end_s"] - same["first_token_s"]).to_numpy(),
        (same["end_s_b"] - same["first_token_s_b"]).to_numpy(),
        rtol=1e-9,
    )


# --- 5. fair arms ---------------------------------------------------------------------------------


def test_baselines_get_what_a_sensible_team_runs() -> None:
    cfg = compose()
    rf = cfg["policy"]
    for name in ("all_realtime", "all_batch", "api_only_router"):
        b = compose([f"policy={name}"])["policy"]
        assert b["verifier"] == rf["verifier"], name
        assert b["response_cache"]["enabled"], name
        assert b["escalation"]["name"] == "stronger_model", name
        assert b["provision_local"] is False, name
    assert (
        cfg["tiers"]["realtime"]["prompt_cache"]["enabled"]
        and cfg["tiers"]["batch"]["prompt_cache"]["enabled"]
    )


def test_api_only_router_uses_no_local_gpus_and_pays_none() -> None:
    cfg, inp = _inputs(800, ["policy=api_only_router"])
    res = _sim(cfg, inp, cfg["policy"])
    assert not (res.attempts["tier"] == "local").any()
    assert res.local_fixed_usd == 0.0
    assert (res.attempts["tier"] == "batch").any()


def test_the_baseline_retries_a_rejected_answer_once() -> None:
    cfg, inp = _inputs(800)
    res = _sim(cfg, inp, cfg["baseline"])
    again = res.requests.filter(pl.col("attempts") == 2)
    assert again.height > 0 and (again["tier_path"] == "realtime/realtime").all()


# --- 6. metrics -----------------------------------------------------------------------------------


def test_success_and_slo_follow_from_correct_and_deadline_met(tmp_path: Path) -> None:
    cfg = compose(["workload.n_requests=1500", "figures=false"])
    s = execute(cfg, tmp_path, progress=False)
    r = pl.read_parquet(tmp_path / "requests.parquet")
    assert s["success_rate"] == pytest.approx(float(r["correct"].mean()))
    assert s["slo_attainment"] == pytest.approx(float((r["correct"] & r["deadline_met"]).mean()))
    assert s["slo_attainment"] < s["success_rate"]  # some right answers come late
    for u, block in s["latency"]["by_urgency"].items():  # the same definition per urgency class
        g = r.filter(pl.col("urgency") == u)
        if g.height:
            assert block["slo_attainment"] == pytest.approx(float((g["correct"] & g["deadline_met"]).mean()))
    late_right = r.filter(pl.col("correct") & ~pl.col("deadline_met"))
    assert late_right.height > 0 and (late_right["outcome"] == "timed_out").all()


# --- 7. cost accounting ---------------------------------------------------------------------------


def test_provisioned_gpus_are_paid_even_when_unused() -> None:
    cfg, inp = _inputs(400)
    pcfg = copy.deepcopy(cfg["policy"])
    pcfg["router"] = {"name": "static", "tier": "realtime"}  # provisions local GPUs, never uses them
    res = _sim(cfg, inp, pcfg)
    assert not (res.attempts["tier"] == "local").any()
    n_gpus = sum(p["replicas"] * p["gpus_per_replica"] for p in cfg["tiers"]["local"]["pools"])
    assert res.local_gpus == n_gpus
    expected = n_gpus * cfg["tiers"]["local"]["gpu_hour_usd"] * res.horizon_s / 3600.0
    assert res.local_fixed_usd == pytest.approx(expected) and expected > 0
    assert res.requests["cost_local_usd"].sum() == pytest.approx(expected)


def test_local_gpu_cost_formula_end_to_end() -> None:
    cfg, inp = _inputs(1500)
    res = _sim(cfg, inp, cfg["policy"])
    loc = res.attempts.filter(pl.col("tier") == "local")
    horizon = max(float(res.requests["arrival_s"].max()), float(loc["end_s"].max()))  # last issue
    assert res.horizon_s == horizon
    assert res.local_fixed_usd == pytest.approx(4 * 2.50 * horizon / 3600.0)  # 2x1 + 1x2 GPUs, $2.50/h


def test_local_busy_time_is_gpu_seconds() -> None:
    """busy_s is the attempt's share of engine step time x GPUs per replica: over a pool it adds up
    to at most (replicas x GPUs) x the time the engines ran (not tokens x GPUs)."""
    cfg, inp = _inputs(1500)
    res = _sim(cfg, inp, cfg["policy"])
    loc = res.attempts.filter((pl.col("tier") == "local") & (pl.col("status") == "completed"))
    assert loc.height > 20
    span = float(loc["end_s"].max() - loc["submit_s"].min())
    assert float(loc["busy_s"].sum()) <= 4 * span
    service = (loc["end_s"] - loc["start_s"]).to_numpy()
    busy = loc["busy_s"].to_numpy()
    gpus = np.where(loc["model"].str.contains("32b").to_numpy(), 2, 1)
    assert np.all(busy <= service * gpus + 1e-9)  # no more than its whole service time on its GPUs
    assert np.all(busy > 0)


def test_multiday_days_are_billed_24_hours_each() -> None:
    from simroute.runner.multiday import DAY_S, run_multiday

    over = [
        "experiment=fleet_14d",
        "multiday.days=2",
        "workload.arrival.rate_per_s=0.01",
        "workload.n_requests=4000",
    ]
    over += ["multiday.evaluator.enabled=false", "multiday.distillation.enabled=false"]
    daily, _ = run_multiday(compose(over))
    per_day = 4 * 2.50 * DAY_S / 3600.0  # 4 GPUs at $2.50/h for exactly one day each
    assert daily["local_fixed_usd"].to_list() == pytest.approx([per_day, per_day])
    # GPU use: 4 GPUs x 24 h provisioned each day; busy GPU-seconds <= that; utilisation = their ratio
    assert daily["local_gpus"].to_list() == [4, 4]
    assert daily["local_gpu_s"].to_list() == pytest.approx([4 * DAY_S, 4 * DAY_S])
    busy = daily["local_busy_gpu_s"].to_numpy()
    assert np.all(busy > 0) and np.all(busy <= 4 * DAY_S)
    assert daily["local_gpu_util"].to_numpy() == pytest.approx(busy / (4 * DAY_S))
    none, _ = run_multiday(compose([*over, "policy=all_realtime"]))  # provisions nothing
    assert none["local_gpus"].to_list() == [0, 0] and none["local_gpu_util"].to_list() == [None, None]
    assert none.schema["local_gpu_util"] == daily.schema["local_gpu_util"] == pl.Float64  # tables concatenate


def test_in_flight_prompt_cache_writes_are_not_read() -> None:
    pc = PromptCache(ttl_s=300, min_tokens=64, block_tokens=64)
    ids = np.arange(10, dtype=np.int64)
    assert pc.use(ids, 640, now=0.0, ready_s=2.0) == (0, 640)  # writes, prefill done at 2 s
    assert pc.use(ids, 640, now=1.0, ready_s=3.0)[0] == 0  # concurrent: the write is not done
    assert pc.use(ids, 640, now=2.5)[0] == 639  # after the first prefill: a hit (capped at prompt - 1)


def test_selector_ties_go_to_quality_then_capacity() -> None:
    from simroute.policy.selectors import ThresholdSelector
    from simroute.policy.types import Label, Route

    _, inp = _inputs(50)
    local = inp.catalog.by_tier["local"]
    for o in local:
        o.expected_quality["draft_reply"] = 0.9
    local[0].expected_quality["draft_reply"] = 0.95  # the first by name is not the best
    best = max(local, key=lambda o: (o.expected_quality["draft_reply"], o.capacity)).model
    sel = ThresholdSelector(inp.catalog, threshold=0.7)
    view = RequestView.of(Request(**_world_row()))
    assert sel.select(view, Label("draft_reply", 1.0), Route("local")) == best
    local[0].expected_quality["draft_reply"] = 0.9  # a tie in quality: the larger pool
    big = max(local, key=lambda o: o.capacity).model
    assert sel.select(view, Label("draft_reply", 1.0), Route("local")) == big


def _world_row() -> dict[str, Any]:
    from conftest import request_row

    row = request_row()
    return {
        **{k: row[k] for k in row if k in {f.name for f in dataclasses.fields(Request)}},
        "idx": 0,
        "u_classify": 0.5,
    }


def test_thompson_learns_from_the_verifier_in_use() -> None:
    """The bandit's evidence is the verifier's verdicts, not the truth: with no checking every
    completed attempt counts as a success; with the judge, rejections count as failures."""
    cfg, inp = _inputs(600, ["policy=thompson"])
    learned = {}
    for name in ("none", "judge"):
        pcfg = copy.deepcopy(cfg["policy"])
        if name == "none":
            pcfg["verifier"] = {"name": "none"}
        pol = build_policies(pcfg, PolicyContext(inp.skills.names, inp.catalog, 0))
        prior = {
            k: (pol.router._ab(*k))
            for k in [(s, t) for s in inp.skills.names for t in ("local", "batch", "realtime")]
        }
        res = simulate(inp.table, pol, cfg["tiers"], inp.catalog, inp.quality, 0, progress=False)
        fails = sum(pol.router.beta[k] - prior[k][1] for k in pol.router.beta)
        wins = sum(pol.router.alpha[k] - prior[k][0] for k in pol.router.alpha)
        done = res.attempts.filter(pl.col("status") == "completed")
        assert wins == pytest.approx(float(done["accepted"].sum()))
        assert fails == pytest.approx(float((~done["accepted"]).sum()))
        learned[name] = fails
    assert learned["none"] == 0 and learned["judge"] > 0


def test_a_failed_batch_answer_of_the_strongest_model_is_retried() -> None:
    """The cost_aware q0.9 anomaly: its batch attempts already used the strongest model, and a
    rejected one was never retried (escalation wanted a strictly stronger model)."""
    from simroute.policy.escalation import StrongerModel
    from simroute.policy.types import Attempt, Label

    _, inp = _inputs(50)
    top = inp.catalog.strongest("realtime", "code_change").model
    esc = StrongerModel(inp.catalog, max_attempts=3, retry_same=1)
    view = RequestView.of(Request(**_world_row()))
    label = Label("code_change", 1.0)
    first = [Attempt("batch", top, "completed", False)]
    nxt = esc.next_route(view, label, first)
    assert nxt is not None and nxt.tier == "realtime" and nxt.strong
    assert esc.next_route(view, label, [*first, Attempt("realtime", top, "completed", False)]) is None


def test_an_error_free_checker_is_reported_as_an_oracle() -> None:
    from simroute.policy.verifiers import NoisyVerifier

    assert NoisyVerifier(false_accept=0.0, false_reject=0.0).oracle
    assert not NoisyVerifier(false_accept=0.1, false_reject=0.0).oracle


def test_spilled_record_logs_give_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose record logs are written to their spill files every 97 records (many chunks and
    a partial one in memory) writes the same files as a run that never spills."""
    import simroute.records

    outs = {}
    for spill in (10**9, 97):
        monkeypatch.setattr(simroute.records, "SPILL_ROWS", spill)
        cfg = compose(["workload.n_requests=600", "figures=false", "parallel_arms=false"])
        d = tmp_path / str(spill)
        execute(cfg, d, progress=False)
        files = ("requests.parquet", "baseline_requests.parquet", "sessions.parquet", "summary.json")
        outs[spill] = {f: (d / f).read_bytes() for f in files}
    assert outs[97] == outs[10**9]


def test_arms_of_the_same_name_are_both_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost-vs-success figure gets one point per arm, also when both arms have the same name."""
    from simroute.analysis import plots

    drawn: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(plots, "cost_vs_success", lambda points, _path, _title: drawn.append(points))
    cfg = compose(["workload.n_requests=600", "baseline.label=router_first", "parallel_arms=false"])
    out = execute(cfg, tmp_path, progress=False)
    assert out["policy"] == out["baseline_policy"] == "router_first"
    (points,) = drawn
    assert [p["cost_total_usd"] for p in points] == [out["cost_total_usd"], out["baseline"]["cost_total_usd"]]


def test_a_failed_baseline_leaves_no_result_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy arm's tables and figures are written before the baseline runs; if the baseline
    then fails, they are removed (a failed run leaves no result files) and the error is raised."""
    from simroute.runner import experiment

    run = experiment.ArmJob.run

    def fail_baseline(job: experiment.ArmJob, policies: Any = None, attempt_columns: Any = None) -> SimResult:
        if job.label.endswith("(baseline)"):
            raise RuntimeError("baseline failed")
        return run(job, policies, attempt_columns)

    monkeypatch.setattr(experiment.ArmJob, "run", fail_baseline)
    cfg = compose(["workload.n_requests=300", "parallel_arms=false"])
    with pytest.raises(RuntimeError, match="baseline failed"):
        execute(cfg, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_arms_in_two_processes_give_the_same_bytes(tmp_path: Path) -> None:
    """The baseline simulated in a second process (parallel_arms) writes the same files."""
    outs = {}
    for parallel in (False, True):
        cfg = compose(["workload.n_requests=600", "figures=false", f"parallel_arms={str(parallel).lower()}"])
        d = tmp_path / str(parallel)
        execute(cfg, d, progress=False)
        outs[parallel] = {
            f: (d / f).read_bytes() for f in ("requests.parquet", "baseline_requests.parquet", "summary.json")
        }
        assert not (d / ".baseline_result").exists()  # the handoff files are removed once read
        assert not (d / ".baseline_inputs").exists()
    assert outs[False] == outs[True]


@pytest.mark.parametrize("deadline", [None, 123.5])
def test_request_view_copies_each_field_by_name(deadline: float | None) -> None:
    """The view holds each of its fields from the request's field of the same name (every value
    distinct, so a shifted field shows), the deadline replaced when one is given."""
    row = _world_row()
    rng = np.random.default_rng(3)
    for i, f in enumerate(dataclasses.fields(Request)):
        v = row.get(f.name, f.default)
        if isinstance(v, bool) or f.name == "after_ids":
            continue
        if isinstance(v, int):
            row[f.name] = 1000 + i
        elif isinstance(v, float):
            row[f.name] = float(rng.uniform(1, 2)) + i
        elif isinstance(v, str):
            row[f.name] = f"s{i}"
    req = Request(**row)
    view = RequestView.of(req, deadline)
    for f in dataclasses.fields(RequestView):
        want = deadline if f.name == "deadline_s" and deadline is not None else getattr(req, f.name)
        assert getattr(view, f.name) == want, f.name
