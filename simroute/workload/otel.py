"""Reader for OpenTelemetry GenAI spans exported as OTLP JSON (a team's own production traces).

The file is the JSON encoding of an OTLP ``ExportTraceServiceRequest`` (``{"resourceSpans": [{"resource":
..., "scopeSpans": [{"scope": ..., "spans": [...]}]}]}``), or one such object per line (the collector's
file exporter). A span has ``traceId``, ``spanId``, ``parentSpanId``, ``name``, ``startTimeUnixNano`` /
``endTimeUnixNano`` (decimal strings, as OTLP JSON writes 64-bit integers; numbers are accepted) and
``attributes`` (``[{"key": ..., "value": {"stringValue" | "intValue" | "doubleValue" | ...}}]``).

A span whose ``gen_ai.operation.name`` is one of :data:`LLM_OPERATIONS` is one request: prompt and output
tokens from ``gen_ai.usage.input_tokens`` / ``output_tokens``, ``recorded_model`` from
``gen_ai.request.model`` (else ``gen_ai.response.model``), ``recorded_api_s`` = end - start, arrival =
its start relative to the earliest LLM span. A trace is a session (``session_id`` by first start),
its LLM spans ordered by start are its steps, and ``after_ids`` is the previous LLM span of the same
trace that had ended before this one started (the latest such end; ``think_s`` the gap), so a
closed-loop replay issues it ``think_s`` after that call completes. Other spans (tool calls, agent
wrappers, embeddings) are not requests: their time is inside the gaps, i.e. think time; how many were
skipped, per operation, is counted in ``label_counts``. The operation is kept as the column
``operation`` for label rules. Problems raise :class:`InputError` naming the file, the span (row = its
1-based position in the file) and the field as a JSON path.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from simroute.errors import InputError

LLM_OPERATIONS: tuple[str, ...] = ("chat", "text_completion", "generate_content")
"""``gen_ai.operation.name`` values that are LLM calls (OTel GenAI semantic conventions)."""


@dataclass(frozen=True)
class Call:
    """One LLM span: trace, times (ns since the epoch), tokens, model, operation, where it was read."""

    trace: str
    start_ns: int
    end_ns: int
    prompt: int
    output: int
    model: str
    operation: str
    row: int


def _documents(p: Path, text: str) -> list[tuple[Any, int | None]]:
    """The JSON document(s): the whole file, or one per non-empty line (with its line number)."""
    try:
        return [(json.loads(text), None)]
    except json.JSONDecodeError as whole:
        lines = [(k, ln) for k, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
        if len(lines) < 2:
            raise InputError(str(p), f"invalid JSON ({whole.msg})", line=whole.lineno) from None
    docs: list[tuple[Any, int | None]] = []
    for k, ln in lines:
        try:
            docs.append((json.loads(ln), k))
        except json.JSONDecodeError as e:
            raise InputError(str(p), f"invalid JSON ({e.msg})", line=k) from None
    return docs


def _list(v: Any, p: Path, where: str, line: int | None) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise InputError(str(p), f"expected a list, got {v!r}"[:120], line=line, column=where)
    return v


def _spans(p: Path, text: str) -> list[tuple[str, dict[str, Any], int | None]]:
    """Every span object with its JSON path and line (JSON-lines input)."""
    out: list[tuple[str, dict[str, Any], int | None]] = []
    for n, (doc, line) in enumerate(_documents(p, text)):
        pre = f"[{n}]." if line is not None else ""
        if not isinstance(doc, dict) or "resourceSpans" not in doc:
            raise InputError(str(p), "expected an OTLP JSON object with 'resourceSpans'", line=line)
        for i, rs in enumerate(_list(doc["resourceSpans"], p, f"{pre}resourceSpans", line)):
            for j, ss in enumerate(
                _list(_get(rs, "scopeSpans"), p, f"{pre}resourceSpans[{i}].scopeSpans", line)
            ):
                where = f"{pre}resourceSpans[{i}].scopeSpans[{j}].spans"
                for k, span in enumerate(_list(_get(ss, "spans"), p, where, line)):
                    if not isinstance(span, dict):
                        raise InputError(
                            str(p), "expected a span object", row=len(out) + 1, column=f"{where}[{k}]"
                        )
                    out.append((f"{where}[{k}]", span, line))
    if not out:
        raise InputError(str(p), "no spans")
    return out


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    """Attribute key -> its AnyValue's value (``intValue`` may be a decimal string)."""
    out: dict[str, Any] = {}
    for a in span.get("attributes") or []:
        if isinstance(a, dict) and isinstance(a.get("key"), str) and isinstance(a.get("value"), dict):
            v = a["value"]
            out[a["key"]] = next(iter(v.values())) if len(v) == 1 else None
    return out


def _int(v: Any) -> int | None:
    """A non-negative integer from an OTLP JSON value (number or decimal string), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and v >= 0:
        return int(v)
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def _call(p: Path, row: int, where: str, span: dict[str, Any], attrs: dict[str, Any]) -> Call:
    """One LLM span, checked."""

    def fail(field: str, expected: str, got: Any) -> InputError:
        return InputError(
            str(p), f"expected {expected}, got {got!r}"[:200], row=row, column=f"{where}.{field}"
        )

    trace = span.get("traceId")
    if not isinstance(trace, str) or not trace:
        raise fail("traceId", "a non-empty hex trace id", trace)
    times = []
    for key in ("startTimeUnixNano", "endTimeUnixNano"):
        t = _int(span.get(key))
        if t is None:
            raise fail(key, "nanoseconds since the epoch (an integer or decimal string)", span.get(key))
        times.append(t)
    if times[1] < times[0]:
        raise fail("endTimeUnixNano", f"an end >= the start {times[0]}", span.get("endTimeUnixNano"))
    tokens = []
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        n = _int(attrs.get(key))
        if n is None:
            raise fail(f"attributes[{key}]", "an integer token count >= 0", attrs.get(key, "missing"))
        tokens.append(n)
    model = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model") or ""
    if not isinstance(model, str):
        raise fail("attributes[gen_ai.request.model]", "a string", model)
    op = str(attrs["gen_ai.operation.name"])
    return Call(trace, times[0], times[1], tokens[0], tokens[1], model, op, row)


def read_calls(p: Path, text: str) -> tuple[list[Call], Counter[str]]:
    """The LLM spans of an OTLP JSON file, and the other spans counted by operation (or span name)."""
    calls: list[Call] = []
    skipped: Counter[str] = Counter()
    for row, (where, span, _line) in enumerate(_spans(p, text), start=1):
        attrs = _attributes(span)
        op = attrs.get("gen_ai.operation.name")
        if op in LLM_OPERATIONS:
            calls.append(_call(p, row, where, span, attrs))
        else:
            skipped[str(op) if op is not None else "no gen_ai.operation.name"] += 1
    if not calls:
        raise InputError(str(p), f"no LLM spans (gen_ai.operation.name in {list(LLM_OPERATIONS)})")
    return calls, skipped


def _gates(calls: list[Call]) -> tuple[list[list[int]], list[float]]:
    """Per call (sorted by start): after_ids (positions) and think_s, within its trace."""
    after: list[list[int]] = []
    think: list[float] = []
    earlier: dict[str, list[int]] = {}
    for k, c in enumerate(calls):
        done = [j for j in earlier.get(c.trace, []) if calls[j].end_ns <= c.start_ns]
        if done:
            j = max(done, key=lambda j: (calls[j].end_ns, j))
            after.append([j])
            think.append((c.start_ns - calls[j].end_ns) / 1e9)
        else:
            after.append([])
            think.append(0.0)
        earlier.setdefault(c.trace, []).append(k)
    return after, think


def read_otel(p: Path, text: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """The raw table of an OTLP JSON file and what was adjusted or skipped (module docstring)."""
    calls, skipped = read_calls(p, text)
    calls.sort(key=lambda c: (c.start_ns, c.end_ns, c.row))
    session: dict[str, int] = {}
    steps: Counter[str] = Counter()
    sid, step = [], []
    for c in calls:
        sid.append(session.setdefault(c.trace, len(session)))
        step.append(steps[c.trace])
        steps[c.trace] += 1
    after, think = _gates(calls)
    t0 = calls[0].start_ns
    df = pl.DataFrame(
        {
            "_row": pl.Series([c.row for c in calls], dtype=pl.Int64),
            "request_id": pl.Series(range(len(calls)), dtype=pl.Int64),
            "session_id": pl.Series(sid, dtype=pl.Int64),
            "step": pl.Series(step, dtype=pl.Int32),
            "arrival_s": pl.Series([(c.start_ns - t0) / 1e9 for c in calls], dtype=pl.Float64),
            "prompt_tokens": pl.Series([c.prompt for c in calls], dtype=pl.Int64),
            "output_tokens": pl.Series([max(c.output, 1) for c in calls], dtype=pl.Int64),
            "recorded_output_tokens": pl.Series([c.output for c in calls], dtype=pl.Int64),
            "recorded_model": pl.Series([c.model for c in calls], dtype=pl.String),
            "recorded_api_s": pl.Series([(c.end_ns - c.start_ns) / 1e9 for c in calls], dtype=pl.Float64),
            "think_s": pl.Series(think, dtype=pl.Float64),
            "after_ids": pl.Series(after, dtype=pl.List(pl.Int64)),
            "operation": pl.Series([c.operation for c in calls], dtype=pl.String),
        }
    )
    adjust = {f"otel spans not replayed ({op}; think time)": n for op, n in sorted(skipped.items())}
    zero = sum(c.output == 0 for c in calls)
    if zero:
        adjust["output_tokens 0 -> 1 (recorded 0, kept in recorded_output_tokens)"] = zero
    return df, adjust
