"""Numbers a user reads off a run are what they claim to be: batch attempts billed exactly as
``simroute cost --batch`` prices them, and every percentile in ``summary.json`` is ``np.percentile``
of the per-request values it summarises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from conftest import run_cli
from simroute.config import compose
from simroute.economics.costs import request_cost
from simroute.economics.prices import LONG_CONTEXT_TOKENS
from simroute.outcomes import COMPLETED, SERVED_BY
from simroute.policy.registry import PolicyContext
from simroute.sim.build import build_policies, setup
from simroute.sim.run import simulate
from simroute.workload.skills import URGENCIES


@pytest.fixture(scope="module")
def batch_run() -> tuple[pl.DataFrame, Any]:
    """Completed batch attempts of a small all-batch run (with their request's tokens), and the prices."""
    cfg = compose(["policy=all_batch", "workload.n_requests=800"])
    inp = setup(cfg, 0)
    policies = build_policies(cfg["policy"], PolicyContext(inp.skills.names, inp.catalog, 0))
    res = simulate(inp.table, policies, cfg["tiers"], inp.catalog, inp.quality, 0, progress=False)
    req = res.requests.select("prompt_tokens", "output_tokens").with_row_index("request_index")
    att = res.attempts.filter((pl.col("tier") == "batch") & (pl.col("status") == COMPLETED))
    att = att.with_columns(pl.col("request_index").cast(pl.UInt32)).join(req, on="request_index", how="left")
    return att, inp.prices


def test_batch_attempts_are_billed_at_the_batch_price_of_simroute_cost(batch_run) -> None:
    """Catches batch offers priced at standard rates (the batch discount dropped from the catalogue).

    ``simroute cost`` prices ``fresh·input + cached·cached_input + output·output``; an attempt that
    also *wrote* ``W`` tokens to the provider's prompt cache pays ``cache_write`` instead of
    ``input`` on those, i.e. the cost of the same request with ``W`` fewer prompt tokens plus
    ``W·cache_write``."""
    att, prices = batch_run
    assert att.height >= 50
    assert (att["prompt_tokens"] <= LONG_CONTEXT_TOKENS).all()  # one rate band: the identity is exact
    kinds = {"plain": 0, "written": 0}
    for row in att.iter_rows(named=True):
        price = prices.get(row["model"])
        assert price.has_batch, row["model"]  # else batch equals standard and the check is vacuous
        p, o = int(row["prompt_tokens"]), int(row["output_tokens"])
        c, w = int(row["cached_tokens"]), int(row["written_tokens"])
        want, standard = (
            request_cost(price, p - w, o, c, mode).total_usd + w * price.rates(mode).cache_write
            for mode in ("batch", "standard")
        )
        assert row["cost_usd"] == pytest.approx(want, rel=1e-12, abs=1e-15), row
        assert want < standard
        kinds["written" if w else "plain"] += 1
    assert kinds["plain"] > 0 and kinds["written"] > 0

    # tie it to the command a user runs, for an attempt with no prompt-cache write
    row = att.filter(pl.col("written_tokens") == 0).row(0, named=True)
    proc = run_cli(
        [
            "cost",
            row["model"],
            "--input-tokens",
            str(row["prompt_tokens"]),
            "--output-tokens",
            str(row["output_tokens"]),
            "--cached-tokens",
            str(row["cached_tokens"]),
            "--batch",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    quoted = json.loads(proc.stdout)
    assert quoted["mode"] == "batch" and quoted["discount_vs_standard_usd"] > 0
    assert row["cost_usd"] == pytest.approx(quoted["total_usd"], rel=1e-12)


PCT_KEY = re.compile(r"^(p\d+|(mean|median|p\d+)_\w+_ms|\w+_p\d+_\w+)$")


def _percentile_paths(node: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every key of the summary that reports a percentile, a median or a mean of latencies."""
    out: set[tuple[str, ...]] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if PCT_KEY.match(str(k)) and not isinstance(v, dict):
                out.add((*path, str(k)))
            out |= _percentile_paths(v, (*path, str(k)))
    return out


def _expected(x: np.ndarray, stat: str, scale: float = 1.0) -> float | None:
    x = x[np.isfinite(x)] * scale
    if not len(x):
        return None
    if stat == "mean":
        return float(np.mean(x))
    if stat == "median":
        return float(np.median(x))
    return float(np.percentile(x, int(stat[1:])))


def test_every_summary_percentile_is_np_percentile_of_the_requests(tmp_path: Path) -> None:
    """Catches a percentile computed at the wrong level (e.g. p99 as p90) anywhere in summary.json."""
    proc = run_cli(["run", "workload.n_requests=1500", "figures=false", f"hydra.run.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    r = pl.read_parquet(tmp_path / "requests.parquet")
    lat = s["latency"]
    checked: set[tuple[str, ...]] = set()

    def check(path: tuple[str, ...], got: Any, x: np.ndarray, stat: str, scale: float = 1.0) -> None:
        want = _expected(x, stat, scale)
        assert (got is None) == (want is None), path
        if want is not None:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), path
        checked.add(path)

    for field, col in (("ttft", "ttft_s"), ("tpot", "tpot_s"), ("e2el", "e2e_s")):
        for stat in ("mean", "median", "p99"):
            key = f"{stat}_{field}_ms"
            check(("latency", key), lat[key], r[col].to_numpy(), stat, 1000.0)
    groups = [("by_tier", t, pl.col("final_tier") == t) for t in SERVED_BY]
    groups += [("by_urgency", u, pl.col("urgency") == u) for u in URGENCIES]
    distinct = 0
    for block, name, where in groups:
        g = r.filter(where)
        assert lat[block][name]["n"] == g.height
        for col in ("e2e_s", "ttft_s"):
            pcts = lat[block][name][col]
            for stat, got in pcts.items():
                check(("latency", block, name, col, stat), got, g[col].to_numpy(), stat)
            distinct += pcts["p90"] is not None and pcts["p90"] != pcts["p99"]
    assert distinct >= 6  # enough groups where a p99 reported as p90 would differ
    inter = r.filter(pl.col("urgency") == "interactive")
    check(
        ("interactive_p95_deadline_ratio",),
        s["interactive_p95_deadline_ratio"],
        (inter["e2e_s"] / inter["deadline_s"]).to_numpy(),
        "p95",
    )
    # sessions: makespan percentiles of sessions.parquet, which is recomputed here from the requests
    sess = pl.read_parquet(tmp_path / "sessions.parquet")
    base = pl.read_parquet(tmp_path / "baseline_sessions.parquet")
    for stat, got in s["sessions"]["makespan_s"].items():
        check(("sessions", "makespan_s", stat), got, sess["makespan_s"].to_numpy(), stat)
    for stat, got in s["baseline"]["sessions"]["makespan_s"].items():
        check(("baseline", "sessions", "makespan_s", stat), got, base["makespan_s"].to_numpy(), stat)
    issued = r.filter(pl.col("outcome") != "cancelled")
    end = issued.group_by("session_id").agg((pl.col("arrival_s") + pl.col("e2e_s")).max().alias("end"))
    start = r.group_by("session_id").agg(pl.col("arrival_s").min().alias("start"))
    want = start.join(end, on="session_id", how="left").sort("session_id")
    np.testing.assert_allclose(
        sess["makespan_s"].to_numpy(), (want["end"] - want["start"]).fill_null(0.0).to_numpy(), rtol=1e-12
    )
    ok = r.group_by("session_id").agg(pl.col("correct").all()).sort("session_id")
    assert sess["success"].to_list() == ok["correct"].to_list()
    assert s["sessions"]["success_rate"] == pytest.approx(float(sess["success"].mean()))
    assert _percentile_paths(s) <= checked, sorted(_percentile_paths(s) - checked)
