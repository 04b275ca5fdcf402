"""The runtime policy object behind :func:`load_policy`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simroute.errors import InputError, SimrouteError
from simroute.export import artifact
from simroute.policy import registry
from simroute.policy.catalog import ModelCatalog, Offer
from simroute.policy.types import Label, RequestView, TierState


@dataclass(frozen=True)
class Decision:
    """A production routing decision: where to send the request first, and why."""

    tier: str
    model: str
    strong: bool
    reason: str
    risk_score: float
    risk_escalate: bool


class _State:
    def __init__(self, local_queue_len: int) -> None:
        self.q = local_queue_len

    def tier(self, name: str) -> TierState:
        return TierState(self.q if name == "local" else 0, 0, 0)


def _build(kind: str, pol: Mapping[str, Any], ctx: registry.PolicyContext, source: str) -> Any:
    """A policy layer from its exported spec; a value of the wrong type is an InputError."""
    try:
        return registry.build(kind, pol[kind], ctx)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(
            source, f"bad argument for {kind} {pol[kind].get('name')!r} ({e})", column=f"policy.{kind}"
        ) from None


class RuntimePolicy:
    """The exported risk predictor, router and selector (the same classes the simulator ran).

    The request's skill label comes from the caller's own classifier (the artifact records the
    simulated classifier's parameters under ``policy.classifier`` for reference). With
    ``policy.sticky_sessions``, call :meth:`answered` when a request's first attempt was accepted:
    later requests of that session whose route picks the same tier (not its strongest model) go to
    the same model, as in the simulation. The response cache (``policy.response_cache``) runs in
    front of this router in production; its settings are carried, not applied, here.
    """

    def __init__(self, doc: Mapping[str, Any], source: str = "<policy artifact>") -> None:
        self.doc = doc
        offers = [
            Offer(
                m["model"],
                m["tier"],
                m["mode"],
                np.array(m["rates"], dtype=np.float64),
                dict(m["expected_quality"]),
                np.array(m["standard_rates"], dtype=np.float64),
                int(m.get("capacity", 0)),
            )
            for m in doc["models"]
        ]
        pol = doc["policy"]
        self.catalog = ModelCatalog(offers)
        if not pol.get("provision_local", True):  # as in the simulation: no local models to route to
            self.catalog = self.catalog.without_tier("local")
        ctx = registry.PolicyContext(tuple(doc["skills"]), self.catalog, 0)
        self.risk = _build("risk", pol, ctx, source)
        self.router = _build("router", pol, ctx, source)
        self.selector = _build("selector", pol, ctx, source)
        self.sticky = bool(pol.get("sticky_sessions", False))
        self._sessions: dict[int, tuple[str, str]] = {}
        state = doc.get("router_state")
        if state and hasattr(self.router, "load_state"):
            try:
                self.router.load_state(state)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise InputError(
                    source,
                    f"not a state of router {pol['router']['name']!r} ({type(e).__name__}: {e})",
                    column="router_state",
                ) from None

    def route(self, request: Mapping[str, Any], local_queue_len: int = 0) -> Decision:
        """Decide tier and model for one request (a mapping with ``skill``, ``prompt_tokens``,
        ``deadline_s`` and the five risk features; ``request_id`` for A/B selectors)."""
        req = RequestView(
            idx=0,
            request_id=int(request.get("request_id", 0)),
            session_id=int(request.get("session_id", 0)),
            arrival_s=0.0,
            urgency=str(request.get("urgency", "")),
            prompt_tokens=int(request["prompt_tokens"]),
            deadline_s=float(request["deadline_s"]),
            missing_repo_context=bool(request.get("missing_repo_context", False)),
            dependency_chain=int(request.get("dependency_chain", 0)),
            risky_migration=bool(request.get("risky_migration", False)),
            security_sensitive=bool(request.get("security_sensitive", False)),
            high_consequence_write=bool(request.get("high_consequence_write", False)),
        )
        label = Label(str(request["skill"]), 1.0)  # the deployment's own classifier output
        risk = self.risk.assess(req)
        route = self.router.route(req, label, risk, _State(local_queue_len))
        sticky = self._sessions.get(req.session_id) if self.sticky else None
        if sticky is not None and sticky[0] == route.tier and not route.strong:
            return Decision(
                route.tier, sticky[1], route.strong, route.reason + "+sticky", risk.score, risk.escalate
            )
        model = self.selector.select(req, label, route)
        return Decision(route.tier, model, route.strong, route.reason, risk.score, risk.escalate)

    def answered(self, session_id: int, decision: Decision) -> None:
        """Record that ``decision`` (this session's latest first attempt) was accepted."""
        if self.sticky and not decision.strong:
            self._sessions[int(session_id)] = (decision.tier, decision.model)


def load_policy(path: str | Path, key: bytes | str | None = None) -> RuntimePolicy:
    """Load and verify an artifact (JSON only; never unpickles or evaluates anything).

    Always checked: strict JSON (no NaN/Infinity), the types of the fields the runtime reads
    (:func:`simroute.export.artifact.validate`), the simroute major version and the ``sha256`` —
    which catches corruption, not tampering (anyone can recompute it) — and that the policy layers
    build from their exported arguments. With ``key`` (bytes, or a str taken as UTF-8; e.g.
    ``os.environ["SIMROUTE_POLICY_KEY"]``) the file must also carry a matching ``hmac_sha256``
    (``simroute export --sign``): an unsigned file or a wrong signature is refused. Without a key,
    signed and unsigned files load alike (the signature is not checked). A refusal is an
    :class:`~simroute.errors.InputError` naming the file and the field; an empty key is a
    :class:`~simroute.errors.ConfigError`.
    """
    source = str(Path(path))
    doc = artifact.load(path, key=key)
    try:
        return RuntimePolicy(doc, source)
    except InputError:
        raise
    except SimrouteError as e:  # a policy layer's name or arguments (registry), a model's tier
        raise InputError(source, str(e)) from None
