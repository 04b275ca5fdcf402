"""The 14-day growing-fleet scenario under four architectures, drawn together.

(a) all real-time; (b) router-first without feedback; (c) with the nightly evaluator; (d) plus
distillation. Every arm gets what a sensible team runs: provider prompt caching, the response
cache, the same LLM judge and retries (the all-real-time arm provisions no GPUs). Writes
``paper/fleet_14d.csv`` (one row per variant, seed and day) and ``paper/figures/fleet_14d.png``
(+ ``.svg``). Usage: ``python experiments/fleet_14d.py [--out paper] [--seeds 0 1 2]`` (≈1 min per
variant and seed; with several seeds the figure shows means with 95 % CI bands, with one it says so);
``--from-csv paper/fleet_14d.csv`` redraws the figure from a stored table without simulating.
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


def figure(table: pl.DataFrame, out: Path) -> None:
    """Draw ``out/figures/fleet_14d.png`` (+ ``.svg``) from the table this script writes (one row per
    variant, seed and day; tables written before the ``seed`` column are one seed)."""
    variants = table["variant"].unique(maintain_order=True).to_list()
    runs = {str(v): table.filter(pl.col("variant") == v) for v in variants}
    seeds = sorted(table["seed"].unique().to_list()) if "seed" in table.columns else [0]
    per_day = table.group_by("day").agg(pl.col("n_requests").first()).sort("day")["n_requests"]
    n = len(seeds)
    what = f"mean of {n} seeds, 95 % CI" if n > 1 else f"seed {seeds[0]}: one run per variant, no error bands"
    title = f"14-day growing agent fleet: {per_day[0]:,} → {per_day[-1]:,} requests per day ({what})"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    daily_figure(runs, out / "figures" / "fleet_14d.png", title)


def main() -> None:
    """Run the variants for every seed (or only redraw, ``--from-csv``); write the table and figure."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("paper"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--from-csv", type=Path, help="redraw the figure from this table; no simulation")
    a = ap.parse_args()
    if a.from_csv is not None:
        figure(pl.read_csv(a.from_csv), a.out)
        return
    days = []
    for seed in a.seeds:
        for name, over in VARIANTS.items():
            t0 = time.perf_counter()
            daily, s = run_multiday(compose(["experiment=fleet_14d", f"seed={seed}", *over]))
            days.append(daily.with_columns(pl.lit(name).alias("variant"), pl.lit(seed).alias("seed")))
            print(
                f"{name:22s} seed {seed} {time.perf_counter() - t0:6.1f} s  "
                f"cost ${s['total_cost_usd']:9.2f}  "
                f"success {s['success_rate']:.1%}  local day1 {s['first_day']['share_local']:.1%} -> "
                f"day14 {s['last_day']['share_local']:.1%}",
                flush=True,
            )
    a.out.mkdir(parents=True, exist_ok=True)
    table = pl.concat(days, how="diagonal_relaxed")
    table.write_csv(a.out / "fleet_14d.csv", float_precision=5)
    figure(table, a.out)


if __name__ == "__main__":
    main()
