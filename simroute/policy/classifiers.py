"""Simulated skill classifiers: the oracle and a confusion-matrix noisy classifier.

Neither reads a request's true skill when it classifies. They stand for a real classifier whose
error rates are known (measured, e.g. with ``simroute eval-classifier``): before the run the world
draws each request's predicted label from its true skill through the confusion matrix
(:meth:`simulate`), and ``classify`` returns that draw for the request's row. The oracle (identity
matrix) is an upper bound and is listed in ``summary.json → uses_ground_truth``; so is a noisy
classifier whose accuracy is 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from simroute.errors import ConfigError
from simroute.policy.types import Label, RequestView

if TYPE_CHECKING:  # polars is imported where a column is read: the runtime package stays light
    import polars as pl


class _Simulated:
    """Labels drawn by the world before the run, looked up by request row: per row the index of
    its predicted skill (one byte or so a row, not a label object each), and one shared
    :class:`Label` per skill."""

    _codes: np.ndarray = np.zeros(0, dtype=np.int64)
    _by_code: tuple[Label, ...] = ()

    def classify(self, request: RequestView) -> Label:
        """The label the world drew for this request's row."""
        if request.idx >= len(self._codes):
            raise RuntimeError("simulated classifier: simulate() was not given this request's row")
        return self._by_code[int(self._codes[request.idx])]


TrueSkills: TypeAlias = "Sequence[str] | pl.Series"
"""Every request's true skill, in row order: a sequence of names or a string column (a column is
mapped in place: at 10 M requests a list of names held about 0.7 GiB of Python strings)."""


def _skill_series(true_skills: TrueSkills) -> pl.Series:
    """``true_skills`` as a string column."""
    import polars as pl

    if isinstance(true_skills, pl.Series):
        return true_skills
    return pl.Series("skill", list(true_skills), dtype=pl.String)


def _skill_codes(true_skills: TrueSkills, index: Mapping[str, int]) -> np.ndarray:
    """Each true skill's index (``index``: skill name -> index); ValueError naming a skill that
    ``index`` lacks."""
    import polars as pl

    s = _skill_series(true_skills)
    unknown = s.filter(~s.is_in(list(index)).fill_null(False))
    if len(unknown):
        raise ValueError(f"simulated classifier: unknown true skill {unknown[0]!r}")
    codes = s.replace_strict(list(index), list(index.values()), return_dtype=pl.Int64)
    return codes.to_numpy()


class OracleClassifier(_Simulated):
    """Returns the true skill with confidence 1 (an upper bound on classification), instantly and
    for free."""

    oracle = True
    latency_s = 0.0
    cost_usd = 0.0

    def simulate(self, true_skills: TrueSkills, u_classify: np.ndarray) -> None:
        """World side: every request's label is its true skill."""
        names = tuple(_skill_series(true_skills).unique(maintain_order=True).to_list())
        self._by_code = tuple(Label(s, 1.0) for s in names)
        self._codes = _skill_codes(true_skills, {s: i for i, s in enumerate(names)})


class NoisyClassifier(_Simulated):
    """Draws the predicted skill from a confusion matrix row, using the request's ``u_classify``.

    Args:
        skills: the skill names (matrix order).
        accuracy: P(correct) for every skill when ``confusion`` is not given; errors are spread
            uniformly over the other skills.
        confusion: optional full matrix ``{true: {predicted: probability}}`` (rows sum to 1).
        latency_s: seconds one classification takes (added before routing).
        cost_usd: USD one classification costs (e.g. a small model call).

    The confidence reported is the matrix's posterior-free diagonal entry of the *predicted* row,
    i.e. how often that prediction is right for its own class.
    """

    def __init__(
        self,
        skills: Sequence[str],
        accuracy: float = 0.9,
        confusion: Mapping[str, Mapping[str, float]] | None = None,
        latency_s: float = 0.0,
        cost_usd: float = 0.0,
    ) -> None:
        if latency_s < 0 or cost_usd < 0:
            raise ConfigError("classifier: latency_s and cost_usd must be >= 0")
        self.latency_s = latency_s
        self.cost_usd = cost_usd
        self.skills = tuple(skills)
        k = len(self.skills)
        if confusion is None:
            if not 0.0 <= accuracy <= 1.0:
                raise ConfigError(f"classifier.accuracy must be in [0, 1], got {accuracy}")
            off = (1.0 - accuracy) / (k - 1) if k > 1 else 0.0
            m = np.full((k, k), off)
            np.fill_diagonal(m, accuracy if k > 1 else 1.0)
        else:
            m = np.zeros((k, k))
            for i, s in enumerate(self.skills):
                row = confusion.get(s)
                if row is None:
                    raise ConfigError(f"classifier.confusion: missing row for skill {s!r}")
                for t, p in row.items():
                    if t not in self.skills:
                        raise ConfigError(f"classifier.confusion.{s}: unknown skill {t!r}")
                    m[i, self.skills.index(t)] = float(p)
                if abs(m[i].sum() - 1.0) > 1e-6 or (m[i] < 0).any():
                    raise ConfigError(f"classifier.confusion.{s}: probabilities must sum to 1")
        self.matrix = m
        self._cum = np.cumsum(m, axis=1)
        self._index = {s: i for i, s in enumerate(self.skills)}
        self.oracle = bool(np.allclose(m, np.eye(k)))
        self._by_code = tuple(Label(s, float(m[j, j])) for j, s in enumerate(self.skills))

    def simulate(self, true_skills: TrueSkills, u_classify: np.ndarray) -> None:
        """World side: draw each request's predicted skill from its true skill's confusion row,
        with the request's uniform ``u_classify`` (common random numbers), for all rows at once."""
        if len(true_skills) != len(u_classify):
            raise ValueError("simulated classifier: one uniform per request is needed")
        true = _skill_codes(true_skills, self._index)
        u = np.asarray(u_classify, dtype=np.float64)
        codes = np.empty(len(true), dtype=np.int64)
        for i in range(len(self.skills)):
            rows = np.flatnonzero(true == i)
            codes[rows] = np.searchsorted(self._cum[i], u[rows], side="right")
        self._codes = np.minimum(codes, len(self.skills) - 1)
