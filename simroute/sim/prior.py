"""What the policies know about model quality before the run: a stated prior, updated by an
offline evaluation of judged samples — never the true abilities.

A team deploying a router evaluates its candidate models on a sample of its own traffic first.
This module simulates that evaluation on the world side: for every (model, skill) it draws
``samples`` requests of the skill (difficulty from the skill profile), their true outcomes on the
model, and a judge's verdicts (right with probability ``judge_accuracy``); the policies get the
Beta-posterior mean of the debiased verdict rate, starting from ``mean`` with ``strength``
pseudo-observations. With finite samples and a noisy judge the expectations are estimates, off
the truth by their sampling and judging error; the nightly evaluator refines them later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simroute import rng as rng_mod
from simroute.economics.quality import QualityModel
from simroute.errors import ConfigError
from simroute.workload.skills import SkillCatalog


@dataclass(frozen=True)
class PriorConfig:
    """``models.prior``: the stated prior and the offline evaluation that updates it.

    Attributes:
        mean: prior expected success of any model on any skill (0..1).
        strength: pseudo-observations behind ``mean``.
        samples: judged samples per (model, skill) in the offline evaluation (0: prior only).
        judge_accuracy: P(a verdict equals the truth) in the offline evaluation (0.5..1).
    """

    mean: float = 0.5
    strength: float = 2.0
    samples: int = 100
    judge_accuracy: float = 0.85

    @staticmethod
    def from_config(cfg: Mapping[str, Any] | None) -> PriorConfig:
        """Parse ``models.prior`` (absent: the defaults)."""
        known = set(PriorConfig.__dataclass_fields__)
        extra = set(cfg or {}) - known
        if extra:
            raise ConfigError(f"models.prior: unknown key(s) {sorted(extra)}; valid: {sorted(known)}")
        c = PriorConfig(**dict(cfg or {}))
        if not (0 < c.mean < 1 and c.strength > 0 and c.samples >= 0 and 0.5 < c.judge_accuracy <= 1):
            raise ConfigError(
                "models.prior: need 0 < mean < 1, strength > 0, samples >= 0, 0.5 < judge_accuracy <= 1"
            )
        return c


def expected_quality(cfg: PriorConfig, quality: QualityModel, skills: SkillCatalog, seed: int) -> np.ndarray:
    """Policy-side expected success per (model, skill), shape (n_models, n_skills): the posterior
    mean after the simulated offline evaluation (see the module docstring)."""
    rng = rng_mod.stream(seed, "prior.offline_eval")
    out = np.empty_like(quality.ability)
    n = cfg.samples
    for j, s in enumerate(quality.skills):
        prof = skills.profile(s)
        for i in range(len(quality.models)):
            d = rng.normal(prof.difficulty_mean, prof.difficulty_sd, n)
            ok = rng.random(n) < 1.0 / (1.0 + np.exp(-(quality.ability[i, j] - d)))
            right = rng.random(n) < cfg.judge_accuracy
            verdicts = float(np.sum(ok == right))  # a wrong verdict flips the outcome
            a = cfg.judge_accuracy
            succ = min(max((verdicts - (1 - a) * n) / (2 * a - 1), 0.0), float(n)) if a > 0.5 else verdicts
            out[i, j] = (cfg.strength * cfg.mean + succ) / (cfg.strength + n)
    return out
