"""The nightly batch evaluator: score yesterday's attempts and retune the router and selector.

Each night a share of the day's completed attempts is judged by an evaluator model whose verdict
matches the truth with probability ``accuracy`` (draws from the ``feedback.evaluator`` stream). The
verdicts update a Beta posterior of the success rate per (predicted skill, model) — quality is a
property of the model, so its batch and real-time offers share it — starting
from the catalogue's prior expectation with ``prior_strength`` pseudo-observations; the posterior
means replace the catalogue's expected quality, which the router and selector read (a router with
``refresh()`` recomputes what it cached). The evaluator's own cost is billed at the judge model's
async-batch prices for the prompt and output tokens it reads and ``verdict_tokens`` it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from simroute.economics.prices import PriceTable
from simroute.errors import ConfigError
from simroute.policy.catalog import ModelCatalog


@dataclass
class NightlyEvaluator:
    """See the module docstring.

    Attributes:
        accuracy: P(verdict equals the truth).
        prior_strength: pseudo-observations of the catalogue's prior expectation.
        sample_share: share of completed attempts judged each night.
        judge_model: LiteLLM id of the evaluator model (billed at batch prices).
        verdict_tokens: tokens the judge writes per verdict.
        debias: correct the verdict rate for the judge's known accuracy
            (``p = (observed - (1 - accuracy)) / (2 accuracy - 1)``); without it a noisy judge pulls
            every estimate toward 50 %.
    """

    accuracy: float = 0.9
    prior_strength: float = 50.0
    sample_share: float = 1.0
    judge_model: str = "gpt-4o-mini"
    verdict_tokens: int = 50
    debias: bool = True
    successes: dict[tuple[str, str], float] = field(default_factory=dict)
    trials: dict[tuple[str, str], float] = field(default_factory=dict)
    prior: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.5 <= self.accuracy <= 1.0 and 0 < self.sample_share <= 1 and self.prior_strength > 0):
            raise ConfigError(
                "multiday.evaluator: need 0.5 <= accuracy <= 1, 0 < sample_share <= 1, prior_strength > 0"
            )

    def night(
        self,
        attempts: pl.DataFrame,
        catalog: ModelCatalog,
        prices: PriceTable,
        router: Any,
        rng: np.random.Generator,
    ) -> dict[str, float]:
        """Judge ``attempts`` (columns ``skill_pred``, ``tier``, ``model``, ``success``, ``status``,
        ``prompt_tokens``, ``output_tokens``), update the catalogue; return the night's accounting."""
        done = attempts.filter(pl.col("status") == "completed")
        pick = rng.random(done.height) < self.sample_share
        judged = done.filter(pl.Series(pick))
        truth = judged["success"].to_numpy()
        correct = rng.random(judged.height) < self.accuracy
        verdict = np.where(correct, truth, ~truth)
        judged = judged.with_columns(pl.Series("verdict", verdict))
        for (skill, model), g in judged.group_by(["skill_pred", "model"]):
            key = (str(skill), str(model))
            self.successes[key] = self.successes.get(key, 0.0) + float(g["verdict"].sum())
            self.trials[key] = self.trials.get(key, 0.0) + float(g.height)
        offers: dict[str, list[Any]] = {}
        for t in catalog.by_tier:
            for o in catalog.by_tier[t]:
                offers.setdefault(o.model, []).append(o)
        for key in sorted(self.trials):
            skill, model = key
            for offer in offers.get(model, []):
                if skill not in offer.expected_quality:
                    continue
                q0 = self.prior.setdefault(key, float(offer.expected_quality[skill]))
                n = self.trials[key]
                succ = self.successes[key]
                if self.debias and self.accuracy > 0.5:
                    succ = min(max((succ - (1 - self.accuracy) * n) / (2 * self.accuracy - 1), 0.0), n)
                offer.expected_quality[skill] = (self.prior_strength * q0 + succ) / (self.prior_strength + n)
        if hasattr(router, "refresh"):
            router.refresh()
        p = prices.get(self.judge_model).batch
        tokens_in = float((judged["prompt_tokens"] + judged["output_tokens"]).sum())
        cost = tokens_in * p.input + judged.height * self.verdict_tokens * p.output
        return {
            "evaluated": float(judged.height),
            "evaluator_cost_usd": cost,
            "evaluator_agreement": float(correct.mean()) if judged.height else float("nan"),
        }
