"""Routers: rules, static, cost-aware threshold, RouteLLM-style strong-win rate, Thompson sampling.

Every router is deadline-aware: none sends a request whose deadline is shorter than
``batch_min_deadline_s`` (default 24 h, the batch APIs' completion window) to the batch tier.
A cascade is the rules or cost-aware router with a :class:`~simroute.policy.verifiers.NoisyVerifier`
and stronger-model escalation (see ``conf/policy/cascade.yaml``).
"""

from __future__ import annotations

from simroute import rng as rng_mod
from simroute.errors import ConfigError
from simroute.outcomes import TIERS
from simroute.policy.catalog import ModelCatalog
from simroute.policy.protocols import StateView
from simroute.policy.running_quantile import RunningQuantile
from simroute.policy.types import Label, RequestView, Risk, Route


class StaticRouter:
    """Sends every request to one tier (``realtime`` gives the all-real-time baseline).

    Args:
        tier: the tier.
        strong: require the tier's strongest model.
        batch_min_deadline_s: with ``tier="batch"``, requests whose deadline is shorter go to
            ``realtime`` instead (a router never sends an interactive request to batch).
    """

    def __init__(
        self, tier: str = "realtime", strong: bool = False, batch_min_deadline_s: float = 86_400.0
    ) -> None:
        if tier not in TIERS:
            raise ConfigError(f"router.tier: unknown tier {tier!r}; valid: {list(TIERS)}")
        self.tier = tier
        self.strong = strong
        self.batch_min_deadline_s = batch_min_deadline_s

    def route(self, request: RequestView, label: Label, risk: Risk, state: StateView) -> Route:
        """The configured tier (deadline permitting)."""
        if self.tier == "batch" and request.deadline_s < self.batch_min_deadline_s:
            return Route("realtime", self.strong, "deadline too short for batch")
        return Route(self.tier, self.strong, "static")


class RuleRouter:
    """Router-first rules, in order:

    1. predicted risk says escalate -> ``realtime`` with its strongest model;
    2. deadline >= ``batch_min_deadline_s`` (batchable work) -> ``batch``;
    3. no local model is expected to reach ``local_min_quality`` on the predicted skill
       -> ``realtime``;
    4. local tier congested (queue >= ``overflow_queue`` requests) -> ``realtime``;
    5. otherwise -> ``local``.

    Args:
        catalog: the run's model offers (injected).
        batch_min_deadline_s: shortest deadline (s) that may wait for the batch API.
        overflow_queue: local queue length at which new requests overflow to real-time.
        local_min_quality: expected success (0..1) the best local model must reach for the label.
        use_batch: set False to disable rule 2.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        batch_min_deadline_s: float = 86_400.0,
        overflow_queue: int = 64,
        local_min_quality: float = 0.0,
        use_batch: bool = True,
    ) -> None:
        if overflow_queue < 0:
            raise ConfigError(f"router.overflow_queue must be >= 0, got {overflow_queue}")
        if not 0.0 <= local_min_quality <= 1.0:
            raise ConfigError(f"router.local_min_quality must be in [0, 1], got {local_min_quality}")
        self.batch_min_deadline_s = batch_min_deadline_s
        self.overflow_queue = overflow_queue
        self.use_batch = use_batch
        self.catalog = catalog
        self.local_min_quality = local_min_quality
        self.refresh()

    def refresh(self) -> None:
        """Recompute which skills a local model is good enough for (after the catalogue changed)."""
        local = self.catalog.by_tier["local"]
        min_q = self.local_min_quality
        self.local_ok = {
            s: max(o.expected_quality[s] for o in local) >= min_q
            for s in (local[0].expected_quality if local else {})
        }

    def route(self, request: RequestView, label: Label, risk: Risk, state: StateView) -> Route:
        """Apply the rules above."""
        if risk.escalate:
            return Route("realtime", True, "risk")
        if self.use_batch and request.deadline_s >= self.batch_min_deadline_s:
            return Route("batch", False, "batchable")
        if not self.local_ok.get(label.skill, False):
            return Route("realtime", False, "no local model good enough")
        if state.tier("local").queue_len >= self.overflow_queue:
            return Route("realtime", False, "local congested")
        return Route("local", False, "default local")


def _tier_cost(
    catalog: ModelCatalog, tier: str, skill: str, prompt_tokens: int, out_tokens: float, min_quality: float
) -> tuple[float, float] | None:
    """(estimated USD, expected quality) of the cheapest model of ``tier`` meeting ``min_quality``
    for ``skill`` (or of its strongest if none does); None if the tier serves no model."""
    offers = catalog.by_tier.get(tier) or []
    if not offers:
        return None
    ok = [o for o in offers if o.expected_quality[skill] >= min_quality]
    if ok:
        o = min(ok, key=lambda o: (o.est_cost(prompt_tokens, out_tokens), o.model))
    else:
        o = max(offers, key=lambda o: o.expected_quality[skill])
    return o.est_cost(prompt_tokens, out_tokens), o.expected_quality[skill]


class CostAwareRouter:
    """The cheapest tier whose best-fitting model is expected to reach ``min_quality``.

    Local GPUs count at ``local_usd_per_token`` (their amortised cost), API tiers at their rates;
    batch is a candidate only when the deadline allows; a risky request goes to real-time strong;
    a congested local tier is skipped. If no tier reaches the bar, the one with the highest
    expected quality wins.

    Args:
        catalog: the run's model offers (injected).
        min_quality: expected-success bar (0..1).
        local_usd_per_token: amortised local cost used to compare tiers (USD/token).
        batch_min_deadline_s: shortest deadline (s) that may wait for the batch API.
        overflow_queue: local queue length at which local is skipped.
        expected_output_tokens: output length assumed for cost estimates (tokens).
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        min_quality: float = 0.75,
        local_usd_per_token: float = 2e-8,
        batch_min_deadline_s: float = 86_400.0,
        overflow_queue: int = 64,
        expected_output_tokens: float = 500.0,
    ) -> None:
        if not 0.0 <= min_quality <= 1.0:
            raise ConfigError(f"router.min_quality must be in [0, 1], got {min_quality}")
        self.catalog = catalog
        self.min_quality = min_quality
        self.local_usd_per_token = local_usd_per_token
        self.batch_min_deadline_s = batch_min_deadline_s
        self.overflow_queue = overflow_queue
        self.expected_output_tokens = expected_output_tokens

    def route(self, request: RequestView, label: Label, risk: Risk, state: StateView) -> Route:
        """Cheapest adequate tier (see class docstring)."""
        if risk.escalate:
            return Route("realtime", True, "risk")
        tiers = ["local", "realtime"]
        if request.deadline_s >= self.batch_min_deadline_s:
            tiers.insert(1, "batch")
        if state.tier("local").queue_len >= self.overflow_queue:
            tiers.remove("local")
        best: tuple[bool, float, float, str] | None = None
        for t in tiers:
            c = _tier_cost(
                self.catalog,
                t,
                label.skill,
                request.prompt_tokens,
                self.expected_output_tokens,
                self.min_quality,
            )
            if c is None:
                continue
            cost, q = c
            if t == "local":
                cost = (request.prompt_tokens + self.expected_output_tokens) * self.local_usd_per_token
            key = (q < self.min_quality, cost if q >= self.min_quality else -q, -q, t)
            if best is None or key < best:
                best = key
        if best is None:
            return Route("realtime", False, "no tier")
        return Route(best[3], False, "cheapest adequate" if not best[0] else "best available")


class WinRateRouter:
    """RouteLLM-style: send a request to the strong model when its predicted strong-win rate — how
    much more likely the strongest real-time model is to succeed than the best local one, for the
    predicted skill, plus ``risk_weight`` times the predicted risk — exceeds a threshold.

    With ``target_strong_share`` the threshold is calibrated online to that share of strong calls:
    it is the ``1 - target`` quantile of the win rates seen so far (the first ``warmup`` requests
    use ``threshold``); no future request is looked at. Deadline-aware: a weak-routed request that
    can wait 24 h goes to batch's cheapest adequate model instead of local when ``use_batch``.

    Args:
        catalog: the run's model offers (injected).
        threshold: fixed win-rate threshold (used during warm-up when a target is set).
        target_strong_share: share of requests to send strong (None = fixed threshold).
        risk_weight: weight of the risk score in the win rate.
        warmup: requests routed with ``threshold`` before the quantile is trusted.
        use_batch: send weak-routed batchable requests to the batch tier.
        batch_min_deadline_s: shortest deadline (s) that may wait for the batch API.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        threshold: float = 0.2,
        target_strong_share: float | None = None,
        risk_weight: float = 0.5,
        warmup: int = 200,
        use_batch: bool = True,
        batch_min_deadline_s: float = 86_400.0,
    ) -> None:
        if target_strong_share is not None and not 0.0 <= target_strong_share <= 1.0:
            raise ConfigError("router.target_strong_share must be in [0, 1]")
        self.catalog = catalog
        self.threshold = threshold
        self.target = target_strong_share
        self.risk_weight = risk_weight
        self.warmup = warmup
        self.use_batch = use_batch
        self.batch_min_deadline_s = batch_min_deadline_s
        self._seen = RunningQuantile(1.0 - target_strong_share if target_strong_share is not None else 0.5)
        local = catalog.by_tier["local"]
        rt = catalog.by_tier["realtime"]
        skills = list(rt[0].expected_quality) if rt else []
        self._gap = {
            s: max(o.expected_quality[s] for o in rt)
            - max((o.expected_quality[s] for o in local), default=0.0)
            for s in skills
        }

    def score(self, label: Label, risk: Risk) -> float:
        """The predicted strong-win rate."""
        return self._gap.get(label.skill, 1.0) + self.risk_weight * risk.score

    def export_state(self) -> dict[str, float]:
        """State for a production artifact: the threshold in force (calibration frozen)."""
        return {"threshold": self.current_threshold()}

    def load_state(self, state: dict[str, float]) -> None:
        """Adopt an exported threshold (no further calibration)."""
        self.threshold = float(state["threshold"])
        self.target = None

    def current_threshold(self) -> float:
        """Threshold in force now (calibrated once past warm-up)."""
        if self.target is None or self._seen.n < self.warmup:
            return self.threshold
        return self._seen.value()  # = np.quantile(seen, 1 - target), O(log n) per request

    def route(self, request: RequestView, label: Label, risk: Risk, state: StateView) -> Route:
        """Strong real-time above the threshold, else the cheap side (local or batch)."""
        s = self.score(label, risk)
        thr = self.current_threshold()
        self._seen.add(s)
        if s > thr or risk.escalate:
            return Route("realtime", True, "strong-win rate above threshold")
        if self.use_batch and request.deadline_s >= self.batch_min_deadline_s:
            return Route("batch", False, "weak, batchable")
        if not self.catalog.by_tier["local"]:
            return Route("realtime", False, "weak, no local model")
        return Route("local", False, "weak")


class ThompsonRouter:
    """Thompson sampling over tiers: a Beta(successes + 1, failures + 1) posterior of the *accepted*
    rate per (predicted skill, tier); each request samples every allowed tier's posterior and takes
    the cheapest tier whose sample reaches ``min_quality`` (else the highest sample). It learns only
    from the verifier's verdicts (:meth:`observe`), never from ground truth.

    Args:
        catalog: the run's model offers (injected).
        seed: the run seed (injected); the sampling stream is ``policy.thompson``.
        min_quality: bar a sampled success rate must reach.
        batch_min_deadline_s: shortest deadline (s) that may wait for the batch API.
        prior_from_catalog: start each posterior at the catalogue's expected quality
            (``prior_strength`` pseudo-observations) instead of Beta(1, 1).
        prior_strength: pseudo-observations of that prior.
    """

    ORDER = ("local", "batch", "realtime")

    def __init__(
        self,
        catalog: ModelCatalog,
        seed: int,
        min_quality: float = 0.8,
        batch_min_deadline_s: float = 86_400.0,
        prior_from_catalog: bool = False,
        prior_strength: float = 10.0,
    ) -> None:
        self.catalog = catalog
        self.min_quality = min_quality
        self.batch_min_deadline_s = batch_min_deadline_s
        self.rng = rng_mod.stream(seed, "policy.thompson")
        self.alpha: dict[tuple[str, str], float] = {}
        self.beta: dict[tuple[str, str], float] = {}
        self.prior_from_catalog = prior_from_catalog
        self.prior_strength = prior_strength

    def _ab(self, skill: str, tier: str) -> tuple[float, float]:
        key = (skill, tier)
        if key not in self.alpha:
            q = 0.5
            if self.prior_from_catalog and self.catalog.by_tier[tier]:
                q = max(o.expected_quality[skill] for o in self.catalog.by_tier[tier])
            n = self.prior_strength if self.prior_from_catalog else 2.0
            self.alpha[key], self.beta[key] = 1e-6 + q * n, 1e-6 + (1 - q) * n
        return self.alpha[key], self.beta[key]

    def route(self, request: RequestView, label: Label, risk: Risk, state: StateView) -> Route:
        """Cheapest tier whose sampled success rate reaches the bar."""
        if risk.escalate:
            return Route("realtime", True, "risk")
        tiers = [
            t
            for t in self.ORDER
            if self.catalog.by_tier[t] and (t != "batch" or request.deadline_s >= self.batch_min_deadline_s)
        ]
        draws = {t: float(self.rng.beta(*self._ab(label.skill, t))) for t in tiers}
        for t in tiers:
            if draws[t] >= self.min_quality:
                return Route(t, False, "thompson")
        return Route(max(tiers, key=lambda t: draws[t]), False, "thompson best sample")

    def export_state(self) -> dict[str, list[list[object]]]:
        """The posteriors, for a production artifact."""
        return {
            "posteriors": [[s, t, self.alpha[(s, t)], self.beta[(s, t)]] for (s, t) in sorted(self.alpha)]
        }

    def load_state(self, state: dict[str, list[list[object]]]) -> None:
        """Adopt exported posteriors."""
        for s, t, a, b in state["posteriors"]:
            self.alpha[(str(s), str(t))] = float(a)  # type: ignore[arg-type]
            self.beta[(str(s), str(t))] = float(b)  # type: ignore[arg-type]

    def observe(self, request: RequestView, label: Label, tier: str, model: str, accepted: bool) -> None:
        """Update the posterior of (predicted skill, tier) with the verifier's verdict."""
        self._ab(label.skill, tier)
        key = (label.skill, tier)
        if accepted:
            self.alpha[key] += 1.0
        else:
            self.beta[key] += 1.0
