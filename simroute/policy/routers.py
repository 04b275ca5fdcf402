"""Routers: the rule-based router-first policy and the static (single-tier) baseline."""

from __future__ import annotations

from simroute.errors import ConfigError
from simroute.policy.catalog import ModelCatalog
from simroute.policy.protocols import StateView
from simroute.policy.types import TIERS, Label, Request, Risk, Route


class StaticRouter:
    """Sends every request to one tier (``realtime`` gives the all-real-time baseline).

    Args:
        tier: the tier.
        strong: require the tier's strongest model.
        batch_min_deadline_s: with ``tier="batch"``, requests whose deadline is shorter go to
            ``realtime`` instead (a router never sends an interactive request to batch).
    """

    def __init__(
        self, tier: str = "realtime", strong: bool = False, batch_min_deadline_s: float = 86_400.0
    ) -> None:
        if tier not in TIERS:
            raise ConfigError(f"router.tier: unknown tier {tier!r}; valid: {list(TIERS)}")
        self.tier = tier
        self.strong = strong
        self.batch_min_deadline_s = batch_min_deadline_s

    def route(self, request: Request, label: Label, risk: Risk, state: StateView) -> Route:
        """The configured tier (deadline permitting)."""
        if self.tier == "batch" and request.deadline_s < self.batch_min_deadline_s:
            return Route("realtime", self.strong, "deadline too short for batch")
        return Route(self.tier, self.strong, "static")


class RuleRouter:
    """Router-first rules, in order:

    1. predicted risk says escalate -> ``realtime`` with its strongest model;
    2. deadline >= ``batch_min_deadline_s`` (batchable work) -> ``batch``;
    3. no local model is expected to reach ``local_min_quality`` on the predicted skill
       -> ``realtime``;
    4. local tier congested (queue >= ``overflow_queue`` requests) -> ``realtime``;
    5. otherwise -> ``local``.

    Args:
        catalog: the run's model offers (injected).
        batch_min_deadline_s: shortest deadline (s) that may wait for the batch API.
        overflow_queue: local queue length at which new requests overflow to real-time.
        local_min_quality: expected success (0..1) the best local model must reach for the label.
        use_batch: set False to disable rule 2.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        batch_min_deadline_s: float = 86_400.0,
        overflow_queue: int = 64,
        local_min_quality: float = 0.0,
        use_batch: bool = True,
    ) -> None:
        if overflow_queue < 0:
            raise ConfigError(f"router.overflow_queue must be >= 0, got {overflow_queue}")
        if not 0.0 <= local_min_quality <= 1.0:
            raise ConfigError(f"router.local_min_quality must be in [0, 1], got {local_min_quality}")
        self.batch_min_deadline_s = batch_min_deadline_s
        self.overflow_queue = overflow_queue
        self.use_batch = use_batch
        local = catalog.by_tier["local"]
        self.local_ok = {
            s: max(o.expected_quality[s] for o in local) >= local_min_quality
            for s in (local[0].expected_quality if local else {})
        }

    def route(self, request: Request, label: Label, risk: Risk, state: StateView) -> Route:
        """Apply the rules above."""
        if risk.escalate:
            return Route("realtime", True, "risk")
        if self.use_batch and request.deadline_s >= self.batch_min_deadline_s:
            return Route("batch", False, "batchable")
        if not self.local_ok.get(label.skill, False):
            return Route("realtime", False, "no local model good enough")
        if state.tier("local").queue_len >= self.overflow_queue:
            return Route("realtime", False, "local congested")
        return Route("local", False, "default local")
