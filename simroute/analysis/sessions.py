"""Session results: one row per session (``sessions.parquet``) and their percentiles for
``summary.json``.

A session is every request with the same ``session_id`` (main agent and sub-agents). Pure functions
of a run's request table (simulated issue times in ``arrival_s``), so the same run gives identical
tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from simroute.outcomes import CANCELLED, NO_TIER

SESSION_PERCENTILES = (50, 90, 95, 99)

SESSION_COLUMNS: tuple[str, ...] = (
    "session_id",
    "urgency",
    "arrival_s",
    "e2e_s",
    "outcome",
    "cost_total_usd",
    "correct",
    "final_tier",
    "cached_tokens",
    "prompt_tokens",
)
"""The request-table columns :func:`session_table` reads (a caller may load only these)."""


def session_table(requests: pl.DataFrame) -> pl.DataFrame:
    """One row per session, in ``session_id`` order.

    Columns: ``session_id``; ``urgency`` (of its first request); ``steps`` (requests);
    ``steps_run`` (requests issued, i.e. not ``cancelled``); ``ended_early`` (some step cancelled: a
    failed step ended the session); ``start_s`` (first issue, s); ``makespan_s`` (first issue to the
    last terminal state of an issued step, s); ``cost_usd`` (sum of ``cost_total_usd``, local GPUs
    at their allocated share); ``success`` (every step correct: a cancelled step is not);
    ``tiers_used`` (the tiers that served its answers, sorted, ``/``-joined; ``cache`` included);
    ``cached_token_share`` (prompt tokens read from a prompt/prefix cache over the prompt tokens of
    its issued steps).
    """
    names = sorted(set(requests["final_tier"].drop_nulls().unique().to_list()) - {NO_TIER})
    if len(names) > 62:  # one bit each in an Int64; the simulator has five values at most
        raise ValueError(f"session_table: {len(names)} distinct final_tier values, at most 62 supported")
    bits = {t: 1 << k for k, t in enumerate(names)} | {NO_TIER: 0}
    r = requests.select(  # only these columns, and the tiers as bits: a third of the transient memory
        "session_id",
        "urgency",
        "arrival_s",
        "cost_total_usd",
        "correct",
        "cached_tokens",
        "prompt_tokens",
        issued=pl.col("outcome") != CANCELLED,
        done_s=pl.col("arrival_s") + pl.col("e2e_s").fill_nan(0.0),
        tier_bit=pl.col("final_tier").replace_strict(list(bits), list(bits.values()), return_dtype=pl.Int64),
    )
    out = (
        r.group_by("session_id")
        .agg(
            pl.col("urgency").first(),
            pl.len().cast(pl.Int64).alias("steps"),
            pl.col("issued").sum().cast(pl.Int64).alias("steps_run"),
            (~pl.col("issued")).any().alias("ended_early"),
            pl.col("arrival_s").min().alias("start_s"),
            (pl.col("done_s").filter(pl.col("issued")).max() - pl.col("arrival_s").min()).alias("makespan_s"),
            pl.col("cost_total_usd").sum().alias("cost_usd"),
            pl.col("correct").all().alias("success"),
            pl.col("tier_bit").bitwise_or().fill_null(0).alias("tiers_used"),
            (
                pl.col("cached_tokens").filter(pl.col("issued")).sum()
                / pl.col("prompt_tokens").filter(pl.col("issued")).sum()
            ).alias("cached_token_share"),
        )
        .sort("session_id")
        .with_columns(pl.col("makespan_s").fill_null(0.0))
    )
    masks = out["tiers_used"].unique().to_list()
    joined = ["/".join(t for t in names if m & bits[t]) for m in masks]
    return out.with_columns(pl.col("tiers_used").replace_strict(masks, joined, return_dtype=pl.String))


def session_summary(sessions: pl.DataFrame) -> dict[str, Any]:
    """The ``sessions`` block of ``summary.json``: counts, success rate, sessions ended early,
    makespan percentiles (s), cost per session and per successful session (USD)."""
    n = sessions.height
    ok = int(sessions["success"].sum())
    cost = float(sessions["cost_usd"].sum())
    makespan = sessions["makespan_s"].to_numpy()
    return {
        "n_sessions": n,
        "success_rate": ok / n if n else None,
        "ended_early_share": float(sessions["ended_early"].mean()) if n else None,  # type: ignore[arg-type]
        "steps_mean": float(sessions["steps"].mean()) if n else None,  # type: ignore[arg-type]
        "makespan_s": {
            "mean": float(np.mean(makespan)) if n else None,
            **{f"p{p}": float(np.percentile(makespan, p)) if n else None for p in SESSION_PERCENTILES},
        },
        "cost_per_session_usd": cost / n if n else None,
        "cost_per_successful_session_usd": cost / ok if ok else None,
    }
