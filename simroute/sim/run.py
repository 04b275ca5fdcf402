"""Simulate one architecture on one workload and return its per-request and per-attempt tables."""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import simpy
from tqdm import tqdm

from simroute import rng as rng_mod
from simroute.economics.accounting import (
    AttemptCosts,
    AttemptTokens,
    RequestCostInputs,
    attempt_costs,
    billing_horizon_s,
    local_fixed_usd,
    request_cost_columns,
)
from simroute.economics.quality import QualityModel
from simroute.errors import ConfigError
from simroute.memory import LARGE_RUN_REQUESTS, fewer_collections, release_memory
from simroute.outcomes import COMPLETED, OUTCOMES, TIERS
from simroute.policy.catalog import ModelCatalog
from simroute.policy.response_cache import ResponseCache
from simroute.record_types import AttemptRecord
from simroute.records import ArmRecords, SimResult, SpooledRecords, schema
from simroute.sim.build import build_tiers
from simroute.sim.event_loop import run_all
from simroute.sim.lifecycle import Lifecycle, Policies, Records
from simroute.sim.luck_blocks import BlockedUniforms, LuckStreams
from simroute.sim.rows import REQUEST_FIELDS, RequestRows
from simroute.sim.sessions import ReplayConfig, route_deadlines
from simroute.tiers.batch import BatchTier
from simroute.tiers.local import LocalTier
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.schema import RequestTable

SIMULATION_COLUMNS: frozenset[str] = frozenset((*REQUEST_FIELDS, "prefix_hashes"))
"""The request-table columns a simulation reads (:func:`simulate_logs` sees no other): a process
that only simulates reads only these (at 10 M requests the rest, e.g. ``agent`` and the recorded
latencies, are about 0.5 GiB)."""


def _prepare_classifier(policies: Policies, table: RequestTable, u_cls: np.ndarray) -> None:
    """Text classifiers label every prompt once, up front; simulated classifiers get their labels
    drawn by the world (from the true skills and the classifier uniforms ``u_cls``)."""
    prepare = getattr(policies.classifier, "prepare", None)
    if prepare is not None:
        prepare(table.df["prompt"].to_list(), table.source)
    simulate_labels = getattr(policies.classifier, "simulate", None)
    if simulate_labels is not None:
        simulate_labels(table.df["skill"], u_cls)


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
    billing_s: float | None = None,
    replay: ReplayConfig | None = None,
    prefixes: PrefixRuns | None = None,
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
    calls (multi-day runs); without it a fresh one is built from ``policies.cache``. Provisioned
    local GPUs are billed whenever the architecture provisions them (used or not) for ``billing_s``
    seconds (default: until the last issue or the last local attempt ends). ``replay`` (default:
    closed loop) says how requests are released (:mod:`simroute.sim.sessions`): ``arrival_s`` in the
    result is the simulated issue time (``recorded_arrival_s`` keeps the table's), ``first_model``
    the model of the first attempt. ``prefixes``: the table's prefix ids as runs, if already encoded.
    """
    return result_tables(
        table,
        simulate_logs(
            table,
            policies,
            tiers_cfg,
            catalog,
            quality,
            seed,
            label=label,
            progress=progress,
            cache=cache,
            replay=replay,
            prefixes=prefixes,
        ).take(),
        catalog,
        quality,
        billing_s,
    )


def simulate_logs(
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
    replay: ReplayConfig | None = None,
    prefixes: PrefixRuns | None = None,
) -> ArmLogs:
    """Simulate (the arguments of :func:`simulate` but ``billing_s``) and return what the
    simulation logged, the rest of it freed: :meth:`ArmLogs.take` gives the records as tables,
    :meth:`ArmLogs.spool` writes them to files for another process."""
    table = table.only(SIMULATION_COLUMNS)
    env = simpy.Environment()
    tiers = build_tiers(env, tiers_cfg, seed, table, catalog, prefixes)
    local = tiers["local"]
    assert isinstance(local, LocalTier)
    local.affinity = policies.sticky_sessions
    _check_local_pools(local, catalog)
    n = len(table)
    luck = LuckStreams(seed, n, quality.attempt_correlation)  # drawn a block of rows at a time
    u_cls = luck.classify()
    _prepare_classifier(policies, table, u_cls)
    u_q = BlockedUniforms(luck.quality_block, n, rng_mod.MAX_ATTEMPTS_LUCK)
    u_verify = BlockedUniforms(luck.verify_block, n, rng_mod.MAX_ATTEMPTS_LUCK)
    u_cache = BlockedUniforms(luck.cache_block, n, 2)
    # a bar only for a person watching a terminal (none at all otherwise: tqdm starts a thread even
    # for a disabled bar, and the lifecycle then reports no progress)
    bar = (
        tqdm(total=n, desc=f"simulating {label}", unit="req", delay=2.0, leave=False, mininterval=0.5)
        if progress and sys.stderr.isatty()
        else None
    )
    lc = Lifecycle(
        env,
        policies,
        tiers,
        quality.p_success,
        u_q,
        on_done=bar.update if bar is not None else None,
        u_verify=u_verify,
        cache=cache,
        u_cache=u_cache,
        replay=replay,
        route_deadline_s=route_deadlines(table.df) if (replay or ReplayConfig()).closed_loop else None,
    )
    counts0 = dict(lc.cache.counts) if lc.cache is not None else {}
    lc.start(RequestRows(table, u_cls))
    with fewer_collections():
        run_all(env)  # env.run(), its loop compiled
    lc.records.flush()
    if bar is not None:
        bar.close()
    if len(lc.records.requests) != n:  # conservation: every request reached a terminal state
        raise RuntimeError(f"{n - len(lc.records.requests)} requests did not terminate")
    counts = {k: v - counts0.get(k, 0) for k, v in lc.cache.counts.items()} if lc.cache is not None else {}
    ended = ArmLogs.of(lc, local, counts)
    del lc, env, tiers, local, u_q, u_verify, u_cache, u_cls, bar
    if n >= LARGE_RUN_REQUESTS:
        release_memory()  # the engines, queues and per-request draws: freed before the tables are built
    return ended


@dataclass(frozen=True)
class ArmLogs:
    """What the result tables need from a finished simulation (so the rest of it can be freed
    first): the logs, the local GPUs (count, USD per GPU-hour, whether provisioned), the batch
    jobs submitted and expired, and the response-cache counts of this run."""

    records: Records
    local_gpus: int
    gpu_hour_usd: float
    provision_local: bool
    batch_jobs: int
    batch_expired_jobs: int
    cache_counts: Mapping[str, int]

    @staticmethod
    def of(lc: Lifecycle, local: LocalTier, cache_counts: Mapping[str, int]) -> ArmLogs:
        batch = lc.tiers["batch"]
        assert isinstance(batch, BatchTier)
        return ArmLogs(
            lc.records,
            local.n_gpus,
            local.gpu_hour_usd,
            lc.policies.provision_local,
            batch.jobs,
            batch.expired_jobs,
            dict(cache_counts),
        )

    def _rest(self) -> dict[str, Any]:
        """The :class:`ArmRecords` fields other than its two tables."""
        return {
            "local_gpus": self.local_gpus,
            "gpu_hour_usd": self.gpu_hour_usd,
            "provision_local": self.provision_local,
            "batch_jobs": self.batch_jobs,
            "batch_expired_jobs": self.batch_expired_jobs,
            "cache_counts": self.cache_counts,
        }

    def _orders(self) -> tuple[np.ndarray, np.ndarray]:
        """The row orders of the two tables: requests by ``idx``, attempts by ``idx`` then
        ``attempt``."""
        reqs, atts = self.records.requests, self.records.attempts
        return (
            np.argsort(reqs.column("idx"), kind="stable"),
            np.lexsort((atts.column("attempt"), atts.column("idx"))),
        )

    def take(self, attempt_columns: Collection[str] | None = None) -> ArmRecords:
        """The logs as tables in row order (each log buffer freed as its column is built); of the
        attempts only the fields ``attempt_columns`` names, if given."""
        by_request, by_attempt = self._orders()
        return ArmRecords(
            self.records.requests.take_frame(by_request),
            self.records.attempts.take_frame(by_attempt, attempt_columns),
            **self._rest(),
        )

    def spool(self, folder: Path) -> SpooledRecords:
        """The logs written as tables in row order into ``folder``, a column at a time (no table
        is held whole): a worker process hands its records back so."""
        by_request, by_attempt = self._orders()
        return SpooledRecords(
            folder,
            self.records.requests.spool(folder / "requests", by_request),
            self.records.attempts.spool(folder / "attempts", by_attempt),
            self._rest(),
        )


def _check_local_pools(local: LocalTier, catalog: ModelCatalog) -> None:
    """Every local pool serves a configured local model and every local model has a pool."""
    for m in local.specs:
        if not any(o.model == m for o in catalog.by_tier["local"]):
            raise ConfigError(f"tiers.local.pools: model {m!r} is not under models.local")
    for o in catalog.by_tier["local"]:
        if o.model not in local.specs:
            raise ConfigError(f"models.local.{o.model}: no replica pool under tiers.local.pools")


def hard_truth(table: RequestTable, catalog: ModelCatalog, quality: QualityModel) -> np.ndarray:
    """Ground truth for the failure-mode predictor: the best local model for the request's true
    skill would more likely fail than not (``P(success) < 0.5``). All False without local models."""
    local = [o.model for o in catalog.by_tier["local"]]
    if not local:
        return np.zeros(len(table), dtype=bool)
    mi = np.array([quality.models.index(m) for m in local])
    skills = list(quality.skills)
    si = table.df["skill"].replace_strict(skills, range(len(skills)), return_dtype=pl.Int64).to_numpy()
    best = quality.ability[mi].max(axis=0)[si]  # best local ability per skill, then per row
    return np.asarray(best - table.df["difficulty"].to_numpy() < 0.0)


PRICING_ATTEMPT_COLUMNS: frozenset[str] = frozenset(
    (
        "idx",
        "attempt",
        "tier",
        "model",
        "status",
        "cached_tokens",
        "written_tokens",
        "retries",
        "busy_s",
        "end_s",
    )
)
"""The attempt-record fields :func:`result_tables` reads to price an arm."""


def _record_names(result_columns: Collection[str]) -> set[str]:
    """Attempts-table column names as attempt-record field names (``request_index`` is ``idx``)."""
    return {"idx" if c == "request_index" else c for c in result_columns}


def attempt_record_columns(result_columns: Collection[str]) -> frozenset[str]:
    """The attempt-record fields to take for a :class:`SimResult` whose attempts table keeps only
    ``result_columns`` (its names; cost columns are computed): those and the ones pricing reads."""
    return PRICING_ATTEMPT_COLUMNS | (_record_names(result_columns) & set(schema(AttemptRecord)))


def result_tables(
    table: RequestTable,
    ended: ArmRecords,
    catalog: ModelCatalog,
    quality: QualityModel,
    billing_s: float | None = None,
    attempt_columns: Collection[str] | None = None,
) -> SimResult:
    """Join the request table with an arm's records and the cost accounting into a
    :class:`SimResult` (see :func:`simulate`). ``attempt_columns``: the result's attempts table
    keeps only these (its names), dropped as soon as the prices are summed per request (a run
    that writes no attempts table reads a few: at 10 M requests the rest are about 1 GiB); then
    ``ended`` need hold only :func:`attempt_record_columns` of them, and records passed as a
    temporary (held by no caller) are freed column by column as they are dropped."""
    n = len(table)
    req, att = ended.requests, ended.attempts
    ended = replace(ended, requests=req.clear(), attempts=att.clear())  # a temporary's tables: held here only
    idx = att["idx"].to_numpy().astype(np.int64)
    costs = _attempt_costs(table, att, idx, catalog)
    att = att.with_columns(
        cost_usd=costs.api,
        cost_input_usd=costs.input,
        cost_cached_input_usd=costs.cached_input,
        cost_output_usd=costs.output,
    )
    is_local = (att["tier"] == "local").to_numpy()
    last_arrival = float(req["arrival_s"].to_numpy().max())  # the last simulated issue
    horizon = (
        billing_s
        if billing_s is not None
        else billing_horizon_s(last_arrival, att["end_s"].to_numpy()[is_local])
    )
    fixed = local_fixed_usd(ended.local_gpus, ended.gpu_hour_usd, horizon, ended.provision_local)
    completed = (att["status"] == COMPLETED).to_numpy()
    cols = request_cost_columns(
        RequestCostInputs(
            request_index=idx,
            attempt=att["attempt"].to_numpy(),
            costs=costs,
            cached_tokens=att["cached_tokens"].to_numpy().astype(np.float64) * completed,
            retries=att["retries"].to_numpy().astype(np.float64),
            is_local=is_local,
            busy_s=att["busy_s"].to_numpy(),
            classifier_usd=req["cost_classifier_usd"].to_numpy() + req["cost_verifier_usd"].to_numpy(),
            cache_usd=req["cost_cache_usd"].to_numpy(),
        ),
        fixed,
        n,
    )
    if attempt_columns is not None:
        keep = _record_names(attempt_columns)
        att = att.select(c for c in att.columns if c in keep)
        del costs, idx  # the dropped columns' arrays are freed with them
    out = table.df.with_columns(
        req.drop("idx"),
        escalations=(req["attempts"] - 1).cast(pl.Int32),
        hard_truth=hard_truth(table, catalog, quality),
        **cols,
    ).drop("prefix_hashes", "prompt")
    out = out.with_columns(saved_response_cache_usd=source_costs(out, out))
    out = out.with_columns(pl.col("attempts").cast(pl.Int32), pl.col("outcome").cast(pl.Enum(list(OUTCOMES))))
    return SimResult(
        out,
        att.rename({"idx": "request_index"}),
        fixed,
        ended.local_gpus,
        horizon,
        ended.batch_jobs,
        ended.batch_expired_jobs,
        dict(ended.cache_counts),
    )


_PRICE_CHUNK = 1 << 18
"""Attempts priced at a time (the per-attempt rate rows and the kernels' temporaries take about
270 B an attempt; a chunk bounds them to about 70 MiB however long the run)."""


def _attempt_costs(
    table: RequestTable, att: pl.DataFrame, idx: np.ndarray, catalog: ModelCatalog
) -> AttemptCosts:
    """Price each attempt at its offer's rates (tokens billed only for completed attempts), a chunk
    of attempts at a time."""
    completed = (att["status"] == COMPLETED).to_numpy()
    offers = [o for t in TIERS for o in catalog.by_tier[t]]
    keys = [f"{o.tier}\x00{o.model}" for o in offers]  # no model or tier name holds a NUL
    width = len(offers[0].rates) if offers else 0
    rates = np.array([o.rates for o in offers]).reshape(len(offers), width)
    std = np.array([o.rates if o.standard_rates is None else o.standard_rates for o in offers])
    std = std.reshape(len(offers), width)
    prompt, output = (table.df[c].to_numpy() for c in ("prompt_tokens", "output_tokens"))
    cached, written = (att[c].to_numpy() for c in ("cached_tokens", "written_tokens"))
    is_batch = (att["tier"] == "batch").to_numpy()
    out = {f.name: np.empty(len(idx), dtype=np.float64) for f in fields(AttemptCosts)}
    for a in range(0, len(idx), _PRICE_CHUNK):
        c = slice(a, a + _PRICE_CHUNK)
        part_att = att.slice(a, _PRICE_CHUNK)  # the offer keys are strings: a chunk's at a time
        key = part_att["tier"] + "\x00" + part_att["model"]
        k = key.replace_strict(keys, range(len(keys)), return_dtype=pl.Int64).to_numpy()
        done = completed[c]
        tokens = AttemptTokens(
            prompt=prompt[idx[c]].astype(np.float64) * done,
            cached=cached[c].astype(np.float64) * done,
            written=written[c].astype(np.float64) * done,
            output=output[idx[c]].astype(np.float64) * done,
        )
        part = attempt_costs(tokens, rates[k], std[k], is_batch[c])
        for name, col in out.items():
            col[c] = getattr(part, name)
    return AttemptCosts(**out)


def source_costs(requests: pl.DataFrame, sources: pl.DataFrame) -> pl.Series:
    """For each request served from the response cache, what its source request's answer cost at
    the margin (USD: its API calls and verifier checks — not its share of GPUs that are paid for
    anyway, nor its classification, which the hit pays again): the direct estimate of what the hit
    saved. 0 for requests not served from the cache; NaN when the source is not among ``sources``
    (``request_id``, ``cost_api_usd``, ``cost_verifier_usd``)."""
    src = requests["cache_source_id"].to_numpy()
    vals = np.where(src < 0, 0.0, np.nan)
    if sources.height:
        ids = sources["request_id"].to_numpy()
        marginal = (sources["cost_api_usd"] + sources["cost_verifier_usd"]).to_numpy()
        if not (ids[1:] > ids[:-1]).all():  # ids in increasing order, each once, need no sorting
            by_id = np.argsort(ids, kind="stable")
            ids, marginal = ids[by_id], marginal[by_id]
            last = np.append(ids[1:] != ids[:-1], True)  # a repeated id: its last row counts
            ids, marginal = ids[last], marginal[last]
        k = np.minimum(np.searchsorted(ids, src), len(ids) - 1)
        found = (src >= 0) & (ids[k] == src)
        vals[found] = marginal[k[found]]
    return pl.Series("saved_response_cache_usd", vals, dtype=pl.Float64)
