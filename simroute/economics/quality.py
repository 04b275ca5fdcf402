"""Quality model: probability that a model succeeds on a request, item-response-theory style.

``P(success | model m, skill s, request difficulty d) = sigmoid(ability[m, s] - d)`` (logits). The
draw uses *common random numbers*: attempt ``k`` of request ``i`` succeeds iff
``u[i, k] < P``, where ``u`` is fixed per request by the run seed, so two policies facing the same
request see the same luck and their difference is paired.

Abilities come from config (``models.*.ability``: a ``default`` logit plus per-skill overrides).
The defaults are anchored on real outcomes: RouteLLM's GSM8K results give GPT-4 85.7 % and
Mixtral-8x7B 63.8 % accuracy; with the default difficulty spread (sd ≈ 1 logit) those averages
correspond to abilities of about 2.1 and 0.7. ``simroute calibrate`` fits abilities to any per-prompt
outcome table (:mod:`simroute.economics.calibrate`).
"""

from __future__ import annotations

import numba
import numpy as np

from simroute.workload.skills import SkillCatalog


@numba.njit(cache=True)
def p_success_kernel(
    ability: np.ndarray, model: np.ndarray, skill: np.ndarray, difficulty: np.ndarray
) -> np.ndarray:
    """Numba kernel: ``sigmoid(ability[model[i], skill[i]] - difficulty[i])`` for each i."""
    n = model.shape[0]
    out = np.empty(n)
    for i in range(n):
        x = ability[model[i], skill[i]] - difficulty[i]
        out[i] = 1.0 / (1.0 + np.exp(-x))
    return out


def p_success_reference(
    ability: np.ndarray, model: np.ndarray, skill: np.ndarray, difficulty: np.ndarray
) -> np.ndarray:
    """Plain-NumPy reference of :func:`p_success_kernel` (used by the tests)."""
    x = ability[model, skill] - difficulty
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def correlate_attempts(u: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Make a request's attempts share luck: each later attempt reuses the first attempt's uniform
    with probability ``rho`` (else keeps its own).

    ``u`` has shape (n_requests, n_attempts). Every column stays exactly Uniform(0, 1) and two
    attempts' uniforms have correlation ``rho``. ``rho = 0`` is IRT's local independence: a request
    that failed gets a fresh draw on its next attempt, so escalation after a detected failure buys
    extra chances. ``rho = 1`` makes outcomes comonotone: a stronger model succeeds whenever a
    weaker one did, and retrying never helps unless the model is stronger — the regime where
    sending a known-hard request straight to a strong model (the risk predictor) pays off."""
    if rho == 0.0:
        return u
    shared = rng.random(u.shape) < rho
    shared[:, 0] = False
    return np.where(shared, u[:, :1], u)


class QualityModel:
    """Per-(model, skill) abilities and the success probability of one attempt.

    Args:
        models: model names (row order of ``ability``).
        skills: skill names (column order of ``ability``).
        ability: array (n_models, n_skills) of logits.
        attempt_correlation: share ``rho`` of a request's later attempts that reuse its first
            attempt's luck (see :func:`correlate_attempts`); 0 = independent attempts.
    """

    def __init__(
        self,
        models: tuple[str, ...],
        skills: tuple[str, ...],
        ability: np.ndarray,
        attempt_correlation: float = 0.0,
    ) -> None:
        if ability.shape != (len(models), len(skills)):
            raise ValueError(f"ability shape {ability.shape} != ({len(models)}, {len(skills)})")
        if not 0.0 <= attempt_correlation <= 1.0:
            raise ValueError(f"attempt_correlation must be in [0, 1], got {attempt_correlation}")
        self.attempt_correlation = float(attempt_correlation)
        self.models = models
        self.skills = skills
        self.ability = np.ascontiguousarray(ability, dtype=np.float64)
        self._m = {m: i for i, m in enumerate(models)}
        self._s = {s: i for i, s in enumerate(skills)}

    def p_success(self, model: str, skill: str, difficulty: float) -> float:
        """Success probability of one attempt (0..1). Python floats around NumPy's ``exp``: the
        same IEEE operations as on NumPy scalars (the same value, tested), without their cost."""
        x = self.ability.item(self._m[model], self._s[skill]) - difficulty
        return 1.0 / (1.0 + float(np.exp(-x)))

    def expected(self, catalog: SkillCatalog) -> np.ndarray:
        """Expected success per (model, skill) over the skill's difficulty distribution.

        Gauss-Hermite quadrature over ``N(difficulty_mean, difficulty_sd)`` (risk-free requests);
        this is what a selector can know about a *label* without seeing the request's difficulty.
        """
        x, w = np.polynomial.hermite_e.hermegauss(32)
        w = w / w.sum()
        out = np.empty_like(self.ability)
        for j, s in enumerate(self.skills):
            p = catalog.profile(s)
            d = p.difficulty_mean + p.difficulty_sd * x
            out[:, j] = (1.0 / (1.0 + np.exp(-(self.ability[:, j, None] - d[None, :])))) @ w
        return out
