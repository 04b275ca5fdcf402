"""Failure-mode (risk) predictors over the five risk features."""

from __future__ import annotations

import math
from collections.abc import Mapping

from simroute.errors import ConfigError
from simroute.policy.types import RequestView, Risk
from simroute.workload.skills import RISK_FEATURES

_FEATURES = RISK_FEATURES
if _FEATURES != (
    "missing_repo_context",
    "dependency_chain",
    "risky_migration",
    "security_sensitive",
    "high_consequence_write",
):  # LogisticRisk.assess reads them written out, in this order
    raise ImportError("risk features changed: update LogisticRisk.assess")


class NeverEscalate:
    """The do-nothing predictor: risk 0, never escalates."""

    def assess(self, request: RequestView) -> Risk:
        """Always ``Risk(0, False)``."""
        return Risk(0.0, False)


class LogisticRisk:
    """``score = sigmoid(bias + Σ weight_f · x_f)``; escalate when ``score >= threshold``.

    ``dependency_chain`` enters as its length; the boolean features as 0/1.

    Args:
        weights: logit weight per feature (missing features weigh 0).
        bias: intercept (logits).
        threshold: escalation threshold on the score (0..1).
    """

    def __init__(self, weights: Mapping[str, float], bias: float = -3.0, threshold: float = 0.5) -> None:
        unknown = set(weights) - set(_FEATURES)
        if unknown:
            raise ConfigError(f"risk.weights: unknown feature(s) {sorted(unknown)}; valid: {list(_FEATURES)}")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"risk.threshold must be in [0, 1], got {threshold}")
        self.weights = {f: float(weights.get(f, 0.0)) for f in _FEATURES}
        self._w = tuple(self.weights[f] for f in _FEATURES)  # read once: weights never change
        self.bias = float(bias)
        self.threshold = float(threshold)

    def assess(self, request: RequestView) -> Risk:
        """Score the request's features."""
        w = self._w  # the features written out (read natively when compiled), summed in feature
        r = request  # order as sum() over them would, from 0
        s = 0.0 + w[0] * float(r.missing_repo_context)
        s += w[1] * float(r.dependency_chain)
        s += w[2] * float(r.risky_migration)
        s += w[3] * float(r.security_sensitive)
        s += w[4] * float(r.high_consequence_write)
        x = self.bias + s
        score = 1.0 / (1.0 + math.exp(-x))
        return Risk(score, score >= self.threshold)
