"""Tier economics on the default agent workload and across the real price table.

1. Simulates the default 50k-request agent fleet under all-real-time, all-batch-where-the-deadline-
   allows and router-first (same requests, same seed) and prints cost per successful task.
2. Prints the distribution of batch/standard price ratios over every model in the LiteLLM table
   that publishes batch prices.

Usage: ``python experiments/tier_economics.py [--requests N]``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from simroute.analysis.summary import headline
from simroute.config import compose
from simroute.economics.prices import batch_price_ratios
from simroute.policy.registry import PolicyContext
from simroute.sim.build import build_policies, setup
from simroute.sim.run import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=Path("paper"))
    a = ap.parse_args()
    stored: dict[str, Any] = {"requests": a.requests, "policies": {}, "batch_price_ratio": {}}
    cfg = compose([f"workload.n_requests={a.requests}"])
    inp = setup(cfg, 0)
    skills, table, prices, quality, catalog = inp.skills, inp.table, inp.prices, inp.quality, inp.catalog
    ctx = PolicyContext(skills.names, catalog, 0)
    print(f"{'policy':14s} {'success':>8s} {'cost USD':>10s} {'USD/success':>12s} {'batch share':>12s}")
    for name in ("all_realtime", "all_batch", "router_first"):
        pol = build_policies(compose([f"policy={name}"])["policy"], ctx)
        res = simulate(table, pol, cfg["tiers"], catalog, quality, 0, progress=False)
        h = headline(res)
        share = float((res.requests["first_tier"] == "batch").mean())  # type: ignore[arg-type]
        print(
            f"{name:14s} {h['success_rate']:8.1%} {h['cost_total_usd']:10.2f} "
            f"{h['cost_per_successful_task_usd']:12.5f} {share:12.1%}"
        )
        stored["policies"][name] = {**h, "batch_share": share}
    for label, r in batch_price_ratios(prices).items():
        q = np.percentile(r, [0, 10, 50, 90, 100])
        top = ", ".join(f"{k}: {v}" for k, v in Counter(r).most_common(4))
        print(
            f"batch/standard {label} price ratio over {len(r)} models: min/p10/p50/p90/max = "
            f"{'/'.join(f'{x:.2f}' for x in q)}; most common {top}"
        )
        stored["batch_price_ratio"][label] = {
            "models": len(r),
            "min_p10_p50_p90_max": [float(x) for x in q],
            "most_common": [[float(k), int(v)] for k, v in Counter(r).most_common(4)],
        }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "tier_economics.json").write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
