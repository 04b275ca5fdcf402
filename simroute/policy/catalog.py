"""The model offers of a run: which models each tier serves, their prices and expected quality."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simroute.errors import ConfigError
from simroute.outcomes import TIERS
from simroute.policy import offer_pick


@dataclass(frozen=True)
class Offer:
    """A model in a tier.

    Attributes:
        model: model name (a LiteLLM id for API tiers).
        tier: one of :data:`~simroute.outcomes.TIERS`.
        mode: price mode (``standard``, ``batch``, ``priority``; ``local`` for local models).
        rates: the cost kernel's rate row (:data:`~simroute.economics.costs.RATE_COLUMNS`,
            USD per token; zeros for local models, which share the provisioned GPU cost).
        expected_quality: expected success probability per skill (skill name -> 0..1).
        standard_rates: the same model's standard (real-time) rate row, for discount accounting.
        capacity: concurrent requests the offer can serve (local pools: replicas x max_num_seqs;
            0 = unbounded, as for API models).
    """

    model: str
    tier: str
    mode: str
    rates: np.ndarray
    expected_quality: dict[str, float]
    standard_rates: np.ndarray | None = None
    capacity: int = 0
    price_in: float = field(init=False, repr=False, compare=False)
    """Marginal USD per (uncached) prompt token (``rates[0]``, read once: the rates never change)."""
    price_out: float = field(init=False, repr=False, compare=False)
    """Marginal USD per output token (``rates[3]``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_in", float(self.rates[0]))
        object.__setattr__(self, "price_out", float(self.rates[3]))

    def est_cost(self, prompt_tokens: int, output_tokens: float) -> float:
        """Estimated marginal USD of one attempt."""
        return prompt_tokens * self.price_in + output_tokens * self.price_out


class ModelCatalog:
    """All offers, grouped by tier, each tier's list sorted cheapest first by the sum of the input
    and output prices per token (ties by model name)."""

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
        """Highest expected quality for ``skill`` in ``tier`` (ties: cheapest; see
        :func:`~simroute.policy.offer_pick.strongest`)."""
        return offer_pick.strongest(self.offers(tier), skill)

    def without_tier(self, tier: str) -> ModelCatalog:
        """The same offers (shared objects: learned expectations stay in sync) minus ``tier``'s."""
        return ModelCatalog([o for t in TIERS if t != tier for o in self.by_tier[t]])
