"""Readers for real trace files, each returning a *raw* table with precise error locations.

A raw table has ``arrival_s`` (seconds since the first request), ``prompt_tokens``,
``output_tokens``, optionally ``prefix_hashes`` and the canonical label columns, and ``_row`` (the
1-based data row in the file, for messages). Formats:

* ``azure``: CSV with ``TIMESTAMP`` ("YYYY-MM-DD HH:MM:SS[.fffffff]" or seconds), ``ContextTokens``,
  ``GeneratedTokens`` — the Azure LLM inference traces 2023 (Splitwise).
* ``mooncake``: JSONL with ``timestamp`` (ms), ``input_length``, ``output_length``, ``hash_ids``
  (512-token prefix blocks) — the Mooncake FAST'25 traces. Rows with the same ``input_length`` and
  the same (non-empty) ``hash_ids`` are the same prompt and share a ``content_id`` (1.0 % of the
  conversation trace's requests repeat an earlier prompt).
* ``parquet``: the native request table (all of :data:`~simroute.workload.schema.SCHEMA`), or at
  least ``arrival_s``, ``prompt_tokens``, ``output_tokens`` (the rest is labelled by rule). Block ids
  may come run-length encoded as ``prefix_runs`` (the bundled Claude Code table).
* ``claude_code``: recorded Claude Code sessions, a directory of session JSON files or one file
  (:mod:`~simroute.workload.claude_code`; a directory is read in this format by default).
* ``burstgpt``: BurstGPT CSV (``Timestamp``, ``Model``, ``Request tokens``, ``Response tokens``, ``Log
  Type``; :mod:`~simroute.workload.burstgpt`), open loop, one session per request.
* ``otel``: OpenTelemetry GenAI spans as OTLP JSON (:mod:`~simroute.workload.otel`): LLM spans are
  requests, traces are closed-loop sessions.

``burstgpt`` and ``otel`` are never inferred from the extension: set ``workload.format``.

Any of them may be gzip-compressed (``.gz``). Problems raise :class:`InputError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from simroute.errors import InputError
from simroute.workload import hash_runs
from simroute.workload.bundle_claude_code import PREFIX_RUNS
from simroute.workload.burstgpt import COLUMN_NAMES as BURSTGPT_NAMES
from simroute.workload.burstgpt import read_burstgpt
from simroute.workload.claude_code import read_sessions
from simroute.workload.otel import read_otel

FORMATS: tuple[str, ...] = ("azure", "mooncake", "parquet", "claude_code", "burstgpt", "otel")
MOONCAKE_BLOCK_TOKENS = 512
"""Tokens per ``hash_ids`` block in the Mooncake traces (FAST'25 release README)."""


@dataclass(frozen=True)
class RawTrace:
    """A trace as read from disk, before labelling: see the module docstring for columns."""

    df: pl.DataFrame
    source: str
    block_tokens: int
    column_names: Mapping[str, str] = field(default_factory=dict)
    adjustments: Mapping[str, int] = field(default_factory=dict)
    """What the reader changed so the simulator can run it, and in how many rows (kept in
    ``label_counts`` so it reaches ``summary.json``)."""


def detect_format(path: Path) -> str:
    """Infer the trace format from the name (``.csv[.gz]``, ``.jsonl[.gz]``, ``.parquet``, a directory)."""
    if path.is_dir():
        return "claude_code"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "azure"
    if name.endswith((".jsonl", ".json")):
        return "mooncake"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(
        str(path),
        "cannot tell the trace format from the extension; expected .csv[.gz] (azure), "
        ".jsonl[.gz] (mooncake) or .parquet, or set workload.format="
        "azure|mooncake|parquet|claude_code|burstgpt|otel",
    )


def load_raw(path: str | Path, fmt: str | None = None) -> RawTrace:
    """Read the trace at ``path`` in format ``fmt`` (inferred from the name when None)."""
    p = Path(path)
    if fmt == "claude_code" or (fmt is None and p.is_dir()):
        return _read_claude_code(p)
    if not p.is_file():
        raise InputError(str(p), "file not found")
    fmt = fmt or detect_format(p)
    if fmt == "azure":
        names = {
            "arrival_s": "TIMESTAMP",
            "prompt_tokens": "ContextTokens",
            "output_tokens": "GeneratedTokens",
        }
        return RawTrace(_read_azure(p, _read_text(p)), str(p), MOONCAKE_BLOCK_TOKENS, names)
    if fmt == "mooncake":
        names = {
            "arrival_s": "timestamp",
            "prompt_tokens": "input_length",
            "output_tokens": "output_length",
            "prefix_hashes": "hash_ids",
        }
        return RawTrace(_read_mooncake(p, _read_text(p)), str(p), MOONCAKE_BLOCK_TOKENS, names)
    if fmt == "parquet":
        return _read_parquet(p)
    if fmt == "burstgpt":
        df, adjust = read_burstgpt(p, _read_text(p))
        return RawTrace(df, str(p), MOONCAKE_BLOCK_TOKENS, BURSTGPT_NAMES, adjust)
    if fmt == "otel":
        df, adjust = read_otel(p, _read_text(p))
        return RawTrace(df, str(p), MOONCAKE_BLOCK_TOKENS, {}, adjust)
    raise InputError(str(p), f"unknown format {fmt!r}; expected one of {list(FORMATS)}")


def _read_bytes(p: Path) -> bytes:
    data = p.read_bytes()
    if p.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
            raise InputError(str(p), f"truncated or corrupt gzip data ({e})") from None
    return data


def _read_text(p: Path) -> str:
    data = _read_bytes(p)
    if not data.strip():
        raise InputError(str(p), "empty file: no header and no requests")
    if b"\x00" in data[:65536]:
        raise InputError(str(p), "binary data (NUL bytes); expected a text trace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(str(p), "not UTF-8 text (binary data?)", line=line) from None


_AZURE_COLS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def _read_azure(p: Path, text: str) -> pl.DataFrame:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as e:
        raise InputError(str(p), f"malformed CSV header ({e})", line=1) from None
    missing = [c for c in _AZURE_COLS if c not in header]
    if missing:
        raise InputError(
            str(p),
            f"missing column(s) {missing}; an Azure-style trace needs {list(_AZURE_COLS)}, "
            f"found {header[:8]}",
        )
    idx = [header.index(c) for c in _AZURE_COLS]
    cols: list[list[str]] = [[], [], []]
    try:
        for row_no, row in enumerate(reader, start=1):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    str(p),
                    f"expected {len(header)} fields, got {len(row)}",
                    row=row_no,
                    line=reader.line_num,
                )
            for k, i in enumerate(idx):
                cols[k].append(row[i].strip())
    except csv.Error as e:
        raise InputError(str(p), f"malformed CSV ({e})", line=reader.line_num) from None
    if not cols[0]:
        raise InputError(str(p), "no requests (header only)")
    df = pl.DataFrame(dict(zip(_AZURE_COLS, cols, strict=True)))
    df = df.with_row_index("_row", offset=1)
    arrival = _parse_timestamps(p, df)
    return pl.DataFrame(
        {
            "_row": df["_row"],
            "arrival_s": arrival,
            "prompt_tokens": _parse_int(p, df, "ContextTokens"),
            "output_tokens": _parse_int(p, df, "GeneratedTokens"),
        }
    )


def _first_bad(p: Path, df: pl.DataFrame, bad: pl.Series, column: str, expected: str) -> InputError:
    i = bad.arg_true()[0]
    return InputError(
        str(p), f"expected {expected}, got {df[column][i]!r}", row=int(df["_row"][i]), column=column
    )


def _parse_int(p: Path, df: pl.DataFrame, column: str) -> pl.Series:
    s = df[column]
    ok = s.str.contains(r"^-?\d+$")
    if not ok.all():
        raise _first_bad(p, df, ~ok, column, "an integer token count")
    return s.cast(pl.Int64)


def _parse_timestamps(p: Path, df: pl.DataFrame) -> pl.Series:
    s = df["TIMESTAMP"]
    secs = s.cast(pl.Float64, strict=False)
    if secs.is_not_null().all():
        t = secs
    else:
        dt = s.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="ns")
        bad = dt.is_null()
        if bad.any():
            raise _first_bad(
                p, df, bad, "TIMESTAMP", "a timestamp 'YYYY-MM-DD HH:MM:SS[.fffffff]' or seconds"
            )
        t = dt.dt.epoch("ns").cast(pl.Float64) / 1e9
    t = t - t.min()
    return t.alias("arrival_s")


_MOONCAKE_KEYS = {
    "timestamp": "a number (ms)",
    "input_length": "an integer token count",
    "output_length": "an integer token count",
    "hash_ids": "a list of integers",
}


def _read_mooncake(p: Path, text: str) -> pl.DataFrame:
    ts: list[float] = []
    inp: list[int] = []
    out: list[int] = []
    hashes: list[list[int]] = []
    rows: list[int] = []
    content: list[int] = []
    first: dict[tuple[int, tuple[int, ...]], int] = {}
    row = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row += 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(str(p), f"invalid JSON ({e.msg})", row=row, line=line_no) from None
        if not isinstance(rec, dict):
            raise InputError(str(p), "expected a JSON object per line", row=row, line=line_no)
        for key, expected in _MOONCAKE_KEYS.items():
            if key not in rec:
                if key == "hash_ids":
                    continue
                raise InputError(
                    str(p), f"missing field; expected {expected}", row=row, line=line_no, column=key
                )
        t, i, o, h = (
            rec["timestamp"],
            rec["input_length"],
            rec["output_length"],
            rec.get("hash_ids", []),
        )
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise InputError(
                str(p),
                f"expected a number (ms), got {t!r}",
                row=row,
                line=line_no,
                column="timestamp",
            )
        for key, v in (("input_length", i), ("output_length", o)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(
                    str(p),
                    f"expected an integer token count, got {v!r}",
                    row=row,
                    line=line_no,
                    column=key,
                )
        if not isinstance(h, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in h):
            raise InputError(str(p), "expected a list of integers", row=row, line=line_no, column="hash_ids")
        ts.append(float(t))
        inp.append(i)
        out.append(o)
        hashes.append(h)
        rows.append(row)
        # the same length and the same block hashes = the same prompt (an exact repeat)
        content.append(first.setdefault((i, tuple(h)), row - 1) if h else row - 1)
    if not rows:
        raise InputError(str(p), "no requests")
    t0 = min(ts)
    return pl.DataFrame(
        {
            "_row": rows,
            "arrival_s": [(x - t0) / 1000.0 for x in ts],
            "prompt_tokens": inp,
            "output_tokens": out,
            "prefix_hashes": hashes,
            "content_id": content,
        },
        schema_overrides={
            "prefix_hashes": pl.List(pl.Int64),
            "prompt_tokens": pl.Int64,
            "output_tokens": pl.Int64,
            "_row": pl.Int64,
        },
    )


def _read_parquet(p: Path) -> RawTrace:
    head = p.read_bytes()[:4]
    if head != b"PAR1":
        raise InputError(str(p), "not a Parquet file (missing PAR1 magic bytes)")
    try:
        df = pl.read_parquet(p)
    except Exception as e:  # polars raises several internal types for corrupt files
        raise InputError(str(p), f"unreadable Parquet file ({type(e).__name__}: {e})") from None
    need = ["arrival_s", "prompt_tokens", "output_tokens"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(str(p), f"missing column(s) {missing}; a Parquet trace needs at least {need}")
    block = 16
    if PREFIX_RUNS in df.columns and "prefix_hashes" not in df.columns:
        try:
            df = df.with_columns(hash_runs.decode(df[PREFIX_RUNS]).alias("prefix_hashes")).drop(PREFIX_RUNS)
        except (ValueError, pl.exceptions.PolarsError) as e:
            raise InputError(str(p), f"bad run-length encoded block ids ({e})", column=PREFIX_RUNS) from None
    if "prefix_hashes" in df.columns:
        meta = pl.read_parquet_metadata(p)
        block = int(meta.get("simroute.block_tokens", block))
    return RawTrace(
        df.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64)),
        str(p),
        block,
        adjustments=_output_adjustments(df),
    )


def _read_claude_code(p: Path) -> RawTrace:
    df, block = read_sessions(p)
    return RawTrace(df, str(p), block, adjustments=_output_adjustments(df))


def _output_adjustments(df: pl.DataFrame) -> dict[str, int]:
    """Rows whose recorded output of 0 tokens is replayed as 1 (the simulator decodes >= 1 token)."""
    if "recorded_output_tokens" not in df.columns or "output_tokens" not in df.columns:
        return {}
    zero = int(((df["recorded_output_tokens"] == 0) & (df["output_tokens"] == 1)).sum())
    return {"output_tokens 0 -> 1 (recorded 0, kept in recorded_output_tokens)": zero} if zero else {}
