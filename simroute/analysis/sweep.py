"""Sweep results: collect the runs of a Hydra multirun folder into one table, with replication CIs.

``aggregate(SWEEP_DIR)`` finds every ``summary.json`` below the folder, takes the job's overrides
from its ``.hydra/overrides.yaml`` (a plain list of ``key=value`` strings, read as text) and returns
one row per run: the overrides as columns, the headline metrics, and the run folder.
``replications(table)`` groups runs that differ only in ``seed`` and gives mean, standard deviation
and a 95 % t confidence interval of each metric.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from simroute.errors import InputError

METRICS: tuple[str, ...] = (
    "success_rate",
    "slo_attainment",
    "cost_total_usd",
    "cost_per_request_usd",
    "cost_per_successful_task_usd",
)
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def _overrides(run: Path) -> dict[str, str]:
    f = run / ".hydra" / "overrides.yaml"
    out: dict[str, str] = {}
    if f.exists():
        for raw in f.read_text().splitlines():
            line = raw.strip()
            if line.startswith("- ") and "=" in line:
                k, v = line[2:].split("=", 1)
                out[k.strip().strip("'\"")] = v.strip().strip("'\"")
    return out


def aggregate(sweep_dir: str | Path) -> pl.DataFrame:
    """One row per run below ``sweep_dir`` (see module docstring)."""
    d = Path(sweep_dir)
    runs = sorted(p.parent for p in d.rglob("summary.json"))
    if not runs:
        raise InputError(str(d), "no runs (no summary.json below this folder)")
    rows: list[dict[str, Any]] = []
    for r in runs:
        try:
            s = json.loads((r / "summary.json").read_text())
        except ValueError as e:
            raise InputError(str(r / "summary.json"), f"not JSON ({e})") from None
        row: dict[str, Any] = {f"override.{k}": v for k, v in _overrides(r).items()}
        row.update(
            {
                "run": str(r.relative_to(d)),
                "policy": s.get("policy"),
                "seed": s.get("seed"),
                "n_requests": s.get("n_requests"),
            }
        )
        row.update({m: s.get(m) for m in METRICS})
        row["served_local"] = s.get("tier_share", {}).get("served", {}).get("local")
        c = s.get("cost", {})
        row.update(
            {
                "cost_input_usd": c.get("api_input_usd"),
                "cost_cached_input_usd": c.get("api_cached_input_usd"),
                "cost_output_usd": c.get("api_output_usd"),
                "cost_local_usd": c.get("local_fixed_usd"),
            }
        )
        row["baseline_cost_reduction"] = (s.get("baseline") or {}).get("cost_reduction")
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def t975(n: int) -> float:
    """Two-sided 95 % Student-t quantile for the mean of ``n`` samples (``n - 1`` degrees of freedom;
    the normal 1.96 beyond 31 samples; NaN below 2)."""
    return (_T975[n - 2] if n <= 31 else 1.96) if n > 1 else float("nan")


def replications(table: pl.DataFrame) -> pl.DataFrame:
    """Mean, sd and 95 % t-interval of each metric over runs that differ only in the seed."""
    keys = [c for c in table.columns if c.startswith("override.") and c != "override.seed"] or ["policy"]
    aggs = [pl.len().alias("replications")]
    for m in METRICS:
        aggs += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().alias(f"{m}_sd")]
    g = table.group_by(keys, maintain_order=True).agg(aggs)
    t = pl.Series([t975(n) for n in g["replications"].to_list()])
    for m in METRICS:
        half = t * g[f"{m}_sd"] / g["replications"].cast(pl.Float64).sqrt()
        g = g.with_columns(half.alias(f"{m}_ci95"))
    return g
