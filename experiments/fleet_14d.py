"""The 14-day growing-fleet scenario under four architectures, drawn together.

(a) all real-time; (b) router-first without feedback; (c) with the nightly evaluator; (d) plus
distillation. Every arm gets what a sensible team runs: provider prompt caching, the response
cache, the same LLM judge and retries (the all-real-time arm provisions no GPUs). Writes
``paper/fleet_14d.csv`` (one row per variant and day) and ``paper/figures/fleet_14d.png``.
Usage: ``python experiments/fleet_14d.py [--out paper]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

from simroute.analysis.plots import daily_figure
from simroute.config import compose
from simroute.runner.multiday import run_multiday

NO_FEEDBACK = ["multiday.evaluator.enabled=false", "multiday.distillation.enabled=false"]
VARIANTS = {
    "a all-real-time": ["policy=all_realtime", *NO_FEEDBACK],
    "b router-first": NO_FEEDBACK,
    "c + nightly evaluator": ["multiday.distillation.enabled=false"],
    "d + distillation": [],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("paper"))
    a = ap.parse_args()
    runs = {}
    for name, over in VARIANTS.items():
        t0 = time.perf_counter()
        daily, s = run_multiday(compose(["experiment=fleet_14d", *over]))
        runs[name] = daily
        print(
            f"{name:28s} {time.perf_counter() - t0:6.1f} s  cost ${s['total_cost_usd']:9.2f}  "
            f"success {s['success_rate']:.1%}  local day1 {s['first_day']['share_local']:.1%} -> "
            f"day14 {s['last_day']['share_local']:.1%}",
            flush=True,
        )
    (a.out / "figures").mkdir(parents=True, exist_ok=True)
    pl.concat(
        [d.with_columns(pl.lit(n).alias("variant")) for n, d in runs.items()], how="diagonal"
    ).write_csv(a.out / "fleet_14d.csv", float_precision=5)
    daily_figure(runs, a.out / "figures" / "fleet_14d.png", "14-day growing agent fleet (seed 0)")


if __name__ == "__main__":
    main()
