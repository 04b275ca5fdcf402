"""Fit the GPU model's coefficients (:data:`simroute.engine.gpu_model.FITTED`) to measured experiments.

Objective: mean squared log error of the per-stage E2E mean and TTFT mean (equal weights) over the
fit experiments (stages "0", "1", ...; the whole run "-1" when no stage is measured). The per-request
front-end time only shifts every client latency, so it is solved for by a 1-D search on the
simulated results (no re-simulation); the other four (per-step overhead, compute and bandwidth
efficiency, all-reduce latency) by Nelder–Mead in log space. For speed the fit simulates every
stage for ``duration_scale`` of its duration (same rates; steady state is reached within seconds).
Deterministic: fixed seed, fixed start, fixed iteration budget.

:func:`fit_fp8_moe` fits the one FP8-MoE coefficient (``fp8_moe_layer_s``) on the FP8 MoE
experiment(s) it is given, every other coefficient held at its value (same objective, front-end
time included and fixed; golden-section search in log space; full stage durations by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simroute.engine.gpu_experiments import GpuExperiment, Stats
from simroute.engine.gpu_model import GpuCoefficients
from simroute.engine.validate_gpu import simulate, stage_stats
from simroute.workload.inference_perf import LoadStage

_SIMULATED = ("step_overhead_s", "compute_efficiency", "bandwidth_efficiency", "allreduce_latency_s")
_TARGETS = ("e2e_mean_ms", "ttft_mean_ms")


@dataclass(frozen=True)
class FitResult:
    """Fitted coefficients, the objective reached (mean squared log error) and evaluations used."""

    coefficients: GpuCoefficients
    objective: float
    evaluations: int


def shortened(exp: GpuExperiment, scale: float) -> GpuExperiment:
    """``exp`` with every stage ``scale`` times as long (same rates)."""
    stages = tuple(LoadStage(s.rate, max(s.duration * scale, 10.0 / s.rate)) for s in exp.workload.stages)
    return dataclasses.replace(exp, workload=dataclasses.replace(exp.workload, stages=stages))


def fit_stages(exp: GpuExperiment) -> list[str]:
    """The measured stage keys a fit compares (per stage if measured, else the whole run)."""
    m = exp.measured or {}
    stages = [k for k in m if k != "-1"]
    return stages or (["-1"] if "-1" in m else [])


def _log_errors(pred: Stats, exp: GpuExperiment, fe_ms: float) -> list[float]:
    m = exp.measured or {}
    out = []
    for s in fit_stages(exp):
        for k in _TARGETS:
            shift = fe_ms if k in _TARGETS else 0.0
            if k in m[s] and m[s][k] > 0 and s in pred:
                out.append(float(np.log((pred[s][k] + shift) / m[s][k])))
    return out


def _best_front_end(preds: Sequence[Stats], exps: Sequence[GpuExperiment]) -> tuple[float, float]:
    """(front-end ms, objective) minimising the objective over front-end time in [0, 60] ms."""

    def obj(fe: float) -> float:
        errs = [e for p, x in zip(preds, exps, strict=True) for e in _log_errors(p, x, fe)]
        return float(np.mean(np.square(errs))) if errs else 0.0

    lo, hi = 0.0, 60.0
    for _ in range(40):  # golden-section search
        a, b = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        if obj(a) <= obj(b):
            hi = b
        else:
            lo = a
    fe = (lo + hi) / 2
    return fe, obj(fe)


def evaluate(
    coef: GpuCoefficients, exps: Sequence[GpuExperiment], seed: int = 0
) -> tuple[list[Stats], float, float]:
    """Simulated stats (front end 0), best front-end time (ms) and the objective at it."""
    base = dataclasses.replace(coef, front_end_s=0.0)
    preds = [stage_stats(simulate(x, base, seed)) for x in exps]
    fe, obj = _best_front_end(preds, exps)
    return preds, fe, obj


def _nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: float, iters: int) -> np.ndarray:
    """Minimal Nelder–Mead (standard coefficients), ``iters`` iterations."""
    n = len(x0)
    pts = [x0] + [x0 + step * np.eye(n)[i] for i in range(n)]
    vals = [f(p) for p in pts]
    for _ in range(iters):
        order = np.argsort(vals)
        pts = [pts[i] for i in order]
        vals = [vals[i] for i in order]
        c = np.mean(pts[:-1], axis=0)
        xr = c + (c - pts[-1])
        fr = f(xr)
        if fr < vals[0]:
            xe = c + 2 * (c - pts[-1])
            fe = f(xe)
            pts[-1], vals[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < vals[-2]:
            pts[-1], vals[-1] = xr, fr
        else:
            xc = c + 0.5 * (pts[-1] - c)
            fc = f(xc)
            if fc < vals[-1]:
                pts[-1], vals[-1] = xc, fc
            else:
                pts = [pts[0]] + [pts[0] + 0.5 * (p - pts[0]) for p in pts[1:]]
                vals = [vals[0]] + [f(p) for p in pts[1:]]
    best: np.ndarray = pts[int(np.argmin(vals))]
    return best


def fit(
    exps: Sequence[GpuExperiment],
    start: GpuCoefficients | None = None,
    *,
    iters: int = 40,
    duration_scale: float = 0.25,
    seed: int = 0,
) -> FitResult:
    """Fit the coefficients to ``exps`` (those with measurements and not overloaded are the caller's
    choice)."""
    start = start or GpuCoefficients()
    short = [shortened(x, duration_scale) for x in exps]
    calls = [0]

    def coef_at(x: np.ndarray) -> GpuCoefficients:
        v = dict(zip(_SIMULATED, np.exp(x), strict=True))
        v["compute_efficiency"] = min(v["compute_efficiency"], 1.0)
        v["bandwidth_efficiency"] = min(v["bandwidth_efficiency"], 1.0)
        return dataclasses.replace(start, **v)

    def f(x: np.ndarray) -> float:
        calls[0] += 1
        return evaluate(coef_at(x), short, seed)[2]

    x0 = np.log([getattr(start, k) for k in _SIMULATED])
    best = _nelder_mead(f, x0, 0.3, iters)
    coef = coef_at(best)
    _, fe, obj = evaluate(coef, short, seed)
    return FitResult(dataclasses.replace(coef, front_end_s=fe / 1e3), obj, calls[0] + 1)


def fit_fp8_moe(
    exps: Sequence[GpuExperiment],
    base: GpuCoefficients,
    *,
    lo_s: float = 1e-6,
    hi_s: float = 1e-3,
    iters: int = 24,
    duration_scale: float = 1.0,
    seed: int = 0,
) -> FitResult:
    """Fit ``fp8_moe_layer_s`` (s per MoE layer per step, searched in [``lo_s``, ``hi_s``]) to
    ``exps`` with every other coefficient of ``base`` fixed (its front-end time included)."""
    short = [shortened(x, duration_scale) for x in exps] if duration_scale != 1.0 else list(exps)
    calls = [0]

    def f(log_tau: float) -> float:
        calls[0] += 1
        coef = dataclasses.replace(base, fp8_moe_layer_s=float(np.exp(log_tau)))
        errs = [e for x in short for e in _log_errors(stage_stats(simulate(x, coef, seed)), x, 0.0)]
        return float(np.mean(np.square(errs))) if errs else 0.0

    g = (np.sqrt(5.0) - 1.0) / 2.0  # golden-section search, one new evaluation per iteration
    lo, hi = float(np.log(lo_s)), float(np.log(hi_s))
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(iters):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    x = a if fa <= fb else b
    return FitResult(dataclasses.replace(base, fp8_moe_layer_s=float(np.exp(x))), min(fa, fb), calls[0])
