"""One request as the world sees it: the row of the request table, truth included."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, init=False)
class Request:
    """One request as the world (lifecycle, tiers, quality model) sees it.

    Three views of a request exist on purpose: the columnar table
    (:data:`simroute.workload.schema.SCHEMA`) that loaders validate and results extend; this
    per-request world record, built from the table by field name (every field except ``idx``, the
    row in the table, and ``u_classify``, its common random number for simulated classifier noise,
    is a table column of the same name; tested); and the policies' view
    (:class:`simroute.policy.types.RequestView`), the observable subset of these fields.

    ``skill`` and ``difficulty`` are ground truth and ``output_tokens`` the eventual output length:
    no policy sees them (only the world: tiers, the quality model, simulated error models).
    ``content_id``/``intent_id`` identify the prompt and what it asks (equal ids: a repeat or a
    paraphrase; -1: unknown, never matched); ``prompt`` is the prompt text when the workload has it
    (text classifiers read it; empty otherwise). Times in seconds, tokens as counts.

    Closed-loop sessions: ``after_ids`` are the request ids whose completion gates this request's
    issue and ``think_s`` the seconds between that completion and the issue (in a closed-loop run the
    lifecycle replaces ``arrival_s`` by the simulated issue time); ``recorded_model`` is the model a
    recorded trace called (observable: what the team's own system chose; empty when unknown).
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
    after_ids: tuple[int, ...] = ()
    think_s: float = 0.0
    recorded_model: str = ""

    def __init__(
        self,
        idx: int,
        request_id: int,
        session_id: int,
        arrival_s: float,
        skill: str,
        urgency: str,
        prompt_tokens: int,
        output_tokens: int,
        deadline_s: float,
        difficulty: float,
        missing_repo_context: bool,
        dependency_chain: int,
        risky_migration: bool,
        security_sensitive: bool,
        high_consequence_write: bool,
        u_classify: float,
        content_id: int = -1,
        intent_id: int = -1,
        prompt: str = "",
        after_ids: tuple[int, ...] = (),
        think_s: float = 0.0,
        recorded_model: str = "",
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "idx", idx)
        object.__setattr__(self, "request_id", request_id)
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "arrival_s", arrival_s)
        object.__setattr__(self, "skill", skill)
        object.__setattr__(self, "urgency", urgency)
        object.__setattr__(self, "prompt_tokens", prompt_tokens)
        object.__setattr__(self, "output_tokens", output_tokens)
        object.__setattr__(self, "deadline_s", deadline_s)
        object.__setattr__(self, "difficulty", difficulty)
        object.__setattr__(self, "missing_repo_context", missing_repo_context)
        object.__setattr__(self, "dependency_chain", dependency_chain)
        object.__setattr__(self, "risky_migration", risky_migration)
        object.__setattr__(self, "security_sensitive", security_sensitive)
        object.__setattr__(self, "high_consequence_write", high_consequence_write)
        object.__setattr__(self, "u_classify", u_classify)
        object.__setattr__(self, "content_id", content_id)
        object.__setattr__(self, "intent_id", intent_id)
        object.__setattr__(self, "prompt", prompt)
        object.__setattr__(self, "after_ids", after_ids)
        object.__setattr__(self, "think_s", think_s)
        object.__setattr__(self, "recorded_model", recorded_model)
