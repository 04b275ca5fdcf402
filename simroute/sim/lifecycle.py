"""The SimPy request lifecycle: arrive, classify, assess risk, look up the response cache, route,
select, attempt, verify, escalate.

The processes here stay thin: they take a request, ask the policies, hand the attempt to a tier
and wait. Policies see only the request's observable view (:class:`RequestView`); the world
(quality draws, tiers, simulated error models) keeps the truth. Every request ends in exactly one
terminal state (:data:`~simroute.outcomes.OUTCOMES`, which documents each) and records whether its
final answer is ``correct`` and whether it ended by its deadline (``deadline_met``). A
response-cache hit ends the request at once (``final_tier == "cache"``, no attempts): it
``succeeded`` when the served answer is right for it, else ``failed`` (an undetected failure).
With session stickiness, a request whose router picks (without asking for the strongest model) the
tier its session used last goes to the model the selector picked for the session's last
step (if that answer was accepted at the first attempt), and, on the local tier, to the same
replica (bounded by load).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy
from simpy.events import URGENT

from simroute.outcomes import (
    CACHE_TIER,
    CANCELLED,
    COMPLETED,
    FAILED,
    LOOKUP_OFF,
    NO_TIER,
    OUTCOME_IF_LAST,
    SUCCEEDED,
    TIMED_OUT,
)
from simroute.policy.protocols import Classifier, Escalator, RiskPredictor, Router, Selector, Verifier
from simroute.policy.response_cache import CacheConfig, Hit, ResponseCache
from simroute.policy.types import Attempt, Label, RequestView, Risk, Route, TierState
from simroute.record_types import AttemptRecord, RequestRecord
from simroute.records import RecordLog
from simroute.signals import Signal, Waitable, pending, schedule, timeout
from simroute.sim.luck_blocks import Uniforms
from simroute.sim.rows import RequestRows
from simroute.sim.session_gate import ANSWERED, CANCELLED_GATE, UNANSWERED, SessionGate
from simroute.sim.sessions import ReplayConfig
from simroute.tiers.base import AttemptResult, Tier
from simroute.tiers.realtime import RealtimeTier
from simroute.workload.request import Request

Sim = Generator[Waitable, Any, Any]
"""A SimPy process body (or a step of one, run with ``yield from``): it waits for SimPy events and
ours (:mod:`simroute.signals`)."""


@dataclass(frozen=True)
class Policies:
    """The policy layers of one architecture, its response cache (None: none) and whether sessions
    stick to the model and replica that served their previous step."""

    classifier: Classifier
    risk: RiskPredictor
    router: Router
    selector: Selector
    escalation: Escalator
    verifier: Verifier
    cache: CacheConfig | None = None
    sticky_sessions: bool = False
    provision_local: bool = True

    def uses_ground_truth(self) -> list[str]:
        """The components of this architecture that read the truth exactly (oracles)."""
        parts = {"classifier": self.classifier, "verifier": self.verifier}
        return [f"{k}:{type(v).__name__}" for k, v in parts.items() if getattr(v, "oracle", False)]


RECORD_BATCH = 4096
"""Records whose values wait in :class:`Records` before they are handed to their log in one call."""


class Records:
    """Append-only logs, turned into tables after ``env.run()`` (one entry per request/attempt).

    A record's values (its own ``values()``, in field order, as a log stores them) wait in a list
    and reach the log :data:`RECORD_BATCH` at a time: one call into the log per batch, not per
    record. :meth:`flush` hands on the rest: the logs are whole only after it (the simulation
    calls it when its events are done)."""

    def __init__(self) -> None:
        self.requests = RecordLog(RequestRecord)
        self.attempts = RecordLog(AttemptRecord)
        self._requests: list[tuple[object, ...]] = []
        self._attempts: list[tuple[object, ...]] = []

    def add_request(self, record: RequestRecord) -> None:
        """Log a request's terminal record."""
        self._requests.append(record.values())
        if len(self._requests) >= RECORD_BATCH:
            self.requests.extend(self._requests)
            self._requests = []

    def add_attempt(self, record: AttemptRecord) -> None:
        """Log an attempt's record."""
        self._attempts.append(record.values())
        if len(self._attempts) >= RECORD_BATCH:
            self.attempts.extend(self._attempts)
            self._attempts = []

    def flush(self) -> None:
        """Hand the waiting records to their logs."""
        self.requests.extend(self._requests)
        self.attempts.extend(self._attempts)
        self._requests, self._attempts = [], []


@dataclass(frozen=True, init=False)
class Decision:
    """What the policy layers decided before the first attempt."""

    label: Label
    risk: Risk
    route: Route
    sticky_model: str | None
    local_queue: int

    def __init__(
        self, label: Label, risk: Risk, route: Route, sticky_model: str | None, local_queue: int
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "risk", risk)
        object.__setattr__(self, "route", route)
        object.__setattr__(self, "sticky_model", sticky_model)
        object.__setattr__(self, "local_queue", local_queue)


@dataclass(init=False)
class Chain:
    """How a request's attempts went: the history, the first and last results, the final route
    and model, whether the last answer was right and accepted, and the outcome."""

    history: list[Attempt]
    verify_usd: float
    first: AttemptResult | None
    last: AttemptResult | None
    route: Route
    model: str
    success: bool
    accepted: bool
    outcome: str

    def __init__(self, route: Route) -> None:
        """A request's chain before its first attempt, on ``route`` (written out: compiled, it
        runs natively; :mod:`simroute.compiled`)."""
        self.history = []
        self.verify_usd = 0.0
        self.first = None
        self.last = None
        self.route = route
        self.model = ""
        self.success = False
        self.accepted = False
        self.outcome = FAILED


class _Task:
    """A request's lifecycle generator, driven as a SimPy process drives its generator but without a
    process's own events: started by the event it is attached to (:meth:`start_on`), resumed with
    the value of each event it yields, and ending with no event of its own (nothing waits for a
    request's lifecycle; a SimPy process would schedule one more event at its end). Our events
    never fail; an exception in the generator propagates out of ``env.run()`` at once."""

    def __init__(self, gen: Sim) -> None:
        self.gen = gen

    def start_on(self, event: Waitable) -> None:
        """Start the generator when ``event`` is processed (before the event's later callbacks)."""
        assert event.callbacks is not None
        event.callbacks.append(self._resume)

    def _resume(self, event: Any) -> None:
        """Send ``event``'s value into the generator, going on at once past events already
        processed, and wait for the next one it yields (ours read natively)."""
        value = event._value
        while True:
            try:
                # read as Any: SimPy types ``callbacks`` as a list, and compiled code would check
                # that (a processed event's is None)
                nxt: Any = self.gen.send(value)
            except StopIteration:
                return
            if isinstance(nxt, Signal):
                if nxt.callbacks is not None:
                    nxt.callbacks.append(self._resume)
                    return
                value = nxt._value
                continue
            if nxt.callbacks is not None:
                nxt.callbacks.append(self._resume)
                return
            value = nxt._value


def _start_now(env: simpy.Environment, gen: Sim) -> None:
    """Start ``gen`` where :meth:`simpy.Environment.process` would (an urgent event due now: after
    the urgent events already due now, before the normal ones), without the process's events."""
    ev = Signal(env, None)
    _Task(gen).start_on(ev)
    schedule(env, ev, URGENT, 0.0)


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
        u_cache: per-request uniforms, shape (n, 2): semantic-hit correctness, false match.
        replay: closed- or open-loop release of the requests (:mod:`simroute.sim.sessions`;
            default: closed loop, no session retry).
        route_deadline_s: per request row, the deadline a router sees (closed loop: the rest of the
            session's shortest deadline for a request that gates later ones; None: its own).
    """

    def __init__(
        self,
        env: simpy.Environment,
        policies: Policies,
        tiers: Mapping[str, Tier],
        p_success: Callable[[str, str, float], float],
        u_quality: Uniforms,
        on_done: Callable[[], Any] | None = None,
        u_verify: Uniforms | None = None,
        cache: ResponseCache | None = None,
        u_cache: Uniforms | None = None,
        replay: ReplayConfig | None = None,
        route_deadline_s: np.ndarray | None = None,
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
        self.replay = replay or ReplayConfig()
        self.route_deadline_s = route_deadline_s
        self.gate: SessionGate | None = None
        self._rows: RequestRows | None = None
        self._find_judge()

    def start(self, requests: RequestRows) -> None:
        """Start releasing ``requests`` (:meth:`source`) where ``env.process`` would start it."""
        _start_now(self.env, self.source(requests))

    def source(self, requests: RequestRows) -> Sim:
        """Release the requests (sorted by arrival): open loop each at its ``arrival_s``; closed loop
        a request with ``after_ids`` when its gates are done plus its ``think_s`` (see
        :mod:`simroute.sim.sessions`), the others at their ``arrival_s``. Each request's record is
        built when it is issued (or released), not before."""
        closed = self.replay.closed_loop
        self._rows = requests
        gated = np.zeros(len(requests), dtype=bool)
        if closed:
            offsets, after = requests.after_arrays()
            self.gate = SessionGate(self.env, self.replay.session_retry, self._release, offsets, after)
            gated = self.gate.gated
        for i in np.flatnonzero(~gated).tolist():
            req = requests[i]
            if req.arrival_s > self.env.now:
                yield timeout(self.env, req.arrival_s - self.env.now)
            _start_now(self.env, self.handle(req))

    def _release(self, idx: int) -> None:
        """A held closed-loop step's gates are all terminal: go on with it at this point of the
        event order (its own event, processed after the events already due now)."""
        ready = pending(self.env)
        _Task(self._gated(idx)).start_on(ready)
        ready.succeed()

    def _gated(self, idx: int) -> Sim:
        """A released closed-loop step (row ``idx``): then its think time; or end it as cancelled."""
        assert self.gate is not None
        assert self._rows is not None
        gate = self._rows.gate_of(idx)
        if not self.gate.may_go_on(gate.session_id, gate.after_ids):
            self._cancel(self._rows.get(idx, self.env.now, gate.after_ids))
            return
        if gate.think_s > 0:
            yield timeout(self.env, gate.think_s)
        yield from self.handle(self._rows.get(idx, self.env.now, gate.after_ids))

    def handle(self, req: Request) -> Sim:
        """One request from arrival (its issue, ``req.arrival_s == env.now``) to its terminal state."""
        deadline = self.route_deadline_s
        view = RequestView.of(req, None if deadline is None else float(deadline[req.idx]))
        label, risk = yield from self._classify(view)
        lookup, lookup_usd, hit = yield from self._look_up(req, view, label, risk)
        if hit is not None:
            self._served_from_cache(req, label, risk, hit, lookup_usd)
            return
        decision = self._decide(view, label, risk)
        chain = yield from self._attempt_chain(req, view, decision)
        self._remember(view, label, risk, chain)
        self._record(req, decision, chain, lookup, lookup_usd)

    def _classify(self, view: RequestView) -> Sim:
        """Classify (waiting the classifier's latency) and assess risk: (Label, Risk)."""
        p = self.policies
        label = p.classifier.classify(view)
        if p.classifier.latency_s > 0:
            yield timeout(self.env, p.classifier.latency_s)
        return label, p.risk.assess(view)

    def _look_up(self, req: Request, view: RequestView, label: Label, risk: Risk) -> Sim:
        """The response-cache lookup by predicted skill and risk: (outcome, lookup cost USD, hit or
        None); waits its latency."""
        if self.cache is None:
            return LOOKUP_OFF, 0.0, None
        lookup = "miss" if self.cache.eligible(view, label.skill, risk.escalate) else "bypass"
        u0, u1 = (
            (self.u_cache.at(req.idx, 0), self.u_cache.at(req.idx, 1))
            if self.u_cache is not None
            else (0.5, 1.0)
        )
        hit = self.cache.lookup(view, label.skill, risk.escalate, self.env.now, u0, u1)
        lookup_usd = 0.0
        if lookup == "miss":
            lookup_usd = self.cache.lookup_cost_usd()
            yield timeout(self.env, self.cache.lookup_latency_s())
        return lookup, lookup_usd, hit

    def _decide(self, req: RequestView, label: Label, risk: Risk) -> Decision:
        """Route and apply stickiness."""
        p = self.policies
        local_queue = self.state.tier("local").queue_len
        route = p.router.route(req, label, risk, self.state)
        sticky = self._sessions.get(req.session_id) if p.sticky_sessions else None
        if sticky is not None and (sticky[0] != route.tier or route.strong):
            sticky = None
        if sticky is not None:
            route = Route(route.tier, route.strong, route.reason + "+sticky")
        return Decision(label, risk, route, sticky[1] if sticky else None, local_queue)

    def _attempt_chain(self, req: Request, view: RequestView, d: Decision) -> Sim:
        """Attempts until one is accepted, the deadline passes or escalation gives up: a Chain."""
        p = self.policies
        c = Chain(route=d.route)
        deadline_at = req.arrival_s + req.deadline_s
        while True:
            if c.route.tier not in self.tiers:
                raise ValueError(f"route to tier {c.route.tier!r}, not in this run: {list(self.tiers)}")
            sticky = d.sticky_model if not c.history else None
            c.model = sticky if sticky is not None else p.selector.select(view, d.label, c.route)
            res: AttemptResult = yield self.tiers[c.route.tier].submit(req, c.model, len(c.history))
            c.first, c.last = c.first or res, res
            yield from self._judge(req, view, d.label, c, res)
            c.history.append(Attempt(c.route.tier, c.model, res.status, c.accepted))
            if max(res.end_s, self.env.now) > deadline_at:
                c.outcome = TIMED_OUT
                return c
            if c.accepted:
                c.outcome = SUCCEEDED if c.success else FAILED
                return c
            nxt = p.escalation.next_route(view, d.label, c.history)
            if nxt is None:
                c.outcome = OUTCOME_IF_LAST[res.status]
                return c
            c.route = nxt

    def _judge(self, req: Request, view: RequestView, label: Label, c: Chain, res: AttemptResult) -> Sim:
        """Draw the attempt's correctness, ask the verifier (paying and waiting for its check), let
        a learning router observe the verdict, and log the attempt."""
        p = self.policies
        k = len(c.history)
        c.success = c.accepted = False
        if res.status == COMPLETED:
            col = min(k, self.u_quality.shape[1] - 1)
            p_ok = self.p_success(c.model, req.skill, req.difficulty)
            c.success = self.u_quality.at(req.idx, col) < p_ok
            uv = self.u_verify.at(req.idx, col) if self.u_verify is not None else 0.5
            c.accepted = p.verifier.accept(view, c.success, uv)
            c.verify_usd += p.verifier.check_usd(req.prompt_tokens, req.output_tokens)
            wait = self._check_latency_s(req, k)
            if wait > 0:
                yield timeout(self.env, wait)
            if self._learn is not None:
                self._learn(view, label, c.route.tier, c.model, c.accepted)
        self.records.add_attempt(
            AttemptRecord(
                idx=req.idx,
                attempt=k,
                tier=c.route.tier,
                model=c.model,
                status=res.status,
                submit_s=res.submit_s,
                start_s=res.start_s,
                first_token_s=res.first_token_s,
                end_s=res.end_s,
                busy_s=res.busy_s,
                success=c.success,
                retries=res.retries,
                rate_limited=res.rate_limited,
                cached_tokens=res.cached_tokens,
                written_tokens=res.written_tokens,
                accepted=c.accepted,
            )
        )

    def _check_latency_s(self, req: Request, attempt: int) -> float:
        """Seconds the verifier's check takes: a judge model's real-time latency, else its own."""
        if self._judge_tier is not None:
            return self._judge_tier.check_latency_s(
                self._judge_model, req, attempt, self._judge_tokens, self._rubric_tokens
            )
        return float(self.policies.verifier.latency_s)

    def _find_judge(self) -> None:
        """Whether the verifier is a judge model whose checks the real-time tier times: its tier,
        model, verdict and rubric tokens (read once: a run's verifier and tiers do not change)."""
        v = self.policies.verifier
        judge = int(getattr(v, "verdict_tokens", 0))
        rt = self.tiers.get("realtime")
        self._judge_tier: RealtimeTier | None = None
        self._judge_model = v.model or ""
        self._judge_tokens = judge
        self._rubric_tokens = int(getattr(v, "rubric_tokens", 0))
        if v.model is not None and judge and isinstance(rt, RealtimeTier):
            self._judge_tier = rt

    def _remember(self, view: RequestView, label: Label, risk: Risk, c: Chain) -> None:
        """After an accepted answer: the session's sticky model, and the response cache's entry."""
        if not c.accepted:
            return
        p = self.policies
        if p.sticky_sessions and len(c.history) == 1 and not c.route.strong and c.outcome != TIMED_OUT:
            self._sessions[view.session_id] = (c.route.tier, c.model)
        if self.cache is not None:
            self.cache.insert(view, label.skill, risk.escalate, self.env.now, c.model, c.success)

    def _record(self, req: Request, d: Decision, c: Chain, lookup: str, lookup_usd: float) -> None:
        """Log the request's terminal record."""
        assert c.first is not None
        assert c.last is not None
        end, res = self.env.now, c.last
        done = res.status == COMPLETED
        self.records.add_request(
            RequestRecord(
                idx=req.idx,
                arrival_s=req.arrival_s,
                skill_pred=d.label.skill,
                classifier_confidence=d.label.confidence,
                risk_score=d.risk.score,
                risk_escalated=d.risk.escalate,
                route_reason=d.route.reason,
                first_tier=d.route.tier,
                final_tier=c.route.tier,
                final_model=c.model,
                first_model=c.history[0].model,
                attempts=len(c.history),
                tier_path="/".join(a.tier for a in c.history),
                outcome=c.outcome,
                queue_s=c.first.start_s - c.first.submit_s,
                ttft_s=res.first_token_s - req.arrival_s if done else float("nan"),
                tpot_s=(res.end_s - res.first_token_s) / max(req.output_tokens - 1, 1)
                if done
                else float("nan"),
                e2e_s=end - req.arrival_s,
                correct=c.accepted and c.success,
                deadline_met=end <= req.arrival_s + req.deadline_s,
                undetected_failure=c.accepted and not c.success,
                local_queue_at_route=d.local_queue,
                cost_classifier_usd=self.policies.classifier.cost_usd,
                cost_verifier_usd=c.verify_usd,
                cache_lookup=lookup,
                cost_cache_usd=lookup_usd,
                cache_source_id=-1,
            )
        )
        self._finish(req, c.accepted and c.outcome != TIMED_OUT)

    def _served_from_cache(self, req: Request, label: Label, risk: Risk, hit: Hit, lookup_usd: float) -> None:
        """Record a request answered by the response cache (classified, no attempt)."""
        outcome = SUCCEEDED if hit.correct else FAILED
        e2e = self.env.now - req.arrival_s
        self.records.add_request(
            RequestRecord(
                idx=req.idx,
                arrival_s=req.arrival_s,
                skill_pred=label.skill,
                classifier_confidence=label.confidence,
                risk_score=risk.score,
                risk_escalated=risk.escalate,
                route_reason=f"cache:{hit.kind}",
                first_tier=CACHE_TIER,
                final_tier=CACHE_TIER,
                final_model=hit.entry.model,
                first_model="",
                attempts=0,
                tier_path="",
                outcome=outcome,
                queue_s=0.0,
                ttft_s=e2e,
                tpot_s=float("nan"),
                e2e_s=e2e,
                correct=hit.correct,
                deadline_met=e2e <= req.deadline_s,
                undetected_failure=not hit.correct,
                local_queue_at_route=self.state.tier("local").queue_len,
                cost_classifier_usd=self.policies.classifier.cost_usd,
                cost_verifier_usd=0.0,
                cache_lookup=hit.kind,
                cost_cache_usd=lookup_usd,
                cache_source_id=hit.entry.source_id,
            )
        )
        self._finish(req, True)

    def _finish(self, req: Request, answered: bool) -> None:
        """A request reached its terminal state: release the steps waiting for it, report progress."""
        if self.gate is not None:
            self.gate.finish(req.request_id, ANSWERED if answered else UNANSWERED)
        if self.on_done is not None:
            self.on_done()

    def _cancel(self, req: Request) -> None:
        """Record a closed-loop step whose session ended before it was issued (no attempt, no cost)."""
        self.records.add_request(
            RequestRecord(
                idx=req.idx,
                arrival_s=req.arrival_s,
                skill_pred=None,
                classifier_confidence=0.0,
                risk_score=0.0,
                risk_escalated=False,
                route_reason="session ended",
                first_tier=NO_TIER,
                final_tier=NO_TIER,
                final_model="",
                first_model="",
                attempts=0,
                tier_path="",
                outcome=CANCELLED,
                queue_s=float("nan"),
                ttft_s=float("nan"),
                tpot_s=float("nan"),
                e2e_s=float("nan"),
                correct=False,
                deadline_met=False,
                undetected_failure=False,
                local_queue_at_route=0,
                cost_classifier_usd=0.0,
                cost_verifier_usd=0.0,
                cache_lookup=LOOKUP_OFF,
                cost_cache_usd=0.0,
                cache_source_id=-1,
            )
        )
        assert self.gate is not None
        self.gate.finish(req.request_id, CANCELLED_GATE)
        if self.on_done is not None:
            self.on_done()
