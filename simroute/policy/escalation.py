"""Escalation after a failed, rejected or expired attempt."""

from __future__ import annotations

from collections.abc import Sequence

from simroute.errors import ConfigError
from simroute.outcomes import TIERS
from simroute.policy.catalog import ModelCatalog
from simroute.policy.offer_pick import strongest
from simroute.policy.types import Attempt, Label, RequestView, Route


class NoEscalation:
    """Never retries: the first attempt's outcome is final."""

    def next_route(self, request: RequestView, label: Label, history: Sequence[Attempt]) -> Route | None:
        """Always None."""
        return None


class StrongerModel:
    """Retry on ``tier`` (default real-time) with a model stronger than any tried so far.

    A rejected (tier full) or expired (batch window missed) attempt is retried on ``tier`` with the
    normal selection; a failed attempt (a wrong answer, or an API that kept erroring) escalates to
    the tier's strongest model, provided that model is expected to do better (for the predicted
    skill) than every model already tried; when none is, a failed attempt of the tier's strongest
    model (in this tier or another, e.g. its batch offer) is retried on ``tier`` up to
    ``retry_same`` times (what a team does with one model only).

    Args:
        catalog: the run's model offers.
        max_attempts: total attempts allowed per request (>= 1).
        tier: the tier escalations go to.
        retry_same: retries of the strongest model after it failed (0 = none).
    """

    def __init__(
        self, catalog: ModelCatalog, max_attempts: int = 3, tier: str = "realtime", retry_same: int = 0
    ) -> None:
        if max_attempts < 1 or tier not in TIERS or retry_same < 0:
            raise ConfigError(
                f"escalation: need max_attempts >= 1, retry_same >= 0 and tier in {list(TIERS)}"
            )
        self.catalog = catalog
        self.max_attempts = max_attempts
        self.tier = tier
        self.retry_same = retry_same

    def next_route(self, request: RequestView, label: Label, history: Sequence[Attempt]) -> Route | None:
        """Next route or None when attempts are exhausted or no stronger model exists."""
        if not history or len(history) >= self.max_attempts:
            return None
        last = history[-1]
        if last.status in ("rejected", "expired"):
            return Route(self.tier, False, f"{last.status} -> {self.tier}")
        best_tried = max(self._quality(a.tier, a.model, label.skill) for a in history)
        top = strongest(self.catalog.offers(self.tier), label.skill)
        if top.expected_quality[label.skill] > best_tried:
            return Route(self.tier, True, "escalate after failure")
        on_top = sum(a.model == top.model for a in history)  # on any tier: a failed batch answer too
        if last.model == top.model and on_top <= self.retry_same:
            return Route(self.tier, True, "retry after failure")
        return None

    def _quality(self, tier: str, model: str, skill: str) -> float:
        return self.catalog.offer(tier, model).expected_quality[skill]
