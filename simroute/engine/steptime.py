"""Step-time models: seconds per engine step from the batch composition of that step.

All models are linear in the features the kernel computes per step:
``[1, prefill_tokens, decode_requests, scheduled_requests, prefill_tokens², context_tokens,
prefill_attention_pairs, new_requests]`` (``context_tokens`` = Σ over scheduled requests of
tokens attended, i.e. computed + new; ``prefill_attention_pairs`` = Σ over prefill chunks of
``n · (c + n/2)`` for a chunk of ``n`` tokens after ``c`` already-computed ones — the (query, key)
pairs its attention computes, including those over an earlier chunk or a prefix-cache hit;
``new_requests`` = requests scheduled for the first time; a resume after a preemption does not
count). A model is its coefficient vector, so the kernel evaluates any of them with one dot
product.

* :class:`LinearStepTime` — coefficients given or least-squares fitted to a recorded run's steps;
* :func:`fit_run` — fit to ``steps.parquet`` + ``schedule.parquet`` of a recorded vLLM run (on
  :data:`BASE_FEATURES`, or the CPU step structure :data:`CPU_FEATURES`);
* :mod:`simroute.engine.profiles` — from real GPU profiles (Vidur, Splitwise).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simroute.errors import InputError

FEATURES: tuple[str, ...] = (
    "const",
    "prefill_tokens",
    "decode_requests",
    "scheduled_requests",
    "prefill_tokens_sq",
    "context_tokens",
    "prefill_attention_pairs",
    "new_requests",
)
"""Every step feature, in the kernel's order."""

BASE_FEATURES: tuple[str, ...] = FEATURES[:6]
"""The features a fit uses unless told otherwise (those of the first engine release: fits, and so
every result calibrated from a recorded run, stay as they were)."""


class StepTimeModel:
    """Base of step-time models: a coefficient vector plus a lookup table the kernel evaluates.

    Step time (s) = ``table()[min(batched_tokens, len - 1)] + coefficients() · features``.
    """

    def coefficients(self) -> np.ndarray:
        """float64 array aligned with :data:`FEATURES` (seconds per unit)."""
        raise NotImplementedError

    def table(self) -> np.ndarray:
        """Seconds by batched tokens (index); the default adds nothing."""
        return np.zeros(1, dtype=np.float64)


@dataclass(frozen=True)
class LinearStepTime(StepTimeModel):
    """``t = Σ coef_i · feature_i`` seconds; unspecified coefficients are 0.

    Units: seconds per step, per prefill token, per decoding request, per scheduled request, per
    squared prefill token, per context token, per prefill (query, key) pair, per request scheduled
    for the first time.
    """

    const_s: float = 0.0
    per_prefill_token_s: float = 0.0
    per_decode_s: float = 0.0
    per_request_s: float = 0.0
    per_prefill_token_sq_s: float = 0.0
    per_context_token_s: float = 0.0
    per_prefill_attention_pair_s: float = 0.0
    per_new_request_s: float = 0.0

    def coefficients(self) -> np.ndarray:
        """See :class:`StepTimeModel`."""
        return np.array(
            [
                self.const_s,
                self.per_prefill_token_s,
                self.per_decode_s,
                self.per_request_s,
                self.per_prefill_token_sq_s,
                self.per_context_token_s,
                self.per_prefill_attention_pair_s,
                self.per_new_request_s,
            ],
            dtype=np.float64,
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Step times (s) for a (n, len(FEATURES)) feature matrix."""
        return np.asarray(features @ self.coefficients())


def _schedule_features(sched: pl.DataFrame) -> pl.DataFrame:
    """Per step of a recorded ``schedule.parquet``: ``ctx`` (context tokens), ``pattn`` (prefill
    attention pairs) and ``new`` (requests scheduled for the first time)."""
    reached = pl.col("num_computed_tokens") + pl.col("num_tokens")
    n = pl.col("num_tokens").cast(pl.Float64)
    return (
        sched.with_columns(
            new=(pl.col("step") == pl.col("step").min().over("request_id")).cast(pl.Int64),
            pattn=pl.when(pl.col("is_decode"))
            .then(0.0)
            .otherwise(n * (pl.col("num_computed_tokens") + n / 2)),
        )
        .group_by("step")
        .agg(reached.sum().alias("ctx"), pl.col("pattn").sum(), pl.col("new").sum())
    )


def run_features(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-step feature matrix (columns as :data:`FEATURES`) and measured step time (s) of a
    recorded run."""
    try:
        steps = pl.read_parquet(run_dir / "steps.parquet").sort("step")
        sched = pl.read_parquet(run_dir / "schedule.parquet")
    except Exception as e:
        raise InputError(
            str(run_dir), f"cannot read steps/schedule parquet ({type(e).__name__}: {e})"
        ) from None
    steps = steps.join(_schedule_features(sched), on="step", how="left").with_columns(
        pl.col("ctx", "pattn", "new").fill_null(0)
    )
    p = steps["num_prefill_tokens"].to_numpy().astype(np.float64)
    x = np.column_stack(
        [
            np.ones(len(p)),
            p,
            steps["num_decode_tokens"].to_numpy(),
            steps["num_running"].to_numpy(),
            p * p,
            steps["ctx"].to_numpy(),
            steps["pattn"].to_numpy(),
            steps["new"].to_numpy(),
        ]
    ).astype(np.float64)
    y = (steps["t_end_s"] - steps["t_start_s"]).to_numpy()
    return x, y


TIED: dict[str, tuple[str, ...]] = {"scheduled_tokens": ("prefill_tokens", "decode_requests")}
"""Fit-only features that give several kernel features one shared coefficient: ``scheduled_tokens``
= every token the step computes, prefill or decode (a decode request computes one token)."""

CPU_FEATURES: tuple[str, ...] = (
    "const",
    "scheduled_tokens",
    "scheduled_requests",
    "new_requests",
    "prefill_attention_pairs",
)
"""The structure of a CPU engine step (``python -m simroute.engine.replay --calibrate-from``): a
constant (scheduler, Python, launch), a cost per computed token (the forward pass's matrix
products, the same for prefill and decode tokens), per scheduled request (its attention call,
input preparation, and sampling — vLLM V1 samples every scheduled request's last position, even
of a partial prefill, and discards those), per request scheduled for the first time (its state
entering the persistent input batch) and per prefill (query, key) pair (attention FLOPs)."""


def fit(x: np.ndarray, y: np.ndarray, use: tuple[str, ...] = BASE_FEATURES) -> LinearStepTime:
    """Non-negative least squares of step times ``y`` on the chosen features of ``x``
    (:data:`FEATURES`, or a :data:`TIED` name for one coefficient shared by its members)."""
    groups = [[FEATURES.index(m) for m in TIED.get(f, (f,))] for f in use]
    a = np.column_stack([x[:, g].sum(axis=1) for g in groups])
    coef = _nnls(a, y)
    full = np.zeros(len(FEATURES))
    for g, c in zip(groups, coef, strict=True):
        full[g] = c
    return LinearStepTime(*map(float, full))


def _nnls(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients (active-set by repeated dropping)."""
    active = list(range(a.shape[1]))
    while True:
        scale = np.maximum(np.abs(a[:, active]).max(axis=0), 1e-12)
        c, *_ = np.linalg.lstsq(a[:, active] / scale, y, rcond=None)
        c = c / scale
        if (c >= 0).all() or len(active) == 1:
            out = np.zeros(a.shape[1])
            out[active] = np.maximum(c, 0)
            return out
        active.pop(int(np.argmin(c)))


def fit_run(run_dir: Path, use: tuple[str, ...] = BASE_FEATURES) -> LinearStepTime:
    """Fit a :class:`LinearStepTime` to a recorded vLLM run's measured steps.

    The median gap between consecutive busy steps (the driver's own overhead between
    ``LLMEngine.step()`` calls, tens of microseconds) is added to the constant term.
    """
    x, y = run_features(run_dir)
    m = fit(x, y, use)
    steps = pl.read_parquet(run_dir / "steps.parquet").sort("step")
    gaps = steps["t_start_s"].to_numpy()[1:] - steps["t_end_s"].to_numpy()[:-1]
    gaps = gaps[(gaps >= 0) & (gaps < 1e-3)]
    gap = float(np.median(gaps)) if len(gaps) else 0.0
    return dataclasses.replace(m, const_s=m.const_s + gap)
