"""Values that flow between the policy layers: the request view and the frozen decisions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the policies and tiers see it.

    Two definitions of a request exist on purpose: the columnar table
    (:data:`simroute.workload.schema.SCHEMA`) that loaders validate and results extend, and this
    per-request view. Every field here except ``idx`` (the row in the table) and ``u_classify``
    (this request's common random number for classifier noise) is a table column of the same
    name, and the view is built from the table by field name (tested).

    ``skill`` and ``difficulty`` are ground truth: only the oracle classifier and the quality model
    may read them. ``output_tokens`` is the eventual output length (policies should treat it as
    unknown; tiers use it). ``content_id``/``intent_id`` identify the prompt and what it asks (equal
    ids: a repeat or a paraphrase; -1: unknown, never matched); ``prompt`` is the prompt text when
    the workload has it (text classifiers read it; empty otherwise). Times in seconds, tokens as
    counts.
    """

    idx: int
    request_id: int
    session_id: int
    arrival_s: float
    skill: str
    urgency: str
    prompt_tokens: int
    output_tokens: int
    deadline_s: float
    difficulty: float
    missing_repo_context: bool
    dependency_chain: int
    risky_migration: bool
    security_sensitive: bool
    high_consequence_write: bool
    u_classify: float
    content_id: int = -1
    intent_id: int = -1
    prompt: str = ""


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
