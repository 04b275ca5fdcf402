"""Benchmarks (deselected by default; ``make bench``): simulation throughput and the cost kernel."""

from __future__ import annotations

import numpy as np
import pytest

from simroute.economics.costs import attempt_costs_kernel
from test_simulation import run

pytestmark = pytest.mark.benchmark


def test_bench_simulate_router_first_20k(benchmark, cfg, skills, prices) -> None:
    """Simulated requests per second of the router-first policy (20,000 synthetic requests)."""
    res = benchmark.pedantic(run, args=(cfg, skills, prices), kwargs={"n": 20_000}, rounds=3, iterations=1)
    assert res.requests.height == 20_000
    benchmark.extra_info["simulated_requests_per_s"] = 20_000 / benchmark.stats.stats.mean


def test_bench_cost_kernel_1m(benchmark) -> None:
    """Cost kernel over 1,000,000 attempts."""
    g = np.random.default_rng(0)
    n = 1_000_000
    req = np.arange(n)
    p, o = g.integers(1, 100_000, n).astype(np.float64), g.integers(1, 4000, n).astype(np.float64)
    pin, pout = np.full(n, 2e-6), np.full(n, 8e-6)
    cin, _ = benchmark(attempt_costs_kernel, req, p, o, pin, pout, n)
    assert cin.shape == (n,)
