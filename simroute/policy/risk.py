"""Failure-mode (risk) predictors over the five risk features."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping

from simroute.errors import ConfigError
from simroute.policy.types import RequestView, Risk
from simroute.workload.skills import RISK_FEATURES

_FEATURES = RISK_FEATURES
_feature_values = operator.attrgetter(*_FEATURES)  # a request's risk features, in feature order


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
        self._w = tuple(self.weights[f] for f in _FEATURES)
        self.bias = float(bias)
        self.threshold = float(threshold)

    def assess(self, request: RequestView) -> Risk:
        """Score the request's features."""
        s = 0.0  # summed in feature order, as sum() over the features would (0 + the first is exact)
        for w, v in zip(self._w, _feature_values(request), strict=True):
            s += w * float(v)
        x = self.bias + s
        score = 1.0 / (1.0 + math.exp(-x))
        return Risk(score, score >= self.threshold)
