"""The named records a simulation logs: one per request (:class:`RequestRecord`) and one per
attempt (:class:`AttemptRecord`), each value reaching its column of the result tables by field name
(:mod:`simroute.records` turns them into tables).

Records are keyword-only: a value can only reach its column by name, so reordering the fields
reorders the columns of the table and never misaligns a value (tested). Their initialisers are
written out so that, compiled (:mod:`simroute.compiled`), they run natively; the field annotations
name the columns' types (:func:`simroute.records.schema`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, kw_only=True, init=False)
class RequestRecord:
    """The decisions, outcome, latencies (s) and per-request costs (USD) of one request.

    ``idx`` is the request's row in the request table; ``arrival_s`` the simulated issue time (s; a
    closed-loop step is issued when the steps it waits for are done, plus its think time);
    ``first_model`` the model of the first attempt (empty without one); ``ttft_s``/``tpot_s`` are NaN
    when no attempt completed; ``correct``: the final answer delivered is right (late or not);
    ``deadline_met``: the request ended by its deadline; ``cache_source_id`` is the request id whose
    cached answer was served (-1: none); ``cost_verifier_usd`` what its verifier checks cost.
    """

    idx: int
    arrival_s: float
    skill_pred: str | None
    classifier_confidence: float
    risk_score: float
    risk_escalated: bool
    route_reason: str
    first_tier: str
    final_tier: str
    final_model: str
    first_model: str
    attempts: int
    tier_path: str
    outcome: str
    queue_s: float
    ttft_s: float
    tpot_s: float
    e2e_s: float
    correct: bool
    deadline_met: bool
    undetected_failure: bool
    local_queue_at_route: int
    cost_classifier_usd: float
    cost_verifier_usd: float
    cache_lookup: str
    cost_cache_usd: float
    cache_source_id: int

    def __init__(
        self,
        *,
        idx: int,
        arrival_s: float,
        skill_pred: str | None,
        classifier_confidence: float,
        risk_score: float,
        risk_escalated: bool,
        route_reason: str,
        first_tier: str,
        final_tier: str,
        final_model: str,
        first_model: str,
        attempts: int,
        tier_path: str,
        outcome: str,
        queue_s: float,
        ttft_s: float,
        tpot_s: float,
        e2e_s: float,
        correct: bool,
        deadline_met: bool,
        undetected_failure: bool,
        local_queue_at_route: int,
        cost_classifier_usd: float,
        cost_verifier_usd: float,
        cache_lookup: str,
        cost_cache_usd: float,
        cache_source_id: int,
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        self.idx = idx
        self.arrival_s = arrival_s
        self.skill_pred = skill_pred
        self.classifier_confidence = classifier_confidence
        self.risk_score = risk_score
        self.risk_escalated = risk_escalated
        self.route_reason = route_reason
        self.first_tier = first_tier
        self.final_tier = final_tier
        self.final_model = final_model
        self.first_model = first_model
        self.attempts = attempts
        self.tier_path = tier_path
        self.outcome = outcome
        self.queue_s = queue_s
        self.ttft_s = ttft_s
        self.tpot_s = tpot_s
        self.e2e_s = e2e_s
        self.correct = correct
        self.deadline_met = deadline_met
        self.undetected_failure = undetected_failure
        self.local_queue_at_route = local_queue_at_route
        self.cost_classifier_usd = cost_classifier_usd
        self.cost_verifier_usd = cost_verifier_usd
        self.cache_lookup = cache_lookup
        self.cost_cache_usd = cost_cache_usd
        self.cache_source_id = cache_source_id

    def values(self) -> tuple[object, ...]:
        """The field values in field order, as a record log stores them (written out: compiled, it
        reads the fields natively)."""
        return (
            self.idx,
            self.arrival_s,
            self.skill_pred,
            self.classifier_confidence,
            self.risk_score,
            self.risk_escalated,
            self.route_reason,
            self.first_tier,
            self.final_tier,
            self.final_model,
            self.first_model,
            self.attempts,
            self.tier_path,
            self.outcome,
            self.queue_s,
            self.ttft_s,
            self.tpot_s,
            self.e2e_s,
            self.correct,
            self.deadline_met,
            self.undetected_failure,
            self.local_queue_at_route,
            self.cost_classifier_usd,
            self.cost_verifier_usd,
            self.cache_lookup,
            self.cost_cache_usd,
            self.cache_source_id,
        )


@dataclass(slots=True, kw_only=True, init=False)
class AttemptRecord:
    """One attempt of a request at a tier: absolute simulated times (s), GPU-busy time (s), API
    retries, prompt-cache tokens and whether the answer was right (``success``) and accepted."""

    idx: int
    attempt: int
    tier: str
    model: str
    status: str
    submit_s: float
    start_s: float
    first_token_s: float
    end_s: float
    busy_s: float
    success: bool
    retries: int
    rate_limited: int
    cached_tokens: int
    written_tokens: int
    accepted: bool

    def __init__(
        self,
        *,
        idx: int,
        attempt: int,
        tier: str,
        model: str,
        status: str,
        submit_s: float,
        start_s: float,
        first_token_s: float,
        end_s: float,
        busy_s: float,
        success: bool,
        retries: int,
        rate_limited: int,
        cached_tokens: int,
        written_tokens: int,
        accepted: bool,
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        self.idx = idx
        self.attempt = attempt
        self.tier = tier
        self.model = model
        self.status = status
        self.submit_s = submit_s
        self.start_s = start_s
        self.first_token_s = first_token_s
        self.end_s = end_s
        self.busy_s = busy_s
        self.success = success
        self.retries = retries
        self.rate_limited = rate_limited
        self.cached_tokens = cached_tokens
        self.written_tokens = written_tokens
        self.accepted = accepted

    def values(self) -> tuple[object, ...]:
        """The field values in field order, as a record log stores them (written out: compiled, it
        reads the fields natively)."""
        return (
            self.idx,
            self.attempt,
            self.tier,
            self.model,
            self.status,
            self.submit_s,
            self.start_s,
            self.first_token_s,
            self.end_s,
            self.busy_s,
            self.success,
            self.retries,
            self.rate_limited,
            self.cached_tokens,
            self.written_tokens,
            self.accepted,
        )
