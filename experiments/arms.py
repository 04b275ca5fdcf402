"""The architecture ladder: each arm adds one thing, on the real agent trace and the synthetic fleet.

Arms (every one with provider prompt caching, the same LLM judge and a retry — what a sensible
team runs): as-recorded (the trace's own model per call; trace only), all real-time (strongest
model), API-only router (classifier + selector among real-time API models), router-first without
local GPUs (+ the risk predictor), + local GPUs, + batch, + caching (response cache and session
stickiness), + nightly evaluator, + distillation. Every arm runs day by day (``run_multiday``) with
the same requests and the same seeds (paired luck); the reference is as-recorded on the trace and
all real-time on the fleet (which has no recorded routing).

Writes ``arms.csv`` (one row per workload, arm and seed), ``arms_paired.csv`` (per workload and arm:
means and paired differences against the reference with 95 % t-intervals over seeds) and
``figures/arms.png``. Usage: ``python experiments/arms.py [--out paper] [--seeds 10] [--jobs 2]
[--quick]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from joblib import Parallel, delayed

from simroute.analysis.sweep import t975
from simroute.config import compose
from simroute.runner.multiday import run_multiday

OFF = ["multiday.evaluator.enabled=false", "multiday.distillation.enabled=false"]
NO_CACHE = ["policy.response_cache.enabled=false", "policy.sticky_sessions=false"]
NO_RISK = ["policy.risk.name=none", "~policy.risk.bias", "~policy.risk.threshold", "~policy.risk.weights"]
NO_BATCH = ["+policy.router.use_batch=false"]
ARMS: dict[str, list[str]] = {
    "as_recorded": ["policy=as_recorded", *NO_CACHE, *OFF],
    "all_realtime": ["policy=all_realtime", *NO_CACHE, *OFF],
    "api_only_router": ["policy=api_only_router", *NO_RISK, *NO_BATCH, *NO_CACHE, *OFF],
    "router_first_no_local": ["policy=api_only_router", *NO_BATCH, *NO_CACHE, *OFF],
    "plus_local_gpus": ["policy=router_first", *NO_BATCH, *NO_CACHE, *OFF],
    "plus_batch": ["policy=router_first", *NO_CACHE, *OFF],
    "plus_caching": ["policy=router_first", *OFF],
    "plus_evaluator": ["policy=router_first", "multiday.distillation.enabled=false"],
    "plus_distillation": ["policy=router_first"],
}
"""Arm -> overrides on top of the workload's experiment; the order is the ladder."""

WORKLOADS: dict[str, list[str]] = {
    "claude_code": ["experiment=claude_code_7d"],
    "fleet": ["experiment=fleet_14d", "multiday.days=5", "workload.n_requests=80000"],
}
"""Workload -> overrides: the 710 Claude Code sessions over 7 days; the first 5 days of fleet_14d."""
QUICK: dict[str, list[str]] = {
    "claude_code": ["multiday.days=2", "workload.n_requests=3000", "workload.session_spacing_s=240"],
    "fleet": ["multiday.days=2", "workload.n_requests=3000"],
}
REFERENCE = {"claude_code": "as_recorded", "fleet": "all_realtime"}
METRICS = ("cost_usd", "success_rate", "slo_attainment", "share_local", "share_batch", "share_cache")


def run_arm(workload: str, arm: str, seed: int, quick: bool, cache: Path | None = None) -> dict[str, Any]:
    """Simulate one arm of one workload at one seed; its totals over all days (shares weighted by
    requests; cost in USD including the nightly evaluator and distillation). With ``cache``, a row
    stored there by an earlier call with the same arguments is returned instead (resuming a build
    that was interrupted: only valid for the same code and data — the default build uses none)."""
    over = [*WORKLOADS[workload], *(QUICK[workload] if quick else []), *ARMS[arm], f"seed={seed}"]
    hit = cache / f"{workload}.{arm}.{seed}.{'quick' if quick else 'full'}.json" if cache else None
    if hit is not None and hit.is_file():
        return dict(json.loads(hit.read_text()))
    t0 = time.perf_counter()
    daily, _ = run_multiday(compose(over))
    w = daily["n_requests"].to_numpy().astype(float)
    row: dict[str, Any] = {"workload": workload, "arm": arm, "seed": seed, "requests": int(w.sum())}
    row["cost_usd"] = float(daily["cost_with_feedback_usd"].sum())
    for m in METRICS[1:]:
        row[m] = float(np.average(daily[m].to_numpy(), weights=w))
    row["evaluator_usd"] = float(daily["evaluator_cost_usd"].sum())
    row["distillation_usd"] = float(daily["distillation_cost_usd"].sum())
    row["local_fixed_usd"] = float(daily["local_fixed_usd"].sum())
    print(f"{workload:12s} {arm:22s} seed {seed}: {time.perf_counter() - t0:5.1f} s", flush=True)
    if hit is not None:
        hit.parent.mkdir(parents=True, exist_ok=True)
        hit.write_text(json.dumps(row))
    return row


def paired(runs: pl.DataFrame) -> pl.DataFrame:
    """Per workload and arm: mean of each metric and the paired difference against the workload's
    reference arm (same seed), mean and 95 % t-interval half-width over seeds. Cost differences are
    relative (``cost_change`` = arm / reference − 1), the others absolute (shares 0..1)."""
    rows = []
    for (workload, arm), g in runs.group_by(["workload", "arm"], maintain_order=True):
        ref = runs.filter((pl.col("workload") == workload) & (pl.col("arm") == REFERENCE[str(workload)]))
        j = g.join(ref, on="seed", suffix="_ref").sort("seed")
        n = j.height
        row: dict[str, Any] = {
            "workload": workload,
            "arm": arm,
            "reference": REFERENCE[str(workload)],
            "seeds": n,
            "requests": int(g["requests"].max()),  # type: ignore[arg-type]
        }
        diffs = {"cost_change": (j["cost_usd"] / j["cost_usd_ref"] - 1.0).to_numpy()}
        for m in METRICS[1:]:
            diffs[f"{m}_diff"] = (j[m] - j[f"{m}_ref"]).to_numpy()
        for m in METRICS:
            row[f"{m}_mean"] = float(g[m].mean())  # type: ignore[arg-type]
        for k, d in diffs.items():
            row[f"{k}_mean"] = float(d.mean())
            row[f"{k}_ci95"] = float(t975(n) * d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        rows.append(row)
    return pl.DataFrame(rows)


PANELS = (
    ("cost_change", 100.0, "cost vs reference (%)"),
    ("success_rate_diff", 100.0, "success vs reference (pp)"),
    ("share_local", 100.0, "served locally (% of requests)"),
)


def arms_figure(table: pl.DataFrame, path: Path) -> None:
    """One row per workload, one panel per outcome: each arm's mean (paired differences against
    the reference with their 95 % intervals as error bars; the local share as a plain mean)."""
    import matplotlib.pyplot as plt

    from simroute.analysis.plots import save_figure

    workloads = list(dict.fromkeys(table["workload"].to_list()))
    fig, axes = plt.subplots(len(workloads), 3, figsize=(14, 3.2 * len(workloads) + 0.6), squeeze=False)
    for i, w in enumerate(workloads):
        t = table.filter(pl.col("workload") == w)
        y = np.arange(t.height)[::-1] + 2.4  # the bottom rows stay empty for the legend
        for j, (col, scale, label) in enumerate(PANELS):
            ax = axes[i][j]
            mean = t[f"{col}_mean"].to_numpy() * scale
            ci = t[f"{col}_ci95"].to_numpy() * scale if f"{col}_ci95" in t.columns else None
            ax.barh(y, mean, xerr=ci, color="#4c72b0", ecolor="black", capsize=3, label="mean of seeds")
            ax.axvline(0.0, color="grey", lw=0.8)
            ax.set_yticks(y, t["arm"].to_list() if j == 0 else [""] * t.height)
            ax.set_xlabel(label)
            ax.set_title(f"{w} (n = {int(t['seeds'][0])} seeds; ref. {t['reference'][0]})", fontsize=9)
            if ci is not None:
                ax.plot([], [], color="black", label="95 % interval (paired)")
            ax.set_ylim(0.0, t.height + 2.0)
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def write_meta(out: Path, seeds: int, quick: bool) -> None:
    """``arms_meta.json``: each workload's overrides, days, seeds and reference, and each arm's."""
    meta: dict[str, Any] = {}
    for w, base in WORKLOADS.items():
        over = [*base, *(QUICK[w] if quick else [])]
        days = int(compose(over)["multiday"]["days"])
        meta[w] = {"overrides": over, "seeds": seeds, "reference": REFERENCE[w], "days": days}
    meta["arms"] = dict(ARMS)
    (out / "arms_meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def simulate_all(seeds: int, jobs: int, quick: bool, cache: Path | None) -> pl.DataFrame:
    """Every (workload, arm, seed) run, rows in ladder order."""
    todo = [
        (w, arm, s)
        for w in WORKLOADS
        for arm in ARMS
        if not (w == "fleet" and arm == "as_recorded")
        for s in range(seeds)
    ]
    rows = Parallel(n_jobs=jobs, backend="loky")(
        delayed(run_arm)(w, arm, s, quick, cache) for w, arm, s in todo
    )
    order = {arm: i for i, arm in enumerate(ARMS)}
    return (
        pl.DataFrame(rows)
        .with_columns(pl.col("arm").replace_strict(order).alias("_o"))
        .sort(["workload", "_o", "seed"])
        .drop("_o")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("paper"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny runs (tests)")
    ap.add_argument("--cache", type=Path, default=None, help="resume: per-run rows kept in this folder")
    ap.add_argument("--from-csv", action="store_true", help="reuse OUT/arms.csv: tables and figure only")
    a = ap.parse_args()
    (a.out / "figures").mkdir(parents=True, exist_ok=True)
    if a.from_csv:
        runs = pl.read_csv(a.out / "arms.csv")
    else:
        simulate_all(a.seeds, a.jobs, a.quick, a.cache).write_csv(a.out / "arms.csv", float_precision=6)
        runs = pl.read_csv(a.out / "arms.csv")  # tables and figure from the stored values, as --from-csv
    write_meta(a.out, a.seeds, a.quick)
    table = paired(runs)
    table.write_csv(a.out / "arms_paired.csv", float_precision=6)
    arms_figure(table, a.out / "figures" / "arms.png")


if __name__ == "__main__":
    main()
