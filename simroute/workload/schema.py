"""The canonical request table: one row per request, validated on construction.

Every workload — synthetic or a replayed trace — becomes a :class:`RequestTable` before it reaches
the simulator. Construction checks every column and row and raises :class:`InputError` naming the
first offending row and column, so bad data never enters a run and nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import polars as pl

from simroute.errors import InputError
from simroute.workload.prefix_runs import PrefixRuns
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
    "agent": pl.String(),
    "subagent_id": pl.Int64(),
    "recorded_model": pl.String(),
    "recorded_api_s": pl.Float64(),
    "recorded_ttft_s": pl.Float64(),
    "think_s": pl.Float64(),
    "recorded_arrival_s": pl.Float64(),
    "after_ids": pl.List(pl.Int64()),
    "recorded_output_tokens": pl.Int64(),
}
"""Column -> dtype of the request table. Units: ``arrival_s`` seconds since the workload start,
``deadline_s`` seconds after arrival, tokens as counts, ``difficulty`` in logits (IRT scale),
``prefix_hashes`` one id per full prefix block of :attr:`RequestTable.block_tokens` tokens (equal ids
= identical prefix, as in Mooncake traces and vLLM's prefix cache). ``content_id``: equal ids = the
same prompt (an exact repeat, a response-cache hit if the answer is still cached); ``intent_id``:
equal ids = the same request in other words (a near-duplicate, what a semantic cache matches). A
table without them gets ``content_id = request_id`` (no duplicate structure known) and
``intent_id = content_id``. ``prompt``: the prompt text, for text classifiers (empty when the
workload has none).

Recorded-session columns (real agent traces fill them; every other table gets the defaults):
``agent`` ``"main"`` or ``"subagent"`` (default ``"main"``); ``subagent_id`` the sub-agent's index in
its session (0, 1, ... in order of appearance; -1 for the main agent); ``recorded_model`` the model the
trace called (empty when unknown); ``recorded_api_s`` / ``recorded_ttft_s`` the recorded API time and
time to first token in seconds (NaN when the trace has none); ``think_s`` seconds between the
completion of the calls this one waits for and its issue (default 0); ``recorded_arrival_s`` the
recorded issue time in seconds from the workload start (default ``arrival_s``); ``after_ids`` the
``request_id``s whose *completion* gates this call's issue in a closed-loop replay (default empty;
each must be an earlier row of the same session); ``recorded_output_tokens`` the output tokens as
recorded (default ``output_tokens``; a recorded 0 is replayed as ``output_tokens = 1``)."""

OPTIONAL: tuple[str, ...] = ("content_id", "intent_id")
"""Columns with a default when a table lacks them (``request_id`` and ``content_id``)."""

AGENTS: tuple[str, ...] = ("main", "subagent")
"""Values of the ``agent`` column."""

_CONSTANT_DEFAULTS: dict[str, object] = {
    "prompt": "",
    "agent": "main",
    "subagent_id": -1,
    "recorded_model": "",
    "recorded_api_s": float("nan"),
    "recorded_ttft_s": float("nan"),
    "think_s": 0.0,
}
"""Columns filled with a constant when a table lacks them."""


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
        prefixes: the rows' prefix-block ids held as runs (a generator that makes them so gives
            them here, and ``df``'s ``prefix_hashes`` lists are then empty: a million rows' lists
            would take about 700 MiB); None: they are ``df``'s ``prefix_hashes``. Read them with
            :meth:`prefix_ids` either way.
    """

    df: pl.DataFrame
    source: str
    block_tokens: int
    skills: tuple[str, ...]
    label_counts: Mapping[str, int] = field(default_factory=dict)
    column_names: Mapping[str, str] = field(default_factory=dict)
    prefixes: PrefixRuns | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "df", validate(self.df, self.source, self.skills, self.column_names))
        if self.block_tokens < 1:
            raise InputError(self.source, f"block_tokens must be >= 1, got {self.block_tokens}")
        if self.prefixes is not None:
            _check_runs(self.prefixes, self.df, self.source)

    def __len__(self) -> int:
        return self.df.height

    def prefix_ids(self) -> PrefixRuns:
        """The rows' prefix-block ids as runs (:attr:`prefixes`, or ``prefix_hashes`` encoded)."""
        if self.prefixes is not None:
            return self.prefixes
        return PrefixRuns.from_column(self.df["prefix_hashes"])

    def with_prefix_column(self) -> RequestTable:
        """This table with its prefix ids in ``df``'s ``prefix_hashes`` lists (for row operations
        that reorder or filter ``df``, and for inspection; no re-validation)."""
        if self.prefixes is None:
            return self
        return self._replace(self.df.with_columns(self.prefixes.column("prefix_hashes")), None)

    def without_prefix_hashes(self) -> RequestTable:
        """This table with every ``prefix_hashes`` list emptied and no :attr:`prefixes` (no
        re-validation): for a simulation that was given the ids as runs already
        (:meth:`prefix_ids`), so the ids need not be held (or sent to another process) twice."""
        return self._replace(self.df.with_columns(empty_prefix_column(self.df.height)), None)

    def rows(self, a: int, b: int) -> RequestTable:
        """Rows ``a`` to ``b - 1`` with their prefix ids (no re-validation: a contiguous slice of
        a valid table is valid, but for ``after_ids`` that point before ``a``, which a caller that
        keeps them must handle)."""
        prefixes = self.prefixes.rows(a, b) if self.prefixes is not None else None
        return self._replace(self.df.slice(a, b - a), prefixes)

    def only(self, columns: Collection[str]) -> RequestTable:
        """This table with only those columns of ``df`` that ``columns`` names, in ``df``'s order,
        and its prefix ids (no re-validation: for a reader of those columns alone; the columns are
        shared, not copied)."""
        return self._replace(self.df.select(c for c in self.df.columns if c in columns), self.prefixes)

    def with_frame(self, df: pl.DataFrame) -> RequestTable:
        """This table's metadata with the rows of ``df`` and no :attr:`prefixes` (no re-validation:
        ``df`` must be this table's frame, e.g. written and read back, or ``df.clear()``)."""
        return self._replace(df, None)

    def _replace(self, df: pl.DataFrame, prefixes: PrefixRuns | None) -> RequestTable:
        out = object.__new__(RequestTable)
        for f in fields(self):
            object.__setattr__(out, f.name, getattr(self, f.name))
        object.__setattr__(out, "df", df)
        object.__setattr__(out, "prefixes", prefixes)
        return out


def empty_prefix_column(n: int) -> pl.Series:
    """A ``prefix_hashes`` column of ``n`` empty lists (the ids held elsewhere, or none)."""
    return pl.repeat(pl.lit([], dtype=pl.List(pl.Int64)), n, eager=True).alias("prefix_hashes")


def words_column(name: str, words: Sequence[str], codes: np.ndarray) -> pl.Series:
    """A String column whose row ``i`` is ``words[codes[i]]``: the same column as one built from a
    NumPy array of the strings, made by gathering from ``words`` (about a fifteenth of the time)."""
    return pl.Series(name, list(words), dtype=pl.String).gather(codes)


def _check_runs(prefixes: PrefixRuns, df: pl.DataFrame, source: str) -> None:
    """Prefix ids given as runs: one entry per row, ids >= 0, and not also given as lists."""
    if len(prefixes) != df.height:
        raise InputError(source, f"prefix ids for {len(prefixes)} rows, the table has {df.height}")
    bad = np.flatnonzero(prefixes.start < 0)
    if len(bad):
        row = int(np.searchsorted(prefixes.row_runs, bad[0], side="right")) - 1
        got = prefixes.ids(row).tolist()
        raise InputError(source, f"expected block ids >= 0, got {got!r}", row=row + 1, column="prefix_hashes")
    if df["prefix_hashes"].list.len().sum():
        raise InputError(source, "prefix ids given both as runs and as prefix_hashes lists")


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
    ``request_id``, ``intent_id`` to ``content_id``, ``prompt`` to empty text and the recorded-session
    columns to their defaults (see :data:`SCHEMA`); ``after_ids`` entries must be request ids of
    earlier rows of the same session. An optional
    ``_row`` column (the row number in the original file) is used in messages and removed;
    ``names`` maps canonical columns to the file's own column names for those messages.
    """
    names = names or {}
    if df.height == 0:
        raise InputError(source, "no requests (the table is empty)")
    for col, default in zip(OPTIONAL, ("request_id", "content_id"), strict=True):
        if col not in df.columns and default in df.columns:
            df = df.with_columns(pl.col(default).alias(col))
    df = _add_defaults(df)
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
        *_session_checks(),
    ]
    # every rule checked in one pass (its columns in parallel); the first broken one named, in order
    broken = df.select([expr.any().alias(str(k)) for k, (_, expr, _) in enumerate(checks)]).row(0)
    for (col, expr, expected), any_bad in zip(checks, broken, strict=True):
        if any_bad:
            _fail(source, df, df.select(expr.alias("bad"))["bad"], col, expected, names)
    bad = _bad_after_ids(df)
    if bad.any():
        _fail(source, df, bad, "after_ids", "request ids of earlier rows of the same session", names)
    bad_ids = _bad_prefix_ids(df)
    if bad_ids is not None:
        _fail(source, df, bad_ids, "prefix_hashes", "block ids >= 0, none missing", names)
    return df.select(list(SCHEMA))


def _add_defaults(df: pl.DataFrame) -> pl.DataFrame:
    """Add the optional recorded-session columns (and ``prompt``) a table lacks, with their defaults."""
    add = [pl.lit(v, dtype=SCHEMA[c]).alias(c) for c, v in _CONSTANT_DEFAULTS.items() if c not in df.columns]
    if "recorded_arrival_s" not in df.columns and "arrival_s" in df.columns:
        add.append(pl.col("arrival_s").alias("recorded_arrival_s"))
    if "recorded_output_tokens" not in df.columns and "output_tokens" in df.columns:
        add.append(pl.col("output_tokens").alias("recorded_output_tokens"))
    if "after_ids" not in df.columns:
        add.append(pl.lit([], dtype=pl.List(pl.Int64())).alias("after_ids"))
    return df.with_columns(add) if add else df


def _session_checks() -> list[tuple[str, pl.Expr, str]]:
    """Value rules of the recorded-session columns (NaN = unknown is allowed for recorded latencies)."""
    checks: list[tuple[str, pl.Expr, str]] = [
        ("agent", ~pl.col("agent").is_in(list(AGENTS)), f"one of {list(AGENTS)}"),
        (
            "subagent_id",
            ((pl.col("agent") == "main") != (pl.col("subagent_id") == -1)) | (pl.col("subagent_id") < -1),
            "-1 for the main agent and an index >= 0 for a sub-agent",
        ),
        (
            "think_s",
            ~pl.col("think_s").is_finite() | (pl.col("think_s") < 0),
            "a finite time >= 0 (seconds)",
        ),
        (
            "recorded_arrival_s",
            ~pl.col("recorded_arrival_s").is_finite() | (pl.col("recorded_arrival_s") < 0),
            "a finite time >= 0 (seconds)",
        ),
    ]
    checks.append(
        ("recorded_output_tokens", pl.col("recorded_output_tokens") < 0, "an integer >= 0 (tokens)")
    )
    for col in ("recorded_api_s", "recorded_ttft_s"):
        expr = pl.col(col).is_infinite() | (pl.col(col) < 0)
        checks.append((col, expr, "a time >= 0 in seconds, or NaN when not recorded"))
    return checks


def _bad_prefix_ids(df: pl.DataFrame) -> pl.Series | None:
    """Per row: True when its ``prefix_hashes`` hold a missing or negative id; None when no row
    does (checked on the flat ids first, so the common case makes no pass per row)."""
    flat = df["prefix_hashes"].explode(empty_as_null=False)
    if flat.null_count() == 0 and not (flat < 0).any():
        return None
    element_bad = pl.element().is_null() | (pl.element() < 0)
    bad = pl.col("prefix_hashes").list.eval(element_bad).list.any().fill_null(False)
    return df.select(bad)["prefix_hashes"]


def _bad_after_ids(df: pl.DataFrame) -> pl.Series:
    """Per row: True when some ``after_ids`` entry is not the request id of an earlier row of its session."""
    if df["after_ids"].list.len().sum() == 0:
        return pl.Series("bad", [False] * df.height)
    pos = df.select(
        pl.col("request_id").alias("_dep"),
        pl.int_range(pl.len()).alias("_dep_pos"),
        pl.col("session_id").alias("_dep_session"),
    )
    edges = (
        df.select(pl.int_range(pl.len()).alias("_pos"), "session_id", pl.col("after_ids").alias("_dep"))
        .explode("_dep")
        .drop_nulls("_dep")
        .join(pos, on="_dep", how="left")
        .with_columns(
            (
                pl.col("_dep_pos").is_null()
                | (pl.col("_dep_pos") >= pl.col("_pos"))
                | (pl.col("_dep_session") != pl.col("session_id"))
            ).alias("_bad")
        )
        .group_by("_pos")
        .agg(pl.col("_bad").any())
    )
    bad = pl.DataFrame({"_pos": range(df.height)}, schema={"_pos": pl.Int64}).join(
        edges.with_columns(pl.col("_pos").cast(pl.Int64)), on="_pos", how="left"
    )
    return bad.sort("_pos")["_bad"].fill_null(False).alias("bad")
