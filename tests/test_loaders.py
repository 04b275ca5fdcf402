"""Trace loaders: the bundled real traces load in full; malformed input fails with one located error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simroute.config import TRACES_DIR
from simroute.errors import InputError
from simroute.workload.labels import ShapeRule, assign_skills, label_trace
from simroute.workload.loaders import detect_format, load_raw
from simroute.workload.skills import SkillCatalog

RULES = [
    ShapeRule("summarize_repo", prompt_min=16000, output_max=600),
    ShapeRule("eval_traces", output_max=16),
]


def _load(path: Path, skills: SkillCatalog, fmt: str | None = None):
    return label_trace(load_raw(path, fmt), skills, RULES, "draft_reply", seed=0)


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("azure_conv_2023.csv.gz", 19_366),
        ("azure_code_2023.csv.gz", 8_819),
        ("mooncake_conversation.jsonl.gz", 12_031),
    ],
)
def test_bundled_traces_load_every_row(name: str, rows: int, skills: SkillCatalog) -> None:
    t = _load(TRACES_DIR / name, skills)
    assert len(t) == rows
    assert t.df["arrival_s"].is_sorted()
    assert t.df["arrival_s"][0] == 0.0
    assert sum(t.label_counts.values()) == rows  # every row's label is accounted for


def test_azure_values_are_read_exactly(skills: SkillCatalog) -> None:
    t = _load(TRACES_DIR / "azure_conv_2023.csv.gz", skills)
    # first rows of the upstream file: 18:15:46.6805900,374,44 and 18:15:50.9951690,396,109
    assert t.df["prompt_tokens"][:2].to_list() == [374, 396]
    assert t.df["output_tokens"][:2].to_list() == [44, 109]
    assert t.df["arrival_s"][1] == pytest.approx(4.314579, abs=1e-6)


def test_mooncake_keeps_prefix_hashes(skills: SkillCatalog) -> None:
    t = _load(TRACES_DIR / "mooncake_conversation.jsonl.gz", skills)
    assert t.block_tokens == 512
    assert t.df["prefix_hashes"][0].to_list() == list(range(14))
    # 6758 input tokens -> 14 blocks of 512 (13 full + 1 partial, as in the trace)
    assert t.df["prompt_tokens"][0] == 6758


def test_label_rules_are_first_match_and_counted() -> None:
    import numpy as np

    skill, counts = assign_skills(np.array([20000, 20000, 100]), np.array([10, 700, 5]), RULES, "draft_reply")
    assert skill.tolist() == ["summarize_repo", "draft_reply", "eval_traces"]
    assert counts == {
        "rule 1: summarize_repo (prompt>=16000, output<=600)": 1,
        "rule 2: eval_traces (output<=16)": 1,
        "default: draft_reply": 1,
    }


def test_parquet_roundtrip_native_table(tmp_path: Path, skills: SkillCatalog) -> None:
    t = _load(TRACES_DIR / "azure_code_2023.csv.gz", skills)
    p = tmp_path / "native.parquet"
    t.df.write_parquet(p)
    back = _load(p, skills)
    assert back.df.equals(t.df)
    assert back.label_counts == {"given in trace": len(t)}


def test_detect_format() -> None:
    assert detect_format(Path("x.csv.gz")) == "azure"
    assert detect_format(Path("x.JSONL")) == "mooncake"
    assert detect_format(Path("x.parquet")) == "parquet"
    with pytest.raises(InputError, match=r"workload\.format"):
        detect_format(Path("x.txt"))


# ---- malformed input -------------------------------------------------------------------------


def _azure_csv(n: int) -> list[list[str]]:
    return [[f"2023-11-16 18:15:{i:02d}.5000000", str(100 + i), str(10 + i)] for i in range(n)]


def _write_csv(
    path: Path, rows: list[list[str]], header: str = "TIMESTAMP,ContextTokens,GeneratedTokens"
) -> None:
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))


BAD_VALUES = {
    1: (["-5", "1.5", "abc", "", "nan", "0", "1e3"], "ContextTokens"),
    2: (["-1", "2.0", "x", "", "NaN", "0"], "GeneratedTokens"),
    0: (["yesterday", "", "2023-13-45 99:99:99", "nan"], "TIMESTAMP"),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 40),
    data=st.data(),
)
def test_malformed_azure_cell_is_located(
    tmp_path: Path, skills: SkillCatalog, n: int, data: st.DataObject
) -> None:
    rows = _azure_csv(n)
    r = data.draw(st.integers(0, n - 1), label="row")
    c = data.draw(st.sampled_from([0, 1, 2]), label="column")
    values, col_name = BAD_VALUES[c]
    rows[r][c] = data.draw(st.sampled_from(values), label="value")
    p = tmp_path / "bad.csv"
    _write_csv(p, rows)
    with pytest.raises(InputError) as ei:
        _load(p, skills)
    assert ei.value.row == r + 1
    assert ei.value.column == col_name
    assert str(p) in str(ei.value)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 30), data=st.data())
def test_unsorted_timestamps_are_located(
    tmp_path: Path, skills: SkillCatalog, n: int, data: st.DataObject
) -> None:
    rows = _azure_csv(n)
    r = data.draw(st.integers(1, n - 1), label="row")
    rows[r][0] = "2023-11-16 18:14:00.0000000"  # earlier than every other row
    p = tmp_path / "unsorted.csv"
    _write_csv(p, rows)
    with pytest.raises(InputError, match="non-decreasing") as ei:
        _load(p, skills)
    assert (ei.value.row, ei.value.column) == (r + 1, "TIMESTAMP")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 20), data=st.data())
def test_malformed_mooncake_line_is_located(
    tmp_path: Path, skills: SkillCatalog, n: int, data: st.DataObject
) -> None:
    recs = [
        {"timestamp": 1000 * i, "input_length": 600, "output_length": 50, "hash_ids": [i, i + 1]}
        for i in range(n)
    ]
    lines = [json.dumps(x) for x in recs]
    r = data.draw(st.integers(0, n - 1), label="row")
    key, value = data.draw(
        st.sampled_from(
            [
                ("input_length", "12"),
                ("input_length", 1.5),
                ("output_length", None),
                ("output_length", -3),
                ("hash_ids", "abc"),
                ("hash_ids", [1, "x"]),
                ("timestamp", "soon"),
                ("timestamp", -5000),
                ("input_length", 0),
            ]
        ),
        label="corruption",
    )
    rec = dict(recs[r])
    rec[key] = value
    lines[r] = json.dumps(rec)
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    expect_col = {
        "input_length": "input_length",
        "output_length": "output_length",
        "hash_ids": "hash_ids",
        "timestamp": "timestamp",
    }[key]
    if key == "timestamp" and value == -5000:
        if r == 0:  # a negative first timestamp only shifts the origin: rows stay sorted
            assert len(_load(p, skills)) == n
            return
        with pytest.raises(InputError, match="non-decreasing") as ei:
            _load(p, skills)
    else:
        with pytest.raises(InputError) as ei:
            _load(p, skills)
    assert ei.value.row == r + 1
    assert ei.value.column == expect_col


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "empty file"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n", "header.csv", "header only"),
        (b"a,b,c\n1,2,3\n", "cols.csv", "missing column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "garbage.csv", "binary data"),
        (bytes(range(128, 256)) * 4, "latin.csv", "not UTF-8"),
        (b'{"timestamp": 0, "input_length": 5, "output_length": 5}\n', "wrong.csv", "missing column"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n0,1,2\n", "wrong.jsonl", "invalid JSON"),
        (b"not parquet at all", "x.parquet", "not a Parquet file"),
        (b"PAR1 truncated", "y.parquet", "unreadable Parquet"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n0,1,2,3\n", "ragged.csv", "expected 3 fields"),
    ],
)
def test_bad_files_raise_one_clear_error(
    tmp_path: Path, skills: SkillCatalog, content: bytes, name: str, message: str
) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError, match=message) as ei:
        _load(p, skills)
    assert str(ei.value).startswith(str(p))
    assert "\n" not in str(ei.value)


def test_truncated_gzip(tmp_path: Path, skills: SkillCatalog) -> None:
    data = gzip.compress((TRACES_DIR / "azure_code_2023.csv.gz").read_bytes())
    good = gzip.decompress((TRACES_DIR / "azure_code_2023.csv.gz").read_bytes())
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(gzip.compress(good)[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt gzip"):
        _load(p, skills)


def test_missing_file(skills: SkillCatalog) -> None:
    with pytest.raises(InputError, match="file not found"):
        _load(Path("/nonexistent/trace.csv"), skills)


def test_parquet_with_bad_values_is_located(tmp_path: Path, skills: SkillCatalog) -> None:
    p = tmp_path / "raw.parquet"
    pl.DataFrame(
        {"arrival_s": [0.0, 1.0, float("nan")], "prompt_tokens": [5, 6, 7], "output_tokens": [1, 2, 3]}
    ).write_parquet(p)
    with pytest.raises(InputError, match="finite time") as ei:
        _load(p, skills)
    assert (ei.value.row, ei.value.column) == (3, "arrival_s")


@pytest.mark.parametrize("ids", [[3, None, 5], [3, -1]])
def test_missing_or_negative_prefix_ids_are_located(tmp_path: Path, skills: SkillCatalog, ids: list) -> None:
    """A prefix id that is missing or negative is one clear error at its row, not a silent
    misalignment of every later row's ids."""
    p = tmp_path / "raw.parquet"
    pl.DataFrame(
        {
            "arrival_s": [0.0, 1.0, 2.0],
            "prompt_tokens": [50, 60, 70],
            "output_tokens": [1, 2, 3],
            "prefix_hashes": [[1, 2], ids, [7]],
        },
        schema_overrides={"prefix_hashes": pl.List(pl.Int64)},
    ).write_parquet(p)
    with pytest.raises(InputError, match="block ids >= 0") as ei:
        _load(p, skills)
    assert (ei.value.row, ei.value.column) == (2, "prefix_hashes")
