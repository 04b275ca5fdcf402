"""Derived stored outputs of the paper: Markdown tables and aggregates computed from the stored
CSV/JSON of the experiments (no simulation). Writes ``paper/tables/*.md`` and ``paper/derived.json``.

Usage: ``python experiments/paper/derive.py [--paper paper] [--validation validation]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ARM_LABELS = {
    "as_recorded": "as recorded (the trace's model per call)",
    "all_realtime": "all real-time (strongest model)",
    "api_only_router": "API-only router",
    "router_first_no_local": "router-first without local GPUs",
    "plus_local_gpus": "+ local GPUs",
    "plus_batch": "+ batch",
    "plus_caching": "+ caching",
    "plus_evaluator": "+ nightly evaluator",
    "plus_distillation": "+ distillation",
}


def _pm(mean: float, ci: float, scale: float, unit: str, signed: bool = True) -> str:
    """``+12.3 ± 1.4 unit`` (mean and 95 % half-width times ``scale``)."""
    m = f"{mean * scale:+.1f}" if signed else f"{mean * scale:.1f}"
    return f"{m.replace('-', '−')} ± {ci * scale:.1f}{unit}"


def arms_table(paired: pl.DataFrame, workload: str) -> str:
    """The ladder of one workload as a Markdown table (means over seeds; paired differences against
    the reference with 95 % t-intervals)."""
    t = paired.filter(pl.col("workload") == workload)
    head = (
        "| arm | cost (USD) | cost vs ref. | success | success vs ref. | SLO | local | batch | cache |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in t.iter_rows(named=True):
        lines.append(
            f"| {ARM_LABELS.get(r['arm'], r['arm'])} | ${r['cost_usd_mean']:,.0f} "
            f"| {_pm(r['cost_change_mean'], r['cost_change_ci95'], 100, ' %')} "
            f"| {100 * r['success_rate_mean']:.1f} % "
            f"| {_pm(r['success_rate_diff_mean'], r['success_rate_diff_ci95'], 100, ' pp')} "
            f"| {100 * r['slo_attainment_mean']:.1f} % | {100 * r['share_local_mean']:.1f} % "
            f"| {100 * r['share_batch_mean']:.1f} % | {100 * r['share_cache_mean']:.1f} % |"
        )
    return head + "\n".join(lines) + "\n"


def _median_abs(values: list[float]) -> float | None:
    v = [abs(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def gpu_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Median absolute errors of the GPU timing model: held-out experiments with measurements,
    leave-one-out on the fit set, and BLIS-evolved where it published predictions."""
    exps = report["experiments"]
    held = [e for e in exps if e.get("role") == "held out" and e.get("error") and not e.get("overloaded")]
    fit = [e for e in exps if e.get("loo_error")]
    fp8 = [
        abs(e["fp8_moe_loo_error"]["e2e_mean"])
        for e in exps
        if (e.get("fp8_moe_loo_error") or {}).get("e2e_mean") is not None
    ]
    blis = [e for e in exps if (e.get("reference_error") or {}).get("e2e_mean") is not None]

    def med(rows: list[dict[str, Any]], key: str, metric: str) -> float | None:
        return _median_abs([(r.get(key) or {}).get(metric) for r in rows])

    return {
        "held_out": {
            "n": len(held),
            "e2e_mean": med(held, "error", "e2e_mean"),
            "ttft_mean": med(held, "error", "ttft_mean"),
            "max_e2e": max((abs(e["error"]["e2e_mean"]) for e in held), default=None),
        },
        "loo": {
            "n": len(fit),
            "e2e_mean": med(fit, "loo_error", "e2e_mean"),
            "ttft_mean": med(fit, "loo_error", "ttft_mean"),
        },
        "blis": {
            "n": len(blis),
            "e2e_mean": med(blis, "reference_error", "e2e_mean"),
            "ttft_mean": med(blis, "reference_error", "ttft_mean"),
        },
        "simroute_on_blis_set": {
            "e2e_mean": med(blis, "error", "e2e_mean"),
            "ttft_mean": med(blis, "error", "ttft_mean"),
        },
        "overloaded_flagged": sum(bool(e.get("overloaded")) for e in exps),
        "fp8_loo_e2e_abs": {"min": min(fp8, default=None), "max": max(fp8, default=None), "n": len(fp8)},
    }


def realtime_table(fits: dict[str, Any]) -> str:
    """The Claude API-latency fits' held-out checks as a Markdown table."""
    lines = [
        "| model | held-out calls | API-time error (median abs.) | 10–90 % band coverage | mean bias "
        "| TTFT error (calls) |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in sorted(fits["models"].items(), key=lambda kv: -kv[1]["n_test"]):
        ttft = (
            f"{100 * m['ttft_mdape']:.1f} % ({m['n_ttft_test']})" if m["ttft_mdape"] is not None else "— (0)"
        )
        lines.append(
            f"| {name} | {m['n_test']:,} | {100 * m['api_mdape']:.1f} % | {m['api_p10_p90_coverage']:.2f} "
            f"| {100 * m['api_mean_bias']:+.1f} % | {ttft} |".replace("+-", "−").replace("| -", "| −")
        )
    return "\n".join(lines) + "\n"


def fleet_summary(daily: pl.DataFrame) -> dict[str, Any]:
    """Per variant of the 14-day fleet: total cost (USD, incl. evaluator and distillation), success
    over all days (request-weighted), first/last day's cost and local share."""
    out: dict[str, Any] = {}
    for (variant,), group in daily.group_by(["variant"], maintain_order=True):
        g = group.sort("day")
        w = g["n_requests"].to_numpy().astype(float)
        out[str(variant)] = {
            "total_cost_usd": float(g["cost_with_feedback_usd"].sum()),
            "success_rate": float(np.average(g["success_rate"].to_numpy(), weights=w)),
            "requests": int(w.sum()),
            "first_day_cost_usd": float(g["cost_with_feedback_usd"][0]),
            "last_day_cost_usd": float(g["cost_with_feedback_usd"][-1]),
            "last_day_share_local": float(g["share_local"][-1]),
            "last_day_success_rate": float(g["success_rate"][-1]),
        }
    ref = out.get("a all-real-time")
    for v in out.values():
        v["cost_change_vs_a"] = v["total_cost_usd"] / ref["total_cost_usd"] - 1.0 if ref else None
        v["success_diff_vs_a"] = v["success_rate"] - ref["success_rate"] if ref else None
    return out


def _pct(x: float | None, digits: int = 1, signed: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "—"
    v = f"{100 * x:+.{digits}f}" if signed else f"{100 * x:.{digits}f}"
    return v.replace("-", "−") + " %"


def sensitivity_table(summary: pl.DataFrame) -> str:
    """One row per factor: the low and high level, and the three outcomes (mean over seeds) at each;
    the base point first."""
    base = summary.filter(pl.col("factor") == "base").row(0, named=True)
    lines = [
        "| factor (base) | level | cost cut | success change | local share | GPU utilisation |",
        "|---|---|---|---|---|---|",
        f"| base point | — | {_pct(base['cost_cut'], signed=True)} | {base['success_change_pp']:+.1f} pp "
        f"| {_pct(base['local_share'])} | {_pct(base['gpu_util'])} |".replace("+-", "−"),
    ]
    rows = summary.filter(~pl.col("factor").is_in(["base", "gpu_curve"]))
    for r in rows.iter_rows(named=True):
        unit = f" {r['unit']}" if r["unit"] else ""
        name = f"{r['label']} ({r['base_value']:g}{unit})" if r["level"] == "low" else ""
        level = r["value_text"] or f"{r['value']}{unit}"
        cells = [
            name,
            f"{r['level']}: {level}",
            _pct(r["cost_cut"], signed=True),
            f"{r['success_change_pp']:+.1f} pp".replace("-", "−"),
            _pct(r["local_share"]),
            _pct(r["gpu_util"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def gpu_count_table(curve: pl.DataFrame) -> str:
    """Local share, costs, success and GPU utilisation against the number of local GPUs."""
    lines = [
        "| local GPUs | local share | router-first cost | all-real-time cost | cost cut "
        "| success, router-first / all-real-time | GPU utilisation |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in curve.iter_rows(named=True):
        lines.append(
            f"| {r['gpus']} | {_pct(r['local_share'])} | ${r['cost_router_first_usd']:,.0f} "
            f"| ${r['cost_all_realtime_usd']:,.0f} | {_pct(r['cost_cut'], signed=True)} "
            f"| {_pct(r['success_router_first'])} / {_pct(r['success_all_realtime'])} "
            f"| {_pct(r['gpu_util'])} |"
        )
    return "\n".join(lines) + "\n"


def claims_table(claims: dict[str, Any]) -> str:
    """The seed's three claims: what the base simulation says, the best value anywhere in the
    sensitivity runs (and where), the favourable corner, and whether any run reaches the claim."""
    c = claims["claims"]
    ls, cc, b = c["local_share"], c["cost_cut"], c["batch"]
    lines = [
        "| claim | base simulation | best one factor at a time | best on the GPU curve "
        "| favourable corner | best single run | reached anywhere? |",
        "|---|---|---|---|---|---|---|",
    ]
    for claim, signed in ((ls, False), (cc, True)):
        one, gpu = claim["best_one_at_a_time"], claim["best_gpu_count"]
        corner = claim["favourable_corner"]["mean"][claim["outcome"]]
        cells = [
            claim["claim"],
            _pct(claim["base"], signed=signed),
            f"{_pct(one['value'], signed=signed)} ({one['factor']} {one['level']}: {one['factor_value']:g})",
            f"{_pct(gpu['value'], signed=signed)} ({gpu['gpus']} GPUs)",
            _pct(corner, signed=signed),
            _pct(claim["best_single_run"], signed=signed),
            "yes" if any(claim["reached"].values()) else "no",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    sim = b["simulated_base"]["times_cheaper"]
    lines.append(
        f"| {b['claim']} | {sim:.2f}× cheaper per successful task (all-batch vs all-real-time) "
        f"| {b['factor_levels']['low']['times_cheaper']:.1f}× (batch price ratio "
        f"{b['factor_levels']['low']['price_ratio']:g}) | — | {b['favourable_corner']['times_cheaper']:.2f}× "
        f"per successful task | price table: at most {b['price_table']['input']['max_times_cheaper']:.2f}× "
        f"(input), {b['price_table']['output']['max_times_cheaper']:.2f}× (output) over "
        f"{b['price_table']['input']['models']} models | {'yes' if any(b['reached'].values()) else 'no'} |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paper", type=Path, default=Path("paper"))
    ap.add_argument("--validation", type=Path, default=Path("validation"))
    a = ap.parse_args()
    tables = a.paper / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    derived: dict[str, Any] = {}
    paired = pl.read_csv(a.paper / "arms_paired.csv")
    for w in paired["workload"].unique(maintain_order=True).to_list():
        (tables / f"arms_{w}.md").write_text(arms_table(paired, w))
    fits = json.loads(Path("conf/tiers/claude_api_latency.json").read_text())
    (tables / "realtime_validation.md").write_text(realtime_table(fits))
    gpu = json.loads((a.validation / "gpu_report.json").read_text())
    derived["gpu_validation"] = gpu_summary(gpu)
    if (a.paper / "sensitivity_summary.csv").is_file():
        summary = pl.read_csv(a.paper / "sensitivity_summary.csv", infer_schema_length=None)
        (tables / "sensitivity.md").write_text(sensitivity_table(summary))
        curve = pl.read_csv(a.paper / "gpu_count.csv", infer_schema_length=None)
        (tables / "gpu_count.md").write_text(gpu_count_table(curve))
    if (a.paper / "claims.json").is_file():
        (tables / "claims.md").write_text(claims_table(json.loads((a.paper / "claims.json").read_text())))
    if (a.paper / "fleet_14d.csv").is_file():
        daily = pl.read_csv(a.paper / "fleet_14d.csv", infer_schema_length=None)
        derived["fleet_14d"] = fleet_summary(daily)
    (a.paper / "derived.json").write_text(json.dumps(derived, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
