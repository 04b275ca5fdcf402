"""Exact and semantic response cache: answer a repeated request without routing it.

The cache sits after the classifier and the risk predictor (it never sees the true skill or risk). A
request whose prompt (``content_id``) was answered before is an *exact* hit; one that asks the same
thing in other words (same ``intent_id``) is a *semantic* hit. Only accepted answers are stored,
entries expire ``ttl_s`` seconds after they were written (stale answers are never served) and the
least recently used entry is evicted beyond ``max_entries``.

A hit returns the stored answer: an exact hit is right exactly when the stored answer was; a
semantic hit is right only if, in addition, the paraphrase really wanted the same answer
(probability ``semantic_correct``; a wrong semantic hit is an undetected failure, as with a real
embedding-similarity cache). A semantic cache also matches unrelated prompts now and then: on a
miss, with probability ``false_match`` it serves the most recent live answer of the same predicted
skill — always wrong for this request. Requests the cache must not answer (a *predicted* skill
outside ``skills``, a request the risk predictor escalates, or a risk feature in
``bypass_features`` such as a high-consequence write) *bypass* it; the cache never sees the
request's true skill or risk.

Every request gets exactly one :data:`LOOKUPS` outcome, so ``exact + semantic + miss + bypass``
equals the number of requests (:meth:`ResponseCache.conserved`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simroute.errors import ConfigError
from simroute.outcomes import LOOKUPS
from simroute.policy.types import RequestView


@dataclass(frozen=True)
class CacheConfig:
    """Settings of the response cache (``policy.response_cache``).

    Attributes:
        exact: answer word-for-word repeats.
        semantic: answer same-intent paraphrases too.
        ttl_s: seconds an answer stays servable after it was written.
        max_entries: capacity (least recently used evicted first).
        lookup_s: latency of an exact lookup (s).
        semantic_lookup_s: extra latency of a semantic lookup (embedding + vector search, s).
        semantic_lookup_usd: cost of embedding one request for the semantic lookup (USD).
        semantic_correct: probability that a paraphrase's stored answer is right for it too.
        false_match: probability that a semantic lookup with no true match returns an unrelated
            stored answer of the same predicted skill (assumed; embedding caches trade this off
            against hit rate through their similarity threshold).
        skills: skills whose answers may be cached and served (None: all).
        bypass_features: boolean risk features that exclude a request (side effects, secrets).
    """

    exact: bool = True
    semantic: bool = False
    ttl_s: float = 86_400.0
    max_entries: int = 100_000
    lookup_s: float = 0.002
    semantic_lookup_s: float = 0.02
    semantic_lookup_usd: float = 2e-6
    semantic_correct: float = 0.9
    false_match: float = 0.0
    skills: tuple[str, ...] | None = None
    bypass_features: tuple[str, ...] = ("high_consequence_write", "security_sensitive")

    @staticmethod
    def from_config(cfg: Mapping[str, Any] | None, skills: Sequence[str]) -> CacheConfig | None:
        """Parse ``policy.response_cache`` (None or ``enabled: false``: no cache)."""
        if not cfg or not cfg.get("enabled", False):
            return None
        known = set(CacheConfig.__dataclass_fields__) | {"enabled"}
        extra = set(cfg) - known
        if extra:
            raise ConfigError(
                f"policy.response_cache: unknown key(s) {sorted(extra)}; valid: {sorted(known)}"
            )
        kw = {k: v for k, v in cfg.items() if k != "enabled"}
        if kw.get("skills") is not None:
            bad = set(kw["skills"]) - set(skills)
            if bad:
                raise ConfigError(f"policy.response_cache.skills: unknown skill(s) {sorted(bad)}")
            kw["skills"] = tuple(kw["skills"])
        if "bypass_features" in kw:
            ok = {"missing_repo_context", "risky_migration", "security_sensitive", "high_consequence_write"}
            bad = set(kw["bypass_features"]) - ok
            if bad:
                raise ConfigError(f"policy.response_cache.bypass_features: expected some of {sorted(ok)}")
            kw["bypass_features"] = tuple(kw["bypass_features"])
        c = CacheConfig(**kw)
        if not (c.ttl_s > 0 and c.max_entries >= 1 and 0.0 <= c.semantic_correct <= 1.0):
            raise ConfigError(
                "policy.response_cache: need ttl_s > 0, max_entries >= 1, 0 <= semantic_correct <= 1"
            )
        if not 0.0 <= c.false_match <= 1.0:
            raise ConfigError("policy.response_cache.false_match must be in [0, 1]")
        if c.lookup_s < 0 or c.semantic_lookup_s < 0 or c.semantic_lookup_usd < 0:
            raise ConfigError("policy.response_cache: lookup latencies and cost must be >= 0")
        return c


@dataclass(frozen=True, init=False)
class Entry:
    """A stored answer: who produced it (request id, model), whether it was right, until when."""

    source_id: int
    model: str
    correct: bool
    expires_at: float
    intent_id: int
    skill: str = ""

    def __init__(
        self, source_id: int, model: str, correct: bool, expires_at: float, intent_id: int, skill: str = ""
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "source_id", source_id)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "correct", correct)
        object.__setattr__(self, "expires_at", expires_at)
        object.__setattr__(self, "intent_id", intent_id)
        object.__setattr__(self, "skill", skill)


@dataclass(frozen=True, init=False)
class Hit:
    """A served answer: ``kind`` is ``exact`` or ``semantic``; ``correct`` for this request."""

    kind: str
    entry: Entry
    correct: bool

    def __init__(self, kind: str, entry: Entry, correct: bool) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "correct", correct)


@dataclass
class ResponseCache:
    """The cache's state over one run (or several simulated days: times are absolute seconds).

    ``counts`` holds one count per :data:`LOOKUPS` outcome plus ``inserts``, ``evictions`` and
    ``expired`` (entries found stale at lookup).
    """

    config: CacheConfig
    clock_offset_s: float = 0.0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (*LOOKUPS, "inserts", "evictions", "expired", "false_matches"), 0
        )
    )
    _by_content: OrderedDict[int, Entry] = field(default_factory=OrderedDict)
    _by_intent: dict[int, int] = field(default_factory=dict)
    _last_of_skill: dict[str, int] = field(default_factory=dict)

    def eligible(self, req: RequestView, skill: str, risky: bool) -> bool:
        """Whether ``req`` (predicted ``skill``; ``risky``: the risk predictor escalates it) may be
        answered from (and stored in) the cache."""
        c = self.config
        if req.content_id < 0 or risky or (c.skills is not None and skill not in c.skills):
            return False
        return not any(getattr(req, f) for f in c.bypass_features)

    def lookup_latency_s(self) -> float:
        """Seconds a lookup takes (exact, plus the embedding when semantic matching is on)."""
        return self.config.lookup_s + (self.config.semantic_lookup_s if self.config.semantic else 0.0)

    def lookup_cost_usd(self) -> float:
        """USD a lookup costs (the embedding of a semantic lookup)."""
        return self.config.semantic_lookup_usd if self.config.semantic else 0.0

    def lookup(
        self, req: RequestView, skill: str, risky: bool, now_s: float, u: float, u_false: float = 1.0
    ) -> Hit | None:
        """Look ``req`` up at simulated time ``now_s``; ``u`` is its uniform for semantic correctness,
        ``u_false`` for a false match.

        Counts the outcome (``exact``/``semantic``/``miss``/``bypass``) exactly once."""
        if not self.eligible(req, skill, risky):
            self.counts["bypass"] += 1
            return None
        t = now_s + self.clock_offset_s
        if self.config.exact:
            e = self._live(req.content_id, t)
            if e is not None:
                self._by_content.move_to_end(req.content_id)
                self.counts["exact"] += 1
                return Hit("exact", e, e.correct)
        if self.config.semantic:
            cid = self._by_intent.get(req.intent_id)
            e = self._live(cid, t) if cid is not None else None
            if e is not None and cid is not None:
                self._by_content.move_to_end(cid)
                kind = "exact" if cid == req.content_id else "semantic"
                self.counts[kind] += 1
                ok = e.correct and (kind == "exact" or u < self.config.semantic_correct)
                return Hit(kind, e, ok)
            wrong = self._false_match(skill, t) if u_false < self.config.false_match else None
            if wrong is not None:
                self.counts["semantic"] += 1
                self.counts["false_matches"] += 1
                return Hit("semantic", wrong, False)
        self.counts["miss"] += 1
        return None

    def _false_match(self, skill: str, t: float) -> Entry | None:
        """The most recent live answer of predicted ``skill`` (what a too-loose similarity
        threshold returns for an unrelated prompt), or None."""
        cid = self._last_of_skill.get(skill)
        return self._live(cid, t) if cid is not None else None

    def insert(
        self, req: RequestView, skill: str, risky: bool, now_s: float, model: str, correct: bool
    ) -> None:
        """Store the accepted answer to ``req`` (predicted ``skill``, produced by ``model``;
        ``correct`` is the world's truth, used only to score later hits)."""
        if not self.eligible(req, skill, risky):
            return
        t = now_s + self.clock_offset_s
        e = Entry(req.request_id, model, correct, t + self.config.ttl_s, req.intent_id, skill)
        self._by_content[req.content_id] = e
        self._by_content.move_to_end(req.content_id)
        self._by_intent[req.intent_id] = req.content_id
        self._last_of_skill[skill] = req.content_id
        self.counts["inserts"] += 1
        while len(self._by_content) > self.config.max_entries:
            cid, old = self._by_content.popitem(last=False)
            self._forget_intent(cid, old)
            self.counts["evictions"] += 1

    def conserved(self, n_requests: int) -> bool:
        """True when every one of ``n_requests`` lookups was counted exactly once."""
        return sum(self.counts[k] for k in LOOKUPS) == n_requests

    def _live(self, cid: int, t: float) -> Entry | None:
        e = self._by_content.get(cid)
        if e is None:
            return None
        if e.expires_at <= t:
            del self._by_content[cid]
            self._forget_intent(cid, e)
            self.counts["expired"] += 1
            return None
        return e

    def _forget_intent(self, cid: int, e: Entry) -> None:
        if self._by_intent.get(e.intent_id) == cid:
            del self._by_intent[e.intent_id]
