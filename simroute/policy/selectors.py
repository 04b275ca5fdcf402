"""Model selectors: cheapest model meeting a confidence threshold, and strongest-in-tier."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

from simroute.errors import ConfigError
from simroute.policy.catalog import ModelCatalog, Offer
from simroute.policy.offer_pick import strongest
from simroute.policy.protocols import Selector
from simroute.policy.types import Label, RequestView, Route


class ThresholdSelector:
    """The cheapest model in the tier whose expected success for the label is >= ``threshold``.

    Cost is estimated from the prompt length and ``expected_output_tokens`` (the selector does not
    know the true output length). Ties in cost (local models all cost 0 at the margin) go to the
    higher expected quality, then the larger capacity, then the name. If no model meets the
    threshold, the strongest is used; a route marked ``strong`` always gets the strongest.

    Args:
        catalog: the run's model offers.
        threshold: minimum expected success probability (0..1).
        expected_output_tokens: output length assumed for cost estimates (tokens).
    """

    def __init__(
        self, catalog: ModelCatalog, threshold: float = 0.75, expected_output_tokens: float = 500.0
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"selector.threshold must be in [0, 1], got {threshold}")
        self.catalog = catalog
        self.threshold = threshold
        self.expected_output_tokens = expected_output_tokens

    def select(self, request: RequestView, label: Label, route: Route) -> str:
        """Model name for this request in ``route.tier``."""
        if route.strong:
            return strongest(self.catalog.offers(route.tier), label.skill).model
        skill = label.skill
        best: Offer | None = None
        best_key: tuple[float, float, int, str] | None = None
        for o in self.catalog.offers(route.tier):  # the first of the least keys, as min() picks
            q = o.expected_quality[skill]
            if not q >= self.threshold:  # as the filter it replaces: a NaN never meets it
                continue
            key = (o.est_cost(request.prompt_tokens, self.expected_output_tokens), -q, -o.capacity, o.model)
            if best_key is None or key < best_key:
                best, best_key = o, key
        if best is None:
            return strongest(self.catalog.offers(route.tier), skill).model
        return best.model


class StrongestSelector:
    """Always the tier's strongest model for the label (the quality-first baseline)."""

    def __init__(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog

    def select(self, request: RequestView, label: Label, route: Route) -> str:
        """Strongest model of the tier for the predicted skill."""
        return strongest(self.catalog.offers(route.tier), label.skill).model


class ABSelector:
    """A/B split within a tier: a stable ``share_b`` of requests (by request id) use selector B.

    Args:
        build_selector: builds a child selector from its config with the run's own skills,
            catalogue and seed (injected by the registry).
        a: config of selector A (``{name: ..., args}``).
        b: config of selector B.
        share_b: share of requests routed to B (0..1).
    """

    def __init__(
        self,
        build_selector: Callable[[Mapping[str, Any]], Selector],
        a: Mapping[str, Any],
        b: Mapping[str, Any],
        share_b: float = 0.5,
    ) -> None:
        if not 0.0 <= share_b <= 1.0:
            raise ConfigError("selector.share_b must be in [0, 1]")
        self.a = build_selector(a)
        self.b = build_selector(b)
        self.share_b = share_b

    def arm(self, request: RequestView) -> str:
        """``"a"`` or ``"b"``: a deterministic hash of the request id, so reruns agree."""
        h = zlib.crc32(str(request.request_id).encode()) / 2**32
        return "b" if h < self.share_b else "a"

    def select(self, request: RequestView, label: Label, route: Route) -> str:
        """The model the request's arm chooses."""
        return (self.b if self.arm(request) == "b" else self.a).select(request, label, route)


def litellm_id(recorded_model: str) -> str:
    """The catalogue (LiteLLM) id of a model id as a trace records it: the Anthropic date suffix
    dropped (``claude-opus-4-5-20251101`` -> ``claude-opus-4-5``); other ids unchanged."""
    head, _, tail = recorded_model.rpartition("-")
    return head if head and len(tail) == 8 and tail.isdigit() else recorded_model


class RecordedSelector:
    """The model the trace recorded for this call (``RequestView.recorded_model``, mapped by
    :func:`litellm_id`): the team's own routing, replayed. A route marked ``strong`` (an
    escalation) gets the tier's strongest. A recorded model the tier does not offer (or none
    recorded) is a :class:`ConfigError` naming it (offer it under ``models.api``, e.g.
    ``models=claude``), never a silent substitute.

    Args:
        catalog: the run's model offers.
    """

    def __init__(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog

    def select(self, request: RequestView, label: Label, route: Route) -> str:
        """The recorded model (the tier's strongest on a ``strong`` route)."""
        if route.strong:
            return strongest(self.catalog.offers(route.tier), label.skill).model
        model = litellm_id(request.recorded_model)
        if not any(o.model == model for o in self.catalog.offers(route.tier)):
            offered = sorted(o.model for o in self.catalog.offers(route.tier))
            raise ConfigError(
                f"selector recorded: request {request.request_id} recorded model "
                f"{request.recorded_model!r} ({model!r}) is not offered in tier {route.tier!r} "
                f"(offered: {offered}); add it under models.api (the Claude models: models=claude)"
            )
        return model
