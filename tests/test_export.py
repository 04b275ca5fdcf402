"""Export and the production runtime: artifact safety, LiteLLM config, light imports, parity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from conftest import run_cli
from simroute.errors import InputError
from simroute.feedback.response_cache import CacheConfig, ResponseCache
from simroute.runtime import load_policy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("run")
    proc = run_cli(["run", "workload.n_requests=3000", f"hydra.run.dir={d}"])
    assert proc.returncode == 0, proc.stderr
    return d


def _export(run_dir: Path, out: Path, fmt: str = "json") -> dict:
    proc = run_cli(["export", str(run_dir), "--out", str(out), "--format", fmt])
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_runtime_decisions_equal_the_simulators(run_dir: Path, tmp_path: Path) -> None:
    """Parity: every routed request of the run, replayed through the runtime with the label and
    local queue the simulated router saw, gets the same first tier and model — session stickiness
    included: the runtime hears of accepted first attempts when the simulation did."""
    doc = _export(run_dir, tmp_path / "p.json")
    assert doc["policy"]["sticky_sessions"] is True and doc["policy"]["response_cache"]["enabled"]
    policy = load_policy(tmp_path / "p.json")
    r = pl.read_parquet(run_dir / "requests.parquet")
    cache = ResponseCache(CacheConfig.from_config(doc["policy"]["response_cache"], doc["skills"]))
    lookup_s = cache.lookup_latency_s()  # what a miss waits before it is routed
    routed = r.filter(pl.col("final_tier") != "cache")
    events = []  # (time, kind, row): bindings at answer time, routing after the cache lookup
    for row in routed.iter_rows(named=True):
        t = row["arrival_s"] + (lookup_s if row["cache_lookup"] == "miss" else 0.0)
        events.append((t, 1, row))
        if row["attempts"] == 1 and (row["outcome"] == "succeeded" or row["undetected_failure"]):
            events.append((row["arrival_s"] + row["e2e_s"], 0, row))
    events.sort(key=lambda e: (e[0], e[1], e[2]["request_id"]))
    decisions = {}
    mismatches = sticky = 0
    for _, kind, row in events:
        if kind == 0:
            policy.answered(row["session_id"], decisions[row["request_id"]])
            continue
        req = dict(row, skill=row["skill_pred"])
        d = policy.route(req, local_queue_len=row["local_queue_at_route"])
        decisions[row["request_id"]] = d
        sticky += d.reason.endswith("+sticky")
        mismatches += d.tier != row["first_tier"] or d.reason != row["route_reason"]
        if row["attempts"] == 1:  # then the first attempt's model is the final one
            mismatches += d.model != row["final_model"]
    assert mismatches == 0
    assert sticky > 100
    assert r.height == 3000 and routed.height < r.height


def test_litellm_config(run_dir: Path, tmp_path: Path) -> None:
    cfg = _export(run_dir, tmp_path / "l.yaml", "litellm")
    names = {m["model_name"] for m in cfg["model_list"]}
    assert "realtime/claude-sonnet-4-5" in names and "local/llama-3.1-8b-instruct" in names
    price = next(m for m in cfg["model_list"] if m["model_name"] == "realtime/gpt-4.1")["model_info"]
    assert price["input_cost_per_token"] == 2e-6
    assert {"local/llama-3.1-8b-instruct": ["realtime/claude-sonnet-4-5"]} in cfg["router_settings"][
        "fallbacks"
    ]
    assert cfg["litellm_settings"] == {"cache": True, "cache_params": {"type": "local", "ttl": 86400.0}}
    assert cfg["simroute"]["sticky_sessions"] is True


def test_tampered_or_wrong_version_artifacts_are_refused(run_dir: Path, tmp_path: Path) -> None:
    doc = _export(run_dir, tmp_path / "p.json")
    bad = dict(doc, policy={**doc["policy"], "router": {**doc["policy"]["router"], "overflow_queue": 1}})
    (tmp_path / "t.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="sha256 mismatch"):
        load_policy(tmp_path / "t.json")
    (tmp_path / "v.json").write_text(json.dumps(dict(doc, schema="simroute.policy/99")))
    with pytest.raises(InputError, match="unsupported artifact schema"):
        load_policy(tmp_path / "v.json")
    (tmp_path / "x.json").write_bytes(b"\x80\x04\x95 pickle bytes")
    with pytest.raises(InputError, match="not JSON"):
        load_policy(tmp_path / "x.json")


def test_runtime_imports_stay_light() -> None:
    code = (
        "import sys, simroute.runtime; heavy = [m for m in ('simpy', 'numba', 'polars', 'matplotlib', "
        "'hydra', 'omegaconf', 'tqdm') if m in sys.modules]; print(heavy); assert not heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_export_of_a_non_run_folder(tmp_path: Path) -> None:
    proc = run_cli(["export", str(tmp_path), "--out", str(tmp_path / "p.json")])
    assert proc.returncode == 2 and "policy_snapshot.json: not found" in proc.stderr
