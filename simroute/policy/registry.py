"""Name -> implementation registry, so configs name policies and never import paths.

A config entry looks like ``{name: rules, overflow_queue: 64}``: ``name`` picks the class from
:data:`REGISTRY` and the other keys become constructor arguments. Run-level objects the classes
need (the skill names, the model catalogue, the seed, and ``build_selector`` for selectors made of
selectors) are injected by name, not configured. Unknown names and
unknown arguments raise :class:`ConfigError` listing what is valid. An argument set to ``null`` is
left at its default, so a policy file that extends another can unset an inherited argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simroute.errors import ConfigError
from simroute.policy.catalog import ModelCatalog
from simroute.policy.classifiers import NoisyClassifier, OracleClassifier
from simroute.policy.escalation import NoEscalation, StrongerModel
from simroute.policy.risk import LogisticRisk, NeverEscalate
from simroute.policy.routers import CostAwareRouter, RuleRouter, StaticRouter, ThompsonRouter, WinRateRouter
from simroute.policy.selectors import ABSelector, RecordedSelector, StrongestSelector, ThresholdSelector
from simroute.policy.text import EmbeddingClassifier, KeywordClassifier
from simroute.policy.verifiers import JudgeVerifier, NoisyVerifier, NoVerifier, OracleVerifier

REGISTRY: dict[str, dict[str, type]] = {
    "classifier": {
        "oracle": OracleClassifier,
        "noisy": NoisyClassifier,
        "keyword": KeywordClassifier,
        "embedding": EmbeddingClassifier,
    },
    "risk": {"none": NeverEscalate, "logistic": LogisticRisk},
    "router": {
        "rules": RuleRouter,
        "static": StaticRouter,
        "cost_aware": CostAwareRouter,
        "win_rate": WinRateRouter,
        "thompson": ThompsonRouter,
    },
    "selector": {
        "threshold": ThresholdSelector,
        "strongest": StrongestSelector,
        "ab": ABSelector,
        "recorded": RecordedSelector,
    },
    "verifier": {
        "judge": JudgeVerifier,
        "noisy": NoisyVerifier,
        "none": NoVerifier,
        "oracle": OracleVerifier,
    },
    "escalation": {"none": NoEscalation, "stronger_model": StrongerModel},
}
"""Policy kind -> name -> class. Add an implementation by adding one line here."""


@dataclass(frozen=True)
class PolicyContext:
    """Run-level objects injected into policy constructors that declare them."""

    skills: tuple[str, ...]
    catalog: ModelCatalog
    seed: int = 0


def build(kind: str, cfg: Mapping[str, Any], ctx: PolicyContext) -> Any:
    """Instantiate the ``kind`` policy described by ``cfg`` (``name`` plus constructor args)."""
    if kind not in REGISTRY:
        raise ConfigError(f"unknown policy kind {kind!r}; valid: {', '.join(REGISTRY)}")
    params = {k: v for k, v in cfg.items() if v is not None}  # null = leave at the default
    name = params.pop("name", None)
    options = REGISTRY[kind]
    if name not in options:
        raise ConfigError(f"policy.{kind}.name: unknown {kind} {name!r}; valid: {', '.join(sorted(options))}")
    cls = options[name]
    sig = inspect.signature(cls)
    run_level = {
        "skills": ctx.skills,
        "catalog": ctx.catalog,
        "seed": ctx.seed,
        "build_selector": lambda child: build("selector", child, ctx),
    }
    injected = {k: v for k, v in run_level.items() if k in sig.parameters}
    accepted = [k for k in sig.parameters if k not in injected]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"policy.{kind} ({name}): unknown argument(s) {unknown}; accepted: {accepted or 'none'}"
        )
    try:
        return cls(**injected, **params)
    except TypeError as e:
        raise ConfigError(f"policy.{kind} ({name}): {e}") from None
