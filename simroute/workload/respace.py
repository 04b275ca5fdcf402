"""Re-time the sessions of a trace: session *k* (in order of its first call) starts at ``k * spacing_s``.

Recorded traces without absolute start times (e.g. the Claude Code sessions, which start 60 s apart
by convention) fit in one day; a multi-day study of nightly feedback needs them spread over several
days. Every call of a session is shifted by the same offset, so the calls within a session keep their
recorded spacing, order and dependencies (``after_ids``); the table is re-sorted by arrival (stable).
"""

from __future__ import annotations

import polars as pl

from simroute.errors import ConfigError
from simroute.workload.schema import RequestTable


def respace_sessions(table: RequestTable, spacing_s: float) -> RequestTable:
    """Start session *k* (ranked by its earliest ``arrival_s``, ties by ``session_id``) at
    ``k * spacing_s`` seconds; shift ``arrival_s`` and ``recorded_arrival_s`` of all its calls alike."""
    if not spacing_s > 0.0:
        raise ConfigError(f"workload.session_spacing_s: expected a time > 0 (seconds), got {spacing_s!r}")
    df = table.with_prefix_column().df  # rows are re-sorted: the ids go with them
    starts = (
        df.group_by("session_id")
        .agg(pl.col("arrival_s").min().alias("_start"))
        .sort(["_start", "session_id"])
        .with_columns((pl.int_range(pl.len()).cast(pl.Float64) * float(spacing_s)).alias("_new"))
        .select("session_id", (pl.col("_new") - pl.col("_start")).alias("_shift"))
    )
    out = (
        df.join(starts, on="session_id", how="left", maintain_order="left")
        .with_columns(
            (pl.col("arrival_s") + pl.col("_shift")).clip(lower_bound=0.0),
            (pl.col("recorded_arrival_s") + pl.col("_shift")).clip(lower_bound=0.0),
        )
        .drop("_shift")
        .sort("arrival_s", maintain_order=True)
    )
    return RequestTable(
        out, table.source, table.block_tokens, table.skills, table.label_counts, table.column_names
    )
