"""Simulate one architecture on one workload and return its per-request and per-attempt tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import simpy
from tqdm import tqdm

from simroute import rng as rng_mod
from simroute.economics.costs import allocate_fixed, attempt_costs_kernel, per_request
from simroute.economics.quality import QualityModel, correlate_attempts
from simroute.errors import ConfigError
from simroute.feedback.response_cache import ResponseCache
from simroute.policy.catalog import ModelCatalog
from simroute.policy.types import TIERS, Request
from simroute.sim.build import build_tiers
from simroute.sim.lifecycle import OUTCOMES, Lifecycle, Policies
from simroute.tiers.batch import BatchTier
from simroute.tiers.local import LocalTier
from simroute.workload.schema import RequestTable


@dataclass(frozen=True)
class SimResult:
    """What one simulated architecture produced.

    Attributes:
        requests: one row per request (see :func:`simulate`), in ``request_id`` order.
        attempts: one row per attempt.
        local_fixed_usd: provisioned local GPU cost over the billing horizon (USD).
        local_gpus: GPUs provisioned.
        horizon_s: billing horizon of the local GPUs (s).
        batch_jobs: batch jobs submitted; ``batch_expired_jobs`` of them expired.
        batch_expired_jobs: see ``batch_jobs``.
        cache_counts: response-cache lookups by outcome, inserts, evictions, expiries (empty: none).
    """

    requests: pl.DataFrame
    attempts: pl.DataFrame
    local_fixed_usd: float
    local_gpus: int
    horizon_s: float
    batch_jobs: int
    batch_expired_jobs: int
    cache_counts: Mapping[str, int] = field(default_factory=dict)


def _requests(table: RequestTable, u_classify: np.ndarray) -> list[Request]:
    d = table.df
    content, intent, text = d["content_id"].to_list(), d["intent_id"].to_list(), d["prompt"].to_list()
    cols = [
        d[c].to_list()
        for c in (
            "request_id",
            "session_id",
            "arrival_s",
            "skill",
            "urgency",
            "prompt_tokens",
            "output_tokens",
            "deadline_s",
            "difficulty",
            "missing_repo_context",
            "dependency_chain",
            "risky_migration",
            "security_sensitive",
            "high_consequence_write",
        )
    ]
    return [
        Request(i, *row, float(u_classify[i]), content[i], intent[i], text[i])  # type: ignore[call-arg]
        for i, row in enumerate(zip(*cols, strict=True))
    ]


def simulate(
    table: RequestTable,
    policies: Policies,
    tiers_cfg: Mapping[str, Any],
    catalog: ModelCatalog,
    quality: QualityModel,
    seed: int,
    *,
    label: str = "run",
    progress: bool = True,
    cache: ResponseCache | None = None,
) -> SimResult:
    """Run every request of ``table`` through ``policies`` and the configured tiers.

    The request table's columns are joined with the outcome columns: ``skill_pred``,
    ``classifier_confidence``, ``risk_score``, ``risk_escalated``, ``route_reason``, ``first_tier``,
    ``final_tier``, ``final_model``, ``attempts``, ``escalations``, ``tier_path``, ``outcome``,
    ``queue_s``, ``ttft_s``, ``tpot_s``, ``e2e_s`` (seconds), ``deadline_met``, ``cache_lookup``
    (exact/semantic/miss/bypass/off), ``cache_source_id`` (request id whose answer was served, -1)
    and the cost columns ``cost_input_usd``, ``cost_output_usd``, ``cost_api_usd``,
    ``cost_local_usd`` (amortised share of the provisioned GPUs), ``cost_cache_usd`` (lookups),
    ``cost_total_usd`` and the savings columns ``saved_prompt_cache_usd`` (provider prompt cache vs
    the same calls uncached) and ``saved_response_cache_usd`` (a hit saves what its source request
    cost; NaN when the source is not in this table). ``cache`` carries a response cache across
    calls (multi-day runs); without it a fresh one is built from ``policies.cache``.
    """
    env = simpy.Environment()
    tiers = build_tiers(env, tiers_cfg, seed, table, catalog)
    local = tiers["local"]
    assert isinstance(local, LocalTier)
    local.affinity = policies.sticky_sessions
    for m in local.specs:
        if not any(o.model == m for o in catalog.by_tier["local"]):
            raise ConfigError(f"tiers.local.pools: model {m!r} is not under models.local")
    for o in catalog.by_tier["local"]:
        if o.model not in local.specs:
            raise ConfigError(f"models.local.{o.model}: no replica pool under tiers.local.pools")
    n = len(table)
    prepare = getattr(policies.classifier, "prepare", None)
    if prepare is not None:  # text classifiers label every prompt once, up front
        prepare(table.df["prompt"].to_list(), table.source)
    u_cls, u_q = rng_mod.request_luck(seed, n)
    u_q = correlate_attempts(u_q, quality.attempt_correlation, rng_mod.stream(seed, "request.luck.shared"))
    u_verify = rng_mod.stream(seed, "request.verify").random(u_q.shape)
    u_cache = rng_mod.stream(seed, "request.cache").random(n)
    bar = tqdm(
        total=n,
        desc=f"simulating {label}",
        unit="req",
        delay=2.0,
        disable=not progress,
        leave=False,
        mininterval=0.5,
    )
    lc = Lifecycle(
        env,
        policies,
        tiers,
        quality.p_success,
        u_q,
        on_done=bar.update,
        u_verify=u_verify,
        cache=cache,
        u_cache=u_cache,
    )
    counts0 = dict(lc.cache.counts) if lc.cache is not None else {}
    env.process(lc.source(_requests(table, u_cls)))
    env.run()
    bar.close()
    if len(lc.records.requests) != n:  # conservation: every request reached a terminal state
        raise RuntimeError(f"{n - len(lc.records.requests)} requests did not terminate")
    counts = {k: v - counts0.get(k, 0) for k, v in lc.cache.counts.items()} if lc.cache is not None else {}
    return _tables(table, lc, catalog, local, quality, counts)


_REQ_COLS = [
    "_idx",
    "skill_pred",
    "classifier_confidence",
    "risk_score",
    "risk_escalated",
    "route_reason",
    "first_tier",
    "final_tier",
    "final_model",
    "attempts",
    "tier_path",
    "outcome",
    "queue_s",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "deadline_met",
    "undetected_failure",
    "local_queue_at_route",
    "cost_classifier_usd",
    "cache_lookup",
    "cost_cache_usd",
    "cache_source_id",
]
_ATT_COLS = [
    "_idx",
    "attempt",
    "tier",
    "model",
    "status",
    "submit_s",
    "start_s",
    "first_token_s",
    "end_s",
    "busy_s",
    "success",
    "retries",
    "rate_limited",
    "cached_tokens",
    "written_tokens",
    "accepted",
]


def hard_truth(table: RequestTable, catalog: ModelCatalog, quality: QualityModel) -> np.ndarray:
    """Ground truth for the failure-mode predictor: the best local model for the request's true
    skill would more likely fail than not (``P(success) < 0.5``). All False without local models."""
    local = [o.model for o in catalog.by_tier["local"]]
    if not local:
        return np.zeros(len(table), dtype=bool)
    mi = np.array([quality.models.index(m) for m in local])
    si = np.array([quality.skills.index(s) for s in table.df["skill"].to_list()])
    best = quality.ability[mi][:, si].max(axis=0)
    return np.asarray(best - table.df["difficulty"].to_numpy() < 0.0)


def _tables(
    table: RequestTable,
    lc: Lifecycle,
    catalog: ModelCatalog,
    local: LocalTier,
    quality: QualityModel,
    cache_counts: Mapping[str, int],
) -> SimResult:
    n = len(table)
    req = pl.DataFrame(
        lc.records.requests,
        schema={c: (pl.String if c in ("skill_pred", "cache_lookup") else None) for c in _REQ_COLS},
        orient="row",
    ).sort("_idx")
    att = pl.DataFrame(lc.records.attempts, schema=_ATT_COLS, orient="row").sort(["_idx", "attempt"])
    idx = att["_idx"].to_numpy().astype(np.int64)
    completed = (att["status"] == "completed").to_numpy()
    prompt = table.df["prompt_tokens"].to_numpy()[idx].astype(np.float64) * completed
    output = table.df["output_tokens"].to_numpy()[idx].astype(np.float64) * completed
    cached = att["cached_tokens"].to_numpy().astype(np.float64) * completed
    written = att["written_tokens"].to_numpy().astype(np.float64) * completed
    offers = {(t, o.model): o for t in TIERS for o in catalog.by_tier[t]}
    rows = [offers[(t, m)] for t, m in zip(att["tier"].to_list(), att["model"].to_list(), strict=True)]
    rates = np.array([o.rates for o in rows]).reshape(len(rows), -1)
    std = np.array([o.rates if o.standard_rates is None else o.standard_rates for o in rows]).reshape(
        len(rows), -1
    )
    cin, ccached, cout = attempt_costs_kernel(prompt, cached, written, output, rates)
    sin, scached, sout = attempt_costs_kernel(prompt, cached, written, output, std)
    api = cin + ccached + cout
    zero = np.zeros_like(cached)
    ucin, _, ucout = attempt_costs_kernel(prompt, zero, zero, output, rates)
    saved_prompt = ucin + ucout - api
    is_batch = (att["tier"] == "batch").to_numpy()
    discount = np.where(is_batch, sin + scached + sout - api, 0.0)
    later = att["attempt"].to_numpy() > 0
    att = att.with_columns(
        cost_usd=api, cost_input_usd=cin, cost_cached_input_usd=ccached, cost_output_usd=cout
    )
    is_local = (att["tier"] == "local").to_numpy()
    local_ends = att.filter(pl.col("tier") == "local")["end_s"]
    horizon = max(
        float(table.df["arrival_s"].to_numpy().max()),
        float(local_ends.to_numpy().max()) if len(local_ends) else 0.0,
    )
    fixed = local.n_gpus * local.gpu_hour_usd * horizon / 3600.0 if is_local.any() else 0.0
    clocal = allocate_fixed(fixed, idx[is_local], att["busy_s"].to_numpy()[is_local], n)
    api_req = per_request(idx, api, n)
    out = table.df.with_columns(
        req.drop("_idx"),
        escalations=(req["attempts"] - 1).cast(pl.Int32),
        hard_truth=hard_truth(table, catalog, quality),
        api_retries=per_request(idx, att["retries"].to_numpy().astype(np.float64), n).astype(np.int32),
        cached_tokens=per_request(idx, cached, n).astype(np.int64),
        cost_input_usd=per_request(idx, cin, n),
        cost_cached_input_usd=per_request(idx, ccached, n),
        cost_output_usd=per_request(idx, cout, n),
        cost_api_usd=api_req,
        cost_batch_discount_usd=per_request(idx, discount, n),
        cost_escalations_usd=per_request(idx, api * later, n),
        cost_local_usd=clocal,
        cost_total_usd=api_req
        + clocal
        + req["cost_classifier_usd"].to_numpy()
        + req["cost_cache_usd"].to_numpy(),
        saved_prompt_cache_usd=per_request(idx, saved_prompt, n),
    ).drop("prefix_hashes", "prompt")
    out = out.with_columns(saved_response_cache_usd=source_costs(out, out))
    out = out.with_columns(pl.col("attempts").cast(pl.Int32), pl.col("outcome").cast(pl.Enum(list(OUTCOMES))))
    batch = lc.tiers["batch"]
    assert isinstance(batch, BatchTier)
    return SimResult(
        out,
        att.rename({"_idx": "request_index"}),
        fixed,
        local.n_gpus,
        horizon,
        batch.jobs,
        batch.expired_jobs,
        dict(cache_counts),
    )


def source_costs(requests: pl.DataFrame, sources: pl.DataFrame) -> pl.Series:
    """For each request served from the response cache, what its source request cost (USD): the
    direct estimate of what the hit saved. 0 for requests not served from the cache; NaN when the
    source is not among ``sources`` (``request_id``, ``cost_total_usd``)."""
    cost = dict(zip(sources["request_id"].to_list(), sources["cost_total_usd"].to_list(), strict=True))
    vals = [0.0 if s < 0 else float(cost.get(s, float("nan"))) for s in requests["cache_source_id"].to_list()]
    return pl.Series("saved_response_cache_usd", vals, dtype=pl.Float64)
