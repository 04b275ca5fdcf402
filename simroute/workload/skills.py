"""The operations of an agent fleet ("skills") and their statistical profiles.

A profile says, for one skill, how long its prompts and outputs are, how urgent it is (which sets
its deadline), how hard it is, and how often each of the five risk features occurs. Profiles come
from the ``skills`` config group; the synthetic generator samples from them and the trace labeller
uses them to fill in what real traces lack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simroute.errors import ConfigError

URGENCIES: tuple[str, ...] = ("interactive", "soon", "batchable")
"""Urgency classes, most urgent first. Each maps to a deadline in seconds (``deadlines_s``)."""

RISK_FEATURES: tuple[str, ...] = (
    "missing_repo_context",
    "dependency_chain",
    "risky_migration",
    "security_sensitive",
    "high_consequence_write",
)
"""The five failure-mode features; ``dependency_chain`` is a length (int), the others booleans."""


@dataclass(frozen=True)
class TokenDist:
    """Log-normal token-count distribution, clipped to ``[lo, hi]`` tokens."""

    median: float
    sigma: float
    lo: int
    hi: int

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` token counts (int64, tokens)."""
        x = self.median * np.exp(self.sigma * rng.standard_normal(n))
        return np.clip(np.rint(x), self.lo, self.hi).astype(np.int64)


@dataclass(frozen=True)
class RiskRates:
    """Per-request probabilities of the boolean risk features; Poisson mean of dependency_chain."""

    missing_repo_context: float
    dependency_chain_mean: float
    risky_migration: float
    security_sensitive: float
    high_consequence_write: float


@dataclass(frozen=True)
class SkillProfile:
    """Everything simroute assumes about one agent operation.

    Attributes:
        name: skill label, e.g. ``"code_change"``.
        weight: relative share of *sessions* of this skill in the synthetic generator.
        prompt: prompt-token distribution of a session's first step (tokens).
        output: output-token distribution (tokens).
        urgency: probability of each urgency class (keys from :data:`URGENCIES`).
        difficulty_mean: mean latent difficulty (logits; 0 = average item).
        difficulty_sd: its standard deviation (logits).
        risk: risk-feature rates.
        risk_difficulty: extra difficulty (logits) per active risk feature — the ground truth that
            makes the failure-mode predictor worth having.
        steps_mean: mean number of steps (requests) in a session of this skill (>= 1).
        context_growth: share of the previous step's prompt+output carried into the next prompt.
        system_prompt_tokens: prefix shared by every request of this skill (tokens).
        repeat_exact: probability that a session's first request repeats, word for word, the
            first request of an earlier session of this skill (same prompt: a response-cache hit).
        repeat_near: probability that it asks the same thing in other words (same intent, new
            prompt: what a semantic cache matches).
    """

    name: str
    weight: float
    prompt: TokenDist
    output: TokenDist
    urgency: Mapping[str, float]
    difficulty_mean: float
    difficulty_sd: float
    risk: RiskRates
    risk_difficulty: float
    steps_mean: float
    context_growth: float
    system_prompt_tokens: int
    repeat_exact: float = 0.0
    repeat_near: float = 0.0


@dataclass(frozen=True)
class SkillCatalog:
    """The skill profiles of a run plus the deadline of each urgency class (seconds)."""

    profiles: tuple[SkillProfile, ...]
    deadlines_s: Mapping[str, float]

    @property
    def names(self) -> tuple[str, ...]:
        """Skill names in catalogue order (this order defines skill codes)."""
        return tuple(p.name for p in self.profiles)

    def profile(self, name: str) -> SkillProfile:
        """Return the profile of skill ``name`` (ConfigError listing valid names otherwise)."""
        for p in self.profiles:
            if p.name == name:
                return p
        raise ConfigError(f"unknown skill {name!r}; valid skills: {', '.join(self.names)}")


def _token_dist(d: Mapping[str, Any], where: str) -> TokenDist:
    try:
        td = TokenDist(float(d["median"]), float(d["sigma"]), int(d["lo"]), int(d["hi"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: expected median, sigma, lo, hi ({e})") from None
    if not (td.median > 0 and td.sigma >= 0 and 1 <= td.lo <= td.hi):
        raise ConfigError(f"{where}: need median > 0, sigma >= 0, 1 <= lo <= hi, got {td}")
    return td


def catalog_from_config(cfg: Mapping[str, Any]) -> SkillCatalog:
    """Build a :class:`SkillCatalog` from the ``skills`` config mapping, checking every field."""
    deadlines = {u: float(cfg["deadlines_s"][u]) for u in URGENCIES}
    profiles = []
    for name, p in cfg["profiles"].items():
        where = f"skills.profiles.{name}"
        urg = {u: float(p["urgency"].get(u, 0.0)) for u in URGENCIES}
        extra = set(p["urgency"]) - set(URGENCIES)
        if extra or abs(sum(urg.values()) - 1.0) > 1e-6:
            raise ConfigError(f"{where}.urgency: probabilities over {URGENCIES} summing to 1")
        r = p["risk"]
        risk = RiskRates(
            float(r["missing_repo_context"]),
            float(r["dependency_chain_mean"]),
            float(r["risky_migration"]),
            float(r["security_sensitive"]),
            float(r["high_consequence_write"]),
        )
        profiles.append(
            SkillProfile(
                name=str(name),
                weight=float(p["weight"]),
                prompt=_token_dist(p["prompt"], f"{where}.prompt"),
                output=_token_dist(p["output"], f"{where}.output"),
                urgency=urg,
                difficulty_mean=float(p["difficulty_mean"]),
                difficulty_sd=float(p["difficulty_sd"]),
                risk=risk,
                risk_difficulty=float(p["risk_difficulty"]),
                steps_mean=float(p["steps_mean"]),
                context_growth=float(p["context_growth"]),
                system_prompt_tokens=int(p["system_prompt_tokens"]),
                repeat_exact=float((p.get("repeat") or {}).get("exact", 0.0)),
                repeat_near=float((p.get("repeat") or {}).get("near", 0.0)),
            )
        )
        rep = profiles[-1]
        if not (rep.repeat_exact >= 0 and rep.repeat_near >= 0 and rep.repeat_exact + rep.repeat_near <= 1):
            raise ConfigError(f"{where}.repeat: exact, near >= 0 with exact + near <= 1")
    if not profiles:
        raise ConfigError("skills.profiles: at least one skill is required")
    return SkillCatalog(tuple(profiles), deadlines)


def draw_urgency(profiles: list[SkillProfile], skill_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One urgency class per unit (request or session) from its skill's urgency mix.

    Args:
        profiles: the catalogue's profiles; ``skill_idx`` indexes into it.
        skill_idx: skill code of each unit (int array, length n).
        rng: the generator to draw from (one uniform per unit).

    Returns:
        Urgency names (str array, length n), from :data:`URGENCIES`.
    """
    return _urgency_of(profiles, skill_idx, rng.random(len(skill_idx)))


def _urgency_of(profiles: list[SkillProfile], skill_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Urgency class of each unit by inverting its skill's urgency CDF at the uniform ``u``."""
    urgency = np.empty(len(skill_idx), dtype=object)
    for k, p in enumerate(profiles):
        m = skill_idx == k
        if m.any():
            cum = np.cumsum([p.urgency[x] for x in URGENCIES])
            urgency[m] = np.asarray(URGENCIES, dtype=object)[
                np.minimum(np.searchsorted(cum, u[m], side="right"), len(URGENCIES) - 1)
            ]
    return urgency.astype(str)


def word_codes(values: np.ndarray, words: Sequence[str]) -> np.ndarray:
    """Each of ``values`` (a NumPy str array) as its index in ``words`` (a value not in it: ValueError)."""
    codes = np.full(len(values), -1, dtype=np.int64)
    for k, word in enumerate(words):
        codes[values == word] = k
    if (codes < 0).any():
        raise ValueError(f"{str(values[np.argmin(codes)])!r} is not one of {list(words)}")
    return codes


def _deadlines(urgency: np.ndarray, deadlines_s: Mapping[str, float]) -> np.ndarray:
    """Each unit's deadline (s): its urgency class's in ``deadlines_s`` (a class it lacks: ValueError)."""
    words = list(deadlines_s)
    return np.asarray(np.array([deadlines_s[w] for w in words], dtype=np.float64)[word_codes(urgency, words)])


def sample_attributes(
    profiles: list[SkillProfile],
    skill_idx: np.ndarray,
    deadlines_s: Mapping[str, float],
    rng: np.random.Generator,
    urgency: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Draw urgency, deadline, difficulty and risk features for requests of the given skills.

    Args:
        profiles: the catalogue's profiles; ``skill_idx`` indexes into it.
        skill_idx: skill code of each request (int array, length n).
        deadlines_s: deadline (seconds after arrival) of each urgency class.
        rng: the workload's generator.
        urgency: the requests' urgency classes when fixed elsewhere (e.g. once per session, as the
            synthetic generator does); None draws one per request. Either way ``rng`` advances by
            the same draws, so the other columns do not depend on this choice.

    Returns:
        Columns ``urgency``, ``deadline_s`` (from the urgency), ``difficulty`` and the five risk
        features (length n).
    """
    n = len(skill_idx)
    u = rng.random((n, 6))
    if urgency is not None and len(urgency) != n:
        raise ValueError(f"urgency has {len(urgency)} entries for {n} requests")
    urg = _urgency_of(profiles, skill_idx, u[:, 0]) if urgency is None else np.asarray(urgency, dtype=str)
    z = rng.standard_normal(n)
    chain_draw = rng.random(n)

    def per_row(values: list[float]) -> np.ndarray:  # a per-skill parameter, row by row
        return np.asarray(np.array(values, dtype=np.float64)[skill_idx])

    flags = ("missing_repo_context", "risky_migration", "security_sensitive", "high_consequence_write")
    cols = {k: u[:, j] < per_row([getattr(p.risk, k) for p in profiles]) for j, k in enumerate(flags, 1)}
    difficulty = (
        per_row([p.difficulty_mean for p in profiles]) + per_row([p.difficulty_sd for p in profiles]) * z
    )
    chain = np.zeros(n, dtype=np.int64)
    by_skill = np.argsort(skill_idx, kind="stable")  # each skill's rows, in row order
    counts = np.bincount(skill_idx, minlength=len(profiles))
    ends = np.cumsum(counts)
    for k, p in enumerate(profiles):
        rows = by_skill[ends[k] - counts[k] : ends[k]]
        chain[rows] = _poisson_inverse(chain_draw[rows], p.risk.dependency_chain_mean)
    n_risk = (
        cols["missing_repo_context"].astype(np.int64)
        + cols["risky_migration"]
        + cols["security_sensitive"]
        + cols["high_consequence_write"]
        + (chain >= 4)
    )
    rd = np.array([p.risk_difficulty for p in profiles])[skill_idx]
    difficulty = difficulty + rd * n_risk
    deadline = _deadlines(urg, deadlines_s)
    out: dict[str, np.ndarray] = {
        "urgency": urg,
        "deadline_s": deadline,
        "difficulty": difficulty,
        "dependency_chain": chain,
    }
    out.update(cols)
    return out


def _poisson_inverse(u: np.ndarray, mean: float) -> np.ndarray:
    """Poisson(mean) quantile of uniforms ``u`` (inverse CDF, exact for the small means used)."""
    if mean <= 0:
        return np.zeros(len(u), dtype=np.int64)
    k_max = int(mean + 12 * np.sqrt(mean) + 12)
    k = np.arange(k_max + 1)
    logpmf = k * np.log(mean) - mean - np.cumsum(np.log(np.maximum(k, 1)))
    cdf = np.cumsum(np.exp(logpmf))
    return np.minimum(np.searchsorted(cdf, u, side="right"), k_max).astype(np.int64)
