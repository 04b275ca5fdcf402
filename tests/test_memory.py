"""Memory hygiene: freed memory goes back to the system (changes no result)."""

from __future__ import annotations

import subprocess
import sys


def _env_after(code: str, env_extra: dict[str, str]) -> str:
    env = {"PATH": "/usr/bin:/bin", **env_extra}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def _effective(conf: str) -> dict[str, str]:
    """jemalloc's options as it reads them: the last setting of each key wins (Polars puts its own
    defaults in front of what it finds)."""
    return dict(kv.split(":", 1) for kv in conf.split(","))


def test_polars_allocator_returns_freed_pages_unless_the_user_says_otherwise() -> None:
    read = "import os, simroute, polars; print(os.environ['_RJEM_MALLOC_CONF'])"
    ours = _effective(_env_after(read, {}))
    assert ours["dirty_decay_ms"] == "0" and ours["muzzy_decay_ms"] == "0"
    assert _effective(_env_after(read, {"_RJEM_MALLOC_CONF": "dirty_decay_ms:5"}))["dirty_decay_ms"] == "5"


def test_the_run_machinery_does_not_load_matplotlib() -> None:
    """The baseline's worker and runs without figures do not pay for matplotlib (about 30 MiB)."""
    code = "import sys, simroute.cli, simroute.runner.experiment; print('matplotlib' in sys.modules)"
    assert _env_after(code, {}) == "False"


def test_pricing_attempts_a_chunk_at_a_time_changes_no_cost(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Attempts priced in chunks of 7 (so chunk edges fall everywhere: batch, real-time and local
    attempts, retries, failures) give the same result tables as pricing them all at once."""

    from simroute.config import compose
    from simroute.policy.registry import PolicyContext
    from simroute.runner.experiment import _inputs, _job
    from simroute.sim import run as run_mod
    from simroute.sim.run import result_tables
    from simroute.sim.sessions import ReplayConfig

    cfg = compose(["workload.n_requests=400"])
    inp, prefixes = _inputs(cfg)
    ctx = PolicyContext(inp.skills.names, inp.catalog, int(cfg["seed"]))
    records = _job(
        cfg, inp, ctx, "policy", False, ReplayConfig.from_config(cfg["workload"]), prefixes
    ).records()
    whole = result_tables(inp.table, records, inp.catalog, inp.quality)
    monkeypatch.setattr(run_mod, "_PRICE_CHUNK", 7)
    chunked = result_tables(inp.table, records, inp.catalog, inp.quality)
    assert whole.attempts.height > 7 * 20 and whole.attempts["tier"].n_unique() >= 2
    assert (whole.attempts["cost_usd"] > 0).sum() > 20
    assert chunked.requests.equals(whole.requests) and chunked.attempts.equals(whole.attempts)


def test_fewer_collections_sets_the_thresholds_and_restores_them() -> None:
    import gc

    import pytest

    from simroute.memory import SIMULATION_GC_THRESHOLDS, fewer_collections

    before = gc.get_threshold()
    assert before != SIMULATION_GC_THRESHOLDS
    seen: list[tuple[int, int, int]] = []

    def failing_simulation() -> None:
        with fewer_collections():
            seen.append(gc.get_threshold())
            raise KeyError("a failing simulation")

    with pytest.raises(KeyError):
        failing_simulation()
    assert seen == [SIMULATION_GC_THRESHOLDS] and gc.get_threshold() == before


def test_a_run_keeps_only_the_attempt_columns_its_summary_reads() -> None:
    """Records taken with only the attempt fields pricing and the summary need give the same
    request table, the same attempts in those columns and the same summary as whole records."""
    from simroute.analysis.summary import SUMMARY_ATTEMPT_COLUMNS, headline, paired, summarize
    from simroute.config import compose
    from simroute.policy.registry import PolicyContext
    from simroute.runner.experiment import _inputs, _job
    from simroute.sim.run import attempt_record_columns, result_tables
    from simroute.sim.sessions import ReplayConfig

    cfg = compose(["workload.n_requests=500"])
    inp, prefixes = _inputs(cfg)
    ctx = PolicyContext(inp.skills.names, inp.catalog, int(cfg["seed"]))
    replay = ReplayConfig.from_config(cfg["workload"])
    whole, lean = {}, {}
    for arm in ("policy", "baseline"):
        job = _job(cfg, inp, ctx, arm, False, replay, prefixes)
        whole[arm] = result_tables(inp.table, job.records(), inp.catalog, inp.quality)
        taken = job.records(None, attempt_record_columns(SUMMARY_ATTEMPT_COLUMNS))
        want = attempt_record_columns(SUMMARY_ATTEMPT_COLUMNS)
        assert set(taken.attempts.columns) == want and "submit_s" not in want and "rate_limited" in want
        lean[arm] = result_tables(
            inp.table, taken, inp.catalog, inp.quality, attempt_columns=SUMMARY_ATTEMPT_COLUMNS
        )
        assert lean[arm].requests.equals(whole[arm].requests)
        assert lean[arm].attempts.columns == [
            c for c in whole[arm].attempts.columns if c in SUMMARY_ATTEMPT_COLUMNS
        ]
        assert lean[arm].attempts.equals(whole[arm].attempts.select(lean[arm].attempts.columns))
    meta = {"n_requests": 500}
    for res in (whole, lean):
        res["summary"] = summarize(res["policy"], meta, res["baseline"])
        res["paired"] = paired(
            headline(res["policy"]), res["policy"].requests["correct"].to_numpy(), res["baseline"]
        )
    assert lean["summary"] == whole["summary"] and lean["paired"] == whole["paired"]
    assert "api_error_attempts" in str(whole["summary"]) and "provider_prompt_cache" in str(whole["summary"])
