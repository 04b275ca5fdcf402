"""The policy seams: one small Protocol per layer, one decision method each.

Policies are plain objects: they never ``yield`` and never see the SimPy environment. A router
observes the tiers only through :class:`StateView`, which reports the present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from simroute.policy.types import Attempt, Label, RequestView, Risk, Route, TierState


class StateView(Protocol):
    """Read-only view of the tiers at the current simulated time."""

    def tier(self, name: str) -> TierState:
        """State of tier ``name`` now."""
        ...


class Classifier(Protocol):
    """Skill classifier: what operation is this request? Each call takes ``latency_s`` seconds
    and costs ``cost_usd``."""

    oracle: bool
    latency_s: float
    cost_usd: float

    def classify(self, request: RequestView) -> Label:
        """Return the predicted skill and confidence."""
        ...


class RiskPredictor(Protocol):
    """Synchronous failure-mode predictor over the five risk features."""

    def assess(self, request: RequestView) -> Risk:
        """Return the predicted risk and whether to escalate to a stronger tier."""
        ...


class Router(Protocol):
    """Chooses the compute tier."""

    def route(self, request: RequestView, label: Label, risk: Risk, state: StateView) -> Route:
        """Return the tier (and whether it must use its strongest model)."""
        ...


class Selector(Protocol):
    """Chooses the model within the routed tier."""

    def select(self, request: RequestView, label: Label, route: Route) -> str:
        """Return the model name."""
        ...


class Verifier(Protocol):
    """Decides whether the system accepts an attempt's answer. A simulated error model: the world
    passes the truth (``correct``) and the verifier's rates decide the verdict; only ``oracle``
    verifiers reproduce the truth exactly.

    Attributes: ``name``; ``oracle`` (reads the truth exactly); ``model`` (the judge model, whose
    real-time latency each check takes; None: ``latency_s`` seconds); ``false_accept`` and
    ``false_reject`` rates."""

    name: str
    oracle: bool
    model: str | None
    latency_s: float
    false_accept: float
    false_reject: float

    def accept(self, request: RequestView, correct: bool, u: float) -> bool:
        """Accept the answer? ``u`` is the request's uniform for this check."""
        ...

    def check_usd(self, prompt_tokens: int, answer_tokens: int) -> float:
        """USD of one check of an answer of ``answer_tokens`` to a ``prompt_tokens`` prompt."""
        ...


class Learner(Protocol):
    """Optional: a policy that learns from what the system observes (e.g. a bandit router)."""

    def observe(self, request: RequestView, label: Label, tier: str, model: str, accepted: bool) -> None:
        """Called after every completed attempt with the verifier's verdict."""
        ...


class Escalator(Protocol):
    """Decides where a request goes after a failed or rejected attempt."""

    def next_route(self, request: RequestView, label: Label, history: Sequence[Attempt]) -> Route | None:
        """Return the next route, or None to stop (the request then ends as it stands)."""
        ...
