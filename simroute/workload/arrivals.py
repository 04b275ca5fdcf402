"""Session arrival processes: Poisson, bursty (2-state MMPP) and diurnal (sinusoidal NHPP).

Each function returns sorted arrival times in seconds from 0, drawn from the given generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from simroute.errors import ConfigError

PROCESSES: tuple[str, ...] = ("poisson", "mmpp", "diurnal")


def poisson(rate_per_s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` arrivals of a homogeneous Poisson process with ``rate_per_s`` (1/s)."""
    return np.cumsum(rng.exponential(1.0 / rate_per_s, n))


def mmpp(
    rate_per_s: float,
    n: int,
    rng: np.random.Generator,
    *,
    burst_factor: float,
    burst_share: float,
    mean_burst_s: float,
) -> np.ndarray:
    """``n`` arrivals of a 2-state Markov-modulated Poisson process (bursty traffic).

    The process spends ``burst_share`` of the time in a burst state whose rate is ``burst_factor``
    times the calm state's; bursts last ``mean_burst_s`` seconds on average (exponential). The
    long-run mean rate equals ``rate_per_s``.
    """
    if not (burst_factor >= 1 and 0 < burst_share < 1 and mean_burst_s > 0):
        raise ConfigError(
            "workload.arrival: mmpp needs burst_factor >= 1, 0 < burst_share < 1, mean_burst_s > 0"
        )
    calm_rate = rate_per_s / (burst_share * burst_factor + (1 - burst_share))
    rates = (calm_rate, calm_rate * burst_factor)
    means = (mean_burst_s * (1 - burst_share) / burst_share, mean_burst_s)
    out: list[np.ndarray] = []
    t, state, count = 0.0, 0, 0
    while count < n:
        dwell = rng.exponential(means[state])
        k = rng.poisson(rates[state] * dwell)
        if k:
            out.append(np.sort(t + dwell * rng.random(k)))
            count += k
        t += dwell
        state = 1 - state
    return np.concatenate(out)[:n]


def diurnal(
    rate_per_s: float,
    n: int,
    rng: np.random.Generator,
    *,
    amplitude: float,
    period_s: float,
    peak_s: float,
    growth_per_day: float = 0.0,
) -> np.ndarray:
    """``n`` arrivals with rate ``rate_per_s * (1 + growth_per_day)^(t / 1 day)
    * (1 + amplitude * cos(2π (t - peak_s) / period_s))`` (a growing fleet with a daily cycle).

    Sampled exactly by thinning hour-long windows, each against that window's maximum rate;
    ``amplitude`` in [0, 1), ``peak_s`` the time of the daily peak (seconds).
    """
    if not (0 <= amplitude < 1 and period_s > 0 and growth_per_day > -1):
        raise ConfigError(
            "workload.arrival: diurnal needs 0 <= amplitude < 1, period_s > 0, growth_per_day > -1"
        )
    window = 3600.0
    out: list[np.ndarray] = []
    t, count = 0.0, 0
    g = np.log1p(growth_per_day) / 86_400.0
    while count < n:
        lam_max = rate_per_s * (1 + amplitude) * float(np.exp(g * (t + window)) if g > 0 else np.exp(g * t))
        k = int(rng.poisson(lam_max * window))
        cand = np.sort(t + window * rng.random(k))
        lam = rate_per_s * np.exp(g * cand) * (1 + amplitude * np.cos(2 * np.pi * (cand - peak_s) / period_s))
        keep = cand[rng.random(k) * lam_max < lam]
        out.append(keep)
        count += len(keep)
        t += window
    return np.concatenate(out)[:n]


def sample(cfg: Mapping[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Dispatch on ``cfg["process"]`` (one of :data:`PROCESSES`) and draw ``n`` arrival times (s)."""
    proc = str(cfg["process"])
    rate = float(cfg["rate_per_s"])
    if rate <= 0:
        raise ConfigError(f"workload.arrival.rate_per_s must be > 0, got {rate}")
    if proc == "poisson":
        return poisson(rate, n, rng)
    if proc == "mmpp":
        return mmpp(
            rate,
            n,
            rng,
            burst_factor=float(cfg["burst_factor"]),
            burst_share=float(cfg["burst_share"]),
            mean_burst_s=float(cfg["mean_burst_s"]),
        )
    if proc == "diurnal":
        return diurnal(
            rate,
            n,
            rng,
            amplitude=float(cfg["amplitude"]),
            period_s=float(cfg["period_s"]),
            peak_s=float(cfg["peak_s"]),
            growth_per_day=float(cfg.get("growth_per_day", 0.0)),
        )
    raise ConfigError(f"workload.arrival.process: unknown {proc!r}; valid: {', '.join(PROCESSES)}")
