"""Turn the (already plain-dict) run config into typed objects, once, at the entry point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simroute.config import config_count
from simroute.economics.costs import rate_row
from simroute.economics.prices import PriceTable, load_litellm
from simroute.economics.quality import QualityModel
from simroute.errors import ConfigError
from simroute.policy import registry
from simroute.policy.catalog import ModelCatalog, Offer
from simroute.policy.response_cache import CacheConfig
from simroute.sim.lifecycle import Policies
from simroute.sim.prior import PriorConfig, expected_quality
from simroute.tiers import factory
from simroute.tiers.base import Tier
from simroute.workload.labels import label_trace, rules_from_config
from simroute.workload.loaders import load_raw
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.respace import respace_sessions
from simroute.workload.schema import RequestTable
from simroute.workload.skills import SkillCatalog, catalog_from_config
from simroute.workload.synthetic import generate


def load_workload(cfg: Mapping[str, Any], skills: SkillCatalog, seed: int) -> RequestTable:
    """The run's request table: synthetic (``kind: synthetic``) or a trace file (``kind: trace``)."""
    kind = cfg.get("kind")
    if kind == "synthetic":
        return generate(cfg, skills, seed)
    if kind == "trace":
        path = cfg.get("path")
        if not path:
            raise ConfigError(
                "workload.path is required for a trace workload "
                "(e.g. workload=trace workload.path=my_trace.csv)"
            )
        limit = _trace_limit(cfg.get("n_requests"))  # checked before the trace is read and labelled
        raw = load_raw(Path(str(path)), cfg.get("format") or None)
        labels = cfg["labels"]
        rules = rules_from_config(labels.get("rules", []), skills)
        table = label_trace(raw, skills, rules, str(labels["default"]), seed)
        if limit is not None and limit < len(table):
            table = table.rows(0, limit)
        spacing = cfg.get("session_spacing_s")
        return table if spacing is None else respace_sessions(table, float(spacing))
    raise ConfigError(f"workload.kind: expected 'synthetic' or 'trace', got {kind!r}")


def _trace_limit(value: Any) -> int | None:
    """``workload.n_requests`` of a trace workload: None (the whole trace) or a count >= 1."""
    if value is None:
        return None
    return config_count(value, "workload.n_requests (a trace's first rows, or null)")


def build_quality(cfg_models: Mapping[str, Any], skills: SkillCatalog) -> QualityModel:
    """Abilities (logits) of every configured model: ``default`` plus per-skill overrides."""
    names: list[str] = []
    rows: list[list[float]] = []
    for group in ("local", "api"):
        for model, spec in (cfg_models.get(group) or {}).items():
            ab = dict(spec["ability"])
            unknown = set(ab) - {"default", *skills.names}
            if unknown:
                raise ConfigError(f"models.{group}.{model}.ability: unknown skill(s) {sorted(unknown)}")
            if "default" not in ab and set(ab) != set(skills.names):
                raise ConfigError(f"models.{group}.{model}.ability: give 'default' or every skill")
            names.append(str(model))
            default = float(ab.get("default", 0.0))
            rows.append([float(ab[s]) if s in ab else default for s in skills.names])
    if not names:
        raise ConfigError("models: no models configured")
    rho = float(cfg_models.get("attempt_correlation", 0.0))
    if not 0.0 <= rho <= 1.0:
        raise ConfigError(f"models.attempt_correlation: expected a share in [0, 1], got {rho}")
    return QualityModel(tuple(names), skills.names, np.array(rows), rho)


def build_catalog(
    cfg_models: Mapping[str, Any],
    prices: PriceTable,
    quality: QualityModel,
    skills: SkillCatalog,
    seed: int = 0,
    capacity: Mapping[str, int] | None = None,
) -> ModelCatalog:
    """Offers: local models at zero marginal price, API models at their LiteLLM prices per tier,
    each with the expected quality the policies may know (:mod:`simroute.sim.prior`: a stated prior
    and an offline evaluation of judged samples, never the true abilities)."""
    expected = expected_quality(PriorConfig.from_config(cfg_models.get("prior")), quality, skills, seed)
    q = {
        m: dict(zip(skills.names, map(float, expected[i]), strict=True)) for i, m in enumerate(quality.models)
    }
    offers: list[Offer] = []
    for model in cfg_models.get("local") or {}:
        offers.append(
            Offer(
                str(model),
                "local",
                "local",
                rate_row(None, "standard"),
                q[str(model)],
                capacity=int((capacity or {}).get(str(model), 0)),
            )
        )
    for model, spec in (cfg_models.get("api") or {}).items():
        price = prices.get(str(model))
        for tier in spec.get("tiers", ["batch", "realtime"]):
            if tier not in ("batch", "realtime"):
                raise ConfigError(f"models.api.{model}.tiers: unknown tier {tier!r}")
            mode = "batch" if tier == "batch" else str(spec.get("realtime_mode", "standard"))
            offers.append(
                Offer(
                    str(model), tier, mode, rate_row(price, mode), q[str(model)], rate_row(price, "standard")
                )
            )
    return ModelCatalog(offers)


def build_policies(cfg_policy: Mapping[str, Any], ctx: registry.PolicyContext) -> Policies:
    """Instantiate the policy layers named in ``cfg_policy`` (every one, the verifier included),
    its ``response_cache``, ``sticky_sessions`` and ``provision_local`` options. An architecture
    that does not provision local GPUs builds its policies on a catalogue without local models."""
    kinds = ("classifier", "risk", "router", "selector", "escalation", "verifier")
    missing = [k for k in kinds if k not in cfg_policy]
    if missing:
        raise ConfigError(
            f"policy: missing layer(s) {missing} (a verifier is one: judge, noisy, none or oracle)"
        )
    flags = {k: cfg_policy.get(k, d) for k, d in (("sticky_sessions", False), ("provision_local", True))}
    for k, v in flags.items():
        if not isinstance(v, bool):
            raise ConfigError(f"policy.{k}: expected true or false, got {v!r}")
    if not flags["provision_local"]:
        ctx = replace(ctx, catalog=ctx.catalog.without_tier("local"))
    built = {k: registry.build(k, cfg_policy[k], ctx) for k in kinds}
    return Policies(
        **built,
        cache=CacheConfig.from_config(cfg_policy.get("response_cache"), ctx.skills),
        sticky_sessions=flags["sticky_sessions"],
        provision_local=flags["provision_local"],
    )


def prefix_runs(table: RequestTable) -> PrefixRuns:
    """The request table's prefix ids as runs of consecutive ids (those it holds, or its
    ``prefix_hashes`` encoded a chunk of rows at a time)."""
    return table.prefix_ids()


def build_tiers(
    env: simpy.Environment,
    cfg: Mapping[str, Any],
    seed: int,
    table: RequestTable | None = None,
    catalog: ModelCatalog | None = None,
    prefixes: PrefixRuns | None = None,
) -> dict[str, Tier]:
    """The three tiers (see :mod:`simroute.tiers.factory`), given the workload's prefix ids
    (``prefixes``: already encoded, see :func:`prefix_runs`; else read from ``table``)."""
    models = {t: [o.model for o in catalog.by_tier[t]] for t in ("batch", "realtime")} if catalog else {}
    if prefixes is None and table is not None:
        prefixes = prefix_runs(table)
    return factory.build_tiers(
        env,
        cfg,
        seed,
        models,
        prefixes,
        table.block_tokens if table is not None else 0,
    )


def local_capacity(cfg_tiers: Mapping[str, Any]) -> dict[str, int]:
    """Concurrent requests each local model's pool serves: replicas x ``engine.max_num_seqs``."""
    out: dict[str, int] = {}
    for pool in (cfg_tiers.get("local") or {}).get("pools") or []:
        seqs = int((pool.get("engine") or {}).get("max_num_seqs", 0))
        out[str(pool["model"])] = out.get(str(pool["model"]), 0) + int(pool.get("replicas", 1)) * seqs
    return out


@dataclass(frozen=True)
class RunInputs:
    """Everything a run needs besides the policies: skills, requests, prices, quality, offers."""

    skills: SkillCatalog
    table: RequestTable
    prices: PriceTable
    quality: QualityModel
    catalog: ModelCatalog


def setup(cfg: Mapping[str, Any], seed: int) -> RunInputs:
    """Build the run inputs from a resolved config (the workload drawn with ``seed``)."""
    skills = catalog_from_config(cfg["skills"])
    table = load_workload(cfg["workload"], skills, seed)
    prices = load_litellm(cfg["prices"], dict(cfg["models"].get("price_aliases") or {})).with_batch_scale(
        float(cfg["models"].get("batch_price_scale", 1.0))
    )
    quality = build_quality(cfg["models"], skills)
    catalog = build_catalog(cfg["models"], prices, quality, skills, seed, local_capacity(cfg["tiers"]))
    return RunInputs(skills, table, prices, quality, catalog)
