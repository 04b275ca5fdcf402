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
