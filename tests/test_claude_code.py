"""Claude Code sessions: every call is a row, totals match, the closed-loop columns mean what they say."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simroute.config import TRACES_DIR
from simroute.errors import InputError
from simroute.workload import hash_runs
from simroute.workload.bundle_claude_code import bundle
from simroute.workload.claude_code import HASH_SCOPE_BITS, SESSION_SPACING_S
from simroute.workload.labels import label_trace, rules_from_config
from simroute.workload.loaders import load_raw
from simroute.workload.schema import RequestTable
from simroute.workload.skills import SkillCatalog


def _call(t: float, n_in: int, out: int, ids: list[int], **kw: Any) -> dict[str, Any]:
    rec = {
        "t": t,
        "type": "n",
        "model": "claude-opus-4-5-20251101",
        "in": n_in,
        "out": out,
        "hash_ids": ids,
        "input_types": ["tool_result"],
        "output_types": ["tool_use"],
        "stop": "tool_use",
        "api_time": 2.0,
        "think_time": 1.0,
    }
    rec.update(kw)
    return rec


def _session(sid: str) -> dict[str, Any]:
    """Main calls 0, 1; two parallel sub-agents (waited for); an async one; main call 2."""
    sub = {
        "t": 30.0,  # completion: started at 30 - 20 = 10 s, after main call 1 (issued 5 s, done 7 s)
        "type": "subagent",
        "agent_id": "agent_001",
        "subagent_type": "Explore",
        "duration_ms": 20000,
        "status": "completed",
        "requests": [
            _call(0.0, 300, 20, [100, 101, 102, 103], model="claude-haiku-4-5-20251001"),
            _call(4.0, 400, 30, [100, 101, 102, 103, 104, 105]),
        ],
    }
    sub2 = copy.deepcopy(sub)
    sub2["agent_id"], sub2["t"], sub2["duration_ms"] = "agent_002", 25.0, 15000
    async_sub = copy.deepcopy(sub)
    async_sub.update({"agent_id": "agent_003", "duration_ms": None, "status": "async_launched", "t": 31.0})
    async_sub["requests"] = async_sub["requests"][:1]
    return {
        "id": sid,
        "block_size": 64,
        "tool_tokens": 100,
        "system_tokens": 50,
        "requests": [
            _call(0.0, 130, 10, [1, 2], input_types=["text"], think_time=0.0),
            _call(5.0, 200, 0, [1, 2, 3], type="s", ttft=0.5, output_types=[], stop=""),
            sub,
            sub2,
            async_sub,
            _call(40.0, 700, 50, [1, 2, 3, 7, 8, 9, 10], stop="end_turn", think_time=35.0),
        ],
    }


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    d = tmp_path / "sessions"
    d.mkdir()
    for k in range(2):
        (d / f"trace_{k:04d}.json").write_text(json.dumps(_session(f"trace_{k:04d}")))
    return d


def _table(path: Path, skills: SkillCatalog, fmt: str | None = "claude_code") -> RequestTable:
    rules = rules_from_config([{"skill": "code_change", "when": {"stop_reason": "tool_use"}}], skills)
    return label_trace(load_raw(path, fmt), skills, rules, "draft_reply", seed=0)


def test_every_call_is_a_row_and_totals_match(sessions: Path, skills: SkillCatalog) -> None:
    df = _table(sessions, skills).df
    assert df.height == 2 * 8
    assert df["prompt_tokens"].sum() == 2 * (130 + 200 + 700 + 2 * (300 + 400) + 300)
    assert df["recorded_output_tokens"].sum() == 2 * (10 + 0 + 50 + 2 * 50 + 20)
    assert df.filter(pl.col("recorded_output_tokens") == 0)["output_tokens"].to_list() == [1, 1]
    assert df["session_id"].unique().sort().to_list() == [0, 1]
    assert df.filter(pl.col("session_id") == 1)["arrival_s"].min() == SESSION_SPACING_S


def test_closed_loop_columns(sessions: Path, skills: SkillCatalog) -> None:
    df = _table(sessions, skills).df.filter(pl.col("session_id") == 0)
    rid = {(a, s, st): r for a, s, st, r in df.select("agent", "subagent_id", "step", "request_id").rows()}
    row = dict(zip(df["request_id"], df.iter_rows(named=True), strict=True))
    m0, m1, m2 = rid["main", -1, 0], rid["main", -1, 1], rid["main", -1, 2]
    a0, a1, b0, b1, c0 = (
        rid["subagent", 0, 0],
        rid["subagent", 0, 1],
        rid["subagent", 1, 0],
        rid["subagent", 1, 1],
        rid["subagent", 2, 0],
    )
    assert row[m0]["after_ids"] == [] and row[m1]["after_ids"] == [m0]
    assert row[a0]["after_ids"] == [m1] and row[b0]["after_ids"] == [m1] and row[c0]["after_ids"] == [m1]
    assert row[a1]["after_ids"] == [a0]
    assert sorted(row[m2]["after_ids"]) == sorted([m1, a1, b1])  # not the async sub-agent
    assert row[a0]["arrival_s"] == 10.0 and row[b0]["arrival_s"] == 10.0 and row[c0]["arrival_s"] == 31.0
    assert row[a0]["think_s"] == pytest.approx(10.0 - 7.0)  # parent done at 5 + 2 s
    assert row[m2]["think_s"] == pytest.approx(40.0 - (14.0 + 2.0))  # last gate: a1 issued 14 s, 2 s
    assert row[m1]["think_s"] == 1.0  # the trace's own think_time between main calls
    assert row[m1]["recorded_ttft_s"] == 0.5 and math.isnan(row[m0]["recorded_ttft_s"])
    assert row[a0]["recorded_model"] == "claude-haiku-4-5-20251001"
    assert row[m0]["prefix_hashes"] == [1, 2]
    assert row[a0]["prefix_hashes"][0] == 100  # session 0: the ids as recorded
    other = _table(sessions, skills).df.filter((pl.col("session_id") == 1) & (pl.col("step") == 0))
    assert other["prefix_hashes"][0][0] == (1 << HASH_SCOPE_BITS) + 1  # no sharing across sessions
    assert (df["recorded_arrival_s"] == df["arrival_s"]).all()


def test_bundle_roundtrip_equals_directory(sessions: Path, tmp_path: Path, skills: SkillCatalog) -> None:
    out = tmp_path / "b.parquet"
    bundle(sessions, out)
    a, b = _table(sessions, skills), _table(out, skills, None)
    assert b.block_tokens == 64
    assert a.df.equals(b.df)
    assert a.label_counts == b.label_counts


def test_bundled_trace_every_call_and_totals(skills: SkillCatalog) -> None:
    rules = rules_from_config([], skills)
    t = label_trace(load_raw(TRACES_DIR / "claude_code_2025.parquet"), skills, rules, "draft_reply", 0)
    df = t.df
    # totals of the 710 session files of kv-cache-tester's traces/ (29 of 739 are not in the copy)
    assert df.height == 49_334
    assert df["session_id"].n_unique() == 710
    assert int((df["agent"] == "subagent").sum()) == 676
    assert df["subagent_id"].max() == 11
    assert df["prompt_tokens"].sum() == 6_037_445_403
    assert df["recorded_output_tokens"].sum() == 21_709_920
    assert df["prefix_hashes"].list.len().sum() == 94_310_647
    assert t.block_tokens == 64
    assert t.label_counts["default: draft_reply"] == 49_334


@given(st.lists(st.lists(st.integers(0, 50), max_size=30), max_size=8))
def test_hash_runs_roundtrip(rows: list[list[int]]) -> None:
    s = pl.Series("h", rows, dtype=pl.List(pl.Int64))
    assert hash_runs.decode(hash_runs.encode(s)).to_list() == rows


def test_hash_runs_are_compact() -> None:
    run = hash_runs.encode_one(np.array([1, 2, 3, 4, 9, 10, 3]))
    assert run.tolist() == [1, 4, 9, 2, 3, 1]


# ---- malformed input -------------------------------------------------------------------------

BAD = [
    (lambda d: d["requests"][1].update(out=-3), "requests[1].out", "integer >= 0"),
    (lambda d: d["requests"][1].update({"in": "many"}), "requests[1].in", "integer >= 1"),
    (lambda d: d["requests"][0].pop("t"), "requests[0].t", "finite number"),
    (lambda d: d["requests"][5].update(type="x"), "requests[5].type", "'s' (streaming)"),
    (
        lambda d: d["requests"][2]["requests"][1].update(hash_ids=[1, "a"]),
        "requests[2].requests[1].hash_ids",
        "",
    ),
    (lambda d: d["requests"][2]["requests"][0].update(api_time=-1), "requests[2].requests[0].api_time", ""),
    (lambda d: d["requests"][3].update(duration_ms="long"), "requests[3].duration_ms", "milliseconds"),
    (lambda d: d["requests"][1].update(input_types="text"), "requests[1].input_types", "list of strings"),
    (lambda d: d["requests"][1].update(hash_ids=[2**40]), "requests[1].hash_ids", ""),
    (lambda d: d.update(block_size=0), "block_size", "integer >= 1"),
    (lambda d: d.update(requests=[]), "requests", "at least one LLM call"),
    (lambda d: d["requests"][0].update(ttft=float("inf")), "requests[0].ttft", ""),
]


@pytest.mark.parametrize(("edit", "field", "expected"), BAD)
def test_malformed_session_is_located(
    sessions: Path, skills: SkillCatalog, edit: Any, field: str, expected: str
) -> None:
    f = sessions / "trace_0001.json"
    doc = json.loads(f.read_text())
    edit(doc)
    f.write_text(json.dumps(doc, allow_nan=True))
    with pytest.raises(InputError) as e:
        _table(sessions, skills)
    assert e.value.path == str(f)
    assert e.value.column == field
    assert expected in e.value.message


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_unreadable_session_file(sessions: Path, skills: SkillCatalog, text: str) -> None:
    (sessions / "trace_0001.json").write_text(text)
    with pytest.raises(InputError, match=r"trace_0001\.json"):
        _table(sessions, skills)


def test_after_ids_must_be_earlier_rows_of_the_session(sessions: Path, skills: SkillCatalog) -> None:
    df = _table(sessions, skills).df
    bad = df.with_columns(
        pl.when(pl.col("request_id") == 3).then(pl.lit([5])).otherwise(pl.col("after_ids")).alias("after_ids")
    )
    with pytest.raises(InputError, match=r"row 4, column 'after_ids'"):
        RequestTable(bad, "x", 64, skills.names)
    cross = df.with_columns(
        pl.when(pl.col("request_id") == 12)
        .then(pl.lit([0]))
        .otherwise(pl.col("after_ids"))
        .alias("after_ids")
    )
    with pytest.raises(InputError, match="after_ids"):
        RequestTable(cross, "x", 64, skills.names)


def test_other_workloads_get_the_defaults(skills: SkillCatalog) -> None:
    rules = rules_from_config([], skills)
    df = label_trace(load_raw(TRACES_DIR / "azure_code_2023.csv.gz"), skills, rules, "draft_reply", 0).df
    assert (df["agent"] == "main").all() and (df["subagent_id"] == -1).all()
    assert df["recorded_api_s"].is_nan().all() and (df["think_s"] == 0).all()
    assert df["recorded_arrival_s"].equals(df["arrival_s"].alias("recorded_arrival_s"))
    assert df["after_ids"].list.len().sum() == 0
    assert df["recorded_output_tokens"].equals(df["output_tokens"].alias("recorded_output_tokens"))


def test_when_rule_on_missing_column_is_a_config_error(skills: SkillCatalog) -> None:
    from simroute.errors import ConfigError

    rules = rules_from_config([{"skill": "code_change", "when": {"stop_reason": "tool_use"}}], skills)
    with pytest.raises(ConfigError, match="no column 'stop_reason'"):
        label_trace(load_raw(TRACES_DIR / "azure_code_2023.csv.gz"), skills, rules, "draft_reply", 0)
