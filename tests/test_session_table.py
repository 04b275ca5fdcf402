"""The session table equals a straightforward group-by of the request table (the tiers each session
used as sorted, ``/``-joined names)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from simroute.analysis.sessions import session_table
from simroute.outcomes import CANCELLED, NO_TIER, OUTCOMES


def _reference(requests: pl.DataFrame) -> pl.DataFrame:
    """The session table written the plain way (tiers as strings: filtered, unique, sorted, joined)."""
    r = requests.with_columns(
        issued=pl.col("outcome").cast(pl.String) != CANCELLED,
        done_s=pl.col("arrival_s") + pl.col("e2e_s").fill_nan(0.0),
    )
    return (
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
            pl.col("final_tier")
            .filter(pl.col("final_tier") != NO_TIER)
            .unique()
            .sort()
            .str.join("/")
            .alias("tiers_used"),
            (
                pl.col("cached_tokens").filter(pl.col("issued")).sum()
                / pl.col("prompt_tokens").filter(pl.col("issued")).sum()
            ).alias("cached_token_share"),
        )
        .sort("session_id")
        .with_columns(pl.col("makespan_s").fill_null(0.0))
    )


def _requests(n: int, tiers: list[str], seed: int) -> pl.DataFrame:
    """``n`` requests in about ``n / 3`` sessions, with every outcome, NaN latencies and tiers."""
    g = np.random.default_rng(seed)
    outcome = g.choice(list(OUTCOMES), n, p=[0.5, 0.1, 0.05, 0.05, 0.3])
    return pl.DataFrame(
        {
            "session_id": g.integers(0, max(1, n // 3), n),
            "urgency": g.choice(["low", "high"], n),
            "arrival_s": g.uniform(0, 100, n),
            "e2e_s": np.where(g.random(n) < 0.2, np.nan, g.uniform(0, 10, n)),
            "outcome": pl.Series(outcome, dtype=pl.Enum(list(OUTCOMES))),
            "cost_total_usd": g.uniform(0, 1, n),
            "correct": g.random(n) < 0.7,
            "final_tier": g.choice(tiers, n),
            "cached_tokens": g.integers(0, 50, n),
            "prompt_tokens": g.integers(50, 100, n),
            "other": g.random(n),
        }
    )


@pytest.mark.parametrize(
    "tiers",
    [
        ["local", "batch", "realtime", "cache", NO_TIER],
        [NO_TIER],
        ["realtime"],
        ["zeta", "alpha", NO_TIER, "mid"],
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_session_table_equals_the_plain_group_by(tiers: list[str], seed: int) -> None:
    requests = _requests(3000, tiers, seed)
    got, want = session_table(requests), _reference(requests)
    assert got.schema == want.schema
    assert got.equals(want)
    if len(set(tiers) - {NO_TIER}) > 1:  # the case that makes the tier sets non-trivial
        assert got["tiers_used"].str.contains("/").any()
    if tiers == [NO_TIER]:
        assert (got["tiers_used"] == "").all()


def test_null_tiers_are_left_out_as_the_plain_group_by_does() -> None:
    requests = _requests(600, ["local", "batch", NO_TIER], 3)
    requests = requests.with_columns(
        final_tier=pl.when(pl.col("other") < 0.1).then(None).otherwise(pl.col("final_tier"))
    )
    assert requests["final_tier"].null_count() > 20
    assert session_table(requests).equals(_reference(requests))
