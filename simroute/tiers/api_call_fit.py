"""Per-model API latency as a function of tokens, fitted to recorded calls (the Claude Code trace).

Model (per recorded model): the median API time of a call with ``p`` prompt and ``o`` output tokens
is ``ttft(p) + o · tpot`` with ``ttft(p) = a + b · p / 1000`` seconds, and the call's time is that
median times ``exp(sigma · z)``, ``z`` standard normal (one factor for the whole call: a slow call is
slow in both phases). ``a, b, tpot`` minimise the squared *relative* error (weighted least squares,
terms that come out negative are dropped), then are scaled so the fit is the median of the data;
``sigma`` is the standard deviation of the log residuals. :func:`fit_report` fits on the sessions with
``session_id % holdout_every != 0`` and reports the error on the held-out sessions;
:func:`write_fits` stores those training fits and their held-out errors, keyed by LiteLLM id, where
the real-time tier reads them (:mod:`token_latency`)::

    python -m simroute.tiers.api_call_fit traces/claude_code_2025.parquet \
        --out conf/tiers/claude_api_latency.json
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simroute.policy.selectors import litellm_id
from simroute.workload.loaders import load_raw


@dataclass(frozen=True)
class CallLatencyFit:
    """Median ``api_s = ttft_base_s + ttft_per_1k_prompt_s · p/1000 + tpot_s · o``, log-sd ``sigma``."""

    ttft_base_s: float
    ttft_per_1k_prompt_s: float
    tpot_s: float
    sigma: float
    n: int

    def median_api_s(self, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
        """Median API time (s) of calls with these prompt and output token counts."""
        return self.median_ttft_s(prompt) + self.tpot_s * output

    def median_ttft_s(self, prompt: np.ndarray) -> np.ndarray:
        """Median time to first token (s) for these prompt token counts."""
        return self.ttft_base_s + self.ttft_per_1k_prompt_s * prompt / 1000.0


def recorded_calls(path: str | Path) -> pl.DataFrame:
    """Calls with a recorded API time: session, model (date suffix kept), tokens, api_s, ttft_s."""
    df = load_raw(Path(path)).df
    return df.filter(pl.col("recorded_api_s").is_not_nan() & (pl.col("recorded_api_s") > 0)).select(
        "session_id",
        pl.col("recorded_model").alias("model"),
        "prompt_tokens",
        pl.col("recorded_output_tokens").alias("output_tokens"),
        pl.col("recorded_api_s").alias("api_s"),
        pl.col("recorded_ttft_s").alias("ttft_s"),
    )


def fit_calls(prompt: np.ndarray, output: np.ndarray, api_s: np.ndarray) -> CallLatencyFit:
    """Fit :class:`CallLatencyFit` to calls (tokens, recorded API seconds)."""
    x = np.column_stack([np.ones(len(api_s)), prompt / 1000.0, output.astype(np.float64)])
    keep = [0, 1, 2]
    coef = np.zeros(3)
    while keep:
        w = x[:, keep] / api_s[:, None]
        sol = np.linalg.lstsq(w, np.ones(len(api_s)), rcond=None)[0]
        if (sol >= 0).all():
            coef[:] = 0.0
            coef[keep] = sol
            break
        keep.pop(int(np.argmin(sol)))
    pred = x @ coef
    resid = np.log(api_s / np.maximum(pred, 1e-9))
    coef *= math.exp(float(np.median(resid)))
    resid -= float(np.median(resid))
    return CallLatencyFit(float(coef[0]), float(coef[1]), float(coef[2]), float(resid.std()), len(api_s))


def fit_models(calls: pl.DataFrame) -> dict[str, CallLatencyFit]:
    """One fit per recorded model."""
    out = {}
    for (model,), g in calls.group_by("model", maintain_order=True):
        out[str(model)] = fit_calls(
            g["prompt_tokens"].to_numpy(), g["output_tokens"].to_numpy(), g["api_s"].to_numpy()
        )
    return dict(sorted(out.items()))


def fit_report(path: str | Path, holdout_every: int = 5) -> pl.DataFrame:
    """Per model: the fit on the training sessions and its error on the held-out sessions.

    Columns: coefficients, ``n_train``/``n_test``, ``api_mdape`` (median absolute relative error of
    the median prediction), ``api_p10_p90_coverage`` (share of held-out calls inside the fit's
    10-90 % band; 0.8 if the spread is right), ``api_mean_bias`` (mean predicted / mean recorded - 1,
    the mean of a log-normal being ``median · exp(sigma²/2)``) and ``ttft_mdape`` (on held-out calls
    with a recorded TTFT; NaN when none).
    """
    calls = recorded_calls(path)
    test_mask = pl.col("session_id") % holdout_every == 0
    fits = fit_models(calls.filter(~test_mask))
    test = calls.filter(test_mask)
    rows = []
    z90 = 1.2815515655446004
    for model, f in fits.items():
        g = test.filter(pl.col("model") == model)
        p, o, y = g["prompt_tokens"].to_numpy(), g["output_tokens"].to_numpy(), g["api_s"].to_numpy()
        med = f.median_api_s(p, o)
        lo, hi = med * math.exp(-z90 * f.sigma), med * math.exp(z90 * f.sigma)
        t = g.filter(pl.col("ttft_s").is_not_nan())
        ttft_err = (
            float(
                np.median(np.abs(f.median_ttft_s(t["prompt_tokens"].to_numpy()) / t["ttft_s"].to_numpy() - 1))
            )
            if t.height
            else math.nan
        )
        rows.append(
            {
                "model": model,
                "ttft_base_s": f.ttft_base_s,
                "ttft_per_1k_prompt_s": f.ttft_per_1k_prompt_s,
                "tpot_s": f.tpot_s,
                "sigma": f.sigma,
                "n_train": f.n,
                "n_test": len(y),
                "api_mdape": float(np.median(np.abs(med / y - 1))) if len(y) else math.nan,
                "api_p10_p90_coverage": float(np.mean((y >= lo) & (y <= hi))) if len(y) else math.nan,
                "api_mean_bias": float(np.mean(med) * math.exp(f.sigma**2 / 2) / np.mean(y) - 1)
                if len(y)
                else math.nan,
                "ttft_mdape": ttft_err,
                "n_ttft_test": t.height,
            }
        )
    return pl.DataFrame(rows)


def fits_document(path: str | Path, holdout_every: int = 5) -> dict[str, object]:
    """The JSON document :func:`write_fits` writes: per LiteLLM id (the recorded id without its date
    suffix) the training-session fit and its held-out errors (NaN as null)."""
    rep = fit_report(path, holdout_every)
    models: dict[str, dict[str, object]] = {}
    for row in rep.iter_rows(named=True):
        entry = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        entry["recorded_model"] = entry.pop("model")
        models[litellm_id(str(row["model"]))] = entry
    return {
        "about": "Per-model API latency of the recorded Claude Code calls (simroute/tiers/api_call_fit.py): "
        "median TTFT = ttft_base_s + ttft_per_1k_prompt_s * prompt_tokens / 1000, median time per output "
        "token = tpot_s, one log-normal factor exp(sigma * z) per call. Fitted on the sessions with "
        f"session_id % {holdout_every} != 0; api_mdape, api_p10_p90_coverage, api_mean_bias and "
        "ttft_mdape are errors on the held-out sessions (n_test calls).",
        "source": Path(path).name,
        "holdout_every": holdout_every,
        "command": f"python -m simroute.tiers.api_call_fit traces/{Path(path).name} "
        "--out conf/tiers/claude_api_latency.json",
        "models": dict(sorted(models.items())),
    }


def write_fits(path: str | Path, out: str | Path, holdout_every: int = 5) -> None:
    """Fit the trace at ``path`` and write :func:`fits_document` to ``out`` (deterministic JSON)."""
    doc = fits_document(path, holdout_every)
    Path(out).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m simroute.tiers.api_call_fit TRACE --out FILE [--holdout-every K]``."""
    ap = argparse.ArgumentParser(description="Fit per-model API latency to recorded calls.")
    ap.add_argument("trace", help="a trace with recorded_api_s (e.g. traces/claude_code_2025.parquet)")
    ap.add_argument("--out", required=True, help="JSON file to write (conf/tiers/claude_api_latency.json)")
    ap.add_argument("--holdout-every", type=int, default=5, help="hold out sessions with id %% K == 0")
    a = ap.parse_args(argv)
    write_fits(a.trace, a.out, a.holdout_every)


if __name__ == "__main__":
    main()
