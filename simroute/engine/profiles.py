"""GPU step-time models from real operator profiles (Vidur, ``traces/vidur_*_mlp.csv.gz``).

Vidur profiled every non-attention operator of a transformer layer on real GPUs as a function of
the number of tokens in the batch (``time_stats.<op>.median``, ms per layer). One engine step's
non-attention time is ``emb + num_layers × Σ_layer-ops (+ one extra residual add)``; simroute
tabulates it for every batch size 0..``max_tokens`` by linear interpolation between the profiled
sizes, so the kernel only looks it up (:class:`ProfileStepTime`).

The attention operator's profile (``attention.csv``) is not in the shared data. Attention is
therefore modelled as memory-bound KV reads: ``kv_bytes_per_token / (hbm_bandwidth × efficiency)``
seconds per context token — an assumption, stated in the config — plus a fixed CPU overhead per
step and per scheduled request (scheduler, sampling, output processing).

:func:`holdout_mape` reports the table's error on profile rows left out of the interpolation.
"""

from __future__ import annotations

import functools
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simroute.engine.steptime import LinearStepTime, StepTimeModel
from simroute.errors import InputError

LAYER_OPS: tuple[str, ...] = (
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
)


def read_vidur_mlp(
    path: str | Path, tensor_parallel: int = 1, num_layers: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Cached :func:`_read_vidur_mlp` (every simulation of a multi-day run builds its tiers anew);
    the arrays returned are read-only."""
    return _read_vidur_mlp(str(Path(path)), tensor_parallel, num_layers)


@functools.lru_cache(maxsize=32)
def _read_vidur_mlp(path: str, tensor_parallel: int, num_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Profiled batch sizes (tokens) and whole-model non-attention step time (s) at each.

    ``add`` is counted twice per layer (two residual adds), ``emb`` once per step.
    """
    p = Path(path)
    try:
        raw = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        df = pl.read_csv(io.BytesIO(raw))
    except FileNotFoundError:
        raise InputError(str(p), "profile not found") from None
    except Exception as e:
        raise InputError(str(p), f"not a readable Vidur profile CSV ({type(e).__name__}: {e})") from None
    need = [
        "num_tokens",
        "num_tensor_parallel_workers",
        "time_stats.emb.median",
        *[f"time_stats.{op}.median" for op in LAYER_OPS],
    ]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(str(p), f"missing column(s) {missing}")
    df = df.filter(pl.col("num_tensor_parallel_workers") == tensor_parallel)
    cols = ["time_stats.emb.median", *[f"time_stats.{op}.median" for op in LAYER_OPS]]
    df = df.group_by("num_tokens").agg(pl.col(cols).median()).sort("num_tokens")  # repeated sizes
    if df.height < 2:
        raise InputError(str(p), f"fewer than 2 rows for tensor_parallel={tensor_parallel}")
    layer = sum(df[f"time_stats.{op}.median"].to_numpy() for op in LAYER_OPS)
    layer = layer + df["time_stats.add.median"].to_numpy()
    total_ms = df["time_stats.emb.median"].to_numpy() + num_layers * layer
    tokens = df["num_tokens"].to_numpy().astype(np.int64)
    seconds = np.asarray(total_ms / 1000.0)
    tokens.flags.writeable = False
    seconds.flags.writeable = False
    return tokens, seconds


def tabulate(tokens: np.ndarray, seconds: np.ndarray, max_tokens: int) -> np.ndarray:
    """Seconds for every batch size 0..max_tokens (0 tokens -> 0 s; beyond the profile, linear).

    Beyond the largest profiled size the table continues from its last value with the slope
    (s/token) of a least-squares line through the profiled sizes in the upper half of the range,
    never below 0: the last two rows alone are too noisy (in the Vidur H100 profile their slope is
    negative, which made an 8192-token step faster than a 4096-token one)."""
    n = np.arange(max_tokens + 1, dtype=np.float64)
    t = np.interp(n, tokens, seconds)
    if max_tokens > tokens[-1]:
        top = tokens >= tokens[-1] / 2
        if top.sum() < 2:
            top = np.arange(len(tokens)) >= len(tokens) - 2
        slope = max(float(np.polyfit(tokens[top].astype(np.float64), seconds[top], 1)[0]), 0.0)
        hi = n > tokens[-1]
        t[hi] = seconds[-1] + slope * (n[hi] - tokens[-1])
    t[0] = 0.0
    return np.asarray(t, dtype=np.float64)


def holdout_mape(tokens: np.ndarray, seconds: np.ndarray, frac: float = 0.2, seed: int = 0) -> float:
    """MAPE of the interpolated table on a random ``frac`` of interior rows left out of it."""
    g = np.random.default_rng(seed)
    idx = np.arange(1, len(tokens) - 1)
    out = g.choice(idx, size=max(1, int(frac * len(idx))), replace=False)
    keep = np.setdiff1d(np.arange(len(tokens)), out)
    pred = np.interp(tokens[out], tokens[keep], seconds[keep])
    return float(np.mean(np.abs(pred - seconds[out]) / seconds[out]))


@dataclass(frozen=True)
class ProfileStepTime(StepTimeModel):
    """Table lookup of non-attention time plus linear terms (attention, CPU overheads)."""

    seconds_by_tokens: np.ndarray
    linear: LinearStepTime

    def coefficients(self) -> np.ndarray:
        """See :class:`StepTimeModel`."""
        return self.linear.coefficients()

    def table(self) -> np.ndarray:
        """See :class:`StepTimeModel`."""
        return self.seconds_by_tokens


def kv_bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, dtype_bytes: int = 2) -> int:
    """Bytes of K and V cache per token (all layers)."""
    return 2 * num_layers * num_kv_heads * head_dim * dtype_bytes


def profile_step_time(
    profile: str | Path,
    *,
    max_tokens: int,
    tensor_parallel: int = 1,
    num_layers: int = 32,
    compute_scale: float = 1.0,
    kv_bytes_per_context_token: float,
    hbm_bytes_per_s: float,
    hbm_efficiency: float = 0.8,
    overhead_s: float = 0.001,
    per_request_s: float = 1e-5,
) -> ProfileStepTime:
    """Build a :class:`ProfileStepTime` (``compute_scale`` scales the profiled compute for a
    model of a different size, e.g. 2.3 for a 32B model on two GPUs from a 7B profile)."""
    tok, sec = read_vidur_mlp(profile, tensor_parallel, num_layers)
    table = tabulate(tok, sec * compute_scale, max_tokens)
    attn = kv_bytes_per_context_token / (hbm_bytes_per_s * hbm_efficiency)
    return ProfileStepTime(
        table, LinearStepTime(const_s=overhead_s, per_request_s=per_request_s, per_context_token_s=attn)
    )
