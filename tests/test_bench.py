"""Benchmarks (deselected by default; ``make bench``): simulation throughput, the cost kernel, the
engine, and the 1 M-request scale target (an expected failure while it is missed)."""

from __future__ import annotations

import numpy as np
import pytest

from simroute.config import REPO_ROOT
from simroute.economics.costs import attempt_costs_kernel
from test_simulation import run

pytestmark = pytest.mark.benchmark


def test_bench_simulate_router_first_20k(benchmark, cfg, skills, prices) -> None:
    """Simulated requests per second of the router-first policy (20,000 synthetic requests)."""
    res = benchmark.pedantic(run, args=(cfg, skills, prices), kwargs={"n": 20_000}, rounds=3, iterations=1)
    assert res.requests.height == 20_000
    benchmark.extra_info["simulated_requests_per_s"] = 20_000 / benchmark.stats.stats.mean


def test_bench_cost_kernel_1m(benchmark) -> None:
    """Cost kernel over 1,000,000 attempts (cached, written, long-context rates)."""
    g = np.random.default_rng(0)
    n = 1_000_000
    p, o = g.integers(1, 300_000, n).astype(np.float64), g.integers(1, 4000, n).astype(np.float64)
    cached = np.floor(p * g.random(n))
    written = np.floor((p - cached) * g.random(n))
    rates = np.tile(np.array([2e-6, 5e-7, 2.5e-6, 8e-6, 4e-6, 1e-6, 1.2e-5, 200_000.0]), (n, 1))
    cin, _, _ = benchmark(attempt_costs_kernel, p, cached, written, o, rates)
    assert cin.shape == (n,)


def test_bench_engine_alone_10k(benchmark) -> None:
    """One replica (Llama-2-7B H100 profile, 4096-token budget, 128 seqs), 10,000 Azure-conv
    requests at 5/s, engine alone (no SimPy)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    from engine_bench import engine_alone, workload

    arr, p, o = workload(10_000, 5.0)
    _wall, rep = benchmark.pedantic(engine_alone, args=(arr, p, o), rounds=5, iterations=1)
    assert rep.idle
    benchmark.extra_info["simulated_requests_per_s"] = 10_000 / benchmark.stats.stats.mean


def test_bench_engine_in_simulation_10k(benchmark) -> None:
    """The same replica driven by the SimPy local tier."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    from engine_bench import in_simulation, workload

    arr, p, o = workload(10_000, 5.0)
    _, n = benchmark.pedantic(in_simulation, args=(arr, p, o), rounds=3, iterations=1)
    assert n == 10_000
    benchmark.extra_info["simulated_requests_per_s"] = 10_000 / benchmark.stats.stats.mean


def test_bench_scale_target_1m(benchmark) -> None:
    """Issue 16's target: ``simroute run`` of 1,000,000 requests (both arms, a fresh process) in
    at most 60 s wall and 2 GiB peak resident memory over all its processes, as
    ``experiments/scale_bench.py`` measures it (one round: about a minute here). It fails, with
    the figures, when a target is missed (the time margin on this machine is a few seconds)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    from scale_bench import TARGETS, run

    n = 1_000_000
    r = benchmark.pedantic(run, args=(n,), rounds=1, iterations=1)
    benchmark.extra_info.update(r)
    wall_t, rss_t = TARGETS[n]
    got = f"{r['wall_s']:.1f} s, {r['peak_tree_rss_mib']:.0f} MiB; targets {wall_t:.0f} s, {rss_t:.0f} MiB"
    assert r["peak_tree_rss_mib"] <= rss_t, got
    assert r["wall_s"] <= wall_t, got
