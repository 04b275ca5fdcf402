"""Quality model: probabilities, expectations and their monotonicity."""

from __future__ import annotations

import numpy as np
import pytest

from simroute.economics.quality import QualityModel
from simroute.workload.skills import SkillCatalog


def test_p_success_is_sigmoid_of_ability_minus_difficulty(skills: SkillCatalog) -> None:
    ab = np.zeros((2, len(skills.names)))
    ab[1, :] = 2.0
    q = QualityModel(("weak", "strong"), skills.names, ab)
    assert q.p_success("weak", "draft_reply", 0.0) == pytest.approx(0.5)
    assert q.p_success("strong", "draft_reply", 2.0) == pytest.approx(0.5)
    assert q.p_success("strong", "draft_reply", 0.0) == pytest.approx(1 / (1 + np.exp(-2)))


def test_p_success_equals_numpy_bit_for_bit(skills: SkillCatalog) -> None:
    """The scalar path (Python floats around NumPy's exp) gives exactly what NumPy scalars give,
    and the plain-NumPy vectorised reference, over many abilities and difficulties."""
    from simroute.economics.quality import p_success_reference

    rng = np.random.default_rng(7)
    ab = rng.normal(0.0, 3.0, size=(3, len(skills.names)))
    q = QualityModel(("a", "b", "c"), skills.names, ab)
    n = 20_000
    mi = rng.integers(0, 3, n)
    si = rng.integers(0, len(skills.names), n)
    d = rng.normal(0.0, 4.0, n)
    rows = list(zip(mi.tolist(), si.tolist(), d.tolist(), strict=True))
    got = np.array([q.p_success(q.models[m], skills.names[s], x) for m, s, x in rows])
    on_scalars = np.array([float(1.0 / (1.0 + np.exp(-(ab[m, s] - x)))) for m, s, x in rows])
    assert np.array_equal(got, on_scalars)
    assert np.array_equal(got, p_success_reference(ab, mi, si, d))


def test_expected_quality_orders_models_and_skills(skills: SkillCatalog) -> None:
    ab = np.tile(np.array([[0.5], [2.0]]), (1, len(skills.names)))
    e = QualityModel(("weak", "strong"), skills.names, ab).expected(skills)
    assert (e[1] > e[0]).all()
    # harder skills (higher mean difficulty) have lower expected success for the same ability
    means = np.array([skills.profile(s).difficulty_mean for s in skills.names])
    assert np.all(np.diff(e[0][np.argsort(means)]) < 0)


def test_default_abilities_match_routellm_anchors(cfg, skills: SkillCatalog) -> None:
    """At difficulty N(0, 1), ability 2.1 gives ~85.7 % (GPT-4 on GSM8K) and 0.7 ~63.8 % (Mixtral)."""
    z = np.random.default_rng(0).standard_normal(200_000)
    assert np.mean(1 / (1 + np.exp(-(2.1 - z)))) == pytest.approx(0.857, abs=0.01)
    assert np.mean(1 / (1 + np.exp(-(0.7 - z)))) == pytest.approx(0.638, abs=0.01)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8, 1.0])
def test_correlated_attempts_keep_uniform_marginals(rho: float) -> None:
    from simroute.economics.quality import correlate_attempts

    g = np.random.default_rng(1)
    u = correlate_attempts(g.random((200_000, 4)), rho, np.random.default_rng(2))
    for k in range(4):  # each attempt's luck is still Uniform(0, 1)
        hist = np.histogram(u[:, k], bins=10, range=(0, 1))[0] / len(u)
        assert np.abs(hist - 0.1).max() < 0.004
    c = np.corrcoef(u[:, 0], u[:, 2])[0, 1]
    assert c == pytest.approx(rho, abs=0.01)
    if rho == 1.0:
        assert (u == u[:, :1]).all()


def test_comonotone_outcomes_remove_the_free_retries(cfg) -> None:
    """With independent attempts a detected failure buys a fresh draw; with rho = 1 a retry can only
    help through a stronger model, so a cascade (try cheap, escalate) succeeds less often."""
    import copy

    from simroute.policy.registry import PolicyContext
    from simroute.sim.build import build_policies, setup
    from simroute.sim.run import simulate

    rates = {}
    for rho in (0.0, 1.0):
        c = copy.deepcopy(cfg)
        c["workload"]["n_requests"] = 3000
        c["models"]["attempt_correlation"] = rho
        inp = setup(c, 0)
        pol = build_policies(c["policy"], PolicyContext(inp.skills.names, inp.catalog, 0))
        r = simulate(inp.table, pol, c["tiers"], inp.catalog, inp.quality, 0, progress=False).requests
        esc = r.filter(r["attempts"] > 1)
        rates[rho] = float((esc["outcome"] == "succeeded").mean())
    assert rates[1.0] < rates[0.0] - 0.05
