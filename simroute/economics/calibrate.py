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

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from simroute import rng as rng_mod
from simroute.errors import ConfigError, InputError


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


PAIR_NODES = 41
"""Gauss-Hermite nodes over the difficulty distribution in the attempt-correlation fit."""
_PAIR_Z, _PAIR_W = np.polynomial.hermite_e.hermegauss(PAIR_NODES)
_PAIR_W = _PAIR_W / _PAIR_W.sum()


@dataclass(frozen=True)
class AttemptCorrelationFit:
    """Maximum-likelihood ``rho`` (``models.attempt_correlation``) for one weak/strong model pair.

    Attributes:
        rho: estimate in [0, 1] (the simulator's range).
        interval: profile-likelihood interval of ``rho`` at ``level`` (clipped to [0, 1]).
        level: its coverage (e.g. 0.95).
        rho_unconstrained: the value that fits the table exactly (may fall outside [0, 1]: below 0
            the outcomes are less alike than the difficulty spread alone implies).
        ability_weak, ability_strong: fitted abilities (logits; they absorb the mean difficulty).
        difficulty_sd: the fixed difficulty spread (logits) the fit conditions on.
        counts: observed 2x2 table, ``counts[weak_ok, strong_ok]`` (items).
        fitted: fitted cell probabilities, same layout.
        loglik: maximised log-likelihood (nats).
    """

    rho: float
    interval: tuple[float, float]
    level: float
    rho_unconstrained: float
    ability_weak: float
    ability_strong: float
    difficulty_sd: float
    counts: np.ndarray
    fitted: np.ndarray
    loglik: float

    def conditional_rates(self) -> dict[str, dict[str, float]]:
        """Observed and fitted ``P(strong ok | weak fails / succeeds)`` and the reverse."""
        obs = self.counts / max(self.counts.sum(), 1)
        return {"observed": _conditionals(obs), "fitted": _conditionals(self.fitted)}

    @property
    def deviance(self) -> float:
        """``2·(saturated ll − ll)``: 0 when some ``rho`` in [0, 1] fits the table exactly; large
        when the data need a ``rho`` outside [0, 1] at this difficulty spread (1 degree of freedom)."""
        return 2.0 * (_loglik(self.counts, self.counts / max(self.counts.sum(), 1)) - self.loglik)


def _conditionals(p: np.ndarray) -> dict[str, float]:
    """The four conditional success rates of a 2x2 joint table ``p[weak_ok, strong_ok]``."""

    def ratio(a: float, b: float) -> float:
        return float(a / b) if b > 0 else float("nan")

    return {
        "strong_ok_given_weak_fails": ratio(p[0, 1], p[0].sum()),
        "strong_ok_given_weak_ok": ratio(p[1, 1], p[1].sum()),
        "weak_ok_given_strong_fails": ratio(p[1, 0], p[:, 0].sum()),
        "weak_ok_given_strong_ok": ratio(p[1, 1], p[:, 1].sum()),
        "weak_accuracy": float(p[1].sum()),
        "strong_accuracy": float(p[:, 1].sum()),
    }


def _pair_terms(a_w: float, a_s: float, sd: float) -> tuple[np.ndarray, ...]:
    """Per-node success probabilities and their ability derivatives of the two models."""
    d = sd * _PAIR_Z
    pw = 1.0 / (1.0 + np.exp(-(a_w - d)))
    ps = 1.0 / (1.0 + np.exp(-(a_s - d)))
    return pw, ps, pw * (1 - pw), ps * (1 - ps), _PAIR_W


def pair_cell_probs(a_w: float, a_s: float, rho: float, sd: float) -> np.ndarray:
    """Joint outcome probabilities ``P[weak_ok, strong_ok]`` of one attempt on each model.

    With difficulty ``d ~ N(0, sd²)`` and the simulator's attempt correlation (the second attempt
    reuses the first attempt's uniform with probability ``rho``, :func:`correlate_attempts`):
    ``P(both ok | d) = rho·min(p_w, p_s) + (1 − rho)·p_w·p_s``, averaged over ``d`` by quadrature.
    """
    pw, ps, _, _, w = _pair_terms(a_w, a_s, sd)
    p11 = float((rho * np.minimum(pw, ps) + (1 - rho) * pw * ps) @ w)
    mw, ms = float(pw @ w), float(ps @ w)
    return np.array([[1 - mw - ms + p11, ms - p11], [mw - p11, p11]])


def _pair_grad(a_w: float, a_s: float, rho: float, sd: float) -> np.ndarray:
    """Derivatives of the four cell probabilities (flattened) w.r.t. (a_w, a_s): shape (4, 2)."""
    pw, ps, dw, ds, w = _pair_terms(a_w, a_s, sd)
    weak_min = pw < ps
    d11 = np.array(
        [
            float((rho * weak_min * dw + (1 - rho) * dw * ps) @ w),
            float((rho * ~weak_min * ds + (1 - rho) * pw * ds) @ w),
        ]
    )
    dmw, dms = np.array([float(dw @ w), 0.0]), np.array([0.0, float(ds @ w)])
    return np.stack([d11 - dmw - dms, dms - d11, dmw - d11, d11])


def _loglik(counts: np.ndarray, p: np.ndarray) -> float:
    """Multinomial log-likelihood (nats, without the constant) of a 2x2 table."""
    c = counts.ravel()
    q = np.clip(p.ravel(), 1e-300, 1.0)
    return float(np.sum(np.where(c > 0, c * np.log(q), 0.0)))


def _match_accuracy(acc: float, sd: float) -> float:
    """Ability whose mean success over ``N(0, sd²)`` difficulties is ``acc`` (bisection, logits)."""
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if pair_cell_probs(mid, mid, 0.0, sd)[1].sum() < acc:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _profile(counts: np.ndarray, rho: float, sd: float, start: np.ndarray) -> tuple[float, np.ndarray]:
    """Log-likelihood maximised over the two abilities at fixed ``rho`` (Fisher scoring)."""
    a = start.astype(float).copy()
    n = float(counts.sum())
    ll = _loglik(counts, pair_cell_probs(a[0], a[1], rho, sd))
    for _ in range(50):
        p = np.clip(pair_cell_probs(a[0], a[1], rho, sd).ravel(), 1e-12, 1.0)
        g = _pair_grad(a[0], a[1], rho, sd)
        score = (counts.ravel() / p) @ g
        info = n * (g.T / p) @ g + 1e-9 * np.eye(2)
        step = np.linalg.solve(info, score)
        for _half in range(40):  # backtrack until the likelihood does not fall
            new_ll = _loglik(counts, pair_cell_probs(a[0] + step[0], a[1] + step[1], rho, sd))
            if new_ll >= ll:
                break
            step = step / 2
        else:
            break  # no ascent direction left: at the maximum to machine precision
        a, ll = a + step, new_ll
        if float(np.abs(step).max()) < 1e-10:
            break
    return ll, a


def pair_profile_loglik(counts: np.ndarray, rho: float, difficulty_sd: float) -> float:
    """Profile log-likelihood (nats) of ``rho`` for a 2x2 table ``counts[weak_ok, strong_ok]``: the
    abilities maximised out. Sums over tables give a pooled profile (a shared ``rho``, abilities per
    table)."""
    c = np.asarray(counts, dtype=np.int64)
    n = int(c.sum())
    acc = [
        float(np.clip(c[1].sum() / n, 0.5 / n, 1 - 0.5 / n)),
        float(np.clip(c[:, 1].sum() / n, 0.5 / n, 1 - 0.5 / n)),
    ]
    start = np.array([_match_accuracy(x, difficulty_sd) for x in acc])
    return _profile(c, rho, difficulty_sd, start)[0]


def fit_attempt_correlation(
    weak: np.ndarray, strong: np.ndarray, *, difficulty_sd: float = 1.0, level: float = 0.95
) -> AttemptCorrelationFit:
    """Estimate the attempt correlation ``rho`` from paired outcomes of a weak and a strong model.

    The simulator's quality model: an attempt of model ``m`` on an item of difficulty ``d``
    succeeds with probability ``sigmoid(a_m − d)``; a later attempt (on another model) reuses the
    first attempt's uniform with probability ``rho`` (:func:`simroute.economics.quality.
    correlate_attempts`). Outcomes of two models on the same items are then correlated through two
    channels: the shared difficulty ``d`` and the shared luck ``rho``. With two models the 2x2 table
    has three free cells and (``a_w``, ``a_s``, difficulty spread, ``rho``) four unknowns, so
    ``rho`` is identified only given the spread; this fit takes the spread the simulation itself
    draws (``difficulty_sd``, logits; ``d ~ N(0, sd²)``, the abilities absorb the mean). ``rho`` is
    therefore *the extra shared luck between attempts on different models beyond what the simulated
    difficulty spread explains* — a larger assumed spread explains more of the agreement and
    leaves a smaller ``rho``.

    Maximum likelihood over (``a_w``, ``a_s``, ``rho`` in [0, 1]): the abilities by Fisher scoring
    at each ``rho`` (Gauss-Hermite quadrature over ``d``), ``rho`` by a grid then golden-section
    search of that profile likelihood. The interval is the profile-likelihood interval
    ``{rho: 2·(max ll − profile ll(rho)) <= chi²₁(level)}`` within [0, 1] (at the boundary
    ``rho = 0`` this is conservative: the one-sided bound would use chi²₁(2·level − 1)).

    Args:
        weak, strong: per-item outcomes (1/True = success) of the two models on the same items.
        difficulty_sd: spread of item difficulty (logits, >= 0; 0 = every item equally hard).
        level: coverage of the interval, in (0, 1).
    """
    w = np.asarray(weak).astype(bool)
    s = np.asarray(strong).astype(bool)
    if w.shape != s.shape or w.ndim != 1 or len(w) < 2:
        raise InputError("<outcomes>", f"need two equal-length outcome vectors, got {w.shape} and {s.shape}")
    if not (np.isfinite(difficulty_sd) and difficulty_sd >= 0):
        raise ConfigError(f"difficulty sd must be a finite number >= 0 (logits), got {difficulty_sd}")
    if not 0 < level < 1:
        raise ConfigError(f"interval level must be in (0, 1), got {level}")
    counts = np.array([[np.sum(~w & ~s), np.sum(~w & s)], [np.sum(w & ~s), np.sum(w & s)]], dtype=np.int64)
    n = len(w)
    start = np.array(
        [_match_accuracy(float(np.clip(x.mean(), 0.5 / n, 1 - 0.5 / n)), difficulty_sd) for x in (w, s)]
    )
    rho_hat, (ll_max, a_hat) = _argmax_rho(counts, difficulty_sd, start)
    crit = 0.5 * NormalDist().inv_cdf(0.5 + 0.5 * level) ** 2

    def inside(r: float) -> bool:
        return _profile(counts, r, difficulty_sd, a_hat)[0] >= ll_max - crit

    lo = 0.0 if inside(0.0) else _boundary(inside, 0.0, rho_hat)
    hi = 1.0 if inside(1.0) else _boundary(inside, 1.0, rho_hat)
    ind = pair_cell_probs(start[0], start[1], 0.0, difficulty_sd)[1, 1]
    comono = pair_cell_probs(start[0], start[1], 1.0, difficulty_sd)[1, 1]
    rho_free = (counts[1, 1] / n - ind) / (comono - ind) if comono > ind else float("nan")
    return AttemptCorrelationFit(
        rho=rho_hat,
        interval=(lo, hi),
        level=level,
        rho_unconstrained=float(rho_free),
        ability_weak=float(a_hat[0]),
        ability_strong=float(a_hat[1]),
        difficulty_sd=float(difficulty_sd),
        counts=counts,
        fitted=pair_cell_probs(a_hat[0], a_hat[1], rho_hat, difficulty_sd),
        loglik=ll_max,
    )


def _argmax_rho(
    counts: np.ndarray, sd: float, start: np.ndarray, grid: int = 21
) -> tuple[float, tuple[float, np.ndarray]]:
    """Maximiser of the profile likelihood over ``rho`` in [0, 1] and its (ll, abilities)."""
    rhos = np.linspace(0.0, 1.0, grid)
    lls = [_profile(counts, float(r), sd, start)[0] for r in rhos]
    k = int(np.argmax(lls))
    lo, hi = float(rhos[max(k - 1, 0)]), float(rhos[min(k + 1, grid - 1)])
    g = (np.sqrt(5.0) - 1) / 2
    for _ in range(45):  # golden-section search inside the bracket around the best grid point
        x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
        if _profile(counts, x1, sd, start)[0] >= _profile(counts, x2, sd, start)[0]:
            hi = x2
        else:
            lo = x1
    cands = [float(rhos[k]), 0.5 * (lo + hi)]
    fits = [_profile(counts, r, sd, start) for r in cands]
    best = int(np.argmax([f[0] for f in fits]))
    return cands[best], fits[best]


def _boundary(inside: Callable[[float], bool], out: float, inn: float) -> float:
    """Bisect between a point outside (``out``) and inside (``inn``) the interval (60 halvings)."""
    for _ in range(60):
        mid = 0.5 * (out + inn)
        if inside(mid):
            inn = mid
        else:
            out = mid
    return inn
