"""``simroute aggregate SWEEP_DIR`` and ``simroute plot SWEEP_DIR``: one table of a multirun, and its
figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from simroute.analysis import plots
from simroute.analysis.metrics import aiq, pareto_frontier
from simroute.analysis.sweep import aggregate, replications, t975
from simroute.commands import fail
from simroute.errors import SimrouteError


def main(cmd: str, argv: list[str]) -> None:
    """Run ``simroute aggregate`` or ``simroute plot`` (``cmd``) on a multirun folder."""
    ap = argparse.ArgumentParser(prog=f"simroute {cmd}")
    ap.add_argument("sweep_dir", help="a multirun folder (hydra.sweep.dir)")
    a = ap.parse_args(argv)
    d = Path(a.sweep_dir)
    try:
        table = aggregate(d)
    except SimrouteError as e:
        fail(e)
    ov = [c for c in table.columns if c.startswith("override.") and table[c].n_unique() > 1]
    names = [", ".join(f"{c[9:]}={row[c]}" for c in ov) or row["run"] for row in table.iter_rows(named=True)]
    table = table.with_columns(pl.Series("name", names))
    table.write_parquet(d / "aggregate.parquet")
    replications(table).write_parquet(d / "replications.parquet")
    cost = table["cost_per_request_usd"].to_numpy() * 1000
    qual = table["success_rate"].to_numpy()
    front = pareto_frontier(cost, qual)
    if cmd == "aggregate":
        print(
            f"{table.height} runs -> {d / 'aggregate.parquet'} (and replications.parquet); "
            f"Pareto frontier: {len(front)} runs, AIQ {aiq(cost, qual):.4f}"
        )
        return
    figs = d / "figures"
    figs.mkdir(exist_ok=True)
    _cost_vs_quality(table, names, figs / "cost_vs_quality.png", d.name)
    _cost_breakdown(table, figs / "cost_breakdown.png", d.name)
    pick = [int(i) for i in front[:6]]
    frames = {names[i]: pl.read_parquet(d / table["run"][i] / "requests.parquet") for i in pick}
    plots.latency_cdf_by(
        frames, "final_tier", figs / "latency_cdf_by_tier.png", "Pareto runs: latency by tier"
    )
    plots.latency_cdf_by(
        frames, "urgency", figs / "latency_cdf_by_urgency.png", "Pareto runs: latency by urgency"
    )
    plots.tier_share_over_time(
        frames, figs / "tier_share_over_time.png", "Pareto runs: routed tier over time"
    )
    print(f"figures -> {figs} (PNG and SVG)")


def _cost_vs_quality(table: pl.DataFrame, names: list[str], path: Path, sweep: str) -> None:
    """Cost vs success with the Pareto frontier: one point per run, or, when configurations were
    run with several seeds, one per configuration at the mean over its seeds with 95 % CI bars."""
    rep = replications(table)
    if int(rep["replications"].max() or 0) < 2:  # type: ignore[arg-type]
        cost = table["cost_per_request_usd"].to_numpy() * 1000
        title = f"{sweep}: {table.height} runs (one run per point, no error bars)"
        plots.pareto_plot(names, cost, table["success_rate"].to_numpy(), path, title)
        return
    keys = [c for c in rep.columns if c.startswith("override.") and rep[c].n_unique() > 1]
    labels = [
        ", ".join(f"{c[9:]}={row[c]}" for c in keys) or str(row.get("policy"))
        for row in rep.iter_rows(named=True)
    ]
    lo, hi = int(rep["replications"].min()), int(rep["replications"].max())  # type: ignore[arg-type]
    seeds = f"{lo}" if lo == hi else f"{lo}-{hi}"
    plots.pareto_plot(
        labels,
        rep["cost_per_request_usd_mean"].to_numpy() * 1000,
        rep["success_rate_mean"].to_numpy(),
        path,
        f"{sweep}: {rep.height} configurations, mean of {seeds} seeds (bars: 95 % CI)",
        cost_err=rep["cost_per_request_usd_ci95"].fill_null(0.0).fill_nan(0.0).to_numpy() * 1000,
        quality_err=rep["success_rate_ci95"].fill_null(0.0).fill_nan(0.0).to_numpy(),
    )


_PARTS = ("cost_input_usd", "cost_cached_input_usd", "cost_output_usd", "cost_local_usd")


def _cost_breakdown(table: pl.DataFrame, path: Path, sweep: str) -> None:
    """Stacked cost per 1,000 requests: one bar per run, or, when configurations were run with
    several seeds, one per configuration (mean over its seeds of each part per 1,000 requests) with
    the 95 % CI of the total."""
    keys = [c for c in table.columns if c.startswith("override.") and c != "override.seed"] or ["policy"]
    per_1k = [(pl.col(c) * 1000 / pl.col("n_requests")).alias(c) for c in _PARTS]
    g = (
        table.with_columns(*per_1k)
        .with_columns(pl.sum_horizontal(*_PARTS).alias("total"))
        .group_by(keys, maintain_order=True)
        .agg(*[pl.col(c).mean() for c in _PARTS], pl.col("total").std().alias("sd"), pl.len().alias("n"))
    )
    if int(g["n"].max() or 0) < 2:  # type: ignore[arg-type]
        plots.cost_breakdown(table, path, f"{sweep}: cost per 1,000 requests (one run per bar)")
        return
    shown = [c for c in keys if c.startswith("override.") and g[c].n_unique() > 1]
    labels = [
        ", ".join(f"{c[9:]}={row[c]}" for c in shown) or str(row[keys[0]]) for row in g.iter_rows(named=True)
    ]
    half = (
        np.array([t975(int(n)) for n in g["n"]])
        * g["sd"].fill_null(0.0).to_numpy()
        / np.sqrt(g["n"].to_numpy())
    )
    plots.cost_breakdown(
        g.with_columns(pl.Series("name", labels), pl.lit(1000).alias("n_requests")),  # parts already per 1k
        path,
        f"{sweep}: cost per 1,000 requests, mean over seeds (bars: 95 % CI of the total)",
        total_err=np.nan_to_num(half),
    )
