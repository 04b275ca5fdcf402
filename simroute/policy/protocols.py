"""The policy seams: one small Protocol per layer, one decision method each.

Policies are plain objects: they never ``yield`` and never see the SimPy environment. A router
observes the tiers only through :class:`StateView`, which reports the present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from simroute.policy.types import Attempt, Label, Request, Risk, Route, TierState


class StateView(Protocol):
    """Read-only view of the tiers at the current simulated time."""

    def tier(self, name: str) -> TierState:
        """State of tier ``name`` now."""
        ...


class Classifier(Protocol):
    """Skill classifier: what operation is this request? Each call takes ``latency_s`` seconds
    and costs ``cost_usd``."""

    latency_s: float
    cost_usd: float

    def classify(self, request: Request) -> Label:
        """Return the predicted skill and confidence."""
        ...


class RiskPredictor(Protocol):
    """Synchronous failure-mode predictor over the five risk features."""

    def assess(self, request: Request) -> Risk:
        """Return the predicted risk and whether to escalate to a stronger tier."""
        ...


class Router(Protocol):
    """Chooses the compute tier."""

    def route(self, request: Request, label: Label, risk: Risk, state: StateView) -> Route:
        """Return the tier (and whether it must use its strongest model)."""
        ...


class Selector(Protocol):
    """Chooses the model within the routed tier."""

    def select(self, request: Request, label: Label, route: Route) -> str:
        """Return the model name."""
        ...


class Verifier(Protocol):
    """Decides whether the system accepts an attempt's answer (it cannot see correctness)."""

    latency_s: float

    def accept(self, request: Request, correct: bool, u: float) -> bool:
        """Accept the answer? ``u`` is the request's uniform for this check."""
        ...


class Learner(Protocol):
    """Optional: a policy that learns from what the system observes (e.g. a bandit router)."""

    def observe(self, request: Request, label: Label, tier: str, model: str, accepted: bool) -> None:
        """Called after every completed attempt with the verifier's verdict."""
        ...


class Escalator(Protocol):
    """Decides where a request goes after a failed or rejected attempt."""

    def next_route(self, request: Request, label: Label, history: Sequence[Attempt]) -> Route | None:
        """Return the next route, or None to stop (the request then ends as it stands)."""
        ...
