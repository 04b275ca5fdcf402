"""Multi-day runs: simulate day by day; at night evaluate, retune and distil; write ``daily.parquet``.

The workload spans ``multiday.days`` days (e.g. diurnal arrivals with growth and a drifting skill
mix). Each day is simulated on its own (engines and queues start empty at midnight; the day's luck
comes from the run seed and the day index), while the policies, the catalogue's expected quality
and the local models' abilities carry over and change at night.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simroute import __version__, compiled
from simroute import rng as rng_mod
from simroute.analysis.summary import headline, savings
from simroute.feedback.distillation import Distiller
from simroute.feedback.evaluator import NightlyEvaluator
from simroute.outcomes import DROPPED, FAILED, SERVED_BY, TIMED_OUT
from simroute.policy.registry import PolicyContext
from simroute.policy.response_cache import ResponseCache
from simroute.records import SimResult
from simroute.sim.build import RunInputs, build_policies, setup
from simroute.sim.lifecycle import Policies
from simroute.sim.run import simulate, source_costs
from simroute.sim.sessions import ReplayConfig
from simroute.workload.schema import RequestTable

DAY_S = 86_400.0
_SOURCE_COST = ("request_id", "cost_api_usd", "cost_verifier_usd")  # what a cache hit saves


@dataclass
class _Feedback:
    """What carries over between days: the policies, the response cache (None: none), the nightly
    evaluator and distiller (None: off) and the cost of every earlier request (for cache savings)."""

    policies: Policies
    cache: ResponseCache | None
    evaluator: NightlyEvaluator | None
    distiller: Distiller | None
    past_costs: list[pl.DataFrame] = field(default_factory=list)


def _feedback(cfg: Mapping[str, Any], inp: RunInputs, seed: int) -> _Feedback:
    """Build the policies and the night-time components from ``cfg``."""
    md = cfg["multiday"]
    policies = build_policies(cfg["policy"], PolicyContext(inp.skills.names, inp.catalog, seed))
    ev_cfg, di_cfg = dict(md.get("evaluator") or {}), dict(md.get("distillation") or {})
    evaluator = (
        NightlyEvaluator(**{k: v for k, v in ev_cfg.items() if k != "enabled"})
        if ev_cfg.get("enabled")
        else None
    )
    distiller = (
        Distiller(**{k: v for k, v in di_cfg.items() if k != "enabled"}) if di_cfg.get("enabled") else None
    )
    cache = ResponseCache(policies.cache) if policies.cache is not None else None  # kept across days
    return _Feedback(policies, cache, evaluator, distiller)


def run_multiday(cfg: Mapping[str, Any], progress: bool = False) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Simulate ``cfg["multiday"]["days"]`` days; return the daily table and a summary."""
    seed = int(cfg["seed"])
    inp = setup(cfg, seed)
    fb = _feedback(cfg, inp, seed)
    rows = []
    for day in range(int(cfg["multiday"]["days"])):
        table = _day_table(inp.table, day)
        if table is None:
            continue
        local_skills = _local_skills(fb.policies.router)  # before the day: what last night decided
        res = _simulate_day(cfg, inp, fb, table, day, seed, progress)
        row = _day_row(res, day, fb.policies.provision_local)
        row["local_skills"] = local_skills
        row.update(_night(res, inp, fb, day, seed))
        row["cost_with_feedback_usd"] = (
            row["cost_total_usd"] + row["evaluator_cost_usd"] + row["distillation_cost_usd"]
        )
        rows.append(row)
    # all None (no local rule / no GPUs): still String / Float64, so architectures' tables concatenate
    daily = pl.DataFrame(rows, schema_overrides={"local_skills": pl.String, "local_gpu_util": pl.Float64})
    return daily, _summary(daily, cfg, seed)


def _local_skills(router: Any) -> str | None:
    """The predicted skills a router-first router sends to the local tier (``;``-joined, sorted):
    those whose best local model's expected success reaches its ``local_min_quality``. Changes only
    when the nightly evaluator moves an estimate across that bar. None for routers without the rule."""
    ok = getattr(router, "local_ok", None)
    return None if ok is None else ";".join(sorted(s for s, v in ok.items() if v))


def _day_table(table: RequestTable, day: int) -> RequestTable | None:
    """The requests arriving on ``day`` (0-based), times from that midnight; None if there are none.

    Closed-loop sessions are gated within the day only: a step whose gate arrived on an earlier day
    loses that gate (``after_ids`` keeps the ids present in the day's table) and is issued at its own
    arrival time, so a session crossing midnight goes on without waiting for yesterday's steps."""
    arrival = table.df["arrival_s"].to_numpy()  # sorted: the day's rows are contiguous
    a, b = (int(x) for x in np.searchsorted(arrival, [day * DAY_S, (day + 1) * DAY_S], side="left"))
    if a == b:
        return None
    part = table.rows(a, b)
    ids = part.df["request_id"].implode()
    return RequestTable(
        part.df.with_columns(
            pl.col("arrival_s") - day * DAY_S,
            (pl.col("recorded_arrival_s") - day * DAY_S).clip(lower_bound=0.0),
            pl.col("after_ids").list.eval(pl.element().filter(pl.element().is_in(ids))),
        ),
        table.source,
        table.block_tokens,
        table.skills,
        table.label_counts,
        prefixes=part.prefixes,
    )


def _simulate_day(
    cfg: Mapping[str, Any],
    inp: RunInputs,
    fb: _Feedback,
    table: RequestTable,
    day: int,
    seed: int,
    progress: bool,
) -> SimResult:
    """Simulate one day with the carried-over policies and cache (the local GPUs billed for exactly
    one day); attribute cache hits on answers from earlier days to what their sources cost."""
    if fb.cache is not None:
        fb.cache.clock_offset_s = day * DAY_S
    res = simulate(
        table,
        fb.policies,
        cfg["tiers"],
        inp.catalog,
        inp.quality,
        seed * 1000 + day,
        label=f"day {day + 1}",
        progress=progress,
        cache=fb.cache,
        billing_s=DAY_S,  # each day pays for its own 24 h of GPUs: windows never overlap
        replay=ReplayConfig.from_config(cfg["workload"]),
    )
    if fb.cache is None:
        return res
    r = res.requests
    if r["saved_response_cache_usd"].is_nan().any():  # hits on earlier days
        past = pl.concat([*fb.past_costs, r.select(*_SOURCE_COST)])
        res = replace(res, requests=r.with_columns(saved_response_cache_usd=source_costs(r, past)))
    fb.past_costs.append(res.requests.select(*_SOURCE_COST))
    return res


def _day_row(res: SimResult, day: int, provisioned: bool) -> dict[str, Any]:
    """The day's row of ``daily.parquet`` (before the night's feedback columns); ``provisioned``:
    the architecture provisions (and pays) the local GPUs."""
    r = res.requests
    inter = (r["urgency"] == "interactive") & r["e2e_s"].is_not_nan()  # issued (not cancelled)
    row: dict[str, Any] = {
        "day": day + 1,
        **headline(res),
        "prompt_tokens": int(r["prompt_tokens"].sum()),
        "output_tokens": int(r["output_tokens"].sum()),
        "p95_e2e_interactive_s": float(np.percentile(r.filter(inter)["e2e_s"].to_numpy(), 95))
        if inter.any()
        else None,
        "cached_token_share": float(r["cached_tokens"].sum() / max(int(r["prompt_tokens"].sum()), 1)),
        "success_rate_hard": float(np.mean(r.filter(pl.col("hard_truth"))["correct"].to_numpy()))
        if r["hard_truth"].any()
        else None,
        "risk_escalated_share": float(np.mean(r["risk_escalated"].to_numpy())),
        "local_fixed_usd": res.local_fixed_usd,
        **_gpu_use(res, provisioned),
        **_daily_savings(res),
    }
    for t in SERVED_BY:
        row[f"share_{t}"] = float(np.mean((r["final_tier"] == t).to_numpy()))
    for o in (FAILED, DROPPED, TIMED_OUT):
        row[f"share_{o}"] = float(np.mean((r["outcome"] == o).to_numpy()))
    return row


def _night(res: SimResult, inp: RunInputs, fb: _Feedback, day: int, seed: int) -> dict[str, float]:
    """The night after ``day``: the evaluator judges and retunes, the distiller trains; their
    columns of the day's row (zeros when off)."""
    r = res.requests
    att = res.attempts.join(
        r.select(
            pl.int_range(pl.len()).alias("request_index"),
            "skill_pred",
            "skill",
            "difficulty",
            "prompt_tokens",
            "output_tokens",
        ),
        on="request_index",
    ).sort(["request_index", "attempt"])  # joins do not keep row order; the evaluator samples by row
    out = {
        "evaluated": 0.0,
        "evaluator_cost_usd": 0.0,
        "evaluator_replay_usd": 0.0,
        "distilled_examples": 0.0,
        "distillation_cost_usd": 0.0,
    }
    if fb.evaluator is not None:
        out.update(
            fb.evaluator.night(
                att,
                inp.catalog,
                inp.prices,
                fb.policies.router,
                rng_mod.stream(seed, f"feedback.evaluator.{day}"),
                inp.quality,
            )
        )
    if fb.distiller is not None:
        out.update(fb.distiller.night(att, inp.quality, inp.catalog, inp.skills))
    return out


def _summary(daily: pl.DataFrame, cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The multi-day ``summary.json``: totals and the first and last day."""
    first, last = daily.row(0, named=True), daily.row(-1, named=True)
    keys = ("n_requests", "share_local", "share_cache", "cost_with_feedback_usd", "success_rate")
    return {
        "simroute_version": __version__,
        "seed": seed,
        "policy": str(cfg["policy"].get("label", "")),
        "days": daily.height,
        "requests": int(daily["n_requests"].sum()),
        "total_cost_usd": float(daily["cost_with_feedback_usd"].sum()),
        "success_rate": float(
            np.average(daily["success_rate"].to_numpy(), weights=daily["n_requests"].to_numpy())
        ),
        "first_day": {k: first[k] for k in keys},
        "last_day": {k: last[k] for k in keys},
    }


def _gpu_use(res: SimResult, provisioned: bool) -> dict[str, Any]:
    """The day's local GPUs: ``local_gpus`` provisioned (0 when none are), ``local_gpu_s`` provisioned
    GPU-seconds (GPUs x the 24 h billed), ``local_busy_gpu_s`` GPU-seconds of engine work done for
    local attempts (``busy_s``, already x GPUs per replica) and ``local_gpu_util`` = busy /
    provisioned (None without GPUs)."""
    gpus = res.local_gpus if provisioned else 0
    busy = float(res.attempts.filter(pl.col("tier") == "local")["busy_s"].sum())
    gpu_s = gpus * res.horizon_s
    return {
        "local_gpus": gpus,
        "local_gpu_s": gpu_s,
        "local_busy_gpu_s": busy,
        "local_gpu_util": busy / gpu_s if gpu_s > 0 else None,
    }


def _daily_savings(res: Any) -> dict[str, float]:
    """The day's savings by mechanism (USD) and response-cache hits (see ``analysis.summary.savings``)."""
    sv = savings(res)
    rc = sv["response_cache"]
    return {
        "response_cache_hits": float(rc["lookups"]["exact"] + rc["lookups"]["semantic"]),
        "saved_response_cache_usd": rc["saved_usd"],
        "saved_prompt_cache_usd": sv["provider_prompt_cache"]["saved_usd"],
        "local_prefix_cached_tokens": float(sv["local_prefix_cache"]["cached_tokens"]),
    }


def execute_multiday(cfg: Mapping[str, Any], out_dir: Path, progress: bool = False) -> dict[str, Any]:
    """Run and write ``daily.parquet``, ``summary.json`` and ``daily.png``."""
    from simroute.analysis.plots import daily_figure

    t0 = time.perf_counter()
    daily, summary = run_multiday(cfg, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    daily.write_parquet(out_dir / "daily.parquet")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if cfg.get("figures", True):
        daily_figure({summary["policy"] or "run": daily}, out_dir / "daily.png", f"{daily.height}-day run")
    timing = {"wall_s": time.perf_counter() - t0, "compiled": compiled.in_use()}
    (out_dir / "timing.json").write_text(json.dumps(timing) + "\n")
    return summary
