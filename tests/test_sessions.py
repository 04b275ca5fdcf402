"""Closed-loop sessions: each step waits for the steps it needs plus its think time; a session ends
when a step ends without an answer (unless ``workload.session_retry`` lets it go on); open-loop
replay keeps the recorded times; no step another step needs waits for batch unless the whole rest of
its session can; multi-day runs gate within a day."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import polars as pl
import pytest

from simroute.errors import ConfigError
from simroute.policy.registry import PolicyContext
from simroute.records import SimResult
from simroute.runner.multiday import DAY_S, _day_table
from simroute.sim.build import build_policies, setup
from simroute.sim.run import simulate
from simroute.sim.sessions import ReplayConfig, route_deadlines
from simroute.workload.schema import RequestTable
from tests.conftest import compose_cfg, request_row
from tests.test_simulation import check_conservation


def _run(overrides: list[str], arm: str = "policy", seed: int = 0) -> tuple[SimResult, dict[str, Any]]:
    cfg = compose_cfg(overrides)
    inp = setup(cfg, seed)
    policies = build_policies(cfg[arm], PolicyContext(inp.skills.names, inp.catalog, seed))
    res = simulate(
        inp.table,
        policies,
        cfg["tiers"],
        inp.catalog,
        inp.quality,
        seed,
        progress=False,
        replay=ReplayConfig.from_config(cfg["workload"]),
    )
    return res, cfg


@pytest.fixture(scope="module")
def claude() -> tuple[SimResult, dict[str, Any]]:
    return _run(["workload=claude_code", "workload.n_requests=2500"])


@pytest.fixture(scope="module")
def fleet() -> tuple[SimResult, dict[str, Any]]:
    return _run(["workload.n_requests=1200"])


def _gates(r: pl.DataFrame) -> pl.DataFrame:
    """One row per (request, gate) with the gate's completion time and outcome."""
    done = r.select(
        pl.col("request_id").alias("gate"),
        (pl.col("arrival_s") + pl.col("e2e_s").fill_nan(0.0)).alias("gate_done_s"),
        pl.col("outcome").cast(pl.String).alias("gate_outcome"),
        pl.col("undetected_failure").alias("gate_undetected"),
    )
    return (
        r.select("request_id", "arrival_s", "think_s", "outcome", pl.col("after_ids").alias("gate"))
        .explode("gate")
        .drop_nulls("gate")
        .join(done, on="gate")
    )


def check_closed_loop(r: pl.DataFrame) -> None:
    """Every gated step that ran was issued exactly at max(gate completion) + think_s; a cancelled
    step had a gate without an answer; every step with no gate kept its recorded arrival."""
    g = _gates(r).with_columns(
        answered=(pl.col("gate_outcome") == "succeeded")
        | ((pl.col("gate_outcome") == "failed") & pl.col("gate_undetected"))
    )
    per = g.group_by("request_id").agg(
        pl.col("arrival_s").first(),
        pl.col("think_s").first(),
        pl.col("outcome").first().cast(pl.String),
        pl.col("gate_done_s").max(),
        pl.col("answered").all(),
    )
    ran = per.filter(pl.col("outcome") != "cancelled")
    assert ran.height > 0
    np.testing.assert_allclose(
        ran["arrival_s"].to_numpy(), (ran["gate_done_s"] + ran["think_s"]).to_numpy(), rtol=0, atol=1e-6
    )
    assert ran["answered"].all()  # session_retry 0: a step runs only after answered gates
    gone = per.filter(pl.col("outcome") == "cancelled")
    assert not gone["answered"].any()
    np.testing.assert_allclose(gone["arrival_s"].to_numpy(), gone["gate_done_s"].to_numpy(), atol=1e-6)
    assert r.filter(pl.col("outcome") == "cancelled")["e2e_s"].is_nan().all()
    free = r.filter(pl.col("after_ids").list.len() == 0)
    assert (free["arrival_s"] == free["recorded_arrival_s"]).all()


def test_claude_code_main_steps_wait_for_previous_completion_plus_think(claude) -> None:
    res, cfg = claude
    r = res.requests
    check_conservation(res, r.height, cfg)
    check_closed_loop(r)
    # the done-when check, row by row: each main-agent step after the first of its session
    main = r.filter(pl.col("agent") == "main").sort("session_id", "step")
    prev_done = (main["arrival_s"] + main["e2e_s"]).shift(1)
    same = (main["session_id"] == main["session_id"].shift(1)).fill_null(False)
    ok = main.filter(same & (pl.col("outcome") != "cancelled")).with_columns(
        prev_done=prev_done.filter(same & (main["outcome"] != "cancelled"))
    )
    assert ok.height > 100
    assert (ok["arrival_s"] >= ok["prev_done"] + ok["think_s"] - 1e-6).all()
    assert (r["outcome"] == "cancelled").any()  # failures do end sessions


def test_synthetic_sessions_are_closed_loop(fleet) -> None:
    res, cfg = fleet
    r = res.requests
    check_conservation(res, r.height, cfg)
    check_closed_loop(r)
    steps = r.filter(pl.col("step") > 0)
    assert (steps["after_ids"].list.len() == 1).all()
    assert (r.filter(pl.col("step") == 0)["after_ids"].list.len() == 0).all()


def test_a_slower_tier_delays_the_rest_of_the_session(claude) -> None:
    res, _ = claude
    r = res.requests.filter(pl.col("outcome") != "cancelled")
    lag = (r["arrival_s"] - r["recorded_arrival_s"]).to_numpy()
    assert lag.max() > 0  # simulated service is not the recorded one: issue times move


def test_session_retry_lets_sessions_go_on() -> None:
    res, cfg = _run(["workload=claude_code", "workload.n_requests=1500", "workload.session_retry=100000"])
    r = res.requests
    assert not (r["outcome"] == "cancelled").any()
    check_conservation(res, r.height, cfg)


def test_open_loop_replays_the_recorded_times() -> None:
    res, _ = _run(["workload=claude_code", "workload.n_requests=800", "workload.replay=open_loop"])
    r = res.requests
    assert (r["arrival_s"] == r["recorded_arrival_s"]).all()
    assert not (r["outcome"] == "cancelled").any()


@pytest.mark.parametrize("bad", ["workload.replay=sometimes", "workload.session_retry=-1"])
def test_bad_replay_config_is_a_clean_error(bad: str) -> None:
    cfg = compose_cfg([bad])
    with pytest.raises(ConfigError, match="workload"):
        ReplayConfig.from_config(cfg["workload"])


def test_a_step_others_need_waits_for_batch_only_if_the_rest_of_the_session_can() -> None:
    res, _ = _run(["workload=claude_code", "workload.n_requests=2500", "policy=all_batch"])
    r = res.requests
    rest = route_deadlines(r)
    batch = (r["first_tier"] == "batch").to_numpy()
    assert batch.any()
    assert (rest[batch] >= 86_400.0).all()
    gating = r["request_id"].is_in(r["after_ids"].explode().drop_nulls().to_list()).to_numpy()
    interactive = (r["urgency"] == "interactive").to_numpy()
    assert not (batch & gating & interactive).any()
    # urgency is a property of a recorded session
    assert (r.group_by("session_id").agg(pl.col("urgency").n_unique())["urgency"] == 1).all()


def test_route_deadline_is_the_rest_of_the_session() -> None:
    df = pl.DataFrame(
        {
            "request_id": [0, 1, 2, 3],
            "session_id": [0, 0, 0, 1],
            "deadline_s": [86_400.0, 60.0, 86_400.0, 86_400.0],
            "after_ids": [[], [0], [1], []],
        }
    )
    assert route_deadlines(df).tolist() == [60.0, 60.0, 86_400.0, 86_400.0]


def _route_deadlines_by_window(df: pl.DataFrame) -> np.ndarray:
    """The plain Polars form of :func:`route_deadlines` (a reversed cumulative minimum over each
    session), which the column kernel replaced."""
    own = df["deadline_s"].to_numpy()
    rest = df.select(pl.col("deadline_s").reverse().cum_min().reverse().over("session_id"))
    gating = df["request_id"].is_in(df["after_ids"].explode().drop_nulls().implode()).to_numpy()
    return np.where(gating, rest.to_series().to_numpy(), own)


@pytest.mark.parametrize("seed", range(6))
def test_route_deadlines_equal_the_session_window_on_interleaved_sessions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    after = [
        [int(3 * a) for a in rng.choice(n, min(n, int(rng.integers(0, 3))), replace=False)] for _ in range(n)
    ]
    df = pl.DataFrame(
        {
            "request_id": np.arange(n) * 3,
            "session_id": rng.integers(0, 12, n) * 7 - 20,  # interleaved, negative ids too
            "deadline_s": rng.uniform(1.0, 100.0, n).round(0),
            "after_ids": pl.Series(after, dtype=pl.List(pl.Int64)),
        }
    )
    rest = route_deadlines(df)
    assert np.array_equal(rest, _route_deadlines_by_window(df))
    assert (rest < df["deadline_s"].to_numpy()).any()  # the case is exercised


def test_multiday_gates_within_the_day(skills) -> None:
    rows = [
        request_row(0, session_id=0, step=0, arrival_s=DAY_S - 10.0, after_ids=[], think_s=0.0),
        request_row(1, session_id=0, step=1, arrival_s=DAY_S + 5.0, after_ids=[0], think_s=3.0),
        request_row(2, session_id=0, step=2, arrival_s=DAY_S + 9.0, after_ids=[1], think_s=3.0),
    ]
    table = RequestTable(pl.DataFrame(rows), "t", 16, skills.names)
    day1 = _day_table(table, 1)
    assert day1 is not None
    assert day1.df["after_ids"].to_list() == [[], [1]]
    assert day1.df["arrival_s"].to_list() == [5.0, 9.0]


def test_open_and_closed_loop_agree_without_sessions() -> None:
    a, _ = _run(["workload=azure_conv", "workload.n_requests=400", "workload.replay=closed_loop"])
    b, _ = _run(["workload=azure_conv", "workload.n_requests=400"])
    assert a.requests.equals(b.requests)


def test_cancelled_requests_cost_nothing(claude) -> None:
    res, _ = claude
    r = res.requests.filter(pl.col("outcome") == "cancelled")
    cols = ["cost_api_usd", "cost_classifier_usd", "cost_verifier_usd", "cost_cache_usd"]
    assert all((r[c] == 0).all() for c in cols)
    assert copy.copy(r.height) > 0


def test_as_recorded_baseline_calls_the_recorded_model() -> None:
    """The team's own routing: every attempted call's first model is the one the trace recorded."""
    from simroute.policy.selectors import litellm_id

    over = ["experiment=claude_code", "workload.n_requests=1500", "workload.session_retry=100000"]
    res, _ = _run(over, arm="baseline")
    r = res.requests
    ran = r.filter(pl.col("attempts") > 0)
    assert ran.height > 1200
    want = [litellm_id(m) for m in ran["recorded_model"].to_list()]
    assert ran["first_model"].to_list() == want
    assert (ran["first_tier"] == "realtime").all()
    rest = r.filter(pl.col("attempts") == 0)
    assert rest["final_tier"].is_in(["cache", "none"]).all()
    assert res.local_fixed_usd == 0.0


def test_litellm_ids_of_recorded_models() -> None:
    from simroute.policy.selectors import litellm_id

    assert litellm_id("claude-opus-4-5-20251101") == "claude-opus-4-5"
    assert litellm_id("claude-sonnet-4-20250514") == "claude-sonnet-4"
    assert litellm_id("claude-opus-4-6") == "claude-opus-4-6"
    assert litellm_id("gpt-4.1") == "gpt-4.1"


def test_recorded_model_not_offered_is_a_clean_error() -> None:
    with pytest.raises(ConfigError, match="models=claude"):
        _run(
            ["workload=claude_code", "workload.n_requests=50", "policy@baseline=as_recorded"], arm="baseline"
        )


@pytest.mark.parametrize("b", [0, 10**12])  # dense ids (a lookup table) and sparse ones (binary search)
def test_session_gate_releases_in_row_order_and_applies_the_retry_budget(b: int) -> None:
    import simpy

    from simroute.sim.session_gate import ANSWERED, CANCELLED_GATE, UNANSWERED, SessionGate

    env = simpy.Environment()
    released: list[tuple[float, int]] = []
    # rows 0-1 gate nothing; row 2 waits for ids 10, 11; row 3 for 10; row 4 for 11 twice; row 5 for 12
    off = np.array([0, 0, 0, 2, 3, 5, 6])
    gate = SessionGate(
        env, 1, lambda row: released.append((env.now, row)), off, b + np.array([10, 11, 10, 11, 11, 12])
    )
    assert gate.gated.tolist() == [False, False, True, True, True, True]

    def finishing() -> Any:
        gate.finish(b + 99, ANSWERED)  # gates nothing
        gate.finish(b + 11, UNANSWERED)
        yield env.timeout(1.0)
        gate.finish(b + 10, ANSWERED)
        gate.finish(b + 10, CANCELLED_GATE)  # already terminal: ignored
        yield env.timeout(1.0)
        gate.finish(b + 12, CANCELLED_GATE)

    env.process(finishing())
    env.run()
    assert released == [(0.0, 4), (1.0, 2), (1.0, 3), (2.0, 5)]  # ready together: row order
    assert gate.may_go_on(7, [b + 10]) and gate.may_go_on(7, [b + 10, b + 11])  # one unanswered step forgiven
    assert gate.may_go_on(7, [b + 11])  # the same one again: still forgiven
    assert not gate.may_go_on(8, [b + 12])  # a cancelled gate always cancels
    gate2 = SessionGate(env, 0, released.append, np.array([0, 1]), b + np.array([11]))
    gate2.finish(b + 11, UNANSWERED)
    env.run()
    assert not gate2.may_go_on(7, [b + 11])  # no retry budget


def test_closed_loop_local_tier_equals_stepping_every_engine(claude, monkeypatch) -> None:
    """Claude Code sessions (closed loop: a step's submit follows its gate's completion; long
    prompts with shared prefixes) give byte-identical tables whether the local tier wakes its
    engines only at stretch ends or at every step (the reference): its results do not depend on
    how the engines' steps are grouped into runs."""
    from simroute.tiers.local import LocalTier

    res, _ = claude
    monkeypatch.setattr(LocalTier, "stepwise", True)
    ref, _ = _run(["workload=claude_code", "workload.n_requests=2500"])
    assert res.attempts.equals(ref.attempts)
    assert res.requests.equals(ref.requests)
    assert (res.attempts["tier"] == "local").sum() > 200 and (res.requests["cached_tokens"] > 0).sum() > 100
