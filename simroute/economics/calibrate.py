"""Fit the quality model's abilities (and item difficulties) to per-prompt outcomes.

Model: ``P(model m solves item i) = sigmoid(ability[m, skill(i)] - difficulty[i])`` — a Rasch /
one-parameter IRT model with ``difficulty ~ N(0, sd²)`` (which pins the scale's origin). The fit
is marginal maximum likelihood by EM (difficulties integrated out on a Gauss-Hermite grid), which
estimates abilities and ``sd`` consistently (a weak prior keeps abilities finite when a model
solves every item of a skill).

:func:`heldout_report` holds out a seeded share of the (model, item) cells, fits on the rest and
scores the held-out predictions: log-loss and Brier score against a per-model-accuracy baseline,
and a reliability table (predicted vs observed success by probability bin). Any table with a
``prompt`` column, an optional skill column and one True/False column per model can be fitted the
same way (``simroute calibrate``); the fitted abilities go into ``conf/models/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simroute import rng as rng_mod


@dataclass(frozen=True)
class IRTFit:
    """Fitted abilities (models × skills, logits), difficulties (items, logits) and their spread."""

    ability: np.ndarray
    difficulty: np.ndarray
    iterations: int
    sd_difficulty: float

    def predict(self, model: np.ndarray, item: np.ndarray, skill: np.ndarray) -> np.ndarray:
        """Success probabilities of (model, item) cells."""
        return np.asarray(1.0 / (1.0 + np.exp(-(self.ability[model, skill] - self.difficulty[item]))))


def fit_irt(
    y: np.ndarray,
    observed: np.ndarray,
    skill: np.ndarray | None = None,
    *,
    sd_difficulty: float | None = None,
    sd_ability: float = 3.0,
    nodes: int = 41,
    iters: int = 500,
    tol: float = 1e-7,
) -> IRTFit:
    """Marginal-maximum-likelihood fit of a Rasch model by EM over a quadrature of difficulties.

    Item difficulties are integrated out over ``N(0, sd²)`` (Gauss-Hermite, ``nodes`` points), so
    the abilities are consistent estimates (a per-item MAP fit would shrink them); ``sd`` is
    estimated by EM unless given. Difficulties are reported as posterior means.

    Args:
        y: outcomes, shape (models, items), 1 = success (ignored where not observed).
        observed: boolean mask of the cells to fit, same shape.
        skill: skill index of each item (None = one skill).
        sd_difficulty: fix the difficulty spread (logits) instead of estimating it.
        sd_ability: standard deviation of a weak N(0, sd²) prior on abilities (logits), which keeps
            them finite when a model solves (or fails) every item of a skill.
    """
    n_m, n_i = y.shape
    sk = np.zeros(n_i, dtype=np.int64) if skill is None else np.asarray(skill, dtype=np.int64)
    n_s = int(sk.max()) + 1 if n_i else 1
    z, wq = np.polynomial.hermite_e.hermegauss(nodes)
    logw = np.log(wq / wq.sum())
    a = np.zeros((n_m, n_s))
    sd = 1.0 if sd_difficulty is None else sd_difficulty
    obs = observed.astype(float)
    yy = np.where(observed, y, 0).astype(float)
    done = 0
    post = np.full((n_i, nodes), 1.0 / nodes)
    for step_no in range(1, iters + 1):
        done = step_no
        d = sd * z  # (K,)
        x = a[:, sk][:, :, None] - d[None, None, :]  # (M, I, K)
        logp = -np.logaddexp(0.0, -x)
        log1mp = -np.logaddexp(0.0, x)
        ll = (obs[:, :, None] * (yy[:, :, None] * logp + (1 - yy[:, :, None]) * log1mp)).sum(0) + logw
        ll -= ll.max(1, keepdims=True)
        post = np.exp(ll)
        post /= post.sum(1, keepdims=True)
        p = np.exp(logp)
        step = np.zeros_like(a)
        for s_ in range(n_s):
            cols = sk == s_
            r = (post[cols][None, :, :] * (yy[:, cols, None] - p[:, cols, :])).sum(2)
            v = (post[cols][None, :, :] * p[:, cols, :] * (1 - p[:, cols, :])).sum(2)
            g = (obs[:, cols] * r).sum(1) - a[:, s_] / sd_ability**2
            h = (obs[:, cols] * v).sum(1) + 1.0 / sd_ability**2
            step[:, s_] = g / h
        a = a + step
        new_sd = float(np.sqrt((post * d[None, :] ** 2).sum() / max(n_i, 1))) if sd_difficulty is None else sd
        moved = max(np.abs(step).max(initial=0.0), abs(new_sd - sd))
        sd = max(new_sd, 1e-3)
        if moved < tol:
            break
    return IRTFit(a, post @ (sd * z), done, sd)


def heldout_report(
    y: np.ndarray, skill: np.ndarray | None = None, *, holdout: float = 0.2, seed: int = 0, bins: int = 10
) -> dict[str, object]:
    """Fit on all but a random ``holdout`` share of cells; score the held-out predictions."""
    g = rng_mod.stream(seed, "calibrate.holdout")
    test = g.random(y.shape) < holdout
    fit = fit_irt(y, ~test, skill)
    m_idx, i_idx = np.nonzero(test)
    sk = np.zeros(y.shape[1], dtype=np.int64) if skill is None else np.asarray(skill)
    p = np.clip(fit.predict(m_idx, i_idx, sk[i_idx]), 1e-9, 1 - 1e-9)
    obs = y[m_idx, i_idx].astype(float)
    base_rate = np.array([(y[m][~test[m]]).mean() for m in range(y.shape[0])])
    pb = np.clip(base_rate[m_idx], 1e-9, 1 - 1e-9)

    def logloss(q: np.ndarray) -> float:
        return float(-np.mean(obs * np.log(q) + (1 - obs) * np.log(1 - q)))

    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    reliability: list[dict[str, float | int | str]] = []
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            pred, seen = float(p[m].mean()), float(obs[m].mean())
            ece += int(m.sum()) * abs(pred - seen) / len(p)
            reliability.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(m.sum()),
                    "predicted": pred,
                    "observed": seen,
                }
            )
    return {
        "heldout_cells": len(p),
        "fit_cells": int((~test).sum()),
        "iterations": fit.iterations,
        "logloss": logloss(p),
        "logloss_baseline": logloss(pb),
        "brier": float(np.mean((p - obs) ** 2)),
        "brier_baseline": float(np.mean((pb - obs) ** 2)),
        "expected_calibration_error": float(ece),
        "reliability": reliability,
        "ability": fit.ability.tolist(),
        "difficulty_sd": fit.sd_difficulty,
    }
