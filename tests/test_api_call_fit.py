"""Token-dependent API latency fitted to the recorded Claude Code calls."""

from __future__ import annotations

import numpy as np

from simroute.config import TRACES_DIR
from simroute.tiers.api_call_fit import fit_calls, fit_report


def test_fit_recovers_a_known_law() -> None:
    rng = np.random.default_rng(0)
    p = rng.integers(1_000, 200_000, 4000)
    o = rng.integers(10, 2000, 4000)
    y = (1.5 + 0.008 * p / 1000 + 0.015 * o) * np.exp(0.25 * rng.standard_normal(4000))
    f = fit_calls(p, o, y)
    assert abs(f.ttft_base_s / 1.5 - 1) < 0.1 and abs(f.tpot_s / 0.015 - 1) < 0.05
    assert abs(f.sigma - 0.25) < 0.02


def test_claude_fits_hold_on_held_out_sessions() -> None:
    r = fit_report(TRACES_DIR / "claude_code_2025.parquet")
    assert r.height == 6
    big = r.filter(r["n_test"] > 500)
    assert (big["api_mdape"] < 0.2).all()
    assert ((big["api_p10_p90_coverage"] - 0.8).abs() < 0.08).all()
