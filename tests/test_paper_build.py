"""The paper build: templates render numbers from stored outputs (and fail cleanly), the ladder's
paired intervals are the t-intervals they claim, trace sessions re-time without breaking their
dependencies, and the quick build is byte-deterministic."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pytest

from conftest import request_row
from simroute.analysis.sweep import t975
from simroute.config import REPO_ROOT
from simroute.errors import ConfigError
from simroute.workload.respace import respace_sessions
from simroute.workload.schema import RequestTable


def _load(rel: str) -> ModuleType:
    path = REPO_ROOT / rel
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return mod


render = _load("experiments/paper/render.py")
arms = _load("experiments/arms.py")
derive = _load("experiments/paper/derive.py")


def test_placeholders_read_csv_json_yaml_and_format() -> None:
    text = (
        "{{ conf/policy/router_first.yaml | verifier.false_accept | pct0 }} / "
        "{{ conf/tiers/default.yaml | local.pools.1.replicas | int }} / "
        "{{ conf/tiers/claude_api_latency.json | models.claude-opus-4-5.n_test | int }}"
    )
    assert render.render(text) == "15 % / 1 / 4,107"
    assert render.fmt("usd0", 1821.4) == "$1,821"
    assert render.fmt("pp1", -0.0734) == "−7.3 pp"
    assert render.fmt("spct1", 0.275) == "+27.5 %"
    assert render.fmt("pct1", 0.661) == "66.1 %"
    assert (render.fmt("met", True), render.fmt("met", False)) == ("met", "missed")
    with pytest.raises(render.RenderError, match="true or false"):
        render.fmt("met", 1.0)


def test_csv_selector_needs_exactly_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.csv").write_text("k,arm,v\na,x,0.5\na,y,0.25\n")
    monkeypatch.setattr(render, "ROOT", tmp_path)
    assert render.render("{{ t.csv | k=a,arm=y : v | pct0 }}") == "25 %"
    with pytest.raises(render.RenderError, match=r"mine\.md: t\.csv: 2 rows match"):
        render.render("{{ t.csv | k=a : v | pct0 }}", "mine.md")


def test_bad_placeholders_name_the_template_and_the_key() -> None:
    with pytest.raises(render.RenderError, match=r"paper\.md: .*no 'nope' in path 'verifier\.nope'"):
        render.render("x {{ conf/policy/router_first.yaml | verifier.nope | f2 }}", "paper.md")
    with pytest.raises(render.RenderError, match="unknown format"):
        render.render("{{ conf/policy/router_first.yaml | verifier.false_accept | pct }}")
    with pytest.raises(render.RenderError, match="no such stored output"):
        render.render("{{ paper/none.csv | a=b : c | f1 }}")


def test_paired_differences_are_t_intervals_over_seeds() -> None:
    rng = np.random.default_rng(5)
    ref_cost, arm_cost = rng.uniform(90, 110, 10), rng.uniform(60, 90, 10)
    ref_succ, arm_succ = rng.uniform(0.6, 0.8, 10), rng.uniform(0.5, 0.9, 10)
    rows = []
    for arm, cost, succ in (("as_recorded", ref_cost, ref_succ), ("plus_batch", arm_cost, arm_succ)):
        for s in range(10):
            rows.append(
                {
                    "workload": "claude_code",
                    "arm": arm,
                    "seed": s,
                    "cost_usd": cost[s],
                    "requests": 100,
                    "success_rate": succ[s],
                    **dict.fromkeys(arms.METRICS[2:], 0.1),
                }
            )
    table = arms.paired(pl.DataFrame(rows)).filter(pl.col("arm") == "plus_batch").row(0, named=True)
    d = arm_cost / ref_cost - 1.0
    assert table["cost_change_mean"] == pytest.approx(d.mean())
    assert table["cost_change_ci95"] == pytest.approx(t975(10) * d.std(ddof=1) / np.sqrt(10))
    e = arm_succ - ref_succ  # paired: the same seed, not the difference of means' spread
    assert table["success_rate_diff_ci95"] == pytest.approx(2.262 * e.std(ddof=1) / np.sqrt(10))
    assert table["seeds"] == 10


def test_respaced_sessions_keep_order_and_dependencies(skills) -> None:
    rows = [
        request_row(0, session_id=7, step=0, arrival_s=0.0, after_ids=[], think_s=0.0),
        request_row(1, session_id=3, step=0, arrival_s=5.0, after_ids=[], think_s=0.0),
        request_row(2, session_id=7, step=1, arrival_s=30.0, after_ids=[0], think_s=2.0),
        request_row(3, session_id=3, step=1, arrival_s=40.0, after_ids=[1], think_s=1.0),
    ]
    table = respace_sessions(RequestTable(pl.DataFrame(rows), "t", 16, skills.names), 1000.0)
    df = table.df
    assert df["request_id"].to_list() == [0, 2, 1, 3]
    assert df["arrival_s"].to_list() == [0.0, 30.0, 1000.0, 1035.0]
    assert df["recorded_arrival_s"].to_list() == [0.0, 30.0, 1000.0, 1035.0]
    assert df["after_ids"].to_list() == [[], [0], [], [1]]
    with pytest.raises(ConfigError, match="session_spacing_s"):
        respace_sessions(table, 0.0)


def test_gpu_summary_medians() -> None:
    exps = [
        {
            "role": "held out",
            "error": {"e2e_mean": -0.2, "ttft_mean": 0.1},
            "reference_error": {"e2e_mean": 0.3, "ttft_mean": 0.5},
        },
        {"role": "held out", "error": {"e2e_mean": 0.04, "ttft_mean": -0.3}},
        {"role": "held out", "error": {"e2e_mean": 3.0, "ttft_mean": 3.0}, "overloaded": True},
        {
            "role": "fit",
            "error": {"e2e_mean": 0.0, "ttft_mean": 0.0},
            "loo_error": {"e2e_mean": 0.02, "ttft_mean": -0.06},
        },
    ]
    s = derive.gpu_summary({"experiments": exps})
    assert s["held_out"]["n"] == 2 and s["held_out"]["e2e_mean"] == pytest.approx(0.12)
    assert s["held_out"]["max_e2e"] == pytest.approx(0.2)
    assert s["blis"]["n"] == 1 and s["blis"]["e2e_mean"] == pytest.approx(0.3)
    assert s["loo"]["ttft_mean"] == pytest.approx(0.06)
    assert s["overloaded_flagged"] == 1


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_quick_paper_build_is_byte_deterministic(tmp_path: Path) -> None:
    """Two quick builds into two folders: the same files, byte for byte (CSV, JSON, PNG, SVG, MD)."""
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        p = subprocess.run(
            [sys.executable, "experiments/paper/make_paper.py", "--quick", str(out)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert p.returncode == 0, p.stdout + p.stderr
    a, b = (_digests(o) for o in outs)
    assert a == b
    assert {"arms.csv", "arms_paired.csv", "arms_meta.json", "figures/arms.png"} <= set(a)
    meta = json.loads((outs[0] / "arms_meta.json").read_text())
    assert meta["fleet"]["reference"] == "all_realtime"
