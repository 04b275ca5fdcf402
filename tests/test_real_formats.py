"""BurstGPT CSV and OpenTelemetry GenAI (OTLP JSON) traces: the bundled samples and malformed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import compose_cfg
from simroute.errors import ConfigError, InputError
from simroute.sim.build import load_workload
from simroute.workload.loaders import load_raw
from simroute.workload.skills import catalog_from_config

DATA = Path(__file__).parent / "data"
BURST = DATA / "burstgpt_sample.csv"
OTEL = DATA / "otel_genai_sample.json"


def _table(workload: str, **over: Any) -> Any:
    cfg = compose_cfg([f"workload={workload}", *(f"workload.{k}={v}" for k, v in over.items())])
    return load_workload(cfg["workload"], catalog_from_config(cfg["skills"]), 0)


def _error(path: Path, fmt: str) -> str:
    with pytest.raises(InputError) as e:
        load_raw(path, fmt)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


# --- BurstGPT ------------------------------------------------------------------------------------


def test_burstgpt_sample_is_open_loop_one_session_per_request() -> None:
    t = _table("burstgpt")
    df = t.df
    assert len(t) == 36 and df["session_id"].n_unique() == 36 and (df["step"] == 0).all()
    assert df["after_ids"].list.len().sum() == 0
    assert set(df["recorded_model"]) == {"ChatGPT", "GPT-4"}
    assert df["arrival_s"][0] == 0.0 and df["arrival_s"].is_sorted()
    assert t.label_counts["output_tokens 0 -> 1 (Response tokens 0, kept in recorded_output_tokens)"] == 2
    assert (df.filter(df["recorded_output_tokens"] == 0)["output_tokens"] == 1).all()
    conv = [k for k in t.label_counts if "log_type=Conversation log" in k]
    assert conv and t.label_counts[conv[0]] > 0
    assert sum(t.label_counts[k] for k in t.label_counts if k.startswith(("rule", "default"))) == 36


def _burst_lines() -> list[str]:
    return BURST.read_text().splitlines()


def _burst_with(tmp_path: Path, row: int, column: str, value: str) -> Path:
    """The sample with data row ``row`` (1-based), column ``column`` set to ``value``."""
    lines = _burst_lines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    p = tmp_path / "burst.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        (3, "Request tokens", "abc", "expected an integer token count >= 0, got 'abc'"),
        (4, "Response tokens", "-7", "expected an integer token count >= 0, got '-7'"),
        (5, "Request tokens", "12.5", "expected an integer token count >= 0, got '12.5'"),
        (6, "Timestamp", "", "expected a finite time >= 0 (seconds from the trace start), got ''"),
        (7, "Timestamp", "nan", "expected a finite time >= 0"),
        (8, "Timestamp", "1", "expected timestamps in non-decreasing order, got 1.0 after"),
        (9, "Model", "", "expected a non-empty value"),
        (10, "Log Type", " ", "expected a non-empty value"),
    ],
)
def test_burstgpt_bad_cell_names_file_row_and_column(
    tmp_path: Path, row: int, column: str, value: str, expected: str
) -> None:
    p = _burst_with(tmp_path, row, column, value)
    msg = _error(p, "burstgpt")
    assert f", row {row} (line {row + 1}), column {column!r}: {expected}" in msg


def test_burstgpt_missing_column_and_short_row(tmp_path: Path) -> None:
    p = tmp_path / "burst.csv"
    p.write_text("\n".join(ln.rsplit(",", 1)[0] for ln in _burst_lines()) + "\n")
    assert "missing column(s) ['Log Type']" in _error(p, "burstgpt")
    lines = _burst_lines()
    lines[2] = lines[2].rsplit(",", 1)[0]
    p.write_text("\n".join(lines) + "\n")
    assert ", row 2 (line 3): expected 6 fields, got 5" in _error(p, "burstgpt")
    p.write_text(lines[0] + "\n")
    assert "no requests (header only)" in _error(p, "burstgpt")


def test_burstgpt_zero_prompt_is_rejected_with_the_file_column_name(tmp_path: Path) -> None:
    p = _burst_with(tmp_path, 11, "Request tokens", "0")
    cfg = compose_cfg(["workload=burstgpt", f"workload.path={p}"])
    with pytest.raises(
        InputError, match=r"burst\.csv, row 11, column 'Request tokens': expected an integer >= 1"
    ):
        load_workload(cfg["workload"], catalog_from_config(cfg["skills"]), 0)


def test_a_bad_trace_row_limit_is_reported_before_the_trace_is_read(tmp_path: Path) -> None:
    """``workload.n_requests=0`` on a trace is one error about the limit, not about the trace (a
    missing file here): it is checked before the trace is read and labelled."""
    missing = tmp_path / "absent.csv"
    with pytest.raises(ConfigError, match=r"workload\.n_requests .*expected a whole number >= 1"):
        _table("burstgpt", path=missing, n_requests=0)


# --- OpenTelemetry GenAI (OTLP JSON) ---------------------------------------------------------------


def test_otel_sample_gives_closed_loop_sessions() -> None:
    t = _table("otel")
    df = t.df
    assert len(t) == 18 and df["session_id"].n_unique() == 3
    assert t.label_counts["otel spans not replayed (execute_tool; think time)"] == 15
    assert t.label_counts["otel spans not replayed (invoke_agent; think time)"] == 3
    rid = {int(r): i for i, r in enumerate(df["request_id"])}
    for s in range(3):
        g = df.filter(df["session_id"] == s)
        assert g["step"].to_list() == list(range(g.height))
        assert g["after_ids"][0].to_list() == []
        for k in range(1, g.height):  # each step waits for a call of its own trace that ended before it
            (dep,) = g["after_ids"][k].to_list()
            d = df.row(rid[dep], named=True)
            start = g["arrival_s"][k]
            assert d["session_id"] == s
            assert d["arrival_s"] + d["recorded_api_s"] + g["think_s"][k] == pytest.approx(start)
    par = df.filter(df["prompt_tokens"].is_in([3000, 3001]))  # two parallel calls wait for the same one
    assert par["after_ids"][0].to_list() == par["after_ids"][1].to_list()
    assert set(df["recorded_model"]) == {"claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4.1"}


def test_otel_json_lines_export_reads_the_same(tmp_path: Path) -> None:
    doc = json.loads(OTEL.read_text())
    rs = doc["resourceSpans"][0]
    lines = [
        json.dumps({"resourceSpans": [{"resource": rs["resource"], "scopeSpans": [ss]}]})
        for ss in rs["scopeSpans"]
    ]
    p = tmp_path / "spans.jsonl"
    p.write_text("\n".join(lines) + "\n")
    a, b = load_raw(OTEL, "otel").df, load_raw(p, "otel").df
    assert a.equals(b)
    p.write_text(lines[0] + "\n{oops\n")
    assert ", line 2: invalid JSON" in _error(p, "otel")


def _llm_span(doc: dict[str, Any], n: int) -> tuple[dict[str, Any], int, str]:
    """The ``n``-th chat span in file order, its row (1-based position among all spans) and JSON path."""
    row, seen = 0, 0
    for j, ss in enumerate(doc["resourceSpans"][0]["scopeSpans"]):
        for k, span in enumerate(ss["spans"]):
            row += 1
            ops = [
                a["value"].get("stringValue")
                for a in span["attributes"]
                if a["key"] == "gen_ai.operation.name"
            ]
            if ops == ["chat"]:
                if seen == n:
                    return span, row, f"resourceSpans[0].scopeSpans[{j}].spans[{k}]"
                seen += 1
    raise AssertionError(n)


def _set_attr(span: dict[str, Any], key: str, value: dict[str, Any] | None) -> None:
    span["attributes"] = [a for a in span["attributes"] if a["key"] != key]
    if value is not None:
        span["attributes"].append({"key": key, "value": value})


@pytest.mark.parametrize(
    ("n", "edit", "field", "expected"),
    [
        (0, lambda s: _set_attr(s, "gen_ai.usage.input_tokens", None),
         "attributes[gen_ai.usage.input_tokens]", "expected an integer token count >= 0, got 'missing'"),
        (3, lambda s: _set_attr(s, "gen_ai.usage.output_tokens", {"stringValue": "many"}),
         "attributes[gen_ai.usage.output_tokens]", "expected an integer token count >= 0, got 'many'"),
        (5, lambda s: _set_attr(s, "gen_ai.usage.input_tokens", {"intValue": "-5"}),
         "attributes[gen_ai.usage.input_tokens]", "expected an integer token count >= 0, got '-5'"),
        (7, lambda s: s.pop("startTimeUnixNano"), "startTimeUnixNano",
         "expected nanoseconds since the epoch (an integer or decimal string), got None"),
        (9, lambda s: s.update(endTimeUnixNano="12"), "endTimeUnixNano", "expected an end >= the start"),
        (11, lambda s: s.update(traceId=""), "traceId", "expected a non-empty hex trace id"),
    ],
)  # fmt: skip
def test_otel_bad_span_names_file_span_and_field(
    tmp_path: Path, n: int, edit: Any, field: str, expected: str
) -> None:
    doc = json.loads(OTEL.read_text())
    span, row, where = _llm_span(doc, n)
    edit(span)
    p = tmp_path / "spans.json"
    p.write_text(json.dumps(doc))
    assert f", row {row}, column '{where}.{field}': {expected}" in _error(p, "otel")


def test_otel_bad_documents(tmp_path: Path) -> None:
    p = tmp_path / "spans.json"
    p.write_text('{"resourceSpans": [')
    assert ": invalid JSON" in _error(p, "otel")
    p.write_text('{"spans": []}')
    assert "expected an OTLP JSON object with 'resourceSpans'" in _error(p, "otel")
    p.write_text('{"resourceSpans": []}')
    assert "no spans" in _error(p, "otel")
    doc = json.loads(OTEL.read_text())
    for ss in doc["resourceSpans"][0]["scopeSpans"]:
        for s in ss["spans"]:
            _set_attr(s, "gen_ai.operation.name", {"stringValue": "execute_tool"})
    p.write_text(json.dumps(doc))
    assert "no LLM spans" in _error(p, "otel")
