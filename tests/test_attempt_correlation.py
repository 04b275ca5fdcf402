"""Attempt correlation estimated from paired outcomes: recovers a known rho, and the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from simroute import rng as rng_mod
from simroute.config import TRACES_DIR
from simroute.economics.calibrate import fit_attempt_correlation, pair_cell_probs
from simroute.economics.quality import correlate_attempts
from simroute.errors import ConfigError, InputError

GSM8K = TRACES_DIR / "quality" / "routellm_gsm8k_responses.csv.gz"
MODELS = ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"]


def _simulated_pair(rho: float, n: int, sd: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes of a weak (0.7) and a strong (2.1) model drawn exactly as the simulator draws them."""
    g = rng_mod.stream(seed, "test.attempt_correlation")
    d = g.normal(0.0, sd, n)
    u = correlate_attempts(g.random((n, 2)), rho, g)
    p_w = 1 / (1 + np.exp(-(0.7 - d)))
    p_s = 1 / (1 + np.exp(-(2.1 - d)))
    return u[:, 0] < p_w, u[:, 1] < p_s


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.7])
def test_recovers_a_known_rho_from_correlate_attempts(rho: float) -> None:
    w, s = _simulated_pair(rho, 40_000, 1.0, seed=int(10 * rho))
    fit = fit_attempt_correlation(w, s, difficulty_sd=1.0)
    assert fit.rho == pytest.approx(rho, abs=0.06)
    assert fit.interval[0] <= rho <= fit.interval[1]
    assert fit.interval[1] - fit.interval[0] < 0.2
    assert fit.ability_weak == pytest.approx(0.7, abs=0.06)
    assert fit.ability_strong == pytest.approx(2.1, abs=0.1)


def test_the_fit_reproduces_the_table_when_rho_is_inside() -> None:
    w, s = _simulated_pair(0.5, 5_000, 1.0, seed=3)
    fit = fit_attempt_correlation(w, s, difficulty_sd=1.0)
    rates = fit.conditional_rates()
    for k, v in rates["observed"].items():
        assert rates["fitted"][k] == pytest.approx(v, abs=1e-6), k
    assert fit.rho == pytest.approx(fit.rho_unconstrained, abs=1e-6)
    assert fit.deviance == pytest.approx(0.0, abs=1e-6)


def test_cell_probabilities_follow_the_mixture() -> None:
    p = pair_cell_probs(0.5, 2.0, 0.4, 0.0)  # no spread: one item, exact formula
    pw, ps = 1 / (1 + np.exp(-0.5)), 1 / (1 + np.exp(-2.0))
    assert p[1, 1] == pytest.approx(0.4 * min(pw, ps) + 0.6 * pw * ps)
    assert p.sum() == pytest.approx(1.0)
    assert p[1].sum() == pytest.approx(pw) and p[:, 1].sum() == pytest.approx(ps)


def test_more_assumed_spread_leaves_less_shared_luck() -> None:
    w, s = _simulated_pair(0.5, 5_000, 1.0, seed=4)
    rhos = [fit_attempt_correlation(w, s, difficulty_sd=sd).rho for sd in (0.5, 1.0, 1.5)]
    assert rhos[0] > rhos[1] > rhos[2]


def test_bad_input_is_one_clean_error() -> None:
    w = np.array([True, False, True])
    with pytest.raises(InputError, match="equal-length"):
        fit_attempt_correlation(w, w[:2])
    with pytest.raises(ConfigError, match="difficulty sd"):
        fit_attempt_correlation(w, w, difficulty_sd=-1.0)
    with pytest.raises(ConfigError, match="level"):
        fit_attempt_correlation(w, w, level=1.0)


def test_calibrate_command_reports_the_attempt_correlation(tmp_path: Path) -> None:
    out = tmp_path / "cal.json"
    args = ["calibrate", str(GSM8K), "--models", *MODELS, "--json", str(out)]
    proc = run_cli([*args, "--attempt-correlation", *MODELS, "--difficulty-sd", "1.0"])
    assert proc.returncode == 0, proc.stderr
    ac = json.loads(out.read_text())["attempt_correlation"]
    assert {
        "weak",
        "strong",
        "estimator",
        "difficulty_sd",
        "estimate",
        "interval",
        "level",
        "estimate_unconstrained",
        "deviance",
        "ability",
        "n_items",
        "counts",
        "conditional_rates",
    } <= set(ac)
    assert (ac["weak"], ac["strong"], ac["difficulty_sd"], ac["n_items"]) == (*MODELS, 1.0, 1319)
    lo, hi = ac["interval"]
    assert 0.0 <= lo <= ac["estimate"] <= hi <= 1.0
    obs = ac["conditional_rates"]["observed"]
    # the numbers: GPT-4 solves about 80 % of what Mixtral fails and 89 % of what it solves
    assert obs["strong_ok_given_weak_fails"] == pytest.approx(0.80, abs=0.01)
    assert obs["strong_ok_given_weak_ok"] == pytest.approx(0.89, abs=0.01)
    assert set(ac["conditional_rates"]["fitted"]) == set(obs)
    assert "attempt correlation" in proc.stdout
    bad = run_cli([*args, "--attempt-correlation", MODELS[0], "nope"])
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("simroute: error:") and len(bad.stderr.strip().splitlines()) == 1


def test_default_attempt_correlation_is_the_gsm8k_estimate() -> None:
    """conf/models/default.yaml carries the GSM8K estimate at the simulated difficulty spread."""
    import yaml

    from simroute.analysis.router_eval import load_table
    from simroute.config import REPO_ROOT

    conf = yaml.safe_load((REPO_ROOT / "conf" / "models" / "default.yaml").read_text())
    sd = yaml.safe_load((REPO_ROOT / "conf" / "skills" / "agent_ops.yaml").read_text())["profiles"]
    assert {float(p["difficulty_sd"]) for p in sd.values()} == {1.0}
    y, _, _ = load_table(GSM8K, MODELS)
    fit = fit_attempt_correlation(y[0], y[1], difficulty_sd=1.0)
    assert conf["attempt_correlation"] == pytest.approx(round(fit.rho, 2), abs=1e-9)
    assert fit.interval[1] == pytest.approx(0.10, abs=0.005)  # the interval quoted in the comment
