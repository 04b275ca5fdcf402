"""Sensitivity of the paper's three headline claims to the simulation's main assumptions.

Base scenario: the synthetic growing fleet (``experiment=fleet_14d``) shortened to ``DAYS`` days, run
day by day (:func:`simroute.runner.multiday.run_multiday`). Two arms on the same requests and seed
(paired luck): **router-first** (the fleet_14d defaults: router_first policy, nightly evaluator and
distillation on) and the **all-real-time** reference (no GPUs, no feedback; the same judge, retry,
prompt caching and response cache). Each factor in :data:`FACTORS` is moved one at a time to its low
and high level; the overrides are listed there verbatim, with the arms they apply to (a factor that
only concerns router-first — GPUs, evaluator, distillation, selector, batch prices — leaves the
reference run at its base). The local-GPU count is also swept on its own (:data:`GPU_LEVELS`).

Outcomes, per (factor, level, seed): **cost cut** = 1 − router-first total cost / all-real-time total
cost (USD, evaluator and distillation included), **success change** = router-first − all-real-time
success rate (percentage points), **local share** = share of router-first requests served by the
local tier, and **GPU utilisation** = busy / provisioned local GPU-seconds of router-first.

Then one **favourable corner** per claim: for "70–80 % local" and "costs fall ~90 %" every factor at
the level (low / base / high; GPU count from the curve) whose one-at-a-time mean moved the outcome
furthest toward the claim; for "async batch ~100× cheaper" the lowest batch price ratio and the skill
mix with the largest batchable share, run as all-batch vs all-real-time.

Writes under ``--out`` (default ``paper``): ``sensitivity.csv`` (raw metrics per factor, level, seed
and arm), ``sensitivity_summary.csv`` (means over seeds per factor and level), ``gpu_count.csv``,
``claims.json``, ``figures/tornado.png|svg`` and ``figures/gpu_count.png|svg``. Same config and seeds
⇒ byte-identical files, whatever ``--jobs``. Usage:
``python experiments/sensitivity.py [--out paper] [--jobs 2] [--quick]``; ``--replot`` only redraws the
figures from the stored files.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from joblib import Parallel, delayed

from simroute.analysis.plots import save_figure
from simroute.config import compose
from simroute.economics.prices import batch_price_ratios, load_litellm
from simroute.runner.multiday import DAY_S, run_multiday
from simroute.sim.build import load_workload
from simroute.workload.skills import catalog_from_config

# --- the scenario -------------------------------------------------------------------------------
# Full mode: 88 runs, 792 CPU-s in all (measured) -> ~7-8 min wall on 2 idle cores with 2 workers; the
# one measured run took 23 min wall because other jobs kept the 2 cores busy (load average 5-8).
DAYS, SEEDS = 3, (0, 1)
REQUESTS_PER_DAY = 17_000  # requests drawn per simulated day (>= the busiest mix's; checked)
QUICK_DAYS, QUICK_SEEDS = 2, (0,)
QUICK_OVERRIDES = ("workload.arrival.rate_per_s=0.002",)  # ~400 requests/day instead of ~12k
QUICK_REQUESTS_PER_DAY = 700
QUICK_FACTORS = ("classifier_accuracy",)  # touches both arms
QUICK_GPUS = (0, 4)

RF, RT, BA = "router_first", "all_realtime", "all_batch"
NO_FEEDBACK = ("multiday.evaluator.enabled=false", "multiday.distillation.enabled=false")
ARMS: dict[str, tuple[str, ...]] = {
    RF: (),  # fleet_14d's defaults: router_first, nightly evaluator + distillation
    RT: ("policy=all_realtime", *NO_FEEDBACK),
    BA: ("policy=all_batch", *NO_FEEDBACK),
}
ALL = (RF, RT, BA)

# Local GPUs = sum of replicas x gpus_per_replica over conf/tiers/default.yaml's two pools (Llama-3.1-8B
# on 1 GPU, Qwen2.5-32B on 2). Base: 2 + 1 x 2 = 4. 3 is the smallest fleet serving both local models.
_POOLS = "tiers.local.pools.{}.replicas={}"
GPU_LEVELS: dict[int, tuple[str, ...]] = {
    0: ("policy.provision_local=false",),  # no local tier at all (policies built without local models)
    3: (_POOLS.format(0, 1), _POOLS.format(1, 1)),
    4: (),
    8: (_POOLS.format(0, 4), _POOLS.format(1, 2)),
    16: (_POOLS.format(0, 8), _POOLS.format(1, 4)),
    32: (_POOLS.format(0, 16), _POOLS.format(1, 8)),
}

_MIX = "skills.profiles.{0}.weight={1}", "workload.drift.to.{0}={1}"


def _mix(**w: float) -> tuple[str, ...]:
    """Overrides holding the session skill mix at ``w`` for the whole run (start weights and the
    drift target both set to it: no drift)."""
    return tuple(t.format(k, v) for k, v in w.items() for t in _MIX)


@dataclass(frozen=True)
class Level:
    """One level of a factor: its value (in the factor's unit) and the Hydra overrides that set it."""

    value: float
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Factor:
    """A factor varied one at a time: label, unit, base value, the arms its overrides apply to."""

    label: str
    unit: str
    base: float
    arms: tuple[str, ...]
    low: Level
    high: Level


FACTORS: dict[str, Factor] = {
    "attempt_correlation": Factor(
        "attempt correlation", "", 0.0, ALL,
        Level(0.5, ("models.attempt_correlation=0.5",)),
        Level(0.86, ("models.attempt_correlation=0.86",)),  # MT-Bench's estimate
    ),
    "verifier_false_accept": Factor(
        "verifier false-accept rate", "", 0.15, ALL,  # the same judge in every arm
        Level(0.05, ("policy.verifier.false_accept=0.05",)),
        Level(0.30, ("policy.verifier.false_accept=0.3",)),
    ),
    "judge_accuracy": Factor(
        "nightly evaluator's judge accuracy", "", 0.9, (RF,),
        Level(0.75, ("multiday.evaluator.accuracy=0.75",)),
        Level(0.99, ("multiday.evaluator.accuracy=0.99",)),
    ),
    "distillation_gain": Factor(
        "distillation gain cap", "logits", 1.5, (RF,),
        Level(0.5, ("multiday.distillation.gain_max=0.5",)),
        Level(3.0, ("multiday.distillation.gain_max=3.0",)),
    ),
    "gpu_count": Factor("local GPUs", "GPUs", 4, (RF,), Level(3, GPU_LEVELS[3]), Level(16, GPU_LEVELS[16])),
    "gpu_hour_usd": Factor(
        "GPU price", "$/GPU-h", 2.5, (RF,),
        Level(1.0, ("tiers.local.gpu_hour_usd=1.0",)),
        Level(4.0, ("tiers.local.gpu_hour_usd=4.0",)),
    ),
    "classifier_accuracy": Factor(
        "skill-classifier accuracy", "", 0.9, ALL,  # the arms share the classifier (response cache rules)
        Level(0.45, ("policy.classifier.accuracy=0.45",)),  # measured 0.39-0.54 on MT-Bench
        Level(1.0, ("policy.classifier.accuracy=1.0",)),
    ),
    "selector_threshold": Factor(
        "selector quality threshold", "", 0.7, (RF,),
        Level(0.5, ("policy.selector.threshold=0.5",)),
        Level(0.9, ("policy.selector.threshold=0.9",)),
    ),
    "local_bar": Factor(  # the rule router's bar for sending a predicted skill to the local tier
        "router's local quality bar", "", 0.7, (RF,),
        Level(0.5, ("policy.router.local_min_quality=0.5",)),
        Level(0.9, ("policy.router.local_min_quality=0.9",)),
    ),
    "skill_mix": Factor(  # value: share of code_change + diligence_memo + db_migration sessions
        "hard-skill session share", "", 0.40, ALL,
        Level(0.10, _mix(draft_reply=0.40, summarize_repo=0.20, db_migration=0.0,
                         diligence_memo=0.05, eval_traces=0.30, code_change=0.05)),
        Level(0.75, _mix(draft_reply=0.10, summarize_repo=0.10, db_migration=0.10,
                         diligence_memo=0.20, eval_traces=0.05, code_change=0.45)),
    ),
    "prompt_length": Factor(  # the fresh-prompt medians of every skill (system prompts, clip bounds kept)
        "prompt length", "x base median", 1.0, ALL,
        Level(0.5, ("skills.profiles.draft_reply.prompt.median=600",
                    "skills.profiles.summarize_repo.prompt.median=6000",
                    "skills.profiles.db_migration.prompt.median=2000",
                    "skills.profiles.diligence_memo.prompt.median=10000",
                    "skills.profiles.eval_traces.prompt.median=3000",
                    "skills.profiles.code_change.prompt.median=4000")),
        Level(2.0, ("skills.profiles.draft_reply.prompt.median=2400",
                    "skills.profiles.summarize_repo.prompt.median=24000",
                    "skills.profiles.db_migration.prompt.median=8000",
                    "skills.profiles.diligence_memo.prompt.median=40000",
                    "skills.profiles.eval_traces.prompt.median=12000",
                    "skills.profiles.code_change.prompt.median=16000")),
    ),
    "batch_price_ratio": Factor(  # the table's batch rates are 0.5 x standard for every API model used
        "batch/standard price ratio", "", 0.5, (RF, BA),
        Level(0.25, ("models.batch_price_scale=0.5",)),
        Level(0.9, ("models.batch_price_scale=1.8",)),
    ),
}  # fmt: skip

CLAIMS: dict[str, dict[str, Any]] = {  # "reaches" thresholds: within a stated margin of the claim
    "local_share": {"claim": "70-80 % of traffic runs locally", "outcome": "local_share",
                    "reaches_if": ">= 0.70 (share of requests served locally)", "threshold": 0.70},
    "cost_cut": {"claim": "costs fall by about 90 %", "outcome": "cost_cut",
                 "reaches_if": ">= 0.85 (1 - router-first / all-real-time cost)", "threshold": 0.85},
    "batch": {"claim": "async batch is about 100x cheaper", "outcome": "times_cheaper",
              "reaches_if": ">= 50 (standard / batch price, or all-real-time / all-batch USD per "
              "successful task)", "threshold": 50.0},
}  # fmt: skip
BASE_VALUE = {"gpu_curve": FACTORS["gpu_count"].base}  # the GPU curve's base point (GPUs)
OUTCOMES = ("cost_cut", "success_change_pp", "local_share", "gpu_util")


@dataclass(frozen=True)
class Job:
    """One simulated arm: the arm, its extra overrides (beyond the scenario and arm) and the seed."""

    arm: str
    overrides: tuple[str, ...]
    seed: int


@dataclass
class Scenario:
    """What one invocation runs: days, seeds, factor names, GPU counts, scenario overrides."""

    days: int
    seeds: tuple[int, ...]
    factors: tuple[str, ...]
    gpus: tuple[int, ...]
    overrides: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def config(self, job: Job) -> list[str]:
        """The full override list of ``job``."""
        return [*self.overrides, *ARMS[job.arm], *job.overrides, f"seed={job.seed}"]


def scenario(quick: bool) -> Scenario:
    """The full or the ``--quick`` scenario."""
    days, seeds = (QUICK_DAYS, QUICK_SEEDS) if quick else (DAYS, SEEDS)
    per_day = QUICK_REQUESTS_PER_DAY if quick else REQUESTS_PER_DAY
    over = ("experiment=fleet_14d", f"multiday.days={days}", f"workload.n_requests={per_day * days}",
            "progress=false", *(QUICK_OVERRIDES if quick else ()))  # fmt: skip
    factors = QUICK_FACTORS if quick else tuple(FACTORS)
    return Scenario(days, seeds, factors, QUICK_GPUS if quick else tuple(GPU_LEVELS), over)


def arm_overrides(levels: Mapping[str, Level], arm: str) -> tuple[str, ...]:
    """The overrides of the factor ``levels`` (factor name -> level) that apply to ``arm``, in
    :data:`FACTORS` order."""
    return tuple(o for f, lv in levels.items() if arm in FACTORS[f].arms for o in lv.overrides)


# --- running ------------------------------------------------------------------------------------
def _metrics(daily: pl.DataFrame) -> dict[str, Any]:
    """An arm's totals over the days of ``daily`` (simroute.runner.multiday's table): requests,
    total cost (USD, incl. evaluator and distillation), success/SLO rates, served-tier shares
    (request-weighted), local GPUs, provisioned and busy GPU-seconds and their ratio."""
    n = daily["n_requests"].to_numpy().astype(np.float64)
    ok = float(np.dot(daily["success_rate"].to_numpy(), n))
    cost = float(daily["cost_with_feedback_usd"].sum())
    gpu_s, busy = float(daily["local_gpu_s"].sum()), float(daily["local_busy_gpu_s"].sum())
    out: dict[str, Any] = {
        "days": daily.height,
        "requests": int(n.sum()),
        "total_cost_usd": cost,
        "success_rate": ok / n.sum(),
        "slo_attainment": float(np.average(daily["slo_attainment"].to_numpy(), weights=n)),
        "usd_per_successful_task": cost / ok if ok else None,
    }
    for t in ("local", "batch", "realtime", "cache", "none"):
        out[f"share_{t}"] = float(np.average(daily[f"share_{t}"].to_numpy(), weights=n))
    out.update(
        local_gpus=int(daily["local_gpus"].max()),
        local_gpu_s=gpu_s,
        local_busy_gpu_s=busy,
        gpu_util=busy / gpu_s if gpu_s > 0 else None,
        local_fixed_usd=float(daily["local_fixed_usd"].sum()),
        evaluator_usd=float(daily["evaluator_cost_usd"].sum()),
        distillation_usd=float(daily["distillation_cost_usd"].sum()),
    )
    return out


def _run_job(sc: Scenario, job: Job) -> tuple[dict[str, Any], float]:
    """Simulate ``job``; its metrics and wall time (s)."""
    t0 = time.perf_counter()
    daily, _ = run_multiday(compose(sc.config(job)))
    return _metrics(daily), time.perf_counter() - t0


def _last_arrival_day(sc: Scenario, job: Job) -> float:
    """When ``job``'s drawn workload ends (days from the start): must cover the simulated days."""
    cfg = compose(sc.config(job))
    table = load_workload(cfg["workload"], catalog_from_config(cfg["skills"]), job.seed)
    return float(table.df["arrival_s"].max()) / DAY_S


def run_all(sc: Scenario, jobs: Iterable[Job], n_jobs: int, stage: str) -> dict[Job, dict[str, Any]]:
    """Run every distinct job on ``n_jobs`` worker processes (results do not depend on it)."""
    todo = sorted(set(jobs), key=lambda j: (j.arm != RF, j.seed, j.arm, j.overrides))  # long ones first
    t0 = time.perf_counter()
    out = Parallel(n_jobs=n_jobs)(delayed(_run_job)(sc, j) for j in todo)
    sc.timings[stage] = time.perf_counter() - t0
    walls = [w for _, w in out]
    longest = max(walls, default=0.0)
    print(f"{stage}: {len(todo)} runs in {sc.timings[stage]:.0f} s wall "
          f"({sum(walls):.0f} s in workers, {longest:.1f} s the longest)", flush=True)  # fmt: skip
    return {j: m for j, (m, _) in zip(todo, out, strict=True)}


def check_coverage(sc: Scenario, jobs: Iterable[Job], n_jobs: int) -> None:
    """Fail unless every distinct workload (skills/workload overrides x seed) draws requests past the
    last simulated day (else the last day would be cut short silently)."""
    keep = ("skills.", "workload.")
    wl = {Job(RT, tuple(o for o in j.overrides if o.startswith(keep)), j.seed) for j in jobs}
    todo = sorted(wl, key=lambda j: (j.seed, j.overrides))
    ends = Parallel(n_jobs=n_jobs)(delayed(_last_arrival_day)(sc, j) for j in todo)
    short = [(j.overrides, j.seed, e) for j, e in zip(todo, ends, strict=True) if e < sc.days]
    if short:
        raise SystemExit(f"workload.n_requests too small: {short[0]} ends before day {sc.days}")


# --- the one-at-a-time grid ---------------------------------------------------------------------
Row = tuple[str, str, float, int, Job, Job]
"""(factor, level, value, seed, router-first job, reference job) of the one-at-a-time grid."""


def grid(sc: Scenario) -> list[Row]:
    """(factor, level, value, seed, router-first job, reference job) of the base, every factor level
    and every GPU count (factor ``gpu_curve``, level = the count)."""
    rows = []
    for seed in sc.seeds:
        ref = Job(RT, (), seed)
        rows.append(("base", "base", math.nan, seed, Job(RF, (), seed), ref))
        for f in sc.factors:
            for name in ("low", "high"):
                lv = getattr(FACTORS[f], name)
                rows.append((f, name, lv.value, seed, Job(RF, lv.overrides, seed),
                             Job(RT, arm_overrides({f: lv}, RT), seed)))  # fmt: skip
        for g in sc.gpus:
            rows.append(("gpu_curve", str(g), float(g), seed, Job(RF, GPU_LEVELS[g], seed), ref))
    return rows


def pair_outcomes(rf: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
    """The paired outcomes of one seed: cost cut (share), success change (pp), local share, GPU
    utilisation (share; None without GPUs)."""
    return {
        "cost_cut": 1.0 - rf["total_cost_usd"] / ref["total_cost_usd"],
        "success_change_pp": 100.0 * (rf["success_rate"] - ref["success_rate"]),
        "local_share": rf["share_local"],
        "gpu_util": rf["gpu_util"],
    }


def _row_order(factor: str, level: str, value: float) -> tuple[int, int, float]:
    """Sort key of a table row: the base, the factors in FACTORS order, the GPU curve, the corners."""
    order = {f: i for i, f in enumerate(("base", *FACTORS, "gpu_curve", "favourable_corner"))}
    levels = {"base": 0, "low": 1, "high": 2, **{k: 3 + i for i, k in enumerate(CLAIMS)}}
    return order[factor], levels.get(level, 9), -1.0 if math.isnan(value) else value


def raw_table(rows: Sequence[Row], res: Mapping[Job, Any]) -> pl.DataFrame:
    """sensitivity.csv: one row per (factor, level, seed, arm) with the arm's raw metrics and the
    overrides it ran with beyond the scenario's and the arm's (a reference shared with the base
    has none)."""
    out: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for f, lv, value, seed, *jobs in rows:
        for job in jobs:
            out.setdefault((f, lv, seed, job.arm), {
                "factor": f, "level": lv, "value": value, "seed": seed, "arm": job.arm,
                "overrides": " ".join(job.overrides), **res[job]})  # fmt: skip
    keys = sorted(out, key=lambda k: (*_row_order(k[0], k[1], out[k]["value"]), k[2], ALL.index(k[3])))
    return pl.DataFrame([out[k] for k in keys], infer_schema_length=None)


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.mean(vals)) if vals else None


def _value_text(f: Factor, v: float) -> str:
    u = f" {f.unit}" if f.unit and not f.unit.startswith("x") else ""
    return f"x{v:g}" if f.unit.startswith("x") else f"{v:g}{u}"


def summary_table(rows: Sequence[Row], res: Mapping[Job, Any]) -> pl.DataFrame:
    """sensitivity_summary.csv: per (factor, level) the mean over seeds of each outcome (and its
    min/max over seeds), the factor's value, label, unit and base value, and the base outcomes."""
    per: dict[tuple[str, str], list[dict[str, Any]]] = {}
    values: dict[tuple[str, str], float] = {}
    for f, lv, value, _, rf, ref in rows:
        per.setdefault((f, lv), []).append(pair_outcomes(res[rf], res[ref]))
        values[(f, lv)] = value
    base = {o: _mean([p[o] for p in per[("base", "base")]]) for o in OUTCOMES}
    out = []
    for (f, lv), ps in per.items():
        fac = FACTORS.get(f)
        row: dict[str, Any] = {
            "factor": f, "level": lv, "value": values[(f, lv)],
            "label": fac.label if fac else ("local GPUs" if f == "gpu_curve" else "base point"),
            "unit": fac.unit if fac else ("GPUs" if f == "gpu_curve" else ""),
            "base_value": fac.base if fac else BASE_VALUE.get(f, math.nan),
            "value_text": _value_text(fac, values[(f, lv)]) if fac else "", "n_seeds": len(ps),
        }  # fmt: skip
        for o in OUTCOMES:
            vals = [p[o] for p in ps if p[o] is not None]
            row[o] = _mean(vals)
            row[f"{o}_min"], row[f"{o}_max"] = (min(vals), max(vals)) if vals else (None, None)
            row[f"base_{o}"] = base[o]
        out.append(row)
    out.sort(key=lambda r: _row_order(r["factor"], r["level"], r["value"]))
    return pl.DataFrame(out, infer_schema_length=None)


def gpu_table(rows: Sequence[Row], res: Mapping[Job, Any]) -> pl.DataFrame:
    """gpu_count.csv: per GPU count, mean/min/max over seeds of the local share, router-first and
    all-real-time total cost (USD), both success rates, the cost cut and the GPU utilisation."""
    by: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for f, lv, _, _, rf, ref in rows:
        if f == "gpu_curve":
            by.setdefault(int(lv), []).append((res[rf], res[ref]))
    out = []
    for g in sorted(by):
        cols = {
            "local_share": [a["share_local"] for a, _ in by[g]],
            "cost_router_first_usd": [a["total_cost_usd"] for a, _ in by[g]],
            "cost_all_realtime_usd": [b["total_cost_usd"] for _, b in by[g]],
            "success_router_first": [a["success_rate"] for a, _ in by[g]],
            "success_all_realtime": [b["success_rate"] for _, b in by[g]],
            "cost_cut": [pair_outcomes(a, b)["cost_cut"] for a, b in by[g]],
            "gpu_util": [a["gpu_util"] for a, _ in by[g]],
        }
        row: dict[str, Any] = {"gpus": g, "n_seeds": len(by[g])}
        for k, v in cols.items():
            vals = [x for x in v if x is not None]
            row[k] = _mean(vals)
            row[f"{k}_min"], row[f"{k}_max"] = (min(vals), max(vals)) if vals else (None, None)
        out.append(row)
    return pl.DataFrame(out, infer_schema_length=None)


# --- favourable corners and the claims ----------------------------------------------------------
@dataclass(frozen=True)
class Corner:
    """A favourable corner: the factor levels chosen (name -> level name), the GPU count (None:
    untouched) and the two jobs per seed (claim arm, reference)."""

    levels: dict[str, str]
    gpus: int | None
    arms: tuple[str, str]
    overrides: tuple[tuple[str, ...], tuple[str, ...]]

    def jobs(self, seed: int) -> tuple[Job, Job]:
        """The claim arm's and the reference's job for ``seed``."""
        return Job(self.arms[0], self.overrides[0], seed), Job(self.arms[1], self.overrides[1], seed)


def favourable_corner(sc: Scenario, summary: pl.DataFrame, outcome: str) -> Corner:
    """Router-first vs all-real-time with every factor at the level (low / high, else base) whose
    one-at-a-time mean ``outcome`` is highest, and the GPU count of the curve's highest mean (ties:
    fewer GPUs); the GPU-count factor is replaced by the curve."""
    s = {(r["factor"], r["level"]): r[outcome] for r in summary.iter_rows(named=True)}
    chosen: dict[str, Level] = {}
    names: dict[str, str] = {}
    for f in sc.factors:
        if f == "gpu_count":
            continue
        best = max(("low", "high"), key=lambda lv: s[(f, lv)])
        if s[(f, best)] > s[("base", "base")]:
            chosen[f], names[f] = getattr(FACTORS[f], best), best
    gpus = max(sc.gpus, key=lambda g: (s[("gpu_curve", str(g))], -g))
    rf = (*arm_overrides(chosen, RF), *GPU_LEVELS[gpus])
    return Corner(names, gpus, (RF, RT), (rf, arm_overrides(chosen, RT)))


def _batchable_share(sc: Scenario, overrides: tuple[str, ...]) -> float:
    """Share of requests (sessions weighted by their mean steps) whose urgency is ``batchable``
    under the skill weights set by ``overrides`` (the profiles' start weights)."""
    prof = compose([*sc.overrides, *overrides])["skills"]["profiles"]
    w = {k: p["weight"] * p["steps_mean"] for k, p in prof.items()}
    return sum(w[k] * prof[k]["urgency"].get("batchable", 0.0) for k in prof) / sum(w.values())


def batch_corner(sc: Scenario) -> Corner:
    """All-batch vs all-real-time with the lowest batch price ratio and the skill mix (low / base /
    high) with the largest batchable share (only the factors this scenario varies)."""
    chosen: dict[str, Level] = {}
    names: dict[str, str] = {}
    if "batch_price_ratio" in sc.factors:
        f = FACTORS["batch_price_ratio"]
        names["batch_price_ratio"] = "low" if f.low.value < f.high.value else "high"
        chosen["batch_price_ratio"] = getattr(f, names["batch_price_ratio"])
    if "skill_mix" in sc.factors:
        f = FACTORS["skill_mix"]
        share = {lv: _batchable_share(sc, getattr(f, lv).overrides) for lv in ("low", "high")}
        best = max(share, key=lambda lv: share[lv])
        if share[best] > _batchable_share(sc, ()):
            chosen["skill_mix"], names["skill_mix"] = getattr(f, best), best
    return Corner(names, None, (BA, RT), (arm_overrides(chosen, BA), arm_overrides(chosen, RT)))


def _best(cands: Iterable[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """The candidate with the highest value: ``{"value": v, **where}`` (first on ties)."""
    v, where = max(cands, key=lambda c: c[0])
    return {"value": v, **where}


def _corner_block(c: Corner, sc: Scenario, res: Mapping[Job, Any]) -> dict[str, Any]:
    """A corner's levels, overrides and paired outcomes (mean over seeds and per seed)."""
    per = [pair_outcomes(res[a], res[b]) for a, b in (c.jobs(s) for s in sc.seeds)]
    return {
        "levels": {f: {"level": lv, "value": getattr(FACTORS[f], lv).value} for f, lv in c.levels.items()},
        "gpus": c.gpus,
        "overrides": {c.arms[0]: list(c.overrides[0]), c.arms[1]: list(c.overrides[1])},
        "mean": {o: _mean([p[o] for p in per]) for o in OUTCOMES},
        "per_seed": per,
    }


def outcome_claim(key: str, summary: pl.DataFrame, per_seed: Sequence[float],
                  corner: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The block of claims.json for the local-share or cost-cut claim: base, the best one-at-a-time
    level, the best GPU count, the favourable corner, and whether each (or any single run) reaches it."""
    meta = CLAIMS[key]
    o, thr = meta["outcome"], meta["threshold"]
    rows = list(summary.iter_rows(named=True))
    base = next(r for r in rows if r["factor"] == "base")[o]
    fac = [(r[o], {"factor": r["factor"], "level": r["level"], "factor_value": r["value"]})
           for r in rows if r["factor"] in FACTORS]  # fmt: skip
    gpu = [(r[o], {"gpus": int(r["value"])}) for r in rows if r["factor"] == "gpu_curve"]
    best_fac, best_gpu = _best(fac), _best(gpu) if gpu else None
    best_run = max([*per_seed, *(p[o] for p in corner["per_seed"])])
    return {
        **{k: meta[k] for k in ("claim", "outcome", "reaches_if")},
        "base": base,
        "best_one_at_a_time": best_fac,
        "best_gpu_count": best_gpu,
        "favourable_corner": corner,
        "best_single_run": best_run,
        "reached": {
            "base": base >= thr,
            "one_at_a_time": best_fac["value"] >= thr,
            "gpu_count": best_gpu is not None and best_gpu["value"] >= thr,
            "favourable_corner": corner["mean"][o] >= thr,
            "any_single_run": best_run >= thr,
        },
    }


def _times_cheaper(sc: Scenario, c: Corner, res: Mapping[Job, Any]) -> dict[str, Any]:
    """All-real-time / all-batch USD per successful task at corner ``c`` (mean over seeds, per seed)
    and the all-batch arm's batch share."""
    per = [res[b]["usd_per_successful_task"] / res[a]["usd_per_successful_task"]
           for a, b in (c.jobs(s) for s in sc.seeds)]  # fmt: skip
    return {
        "levels": {f: {"level": lv, "value": getattr(FACTORS[f], lv).value} for f, lv in c.levels.items()},
        "overrides": {c.arms[0]: list(c.overrides[0]), c.arms[1]: list(c.overrides[1])},
        "times_cheaper": _mean(per),
        "per_seed": per,
        "all_batch_share_batch": _mean([res[c.jobs(s)[0]]["share_batch"] for s in sc.seeds]),
        "usd_per_successful_task": {
            arm: _mean([res[c.jobs(s)[i]]["usd_per_successful_task"] for s in sc.seeds])
            for i, arm in enumerate(c.arms)
        },
    }


def batch_claim(sc: Scenario, base: Corner, corner: Corner, res: Mapping[Job, Any]) -> dict[str, Any]:
    """The batch claim: standard/batch price factors over the LiteLLM table and for the simulated
    API models, the factor's levels, and all-real-time / all-batch USD per successful task."""
    meta = CLAIMS["batch"]
    cfg = compose(list(sc.overrides))
    table = load_litellm(cfg["prices"], dict(cfg["models"].get("price_aliases") or {}))
    ratios = batch_price_ratios(table)
    price = {k: {"models": len(v), "min_p50_max": [min(v), float(np.median(v)), max(v)],
                 "max_times_cheaper": 1.0 / min(v)} for k, v in ratios.items()}  # fmt: skip
    used = {m: {"input": table.get(m).batch.input / table.get(m).standard.input,
                "output": table.get(m).batch.output / table.get(m).standard.output}
            for m in cfg["models"]["api"]}  # fmt: skip
    f = FACTORS["batch_price_ratio"]
    levels = {lv: {"price_ratio": v, "times_cheaper": 1.0 / v}
              for lv, v in (("low", f.low.value), ("base", f.base), ("high", f.high.value))}  # fmt: skip
    sim_base, sim_corner = _times_cheaper(sc, base, res), _times_cheaper(sc, corner, res)
    best = _best([
        (price["input"]["max_times_cheaper"], {"where": "price table, input rates (cheapest ratio)"}),
        (price["output"]["max_times_cheaper"], {"where": "price table, output rates (cheapest ratio)"}),
        (levels["low"]["times_cheaper"], {"where": "batch_price_ratio factor, low level (prices)"}),
        (sim_base["times_cheaper"], {"where": "simulated fleet, base"}),
        (sim_corner["times_cheaper"], {"where": "simulated fleet, favourable corner"}),
    ])  # fmt: skip
    any_run = max([*sim_base["per_seed"], *sim_corner["per_seed"]])
    return {
        **{k: meta[k] for k in ("claim", "outcome", "reaches_if")},
        "price_table": {"source": Path(cfg["prices"]).name, **price},
        "simulated_api_models": used,
        "factor_levels": levels,
        "simulated_base": sim_base,
        "favourable_corner": sim_corner,
        "best": best,
        "reached": {"price_table": max(p["max_times_cheaper"] for p in price.values()) >= meta["threshold"],
                    "factor_levels": levels["low"]["times_cheaper"] >= meta["threshold"],
                    "simulated_base": sim_base["times_cheaper"] >= meta["threshold"],
                    "favourable_corner": sim_corner["times_cheaper"] >= meta["threshold"],
                    "any_single_run": any_run >= meta["threshold"]},
    }  # fmt: skip


# --- figures ------------------------------------------------------------------------------------
PANELS = (  # outcome, scale to the axis unit, unit, axis label, claim line (axis unit) or None
    ("cost_cut", 100.0, "%", "cost cut: 1 − router-first / all-real-time total cost (%)", 90.0),
    ("success_change_pp", 1.0, "pp", "success change: router-first − all-real-time success rate (pp)", None),
    ("local_share", 100.0, "%", "router-first requests served by the local tier (%)", 70.0),
)


def _save(fig: Any, path: Path) -> None:
    """Write ``path`` (PNG) and its ``.svg`` twin, byte-deterministic (:func:`save_figure`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)


def _factor_label(name: str) -> str:
    """A tornado row label: the factor, its low / high values and unit, and its base value."""
    f = FACTORS[name]
    lo, hi, base = (_value_text(f, v) for v in (f.low.value, f.high.value, f.base))
    return f"{f.label}: {lo} / {hi} (base {base})"


def _tornado_panel(ax: Any, summary: pl.DataFrame, panel: tuple[str, float, str, str, Any]) -> None:
    """One tornado panel: per factor a bar from the base to the low level's mean and one to the high
    level's, rows sorted by the width of the low-high-base range (widest on top)."""
    outcome, scale, unit, xlabel, claim = panel
    s = {(r["factor"], r["level"]): r[outcome] for r in summary.iter_rows(named=True)}
    base = s[("base", "base")] * scale
    names = [f for f in FACTORS if (f, "low") in s]
    rng = {f: (s[(f, "low")] * scale, s[(f, "high")] * scale) for f in names}
    width = {f: max(*rng[f], base) - min(*rng[f], base) for f in names}
    names.sort(key=lambda f: (width[f], f))  # narrowest first = bottom row
    y = np.arange(len(names), dtype=np.float64)
    lo = np.array([rng[f][0] for f in names])
    hi = np.array([rng[f][1] for f in names])
    ax.barh(y + 0.2, lo - base, left=base, height=0.4, color="#4C72B0", label="low level")
    ax.barh(y - 0.2, hi - base, left=base, height=0.4, color="#DD8452", label="high level")
    ax.axvline(base, color="black", lw=1.0, label=f"base: {base:.1f} {unit}")
    lim_lo, lim_hi = min(lo.min(), hi.min(), base), max(lo.max(), hi.max(), base)
    pad = 0.08 * max(lim_hi - lim_lo, 1.0)
    if claim is not None and lim_lo - pad <= claim <= lim_hi + pad:
        ax.axvline(claim, color="#C44E52", lw=1.2, ls=":", label=f"claim: {claim:g} {unit}")
    elif claim is not None:
        ax.plot([], [], color="#C44E52", ls=":", label=f"claim: {claim:g} {unit} (off the axis)")
    ax.set_xlim(lim_lo - pad, lim_hi + pad)
    ax.set_yticks(y, [_factor_label(f) for f in names], fontsize=8)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def tornado_figure(summary: pl.DataFrame, days: int, n_seeds: int, path: Path) -> None:
    """figures/tornado.png: one panel per outcome (cost cut, success change, local share)."""
    n = sum(1 for f in FACTORS if f in set(summary["factor"]))
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(12.0, len(PANELS) * (0.34 * n + 1.3)),
                             layout="constrained")  # fmt: skip
    for ax, panel in zip(np.atleast_1d(axes), PANELS, strict=True):
        _tornado_panel(ax, summary, panel)
    fig.suptitle(f"Sensitivity, one factor at a time: {days}-day growing fleet, mean of "
                 f"{n_seeds} seed(s), router-first vs all-real-time", fontsize=10)  # fmt: skip
    _save(fig, path)


def gpu_figure(gpu: pl.DataFrame, days: int, n_seeds: int, path: Path) -> None:
    """figures/gpu_count.png: local share and GPU utilisation (%), and total cost (USD) against the
    local GPU count, bands = min-max over seeds; the all-real-time cost as a reference line."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 4.0), layout="constrained")
    x = gpu["gpus"].to_numpy()

    def band(ax: Any, col: str, scale: float, color: str, label: str, ls: str = "-") -> None:
        ok = gpu[col].is_not_null().to_numpy()
        ax.plot(x[ok], gpu[col].to_numpy()[ok] * scale, marker="o", color=color, ls=ls, label=label)
        ax.fill_between(x[ok], gpu[f"{col}_min"].to_numpy()[ok] * scale,
                        gpu[f"{col}_max"].to_numpy()[ok] * scale, color=color, alpha=0.2)  # fmt: skip

    band(a1, "local_share", 100.0, "#4C72B0", "router-first: requests served locally")
    band(a1, "gpu_util", 100.0, "#55A868", "local GPU utilisation (busy / provisioned)", "--")
    a1.axhline(70.0, color="#C44E52", ls=":", lw=1.2, label="claim: 70 % local")
    a1.set_ylabel("share (%)")
    band(a2, "cost_router_first_usd", 1.0, "#DD8452", "router-first total cost")
    ref = gpu.row(0, named=True)  # the same all-real-time runs (no GPUs) on every row
    a2.axhline(ref["cost_all_realtime_usd"], color="black", ls="--", lw=1.2, label="all-real-time reference")
    a2.axhspan(ref["cost_all_realtime_usd_min"], ref["cost_all_realtime_usd_max"], color="black", alpha=0.1)
    a2.set_ylabel(f"total cost over {days} days (USD)")
    for ax in (a1, a2):
        ax.set_xscale("symlog", base=2, linthresh=1.0)
        ax.set_xticks(x, [str(int(v)) for v in x])
        ax.set_xlim(-0.5, 1.2 * float(x.max()))
        ax.set_xlabel("local GPUs (H100)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    a1.set_ylim(bottom=0)
    fig.suptitle(f"Local GPU count: mean and min-max over {n_seeds} seed(s), "
                 f"{days}-day growing fleet", fontsize=10)  # fmt: skip
    _save(fig, path)


# --- main ---------------------------------------------------------------------------------------
def _write(out: Path, name: str, df: pl.DataFrame) -> None:
    df.write_csv(out / name, float_precision=6)


def run(sc: Scenario, out: Path, n_jobs: int) -> dict[str, Any]:
    """Run the grid, the corners and write every output under ``out``; returns claims.json."""
    rows = grid(sc)
    batch_base = Corner({}, None, (BA, RT), ((), ()))
    jobs = [j for r in rows for j in r[4:]] + [j for s in sc.seeds for j in batch_base.jobs(s)]
    check_coverage(sc, jobs, n_jobs)
    res = run_all(sc, jobs, n_jobs, "one-at-a-time grid")
    summary, gpu = summary_table(rows, res), gpu_table(rows, res)
    corners = {k: favourable_corner(sc, summary, k) for k in ("local_share", "cost_cut")}
    corners["batch"] = batch_corner(sc)
    cjobs = [j for c in corners.values() for s in sc.seeds for j in c.jobs(s) if j not in res]
    check_coverage(sc, cjobs, n_jobs)
    res.update(run_all(sc, cjobs, n_jobs, "favourable corners"))
    pairs = [pair_outcomes(res[a], res[b]) for *_, a, b in rows]
    claims = {
        k: outcome_claim(k, summary, [p[k] for p in pairs], _corner_block(corners[k], sc, res))
        for k in ("local_share", "cost_cut")
    }
    claims["batch"] = batch_claim(sc, batch_base, corners["batch"], res)
    doc = {
        "scenario": {"overrides": list(sc.overrides), "days": sc.days, "seeds": list(sc.seeds),
                     "arms": {k: list(v) for k, v in ARMS.items()}},
        "claims": claims,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    extra = [("base", "base", math.nan, s, *batch_base.jobs(s)) for s in sc.seeds]
    extra += [("favourable_corner", k, math.nan, s, *c.jobs(s)) for k, c in corners.items() for s in sc.seeds]
    _write(out, "sensitivity.csv", raw_table([*rows, *extra], res))
    _write(out, "sensitivity_summary.csv", summary)
    _write(out, "gpu_count.csv", gpu)
    (out / "claims.json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    figures(out)
    return doc


def figures(out: Path) -> None:
    """Draw both figures from the stored files under ``out`` (the CSVs' rounded values, so a
    ``--replot`` gives the same bytes as the run that wrote them)."""
    sc = json.loads((out / "claims.json").read_text())["scenario"]
    days, n_seeds = int(sc["days"]), len(sc["seeds"])
    fig_dir = out / "figures"
    tornado_figure(pl.read_csv(out / "sensitivity_summary.csv"), days, n_seeds, fig_dir / "tornado.png")
    gpu_figure(pl.read_csv(out / "gpu_count.csv"), days, n_seeds, fig_dir / "gpu_count.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("paper"))
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (outputs do not depend on it)")
    ap.add_argument("--quick", action="store_true", help="tiny version for tests (2 days, 1 seed)")
    ap.add_argument("--replot", action="store_true", help="only redraw the figures from --out's files")
    a = ap.parse_args()
    if a.replot:
        figures(a.out)
        return
    t0 = time.perf_counter()
    sc = scenario(a.quick)
    doc = run(sc, a.out, a.jobs)
    for k, c in doc["claims"].items():
        got = c["best"] if k == "batch" else c["best_one_at_a_time"]
        print(f"{c['claim']}: reached {c['reached']}; best {got}", flush=True)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in sc.timings.items())
    print(f"total {time.perf_counter() - t0:.0f} s wall ({stages})")


if __name__ == "__main__":
    main()
