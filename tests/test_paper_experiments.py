"""The paper's experiment scripts: the sensitivity analysis runs end to end (``--quick``), writes the
files it promises with their columns, and writes them byte-identically again with another worker
count; its explicit override lists say what their factor levels claim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from simroute.config import REPO_ROOT, compose
from simroute.economics.prices import load_litellm

SCRIPT = REPO_ROOT / "experiments" / "sensitivity.py"
FILES = (
    "sensitivity.csv",
    "sensitivity_summary.csv",
    "gpu_count.csv",
    "claims.json",
    "figures/tornado.png",
    "figures/tornado.svg",
    "figures/gpu_count.png",
    "figures/gpu_count.svg",
)


def _quick(out: Path, jobs: int) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--jobs", str(jobs)],
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=300,
    )


def test_sensitivity_quick_writes_its_files_deterministically(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _quick(a, 2)
    for f in FILES:
        assert (a / f).is_file() and (a / f).stat().st_size > 0, f
    raw = pl.read_csv(a / "sensitivity.csv")
    assert {"factor", "level", "value", "seed", "arm", "overrides", "total_cost_usd", "success_rate",
            "share_local", "local_gpu_s", "local_busy_gpu_s", "gpu_util"} <= set(raw.columns)  # fmt: skip
    assert set(raw["arm"]) == {"router_first", "all_realtime", "all_batch"}
    assert {"base", "gpu_curve", "favourable_corner"} <= set(raw["factor"])
    assert raw.select("factor", "level", "seed", "arm").is_unique().all()
    summary = pl.read_csv(a / "sensitivity_summary.csv")
    outcomes = ("cost_cut", "success_change_pp", "local_share", "gpu_util")
    assert {"factor", "level", "value", "label", "unit", "base_value", *outcomes,
            *(f"base_{o}" for o in outcomes)} <= set(summary.columns)  # fmt: skip
    assert {"base", "gpu_curve"} <= set(summary["factor"])
    gpu = pl.read_csv(a / "gpu_count.csv")
    assert {"gpus", "local_share", "cost_router_first_usd", "cost_all_realtime_usd", "success_router_first",
            "gpu_util", "local_share_min", "local_share_max"} <= set(gpu.columns)  # fmt: skip
    assert gpu["gpus"].to_list() == sorted(gpu["gpus"].to_list()) and gpu["gpus"][0] == 0
    assert gpu.filter(pl.col("gpus") == 0)["local_share"][0] == 0.0
    claims = json.loads((a / "claims.json").read_text())["claims"]
    assert set(claims) == {"local_share", "cost_cut", "batch"}
    for c in claims.values():
        assert {"claim", "reached", "favourable_corner"} <= set(c)
    assert claims["batch"]["price_table"]["input"]["models"] > 100
    _quick(b, 1)  # another worker count: the same bytes
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.fixture(scope="module")
def sens():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(SCRIPT.parent))
    import sensitivity

    return sensitivity


def test_sensitivity_levels_are_what_they_say(sens) -> None:  # type: ignore[no-untyped-def]
    """The explicit overrides match the factor values: prompt medians x0.5 / x2 of the base, GPU
    counts = sum of replicas x GPUs per replica, batch ratio = table ratio x scale, mixes sum to 1."""
    base = compose(["experiment=fleet_14d"])
    prof = base["skills"]["profiles"]
    for lv in ("low", "high"):
        level = getattr(sens.FACTORS["prompt_length"], lv)
        cfg = compose(["experiment=fleet_14d", *level.overrides])
        for k, p in cfg["skills"]["profiles"].items():
            assert p["prompt"]["median"] == pytest.approx(level.value * prof[k]["prompt"]["median"])
        mix = compose(["experiment=fleet_14d", *getattr(sens.FACTORS["skill_mix"], lv).overrides])
        w = {k: p["weight"] for k, p in mix["skills"]["profiles"].items()}
        assert sum(w.values()) == pytest.approx(1.0) and mix["workload"]["drift"]["to"] == w
        hard = w["code_change"] + w["diligence_memo"] + w["db_migration"]
        assert hard == pytest.approx(getattr(sens.FACTORS["skill_mix"], lv).value)
    w0 = {k: p["weight"] for k, p in prof.items()}
    assert w0["code_change"] + w0["diligence_memo"] + w0["db_migration"] == pytest.approx(
        sens.FACTORS["skill_mix"].base
    )
    for n, over in sens.GPU_LEVELS.items():
        cfg = compose(["experiment=fleet_14d", *over])
        pools = cfg["tiers"]["local"]["pools"]
        gpus = sum(p["replicas"] * p["gpus_per_replica"] for p in pools)
        assert (gpus if cfg["policy"]["provision_local"] else 0) == n
    table = load_litellm(base["prices"])
    ratios = {table.get(m).batch.input / table.get(m).standard.input for m in base["models"]["api"]}
    f = sens.FACTORS["batch_price_ratio"]
    assert ratios == {f.base}
    for lv in (f.low, f.high):
        scale = float(lv.overrides[0].split("=")[1])
        assert f.base * scale == pytest.approx(lv.value)
    for fac in sens.FACTORS.values():  # every override names an existing config key (Hydra checks)
        compose(["experiment=fleet_14d", *fac.low.overrides, *fac.high.overrides])
