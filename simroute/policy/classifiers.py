"""Skill classifiers: the oracle and a confusion-matrix noisy classifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from simroute.errors import ConfigError
from simroute.policy.types import Label, Request


class OracleClassifier:
    """Returns the true skill with confidence 1 (an upper bound on classification), instantly and
    for free."""

    latency_s = 0.0
    cost_usd = 0.0

    def classify(self, request: Request) -> Label:
        """The request's ground-truth skill."""
        return Label(request.skill, 1.0)


class NoisyClassifier:
    """Draws the predicted skill from a confusion matrix row, using the request's ``u_classify``.

    Args:
        skills: the skill names (matrix order).
        accuracy: P(correct) for every skill when ``confusion`` is not given; errors are spread
            uniformly over the other skills.
        confusion: optional full matrix ``{true: {predicted: probability}}`` (rows sum to 1).
        latency_s: seconds one classification takes (added before routing).
        cost_usd: USD one classification costs (e.g. a small model call).

    The confidence reported is the matrix's posterior-free diagonal entry of the *predicted* row,
    i.e. how often that prediction is right for its own class.
    """

    def __init__(
        self,
        skills: Sequence[str],
        accuracy: float = 0.9,
        confusion: Mapping[str, Mapping[str, float]] | None = None,
        latency_s: float = 0.0,
        cost_usd: float = 0.0,
    ) -> None:
        if latency_s < 0 or cost_usd < 0:
            raise ConfigError("classifier: latency_s and cost_usd must be >= 0")
        self.latency_s = latency_s
        self.cost_usd = cost_usd
        self.skills = tuple(skills)
        k = len(self.skills)
        if confusion is None:
            if not 0.0 <= accuracy <= 1.0:
                raise ConfigError(f"classifier.accuracy must be in [0, 1], got {accuracy}")
            off = (1.0 - accuracy) / (k - 1) if k > 1 else 0.0
            m = np.full((k, k), off)
            np.fill_diagonal(m, accuracy if k > 1 else 1.0)
        else:
            m = np.zeros((k, k))
            for i, s in enumerate(self.skills):
                row = confusion.get(s)
                if row is None:
                    raise ConfigError(f"classifier.confusion: missing row for skill {s!r}")
                for t, p in row.items():
                    if t not in self.skills:
                        raise ConfigError(f"classifier.confusion.{s}: unknown skill {t!r}")
                    m[i, self.skills.index(t)] = float(p)
                if abs(m[i].sum() - 1.0) > 1e-6 or (m[i] < 0).any():
                    raise ConfigError(f"classifier.confusion.{s}: probabilities must sum to 1")
        self.matrix = m
        self._cum = np.cumsum(m, axis=1)
        self._index = {s: i for i, s in enumerate(self.skills)}

    def classify(self, request: Request) -> Label:
        """Predicted skill drawn from the true skill's confusion row."""
        i = self._index[request.skill]
        j = min(
            int(np.searchsorted(self._cum[i], request.u_classify, side="right")),
            len(self.skills) - 1,
        )
        return Label(self.skills[j], float(self.matrix[j, j]))
