"""The canonical request table: one row per request, validated on construction.

Every workload — synthetic or a replayed trace — becomes a :class:`RequestTable` before it reaches
the simulator. Construction checks every column and row and raises :class:`InputError` naming the
first offending row and column, so bad data never enters a run and nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simroute.errors import InputError
from simroute.workload.skills import URGENCIES

SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.Int64(),
    "session_id": pl.Int64(),
    "step": pl.Int32(),
    "arrival_s": pl.Float64(),
    "skill": pl.String(),
    "urgency": pl.String(),
    "prompt_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "deadline_s": pl.Float64(),
    "difficulty": pl.Float64(),
    "missing_repo_context": pl.Boolean(),
    "dependency_chain": pl.Int32(),
    "risky_migration": pl.Boolean(),
    "security_sensitive": pl.Boolean(),
    "high_consequence_write": pl.Boolean(),
    "prefix_hashes": pl.List(pl.Int64()),
    "content_id": pl.Int64(),
    "intent_id": pl.Int64(),
    "prompt": pl.String(),
}
"""Column -> dtype of the request table. Units: ``arrival_s`` seconds since the workload start,
``deadline_s`` seconds after arrival, tokens as counts, ``difficulty`` in logits (IRT scale),
``prefix_hashes`` one id per full prefix block of :attr:`RequestTable.block_tokens` tokens (equal ids
= identical prefix, as in Mooncake traces and vLLM's prefix cache). ``content_id``: equal ids = the
same prompt (an exact repeat, a response-cache hit if the answer is still cached); ``intent_id``:
equal ids = the same request in other words (a near-duplicate, what a semantic cache matches). A
table without them gets ``content_id = request_id`` (no duplicate structure known) and
``intent_id = content_id``. ``prompt``: the prompt text, for text classifiers (empty when the
workload has none)."""

OPTIONAL: tuple[str, ...] = ("content_id", "intent_id")
"""Columns with a default when a table lacks them (``request_id`` and ``content_id``)."""


@dataclass(frozen=True)
class RequestTable:
    """A validated request table plus where it came from.

    Attributes:
        df: the table, exactly :data:`SCHEMA`'s columns and dtypes, sorted by ``arrival_s``.
        source: file path or generator name, used in error messages and summaries.
        block_tokens: tokens per prefix block of ``prefix_hashes``.
        label_counts: how many rows each labelling rule assigned (empty when labels were given).
        skills: the valid skill names.
        column_names: the source file's name for canonical columns (used in error messages).
    """

    df: pl.DataFrame
    source: str
    block_tokens: int
    skills: tuple[str, ...]
    label_counts: Mapping[str, int] = field(default_factory=dict)
    column_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "df", validate(self.df, self.source, self.skills, self.column_names))
        if self.block_tokens < 1:
            raise InputError(self.source, f"block_tokens must be >= 1, got {self.block_tokens}")

    def __len__(self) -> int:
        return self.df.height


def _fail(
    source: str, df: pl.DataFrame, bad: pl.Series, column: str, expected: str, names: Mapping[str, str]
) -> None:
    """Raise InputError at the first True of ``bad`` (1-based row, showing the value)."""
    idx = int(np.flatnonzero(bad.fill_null(True).to_numpy())[0])
    got = df[column][idx]
    row = int(df["_row"][idx]) if "_row" in df.columns else idx + 1
    raise InputError(source, f"expected {expected}, got {got!r}", row=row, column=names.get(column, column))


def validate(
    df: pl.DataFrame, source: str, skills: tuple[str, ...], names: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """Check ``df`` against :data:`SCHEMA` and the value rules; return it with exact dtypes.

    Rules: all columns present and non-null; integer token counts with ``prompt_tokens >= 1`` and
    ``output_tokens >= 1``; finite ``arrival_s >= 0`` in non-decreasing order; finite
    ``deadline_s > 0`` and ``difficulty``; ``dependency_chain >= 0``; ``skill`` among ``skills``;
    ``urgency`` among the urgency classes; unique ``request_id``; ``content_id`` defaults to
    ``request_id``, ``intent_id`` to ``content_id`` and ``prompt`` to empty text. An optional
    ``_row`` column (the row number in the original file) is used in messages and removed;
    ``names`` maps canonical columns to the file's own column names for those messages.
    """
    names = names or {}
    if df.height == 0:
        raise InputError(source, "no requests (the table is empty)")
    for col, default in zip(OPTIONAL, ("request_id", "content_id"), strict=True):
        if col not in df.columns and default in df.columns:
            df = df.with_columns(pl.col(default).alias(col))
    if "prompt" not in df.columns:
        df = df.with_columns(pl.lit("", dtype=pl.String).alias("prompt"))
    missing = [c for c in SCHEMA if c not in df.columns]
    if missing:
        raise InputError(source, f"missing column(s) {missing}; the request table needs {list(SCHEMA)}")
    for col, dtype in SCHEMA.items():
        if df[col].dtype == dtype:
            if df[col].null_count():
                _fail(source, df, df[col].is_null(), col, f"a value of type {dtype}", names)
            continue
        cast = df[col].cast(dtype, strict=False)
        bad = cast.is_null() & df[col].is_not_null() | df[col].is_null()
        if bad.any():
            _fail(source, df, bad, col, f"a value of type {dtype}", names)
        df = df.with_columns(cast.alias(col))
    checks: list[tuple[str, pl.Expr, str]] = [
        ("prompt_tokens", pl.col("prompt_tokens") < 1, "an integer >= 1 (tokens)"),
        ("output_tokens", pl.col("output_tokens") < 1, "an integer >= 1 (tokens)"),
        (
            "arrival_s",
            ~pl.col("arrival_s").is_finite() | (pl.col("arrival_s") < 0),
            "a finite time >= 0 (seconds)",
        ),
        (
            "arrival_s",
            pl.col("arrival_s").diff().fill_null(0.0) < 0,
            "arrival times in non-decreasing order (seconds)",
        ),
        (
            "deadline_s",
            ~pl.col("deadline_s").is_finite() | (pl.col("deadline_s") <= 0),
            "a finite deadline > 0 (seconds after arrival)",
        ),
        ("difficulty", ~pl.col("difficulty").is_finite(), "a finite difficulty (logits)"),
        ("dependency_chain", pl.col("dependency_chain") < 0, "an integer >= 0"),
        ("skill", ~pl.col("skill").is_in(list(skills)), f"one of {list(skills)}"),
        ("urgency", ~pl.col("urgency").is_in(list(URGENCIES)), f"one of {list(URGENCIES)}"),
        ("request_id", pl.col("request_id").is_duplicated(), "unique request ids"),
        (
            "content_id",
            pl.col("prompt_tokens") != pl.col("prompt_tokens").first().over("content_id"),
            "a content_id whose earlier rows have the same prompt_tokens (equal content = the same prompt)",
        ),
    ]
    for col, expr, expected in checks:
        bad = df.select(expr.alias("bad"))["bad"]
        if bad.any():
            _fail(source, df, bad, col, expected, names)
    return df.select(list(SCHEMA))
