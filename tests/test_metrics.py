"""Router metrics against hand-computed values, and the eval-router command on real GSM8K outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from simroute.analysis.metrics import aiq, apgr, cpt, pareto_frontier
from simroute.analysis.router_eval import curve, evaluate, load_outcomes
from simroute.config import TRACES_DIR
from simroute.errors import InputError

GSM8K = TRACES_DIR / "quality" / "routellm_gsm8k_responses.csv.gz"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def test_pareto_frontier() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 0.5])
    qual = np.array([0.5, 0.7, 0.6, 0.65, 0.9, 0.4])
    assert pareto_frontier(cost, qual).tolist() == [5, 0, 1, 4]


def test_aiq_hand_computed() -> None:
    # frontier (0,0.5) (1,0.6) (2,0.9): the hull drops (1,0.6) -> area of the line 0.5..0.9 = 1.4 over 2
    assert aiq(np.array([0.0, 1.0, 2.0, 1.5]), np.array([0.5, 0.6, 0.9, 0.55])) == pytest.approx(0.7)
    # concave frontier kept: (0,0) (1,0.8) (2,1): area 0.4 + 0.9 = 1.3 over 2
    assert aiq(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.8, 1.0])) == pytest.approx(0.65)


def test_apgr_and_cpt_hand_computed() -> None:
    share = np.array([0.0, 0.5, 1.0])
    assert apgr(share, np.array([0.6, 0.7, 0.8]), 0.6, 0.8) == pytest.approx(0.5)  # random line
    # concave: 0.6 -> 0.78 at half -> 0.8: area = 0.25*(1.38) + 0.25*(1.58) = 0.74 -> (0.74-0.6)/0.2
    assert apgr(share, np.array([0.6, 0.78, 0.8]), 0.6, 0.8) == pytest.approx(0.7)
    assert cpt(share, np.array([0.6, 0.7, 0.8]), 0.6, 0.8, 0.5) == pytest.approx(0.5)
    assert cpt(share, np.array([0.6, 0.78, 0.8]), 0.6, 0.8, 0.5) == pytest.approx(0.5 * 0.1 / 0.18)
    assert np.isnan(cpt(share, np.array([0.6, 0.6, 0.6]), 0.6, 0.8, 0.5))


def test_curve_counts_outcomes() -> None:
    weak = np.array([True, False, False, True])
    strong = np.array([True, True, False, False])
    _, q = curve(np.array([0.0, 1.0, 0.5, 0.2]), weak, strong, points=5)
    # order by score: idx1 (+1), idx2 (0), idx3 (-1), idx0 (0)
    assert q.tolist() == pytest.approx([0.5, 0.75, 0.75, 0.5, 0.5])


def test_routers_on_gsm8k() -> None:
    res = evaluate(load_outcomes(GSM8K, WEAK, STRONG), seed=0)
    r = res["routers"]
    assert res["split"]["train"] + res["split"]["eval"] == 1319
    assert r["random"]["apgr"] == pytest.approx(0.5)
    assert r["oracle"]["apgr"] > max(v["apgr"] for k, v in r.items() if k != "oracle")
    assert r["logistic"]["apgr"] > 0.55  # learned on the disjoint train split, beats random
    assert r["logistic"]["cpt50"] < 0.45


def test_eval_router_command(tmp_path: Path) -> None:
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    proc = run_cli(
        [
            "eval-router",
            str(GSM8K),
            "--weak",
            WEAK,
            "--strong",
            STRONG,
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert {"apgr", "cpt50", "cpt80", "curve"} <= set(res["routers"]["oracle"])
    assert png.stat().st_size > 10_000


def test_bad_outcome_table(tmp_path: Path) -> None:
    p = tmp_path / "o.csv"
    p.write_text("prompt,a,b\nx,True,maybe\n")
    with pytest.raises(InputError, match="expected True/False") as ei:
        load_outcomes(p, "a", "b")
    assert (ei.value.row, ei.value.column) == (1, "b")
    with pytest.raises(InputError, match="missing column 'c'"):
        load_outcomes(p, "a", "c")
