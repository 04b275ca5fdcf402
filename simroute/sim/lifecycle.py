"""The SimPy request lifecycle: arrive, look up the response cache, classify, assess risk, route,
select, attempt, escalate.

The processes here stay thin: they take a request, ask the policies, hand the attempt to a tier
and wait. Every request ends in exactly one terminal state (:data:`OUTCOMES`):

* ``succeeded`` — an attempt completed, the quality draw says correct, within the deadline (and the
  verifier accepted it);
* ``timed_out`` — an attempt ended after the deadline (no further attempts are made);
* ``failed`` — the verifier accepted a wrong answer (an undetected failure), or the last attempt
  completed incorrectly, its batch job expired, or its API calls kept
  failing (rate limits, errors, outages) past the retries or deadline, and the escalation policy
  offered no further route;
* ``dropped`` — the last attempt was rejected by its tier (queue full) with no further route.

A response-cache hit ends the request at once (``final_tier == "cache"``, no attempts): it
``succeeded`` when the served answer is right for it, else ``failed`` (an undetected failure). With
session stickiness, a request whose router picks (without asking for the strongest model) the tier
its session used last goes to the model the selector picked for the session's last step (if that
answer was accepted at the first attempt), and, on the local tier, to the same replica (bounded by
load).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from simroute.feedback.response_cache import CacheConfig, Hit, ResponseCache
from simroute.policy.protocols import Classifier, Escalator, RiskPredictor, Router, Selector, Verifier
from simroute.policy.types import Attempt, Request, Route, TierState
from simroute.policy.verifiers import PerfectVerifier
from simroute.tiers.base import AttemptResult, Tier

OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "dropped", "timed_out")


@dataclass(frozen=True)
class Policies:
    """The policy layers of one architecture, its response cache (None: none) and whether sessions
    stick to the model and replica that served their previous step."""

    classifier: Classifier
    risk: RiskPredictor
    router: Router
    selector: Selector
    escalation: Escalator
    verifier: Verifier = field(default_factory=PerfectVerifier)
    cache: CacheConfig | None = None
    sticky_sessions: bool = False


@dataclass
class Records:
    """Append-only logs, turned into tables after ``env.run()`` (one entry per request/attempt)."""

    requests: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)


class TierStates:
    """:class:`~simroute.policy.protocols.StateView` over the live tiers."""

    def __init__(self, tiers: Mapping[str, Tier]) -> None:
        self._tiers = tiers

    def tier(self, name: str) -> TierState:
        """State of tier ``name`` now (an absent tier looks empty and capacity-less)."""
        t = self._tiers.get(name)
        return t.state() if t is not None else TierState(0, 0, 0)


class Lifecycle:
    """Runs requests through the policies and tiers of one simulated architecture.

    Args:
        env: SimPy environment.
        policies: the policy layers.
        tiers: tier name -> tier.
        p_success: ``(model, skill, difficulty) -> probability`` of a correct answer.
        u_quality: per-request quality uniforms, shape (n, k) (common random numbers).
        on_done: called once per terminal request (progress reporting).
        u_verify: per-request verifier uniforms, shape (n, k) (None: a perfect verifier only).
        cache: the response cache (None: a fresh one from ``policies.cache``, if configured); pass
            one to keep it across simulated days.
        u_cache: per-request uniforms for semantic-hit correctness, length n.
    """

    def __init__(
        self,
        env: simpy.Environment,
        policies: Policies,
        tiers: Mapping[str, Tier],
        p_success: Any,
        u_quality: np.ndarray,
        on_done: Any = None,
        u_verify: np.ndarray | None = None,
        cache: ResponseCache | None = None,
        u_cache: np.ndarray | None = None,
    ) -> None:
        self.env = env
        self.policies = policies
        self.tiers = tiers
        self.state = TierStates(tiers)
        self.p_success = p_success
        self.u_quality = u_quality
        self.records = Records()
        self.on_done = on_done
        self.u_verify = u_verify
        self._learn = getattr(policies.router, "observe", None)
        if cache is None and policies.cache is not None:
            cache = ResponseCache(policies.cache)
        self.cache = cache
        self.u_cache = u_cache
        self._sessions: dict[int, tuple[str, str]] = {}

    def source(self, requests: list[Request]) -> Generator[simpy.Event, Any, None]:
        """Release each request at its arrival time (requests sorted by arrival)."""
        for req in requests:
            if req.arrival_s > self.env.now:
                yield self.env.timeout(req.arrival_s - self.env.now)
            self.env.process(self.handle(req))

    def handle(self, req: Request) -> Generator[simpy.Event, Any, None]:
        """One request from arrival to its terminal state."""
        p = self.policies
        lookup, lookup_usd = "off", 0.0
        if self.cache is not None:
            lookup = "miss" if self.cache.eligible(req, req.skill) else "bypass"
            u = float(self.u_cache[req.idx]) if self.u_cache is not None else 0.5
            hit = self.cache.lookup(req, self.env.now, u)
            if lookup == "miss":
                lookup_usd = self.cache.lookup_cost_usd()
                yield self.env.timeout(self.cache.lookup_latency_s())
            if hit is not None:
                self._served_from_cache(req, hit, lookup_usd)
                return
        label = p.classifier.classify(req)
        if p.classifier.latency_s > 0:
            yield self.env.timeout(p.classifier.latency_s)
        risk = p.risk.assess(req)
        local_queue = self.state.tier("local").queue_len
        route = p.router.route(req, label, risk, self.state)
        sticky = self._sessions.get(req.session_id) if p.sticky_sessions else None
        if sticky is not None and (sticky[0] != route.tier or route.strong):
            sticky = None
        if sticky is not None:
            route = Route(route.tier, route.strong, route.reason + "+sticky")
        first_tier, first_reason = route.tier, route.reason
        history: list[Attempt] = []
        first: AttemptResult | None = None
        outcome = "failed"
        deadline_at = req.arrival_s + req.deadline_s
        while True:
            if route.tier not in self.tiers:
                raise ValueError(f"route to tier {route.tier!r}, not in this run: {list(self.tiers)}")
            model = sticky[1] if sticky is not None and not history else p.selector.select(req, label, route)
            res: AttemptResult = yield self.tiers[route.tier].submit(req, model)
            first = first or res
            k = len(history)
            success = accepted = False
            if res.status == "completed":
                col = min(k, self.u_quality.shape[1] - 1)
                success = bool(
                    self.u_quality[req.idx, col] < self.p_success(model, req.skill, req.difficulty)
                )
                uv = float(self.u_verify[req.idx, col]) if self.u_verify is not None else 0.5
                accepted = p.verifier.accept(req, success, uv)
                if p.verifier.latency_s > 0:
                    yield self.env.timeout(p.verifier.latency_s)
                if self._learn is not None:
                    self._learn(req, label, route.tier, model, accepted)
            self.records.attempts.append(
                (
                    req.idx,
                    k,
                    route.tier,
                    model,
                    res.status,
                    res.submit_s,
                    res.start_s,
                    res.first_token_s,
                    res.end_s,
                    res.busy_s,
                    success,
                    res.retries,
                    res.rate_limited,
                    res.cached_tokens,
                    res.written_tokens,
                    accepted,
                )
            )
            history.append(Attempt(route.tier, model, res.status, accepted))
            if max(res.end_s, self.env.now) > deadline_at:
                outcome = "timed_out"
                break
            if accepted:
                outcome = "succeeded" if success else "failed"
                break
            nxt = p.escalation.next_route(req, label, history)
            if nxt is None:
                outcome = {
                    "completed": "failed",
                    "expired": "failed",
                    "error": "failed",
                    "rejected": "dropped",
                }[res.status]
                break
            route = nxt
        end = self.env.now
        if accepted:
            if p.sticky_sessions and len(history) == 1 and not route.strong and outcome != "timed_out":
                self._sessions[req.session_id] = (route.tier, model)
            if self.cache is not None:
                self.cache.insert(req, end, model, success)
        self.records.requests.append(
            (
                req.idx,
                label.skill,
                label.confidence,
                risk.score,
                risk.escalate,
                first_reason,
                first_tier,
                route.tier,
                model,
                len(history),
                "/".join(a.tier for a in history),
                outcome,
                first.start_s - first.submit_s,
                res.first_token_s - req.arrival_s if res.status == "completed" else float("nan"),
                (res.end_s - res.first_token_s) / max(req.output_tokens - 1, 1)
                if res.status == "completed"
                else float("nan"),
                end - req.arrival_s,
                outcome == "succeeded" and end <= deadline_at,
                outcome == "failed" and accepted and not success,
                local_queue,
                p.classifier.cost_usd,
                lookup,
                lookup_usd,
                -1,
            )
        )
        if self.on_done is not None:
            self.on_done()

    def _served_from_cache(self, req: Request, hit: Hit, lookup_usd: float) -> None:
        """Record a request answered by the response cache (no classifier, no attempt)."""
        outcome = "succeeded" if hit.correct else "failed"
        e2e = self.env.now - req.arrival_s
        self.records.requests.append(
            (
                req.idx,
                None,
                1.0,
                0.0,
                False,
                f"cache:{hit.kind}",
                "cache",
                "cache",
                hit.entry.model,
                0,
                "",
                outcome,
                0.0,
                e2e,
                float("nan"),
                e2e,
                outcome == "succeeded" and e2e <= req.deadline_s,
                not hit.correct,
                self.state.tier("local").queue_len,
                0.0,
                hit.kind,
                lookup_usd,
                hit.entry.source_id,
            )
        )
        if self.on_done is not None:
            self.on_done()
