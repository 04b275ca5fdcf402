"""Values that flow between the policy layers: the request view and the frozen decisions."""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields

from simroute.workload.request import Request


@dataclass(frozen=True, slots=True)
class RequestView:
    """One request as a policy may see it: what a deployed system observes when it arrives.

    Built from the world's :class:`~simroute.workload.request.Request` by field name
    (:meth:`of`), without the truth: no true skill, no difficulty, no eventual output length.
    ``idx`` is the request's row (policies that label every request up front index by it); the
    five risk features are observable request features (what the change touches); ``content_id``
    and ``intent_id`` stand for what an exact / embedding cache key would match; ``prompt`` is the
    prompt text when the workload has it; ``recorded_model`` the model a recorded trace called for
    this request (what the team's own system chose: observable; empty when unknown). Times in
    seconds, tokens as counts.
    """

    idx: int
    request_id: int
    session_id: int
    arrival_s: float
    urgency: str
    prompt_tokens: int
    deadline_s: float
    missing_repo_context: bool
    dependency_chain: int
    risky_migration: bool
    security_sensitive: bool
    high_consequence_write: bool
    content_id: int = -1
    intent_id: int = -1
    prompt: str = ""
    recorded_model: str = ""

    @classmethod
    def of(cls, request: Request, deadline_s: float | None = None) -> RequestView:
        """The observable view of a world request (fields copied by name), with ``deadline_s``
        replaced when given (the deadline a closed-loop router sees)."""
        vals = _view_values(request)
        if deadline_s is not None:
            vals = (*vals[:_DEADLINE_AT], deadline_s, *vals[_DEADLINE_AT + 1 :])
        return cls(*vals)


_VIEW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RequestView))
_view_values = operator.attrgetter(*_VIEW_FIELDS)  # a request's view fields, in field order
_DEADLINE_AT = _VIEW_FIELDS.index("deadline_s")


@dataclass(frozen=True, slots=True)
class Label:
    """Classifier output: predicted skill and the classifier's confidence (0..1)."""

    skill: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Risk:
    """Risk predictor output: predicted failure risk (0..1) and whether to escalate."""

    score: float
    escalate: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Router decision: the tier, whether the strongest model of the tier is required, and why."""

    tier: str
    strong: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TierState:
    """What a router may observe of a tier *now* (never the future).

    Attributes:
        queue_len: requests waiting for service.
        in_service: requests being served.
        capacity: concurrent requests the tier can serve (0 = unbounded).
    """

    queue_len: int
    in_service: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """One finished attempt, as the escalation policy sees the history."""

    tier: str
    model: str
    status: str
    success: bool
