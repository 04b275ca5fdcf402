"""Values that flow between the policy layers: the request view and the frozen decisions."""

from __future__ import annotations

from dataclasses import dataclass

from simroute.workload.request import Request


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        idx: int,
        request_id: int,
        session_id: int,
        arrival_s: float,
        urgency: str,
        prompt_tokens: int,
        deadline_s: float,
        missing_repo_context: bool,
        dependency_chain: int,
        risky_migration: bool,
        security_sensitive: bool,
        high_consequence_write: bool,
        content_id: int = -1,
        intent_id: int = -1,
        prompt: str = "",
        recorded_model: str = "",
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "idx", idx)
        object.__setattr__(self, "request_id", request_id)
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "arrival_s", arrival_s)
        object.__setattr__(self, "urgency", urgency)
        object.__setattr__(self, "prompt_tokens", prompt_tokens)
        object.__setattr__(self, "deadline_s", deadline_s)
        object.__setattr__(self, "missing_repo_context", missing_repo_context)
        object.__setattr__(self, "dependency_chain", dependency_chain)
        object.__setattr__(self, "risky_migration", risky_migration)
        object.__setattr__(self, "security_sensitive", security_sensitive)
        object.__setattr__(self, "high_consequence_write", high_consequence_write)
        object.__setattr__(self, "content_id", content_id)
        object.__setattr__(self, "intent_id", intent_id)
        object.__setattr__(self, "prompt", prompt)
        object.__setattr__(self, "recorded_model", recorded_model)

    @classmethod
    def of(cls, request: Request, deadline_s: float | None = None) -> RequestView:
        """The observable view of a world request (fields copied by name, written out: compiled,
        each is read natively; every field is tested), with ``deadline_s`` replaced when given
        (the deadline a closed-loop router sees)."""
        r = request
        return RequestView(  # not cls(...): a native call when compiled
            idx=r.idx,
            request_id=r.request_id,
            session_id=r.session_id,
            arrival_s=r.arrival_s,
            urgency=r.urgency,
            prompt_tokens=r.prompt_tokens,
            deadline_s=r.deadline_s if deadline_s is None else deadline_s,
            missing_repo_context=r.missing_repo_context,
            dependency_chain=r.dependency_chain,
            risky_migration=r.risky_migration,
            security_sensitive=r.security_sensitive,
            high_consequence_write=r.high_consequence_write,
            content_id=r.content_id,
            intent_id=r.intent_id,
            prompt=r.prompt,
            recorded_model=r.recorded_model,
        )


@dataclass(frozen=True, slots=True, init=False)
class Label:
    """Classifier output: predicted skill and the classifier's confidence (0..1)."""

    skill: str
    confidence: float

    def __init__(self, skill: str, confidence: float) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "skill", skill)
        object.__setattr__(self, "confidence", confidence)


@dataclass(frozen=True, slots=True, init=False)
class Risk:
    """Risk predictor output: predicted failure risk (0..1) and whether to escalate."""

    score: float
    escalate: bool

    def __init__(self, score: float, escalate: bool) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "escalate", escalate)


@dataclass(frozen=True, slots=True, init=False)
class Route:
    """Router decision: the tier, whether the strongest model of the tier is required, and why."""

    tier: str
    strong: bool = False
    reason: str = ""

    def __init__(self, tier: str, strong: bool = False, reason: str = "") -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "tier", tier)
        object.__setattr__(self, "strong", strong)
        object.__setattr__(self, "reason", reason)


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(self, queue_len: int, in_service: int, capacity: int) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "queue_len", queue_len)
        object.__setattr__(self, "in_service", in_service)
        object.__setattr__(self, "capacity", capacity)


@dataclass(frozen=True, slots=True, init=False)
class Attempt:
    """One finished attempt, as the escalation policy sees the history."""

    tier: str
    model: str
    status: str
    success: bool

    def __init__(self, tier: str, model: str, status: str, success: bool) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "tier", tier)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "success", success)
