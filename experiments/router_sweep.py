"""Sweep the router zoo on the default agent workload; plot cost vs quality with the Pareto frontier.

Every policy sees the same requests and the same luck (seed 0), with the response cache and session
stickiness off so that only the routers differ (``router_first + caches`` is the default
architecture with both on, for reference). Writes ``paper/router_sweep.csv``
and ``paper/figures/router_sweep.png`` (+ ``.svg``). One seed: each point is one run, without error
bars. Usage: ``python experiments/router_sweep.py [--requests N] [--out paper]``;
``--from-csv paper/router_sweep.csv`` redraws the figure from a stored table without simulating.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from simroute.analysis.metrics import aiq, pareto_frontier
from simroute.analysis.plots import pareto_plot
from simroute.analysis.summary import headline
from simroute.config import compose
from simroute.policy.registry import PolicyContext
from simroute.sim.build import build_policies, setup
from simroute.sim.run import simulate

VARIANTS: list[tuple[str, str, list[str]]] = [
    ("all_realtime", "all_realtime", []),
    ("all_batch", "all_batch", []),
    ("api_only_router", "api_only_router", []),
    ("router_first", "router_first", []),
    ("router_first + caches", "router_first", ["+keep_caches=true"]),
    ("cascade", "cascade", []),
    ("thompson", "thompson", []),
    *[
        (
            f"cost_aware q{q}",
            "cost_aware",
            [f"policy.router.min_quality={q}", f"policy.selector.threshold={q}"],
        )
        for q in (0.6, 0.7, 0.8, 0.9)
    ],
    *[
        (f"win_rate {s:.0%}", "win_rate", [f"policy.router.target_strong_share={s}"])
        for s in (0.2, 0.4, 0.6, 0.8)
    ],
]


def figure(df: pl.DataFrame, out: Path, requests: int) -> None:
    """Draw ``out/figures/router_sweep.png`` (+ ``.svg``) from the sweep table (columns ``name``,
    ``usd_per_1k_requests``, ``success_rate``)."""
    (out / "figures").mkdir(parents=True, exist_ok=True)
    pareto_plot(
        df["name"].to_list(),
        df["usd_per_1k_requests"].to_numpy(),
        df["success_rate"].to_numpy(),
        out / "figures" / "router_sweep.png",
        f"Router zoo on the default agent fleet ({requests:,} requests; one run per policy, seed 0)",
    )


def main() -> None:
    """Simulate every router variant (or only redraw, ``--from-csv``); write the table and figure."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=Path("paper"))
    ap.add_argument("--from-csv", type=Path, help="redraw the figure from this table; no simulation")
    a = ap.parse_args()
    if a.from_csv is not None:
        df = pl.read_csv(a.from_csv)
        n = round(1000 * df["cost_total_usd"][0] / df["usd_per_1k_requests"][0])  # requests per run
        figure(df, a.out, n)
        return
    cfg = compose([f"workload.n_requests={a.requests}"])
    inp = setup(cfg, 0)
    skills, table, quality, catalog = inp.skills, inp.table, inp.quality, inp.catalog
    rows = []
    for name, policy, overrides in VARIANTS:
        keep = "+keep_caches=true" in overrides
        pcfg = compose([f"policy={policy}", *(o for o in overrides if o != "+keep_caches=true")])["policy"]
        if not keep:  # compare routers with everything else equal: no response cache, no stickiness
            pcfg["response_cache"] = {"enabled": False}
            pcfg["sticky_sessions"] = False
        res = simulate(
            table,
            build_policies(pcfg, PolicyContext(skills.names, catalog, 0)),
            cfg["tiers"],
            catalog,
            quality,
            0,
            progress=False,
        )
        h = headline(res)
        r = res.requests
        rows.append(
            {
                "name": name,
                "policy": policy,
                "success_rate": h["success_rate"],
                "slo_attainment": h["slo_attainment"],
                "cost_total_usd": h["cost_total_usd"],
                "usd_per_1k_requests": 1000 * h["cost_per_request_usd"],
                "usd_per_successful_task": h["cost_per_successful_task_usd"],
                "served_local": float((r["final_tier"] == "local").mean()),  # type: ignore[arg-type]
                "undetected_failures": int(r["undetected_failure"].sum()),
            }
        )
        print(
            f"{name:18s} success {h['success_rate']:.3f}  ${1000 * h['cost_per_request_usd']:.2f}/1k  "
            f"local {rows[-1]['served_local']:.1%}",
            flush=True,
        )
    df = pl.DataFrame(rows)
    cost, qual = df["usd_per_1k_requests"].to_numpy(), df["success_rate"].to_numpy()
    front = pareto_frontier(cost, qual)
    df = df.with_columns(pl.Series("pareto", np.isin(np.arange(df.height), front)))
    a.out.mkdir(parents=True, exist_ok=True)
    df.write_csv(a.out / "router_sweep.csv", float_precision=5)
    figure(df, a.out, a.requests)
    print(f"Pareto frontier: {', '.join(df['name'][int(i)] for i in front)}; AIQ {aiq(cost, qual):.4f}")


if __name__ == "__main__":
    main()
