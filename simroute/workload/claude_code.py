"""Reader for recorded Claude Code sessions (the kv-cache-tester trace format), one JSON per session.

A session file holds ``id``, ``block_size`` (tokens per ``hash_ids`` block), ``tool_tokens``,
``system_tokens`` and ``requests``. A request is an LLM call (``type`` ``"s"`` streaming or ``"n"``
non-streaming: ``t`` issue time in seconds from the session start, ``model``, ``in``/``out`` tokens,
``hash_ids``, ``input_types``, ``output_types``, ``stop``, and optionally ``api_time``, ``ttft``,
``think_time`` in seconds) or a sub-agent (``type: "subagent"`` with ``agent_id``,
``subagent_type``, ``duration_ms`` and its own ``requests``, whose ``t`` count from the sub-agent's
start). In the recorded files a sub-agent entry's ``t`` is its *completion*: it started at
``t - duration_ms / 1000``, right after the parent call that spawned it, and the parent's next call
waits for it. A sub-agent without ``duration_ms`` (``status: "async_launched"``) started at ``t`` and
is not waited for.

Every LLM call becomes one row (see :func:`read_sessions` for the columns). ``hash_ids`` are scoped to a
session (``hash_id_scope: "local"``; sub-agents share the parent's namespace), so the row's
``prefix_hashes`` are ``session_id * 2**32 + hash_id``: equal ids = the same prefix block within a
session, and no sharing across sessions (the files do not say which sessions shared a system prompt).
The files carry no absolute start time: session ``k`` (in file-name order) starts at
``k * SESSION_SPACING_S``. Problems raise :class:`InputError` naming the file, the request (as a
JSON path such as ``requests[12].requests[3].out``) and what was expected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simroute.errors import InputError
from simroute.workload.hash_runs import list_column

SESSION_SPACING_S = 60.0
"""Seconds between the starts of consecutive sessions (the trace has no absolute start times)."""

HASH_SCOPE_BITS = 32
"""``prefix_hashes = session_id << HASH_SCOPE_BITS | hash_id``; ``hash_id`` must be below ``2**32``."""

CALL_TYPES = ("s", "n")


@dataclass
class _Columns:
    """Column lists accumulated while reading (one entry per LLM call)."""

    data: dict[str, list[Any]] = field(default_factory=dict)
    hashes: list[np.ndarray] = field(default_factory=list)

    def add(self, **values: Any) -> None:
        for k, v in values.items():
            self.data.setdefault(k, []).append(v)


@dataclass(frozen=True)
class _Where:
    """Location of a JSON value, for error messages."""

    path: str
    json_path: str

    def fail(self, key: str, expected: str, got: Any) -> InputError:
        shown = repr(got) if len(repr(got)) <= 80 else repr(got)[:77] + "..."
        column = f"{self.json_path}{key}".rstrip(".") or None
        return InputError(self.path, f"expected {expected}, got {shown}", column=column)

    def child(self, suffix: str) -> _Where:
        return _Where(self.path, f"{self.json_path}{suffix}")


def _num(rec: dict[str, Any], key: str, w: _Where, *, optional: bool = False) -> float:
    """A finite number >= 0 at ``rec[key]`` (NaN when optional and absent or null)."""
    v = rec.get(key)
    if v is None and optional:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise w.fail(
            key, "a finite number >= 0 (seconds)" if key != "duration_ms" else "milliseconds >= 0", v
        )
    return float(v)


def _int(rec: dict[str, Any], key: str, w: _Where, minimum: int) -> int:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise w.fail(key, f"an integer >= {minimum}", v)
    return int(v)


def _str(rec: dict[str, Any], key: str, w: _Where) -> str:
    v = rec.get(key)
    if not isinstance(v, str):
        raise w.fail(key, "a string", v)
    return v


def _str_list(rec: dict[str, Any], key: str, w: _Where) -> list[str]:
    v = rec.get(key)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise w.fail(key, "a list of strings", v)
    return list(v)


def _hash_ids(rec: dict[str, Any], w: _Where, session: int) -> np.ndarray:
    """The call's block ids, moved into the session's id range (see the module docstring)."""
    v = rec.get("hash_ids")
    expected = f"a list of integers in [0, 2**{HASH_SCOPE_BITS})"
    if not isinstance(v, list):
        raise w.fail("hash_ids", expected, v)
    if not v:
        return np.zeros(0, dtype=np.int64)
    try:
        h = np.asarray(v)
    except (TypeError, ValueError, OverflowError):
        raise w.fail("hash_ids", expected, v) from None
    if h.ndim != 1 or h.dtype.kind not in "iu" or h.min() < 0 or h.max() >= 2**HASH_SCOPE_BITS:
        raise w.fail("hash_ids", expected, v)
    return h.astype(np.int64) + (session << HASH_SCOPE_BITS)


@dataclass
class _Thread:
    """One agent's chain of calls within a session (the main agent or one sub-agent)."""

    agent: str
    subagent_id: int
    subagent_type: str
    start_s: float
    last: int | None = None
    """Key (index into the session's calls) of the thread's previous call."""


@dataclass
class _Session:
    """State while reading one session file."""

    index: int
    trace_id: str
    start_s: float
    cols: _Columns
    ends: list[float] = field(default_factory=list)
    """Per call of this session (by key): recorded completion, seconds from the workload start."""
    keys: list[int] = field(default_factory=list)
    """Per call: its global row index in ``cols``."""
    n_subagents: int = 0


def _completion(arrival: float, api: float) -> float:
    return arrival + (api if math.isfinite(api) else 0.0)


def _add_call(s: _Session, th: _Thread, rec: Any, w: _Where, gate: list[int], trace_think: bool) -> int:
    """Append one LLM call; ``gate`` = keys of the calls whose completion gates it. Returns its key."""
    if not isinstance(rec, dict):
        raise w.fail("", "a JSON object (one request)", rec)
    t = _num(rec, "t", w)
    kind = _str(rec, "type", w)
    if kind not in CALL_TYPES:
        raise w.fail("type", "'s' (streaming), 'n' (non-streaming) or 'subagent'", kind)
    api = _num(rec, "api_time", w, optional=True)
    ttft = _num(rec, "ttft", w, optional=True)
    think_rec = _num(rec, "think_time", w, optional=True)
    arrival = s.start_s + th.start_s + t
    ready = max((s.ends[g] for g in gate), default=arrival)
    if trace_think and math.isfinite(think_rec):
        think = think_rec
    else:
        think = max(0.0, arrival - ready) if gate else 0.0
    out = _int(rec, "out", w, 0)
    s.cols.add(
        session_id=s.index,
        trace_id=s.trace_id,
        step=0 if th.last is None else s.cols.data["step"][s.keys[th.last]] + 1,
        agent=th.agent,
        subagent_id=th.subagent_id,
        subagent_type=th.subagent_type,
        recorded_model=_str(rec, "model", w),
        streaming=kind == "s",
        prompt_tokens=_int(rec, "in", w, 1),
        recorded_output_tokens=out,
        output_tokens=max(out, 1),
        input_types=_str_list(rec, "input_types", w),
        output_types=_str_list(rec, "output_types", w),
        stop_reason=_str(rec, "stop", w),
        recorded_api_s=api,
        recorded_ttft_s=ttft,
        think_s=max(0.0, think),
        arrival_s=arrival,
        _gate=list(gate),
        _session_key=len(s.keys),
        _json_path=w.json_path,
    )
    s.cols.hashes.append(_hash_ids(rec, w, s.index))
    s.ends.append(_completion(arrival, api))
    s.keys.append(len(s.cols.data["step"]) - 1)
    th.last = len(s.keys) - 1
    return th.last


def _add_subagent(s: _Session, rec: dict[str, Any], w: _Where, parent: int | None) -> int | None:
    """Append a sub-agent's calls; return the key of its last call when the parent waits for it."""
    reqs = rec.get("requests")
    if not isinstance(reqs, list):
        raise w.fail("requests", "a list of requests", reqs)
    _str(rec, "agent_id", w)
    end = _num(rec, "t", w)
    dur = rec.get("duration_ms")
    waited = dur is not None
    start = end - _num(rec, "duration_ms", w) / 1000.0 if waited else end
    th = _Thread("subagent", s.n_subagents, _str(rec, "subagent_type", w), start)
    s.n_subagents += 1
    for j, sub in enumerate(reqs):
        ws = w.child(f"requests[{j}].")
        if isinstance(sub, dict) and sub.get("type") == "subagent":
            raise ws.fail("type", "an LLM call (a sub-agent inside a sub-agent is not supported)", "subagent")
        if th.last is None:
            _add_call(s, th, sub, ws, [] if parent is None else [parent], trace_think=False)
        else:
            _add_call(s, th, sub, ws, [th.last], trace_think=True)
    return th.last if waited else None


def _read_session(path: Path, index: int, cols: _Columns, block_size: int | None) -> int:
    """Read one session file into ``cols``; return its ``block_size``."""
    try:
        doc = json.loads(path.read_bytes())
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"invalid JSON ({e.msg})", line=e.lineno) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text (binary data?)") from None
    top = _Where(str(path), "")
    if not isinstance(doc, dict):
        raise top.fail("", "a JSON object (one session)", type(doc).__name__)
    block = _int(doc, "block_size", top, 1)
    if block_size is not None and block != block_size:
        raise top.fail("block_size", f"the same block size as the other sessions ({block_size})", block)
    for key in ("tool_tokens", "system_tokens"):
        _int(doc, key, top, 0)
    reqs = doc.get("requests")
    if not isinstance(reqs, list):
        raise top.fail("requests", "a list of requests", reqs)
    s = _Session(index, _str(doc, "id", top), index * SESSION_SPACING_S, cols)
    main = _Thread("main", -1, "", 0.0)
    waiting: list[int] = []
    for i, rec in enumerate(reqs):
        w = top.child(f"requests[{i}].")
        if isinstance(rec, dict) and rec.get("type") == "subagent":
            last = _add_subagent(s, rec, w, main.last)
            if last is not None:
                waiting.append(last)
            continue
        gate = ([] if main.last is None else [main.last]) + waiting
        _add_call(s, main, rec, w, gate, trace_think=not waiting)
        waiting = []
    if not s.keys:
        raise top.fail("requests", "at least one LLM call", reqs)
    return block


def session_files(path: Path) -> list[Path]:
    """The session files at ``path``: the file itself, or a directory's ``*.json`` in name order."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(".json"))
        if not files:
            raise InputError(str(path), "no session files (*.json) in this directory")
        return files
    raise InputError(str(path), "file or directory not found")


def read_sessions(path: Path) -> tuple[pl.DataFrame, int]:
    """All calls of the session file(s) at ``path`` as a raw table, and the block size in tokens.

    Columns: ``_row`` (1-based, in recorded order), ``request_id`` (0-based after sorting by
    ``arrival_s``), ``session_id`` (file-name order), ``trace_id`` (the file's ``id``), ``step`` (0-based
    index of the call within its agent), ``agent``, ``subagent_id``, ``subagent_type`` (empty for the
    main agent), ``recorded_model``, ``streaming``, ``prompt_tokens``, ``output_tokens`` (the recorded
    count, at least 1), ``recorded_output_tokens`` (as recorded, may be 0), ``input_types``,
    ``output_types``, ``stop_reason``, ``recorded_api_s``, ``recorded_ttft_s`` (NaN when absent),
    ``think_s``, ``arrival_s`` = ``recorded_arrival_s`` (seconds from the workload start),
    ``after_ids`` and ``prefix_hashes``.
    """
    cols = _Columns()
    block: int | None = None
    for k, f in enumerate(session_files(path)):
        block = _read_session(f, k, cols, block)
    assert block is not None
    return _finish(cols), block


def _finish(cols: _Columns) -> pl.DataFrame:
    """Sort by arrival (stable: recorded order breaks ties), assign request ids, resolve ``after_ids``."""
    d = cols.data
    n = len(d["step"])
    order = np.lexsort((np.arange(n), np.asarray(d["arrival_s"])))
    request_id = np.empty(n, dtype=np.int64)
    request_id[order] = np.arange(n, dtype=np.int64)
    # a call's _gate holds keys within its session; map them to global rows via the session's first row
    first_row: dict[int, int] = {}
    for row, (sess, key) in enumerate(zip(d["session_id"], d["_session_key"], strict=True)):
        if key == 0:
            first_row[sess] = row
    after = [
        [int(request_id[first_row[sess] + g]) for g in gate]
        for sess, gate in zip(d["session_id"], d["_gate"], strict=True)
    ]
    df = pl.DataFrame(
        {k: v for k, v in d.items() if not k.startswith("_")},
        schema_overrides={
            "session_id": pl.Int64,
            "step": pl.Int32,
            "subagent_id": pl.Int64,
            "prompt_tokens": pl.Int64,
            "output_tokens": pl.Int64,
            "recorded_output_tokens": pl.Int64,
            "input_types": pl.List(pl.String),
            "output_types": pl.List(pl.String),
        },
    ).with_columns(
        pl.Series("_row", np.arange(1, n + 1, dtype=np.int64)),
        pl.Series("request_id", request_id),
        pl.Series("after_ids", after, dtype=pl.List(pl.Int64)),
        list_column("prefix_hashes", cols.hashes),
        pl.col("arrival_s").alias("recorded_arrival_s"),
    )
    return df[order]
