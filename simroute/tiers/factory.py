"""Build the three tiers from the ``tiers`` config (each with its own named random stream)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import simpy

from simroute.config import REPO_ROOT, TRACES_DIR
from simroute.economics.prompt_cache import PromptCache
from simroute.errors import ConfigError
from simroute.tiers.base import Tier
from simroute.tiers.batch import BatchTier
from simroute.tiers.latency_fit import LatencySpec, fit_profiles, load_llmperf
from simroute.tiers.local import LocalTier, PoolSpec
from simroute.tiers.realtime import LatencyModel, Outage, RateLimit, RealtimeTier, RetryPolicy
from simroute.tiers.token_latency import TokenLatencySpec, load_token_fits
from simroute.workload.prefix_runs import PrefixRuns

_FITS: dict[str, dict[str, LatencySpec]] = {}
_TOKEN_FITS: dict[str, dict[str, TokenLatencySpec]] = {}

DEFAULT_API_FITS = "conf/tiers/claude_api_latency.json"
"""Token-dependent API latency fits (relative to the repository root), see :mod:`token_latency`."""


def _trace(name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else TRACES_DIR / p


def _repo_path(name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else REPO_ROOT / p


def token_latency_model(name: str, fits: Path, where: str) -> LatencyModel:
    """The token-dependent fit ``name`` (a model key) of the fits file ``fits``."""
    key = str(fits)
    if key not in _TOKEN_FITS:
        _TOKEN_FITS[key] = load_token_fits(fits)
    if name not in _TOKEN_FITS[key]:
        valid = ", ".join(_TOKEN_FITS[key])
        raise ConfigError(f"{where}.api_fit: unknown {name!r} in {fits}; valid: {valid}")
    return LatencyModel(tokens=_TOKEN_FITS[key][name])


def latency_model(
    spec: Mapping[str, Any], source: Path, where: str, api_fits: Path | None = None
) -> LatencyModel:
    """``{profile: provider/size, dist: lognormal|empirical}``, ``{api_fit: model}`` (a token-dependent
    fit in ``api_fits``) or explicit log-normal parameters."""
    if "api_fit" in spec:
        return token_latency_model(str(spec["api_fit"]), api_fits or _repo_path(DEFAULT_API_FITS), where)
    if "profile" in spec:
        prof = str(spec["profile"])
        dist = str(spec.get("dist", "lognormal"))
        key = str(source)
        if key not in _FITS:
            _FITS[key] = fit_profiles(source)
        if prof not in _FITS[key]:
            raise ConfigError(f"{where}.profile: unknown {prof!r}; valid: {', '.join(_FITS[key])}")
        if dist == "lognormal":
            return LatencyModel(_FITS[key][prof])
        if dist == "empirical":
            g = load_llmperf(source).filter(profile=prof)
            return LatencyModel(samples=(g["ttft_s"].to_numpy(), g["inter_token_latency_s"].to_numpy()))
        raise ConfigError(f"{where}.dist: expected lognormal or empirical, got {dist!r}")
    try:
        s = LatencySpec(
            float(spec["ttft_median_s"]),
            float(spec["ttft_sigma"]),
            float(spec["itl_median_s"]),
            float(spec["itl_sigma"]),
        )
    except KeyError as e:
        raise ConfigError(
            f"{where}: give profile: provider/size, api_fit: model, or ttft/itl medians and sigmas ({e})"
        ) from None
    if min(s.ttft_median_s, s.itl_median_s) <= 0 or min(s.ttft_sigma, s.itl_sigma) < 0:
        raise ConfigError(f"{where}: medians must be > 0 and sigmas >= 0")
    return LatencyModel(s)


def _caches(cfg: Mapping[str, Any] | None, models: list[str], block_tokens: int) -> dict[str, PromptCache]:
    if not cfg or not cfg.get("enabled", False) or block_tokens <= 0:
        return {}
    return {m: PromptCache(float(cfg["ttl_s"]), int(cfg["min_tokens"]), block_tokens) for m in models}


def build_tiers(
    env: simpy.Environment,
    cfg: Mapping[str, Any],
    seed: int,
    models: Mapping[str, list[str]],
    prefix: PrefixRuns | None,
    block_tokens: int,
) -> dict[str, Tier]:
    """The local, batch and real-time tiers.

    Args:
        env: SimPy environment.
        cfg: the ``tiers`` config.
        seed: run seed.
        models: API model names served per tier (for per-model caches).
        prefix: the request table's prefix ids (by request index), or None.
        block_tokens: tokens per prefix id.
    """
    loc, rt, bt = cfg["local"], cfg["realtime"], cfg["batch"]
    lat = rt["latency"]
    source = _trace(str(lat.get("source", "llmperf_2023_individual.csv.gz")))
    fits = _repo_path(str(lat.get("api_fits") or DEFAULT_API_FITS))
    latency = {"*": latency_model(lat["default"], source, "tiers.realtime.latency.default", fits)}
    for m, spec in (lat.get("models") or {}).items():
        latency[str(m)] = latency_model(spec, source, f"tiers.realtime.latency.models.{m}", fits)
    rl = rt.get("rate_limits") or {}
    limits = {"*": RateLimit(**(rl.get("default") or {}))}
    for m, spec in (rl.get("models") or {}).items():
        limits[str(m)] = RateLimit(**spec)
    faults = rt.get("faults") or {}
    outages = [
        Outage(float(o["start_s"]), float(o["end_s"]), tuple(o.get("models") or ()))
        for o in faults.get("outages") or []
    ]
    try:
        retry = RetryPolicy(**(rt.get("retry") or {}))
    except TypeError as e:
        raise ConfigError(f"tiers.realtime.retry: {e}") from None
    fixed = float(loc.get("energy", {}).get("kw_per_gpu", 0.0)) * float(
        loc.get("energy", {}).get("usd_per_kwh", 0.0)
    )
    return {
        "local": LocalTier(
            env,
            [PoolSpec.from_config(p) for p in loc["pools"]],
            float(loc["gpu_hour_usd"]) + fixed,
            prefix,
            block_tokens,
        ),
        "batch": BatchTier(
            env,
            float(bt["window_s"]),
            int(bt["max_requests"]),
            float(bt["completion_median_s"]),
            float(bt["completion_sigma"]),
            float(bt["completion_window_s"]),
            seed,
            max_bytes=float(bt.get("max_bytes", 0)),
            bytes_per_token=float(bt.get("bytes_per_token", 4.0)),
            bytes_per_request=float(bt.get("bytes_per_request", 300.0)),
            prompt_cache=_caches(bt.get("prompt_cache"), models.get("batch", []), block_tokens),
            prefix_ids=prefix,
        ),
        "realtime": RealtimeTier(
            env,
            latency,
            limits,
            retry,
            float(faults.get("error_rate", 0.0)),
            outages,
            int(rt.get("max_concurrency", 0)),
            seed,
            prompt_cache=_caches(rt.get("prompt_cache"), models.get("realtime", []), block_tokens),
            prefix_ids=prefix,
        ),
    }
