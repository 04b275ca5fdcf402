"""The model offers of a run: which models each tier serves, their prices and expected quality."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simroute.errors import ConfigError
from simroute.policy.types import TIERS


@dataclass(frozen=True)
class Offer:
    """A model in a tier.

    Attributes:
        model: model name (a LiteLLM id for API tiers).
        tier: one of :data:`~simroute.policy.types.TIERS`.
        price_in: marginal USD per prompt token in this tier (0 for local).
        price_out: marginal USD per output token in this tier (0 for local).
        expected_quality: expected success probability per skill (skill name -> 0..1).
    """

    model: str
    tier: str
    price_in: float
    price_out: float
    expected_quality: Mapping[str, float]

    def est_cost(self, prompt_tokens: int, output_tokens: float) -> float:
        """Estimated marginal USD of one attempt."""
        return prompt_tokens * self.price_in + output_tokens * self.price_out


class ModelCatalog:
    """All offers, grouped by tier, each tier's list sorted cheapest first (by output price)."""

    def __init__(self, offers: list[Offer]) -> None:
        self.by_tier: dict[str, list[Offer]] = {t: [] for t in TIERS}
        for o in offers:
            if o.tier not in self.by_tier:
                raise ConfigError(f"model {o.model!r}: unknown tier {o.tier!r}; valid: {list(TIERS)}")
            self.by_tier[o.tier].append(o)
        for t in self.by_tier:
            self.by_tier[t].sort(key=lambda o: (o.price_in + o.price_out, o.model))

    def offers(self, tier: str) -> list[Offer]:
        """Offers of ``tier`` (cheapest first); ConfigError if the tier serves no model."""
        out = self.by_tier.get(tier, [])
        if not out:
            raise ConfigError(f"tier {tier!r} serves no model; add one under models.{tier}")
        return out

    def offer(self, tier: str, model: str) -> Offer:
        """The offer of ``model`` in ``tier``."""
        for o in self.offers(tier):
            if o.model == model:
                return o
        raise ConfigError(f"model {model!r} is not offered in tier {tier!r}")

    def strongest(self, tier: str, skill: str) -> Offer:
        """Highest expected quality for ``skill`` in ``tier`` (ties: cheapest)."""
        offers = self.offers(tier)
        q = np.array([o.expected_quality[skill] for o in offers])
        return offers[int(np.argmax(q))]
