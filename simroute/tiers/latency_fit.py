"""Real-time API latency fitted to real per-request measurements (LLMPerf leaderboard, Dec 2023).

``traces/llmperf_2023_individual.csv.gz`` holds 2,845 requests (150 per provider/model, 550 input
and ~150 output tokens, 5 concurrent) against hosted Llama-2-chat 7B/13B/70B endpoints. For each
``provider/size`` profile simroute fits a log-normal to the time to first token and one to the
per-request mean inter-token latency (maximum likelihood: mean and standard deviation of the
logs), over the successful requests. :func:`fit_report` gives each fit's Kolmogorov-Smirnov
distance to the data and the error of its median and p90.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simroute.errors import InputError


@dataclass(frozen=True)
class LatencySpec:
    """Log-normal TTFT and inter-token latency of one API model (seconds)."""

    ttft_median_s: float
    ttft_sigma: float
    itl_median_s: float
    itl_sigma: float


def load_llmperf(path: str | Path) -> pl.DataFrame:
    """The successful LLMPerf requests with a ``profile`` column (``provider/size``)."""
    p = Path(path)
    try:
        df = pl.read_csv(p, infer_schema_length=10_000)
    except FileNotFoundError:
        raise InputError(str(p), "LLMPerf measurements not found") from None
    except Exception as e:
        raise InputError(str(p), f"unreadable CSV ({type(e).__name__}: {e})") from None
    need = ["provider", "model_size", "error_code", "ttft_s", "inter_token_latency_s"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(str(p), f"missing column(s) {missing}")
    ok = df.filter(
        pl.col("error_code").is_null() & (pl.col("ttft_s") > 0) & (pl.col("inter_token_latency_s") > 0)
    )
    return ok.with_columns((pl.col("provider") + "/" + pl.col("model_size")).alias("profile"))


def fit_profiles(path: str | Path) -> dict[str, LatencySpec]:
    """Log-normal fits for every ``provider/size`` profile in the file."""
    df = load_llmperf(path)
    out = {}
    for (name,), g in df.group_by("profile", maintain_order=True):
        lt = np.log(g["ttft_s"].to_numpy())
        li = np.log(g["inter_token_latency_s"].to_numpy())
        out[str(name)] = LatencySpec(
            float(np.exp(lt.mean())), float(lt.std(ddof=1)), float(np.exp(li.mean())), float(li.std(ddof=1))
        )
    return dict(sorted(out.items()))


def lognormal_cdf(x: np.ndarray, median: float, sigma: float) -> np.ndarray:
    """CDF of a log-normal with the given median and log-standard-deviation."""
    z = (np.log(x) - math.log(median)) / (sigma * math.sqrt(2.0))
    erf = np.frompyfunc(math.erf, 1, 1)
    return np.asarray(0.5 * (1.0 + erf(z).astype(np.float64)))


def ks_distance(sample: np.ndarray, median: float, sigma: float) -> float:
    """Kolmogorov-Smirnov distance between a sample and a log-normal."""
    x = np.sort(sample)
    f = lognormal_cdf(x, median, sigma)
    n = len(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def fit_report(path: str | Path) -> pl.DataFrame:
    """Per profile: n, fitted parameters, KS distance and p50/p90 errors of TTFT and ITL fits."""
    df = load_llmperf(path)
    fits = fit_profiles(path)
    rows = []
    z90 = 1.2815515655446004
    for name, spec in fits.items():
        g = df.filter(pl.col("profile") == name)
        t, i = g["ttft_s"].to_numpy(), g["inter_token_latency_s"].to_numpy()
        rows.append(
            {
                "profile": name,
                "n": len(t),
                "ttft_median_s": spec.ttft_median_s,
                "ttft_sigma": spec.ttft_sigma,
                "itl_median_s": spec.itl_median_s,
                "itl_sigma": spec.itl_sigma,
                "ttft_ks": ks_distance(t, spec.ttft_median_s, spec.ttft_sigma),
                "itl_ks": ks_distance(i, spec.itl_median_s, spec.itl_sigma),
                "ttft_p50_err": spec.ttft_median_s / float(np.median(t)) - 1,
                "ttft_p90_err": spec.ttft_median_s
                * math.exp(z90 * spec.ttft_sigma)
                / float(np.percentile(t, 90))
                - 1,
                "itl_p50_err": spec.itl_median_s / float(np.median(i)) - 1,
            }
        )
    return pl.DataFrame(rows)
