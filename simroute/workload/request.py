"""One request as the world sees it: the row of the request table, truth included."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
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
