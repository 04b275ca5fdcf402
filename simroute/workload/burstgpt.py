"""Reader for BurstGPT traces (Wang et al., KDD'25): one CSV row per request to a ChatGPT/GPT-4 service.

Columns (the public release): ``Timestamp`` (seconds from the trace start), ``Model`` (``ChatGPT``,
``GPT-4``), ``Request tokens``, ``Response tokens``, ``Total tokens`` (their sum; not used) and ``Log
Type`` (``Conversation log`` or ``API log``). The trace is open loop and has no session or user ids,
so every row is its own session (``session_id = request_id``, ``step`` 0, no ``after_ids``).
``Model`` becomes ``recorded_model`` and ``Log Type`` the column ``log_type`` that label rules can
match (``when: {log_type: Conversation log}``). A response of 0 tokens (a failed request in the
release) is replayed as 1 token and counted; ``recorded_output_tokens`` keeps the 0. Problems raise
:class:`InputError` naming the file, the 1-based data row and the column.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from simroute.errors import InputError

COLUMNS: tuple[str, ...] = ("Timestamp", "Model", "Request tokens", "Response tokens", "Log Type")
"""The columns a BurstGPT file needs (``Total tokens`` may be present; it is not used)."""

COLUMN_NAMES: dict[str, str] = {
    "arrival_s": "Timestamp",
    "recorded_model": "Model",
    "prompt_tokens": "Request tokens",
    "output_tokens": "Response tokens",
}
"""Canonical column -> BurstGPT column, for messages."""


def _header(p: Path, reader: Any) -> list[str]:
    try:
        header = [h.strip() for h in next(reader)]
    except (csv.Error, StopIteration) as e:
        raise InputError(str(p), f"malformed CSV header ({e})", line=1) from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(
            str(p), f"missing column(s) {missing}; a BurstGPT trace needs {list(COLUMNS)}, found {header[:8]}"
        )
    return header


def _number(p: Path, v: str, where: tuple[int, int, str], integer: bool) -> float:
    """A finite number >= 0 (an integer when ``integer``) from one CSV cell at (row, line, column)."""
    row, line, col = where
    expected = (
        "an integer token count >= 0" if integer else "a finite time >= 0 (seconds from the trace start)"
    )
    try:
        x = float(int(v)) if integer else float(v)
    except ValueError:
        raise InputError(str(p), f"expected {expected}, got {v!r}", row=row, line=line, column=col) from None
    if not math.isfinite(x) or x < 0:
        raise InputError(str(p), f"expected {expected}, got {v!r}", row=row, line=line, column=col)
    return x


@dataclass
class _Rows:
    """Columns accumulated while reading."""

    row: list[int] = field(default_factory=list)
    t: list[float] = field(default_factory=list)
    model: list[str] = field(default_factory=list)
    log_type: list[str] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    output: list[int] = field(default_factory=list)


def _add(p: Path, rows: _Rows, rec: list[str], idx: dict[str, int], row: int, line: int) -> None:
    """Check one data row and append it."""
    t = _number(p, rec[idx["Timestamp"]].strip(), (row, line, "Timestamp"), integer=False)
    if rows.t and t < rows.t[-1]:
        raise InputError(
            str(p), f"expected timestamps in non-decreasing order, got {t} after {rows.t[-1]}",
            row=row, line=line, column="Timestamp",
        )  # fmt: skip
    text = []
    for key in ("Model", "Log Type"):
        v = rec[idx[key]].strip()
        if not v:
            raise InputError(str(p), "expected a non-empty value", row=row, line=line, column=key)
        text.append(v)
    tokens = [int(_number(p, rec[idx[k]].strip(), (row, line, k), True)) for k in COLUMNS[2:4]]
    rows.row.append(row)
    rows.t.append(t)
    rows.model.append(text[0])
    rows.log_type.append(text[1])
    rows.prompt.append(tokens[0])
    rows.output.append(tokens[1])


def read_burstgpt(p: Path, text: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """The raw table of a BurstGPT CSV and what was adjusted (see the module docstring)."""
    reader = csv.reader(io.StringIO(text))
    header = _header(p, reader)
    idx = {c: header.index(c) for c in COLUMNS}
    rows = _Rows()
    try:
        for row, rec in enumerate(reader, start=1):
            if len(rec) != len(header):
                raise InputError(
                    str(p), f"expected {len(header)} fields, got {len(rec)}", row=row, line=reader.line_num
                )
            _add(p, rows, rec, idx, row, reader.line_num)
    except csv.Error as e:
        raise InputError(str(p), f"malformed CSV ({e})", line=reader.line_num) from None
    if not rows.row:
        raise InputError(str(p), "no requests (header only)")
    t0 = rows.t[0]
    df = pl.DataFrame(
        {
            "_row": pl.Series(rows.row, dtype=pl.Int64),
            "arrival_s": pl.Series([x - t0 for x in rows.t], dtype=pl.Float64),
            "prompt_tokens": pl.Series(rows.prompt, dtype=pl.Int64),
            "output_tokens": pl.Series([max(x, 1) for x in rows.output], dtype=pl.Int64),
            "recorded_output_tokens": pl.Series(rows.output, dtype=pl.Int64),
            "recorded_model": pl.Series(rows.model, dtype=pl.String),
            "log_type": pl.Series(rows.log_type, dtype=pl.String),
        }
    )
    zero = sum(x == 0 for x in rows.output)
    return df, (
        {"output_tokens 0 -> 1 (Response tokens 0, kept in recorded_output_tokens)": zero} if zero else {}
    )
