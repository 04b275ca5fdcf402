"""The nightly batch evaluator: score yesterday's attempts and retune the router and selector.

Each night a share of the day's completed attempts is judged by an evaluator model whose verdict
matches the truth with probability ``accuracy`` (draws from the ``feedback.evaluator`` stream). The
verdicts update a Beta posterior of the success rate per (predicted skill, model) — quality is a
property of the model, so its batch and real-time offers share it — starting
from the catalogue's prior expectation with ``prior_strength`` pseudo-observations; the posterior
means replace the catalogue's expected quality, which the router and selector read (a router with
``refresh()`` recomputes what it cached). The evaluator's own cost is billed at the judge model's
async-batch prices for the prompt and output tokens it reads and ``verdict_tokens`` it writes.

What gets judged (``mode``):

* ``observed`` — the attempts that happened. Cheap, but biased by the routing itself: strong models
  mostly see the requests that were escalated to them (those a weaker model failed, hence harder)
  or that the risk predictor flagged, so their judged success rate understates their quality.
* ``first`` — first attempts only: removes the escalation bias, keeps the risk-routing bias.
* ``replay`` — counterfactual: a sample of the day's requests is re-run on *every* model of the
  catalogue through the batch API (billed at batch prices; local models free) and judged. Unbiased
  per model on yesterday's traffic mix, at the price of the replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from simroute.economics.prices import PriceTable
from simroute.economics.quality import p_success_kernel
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
        mode: ``observed``, ``first`` or ``replay`` (see the module docstring).
    """

    accuracy: float = 0.9
    prior_strength: float = 50.0
    sample_share: float = 1.0
    judge_model: str = "gpt-4o-mini"
    verdict_tokens: int = 50
    debias: bool = True
    mode: str = "observed"
    successes: dict[tuple[str, str], float] = field(default_factory=dict)
    trials: dict[tuple[str, str], float] = field(default_factory=dict)
    prior: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.5 <= self.accuracy <= 1.0 and 0 < self.sample_share <= 1 and self.prior_strength > 0):
            raise ConfigError(
                "multiday.evaluator: need 0.5 <= accuracy <= 1, 0 < sample_share <= 1, prior_strength > 0"
            )
        if self.mode not in ("observed", "first", "replay"):
            raise ConfigError(
                f"multiday.evaluator.mode: expected observed, first or replay, got {self.mode!r}"
            )

    def night(
        self,
        attempts: pl.DataFrame,
        catalog: ModelCatalog,
        prices: PriceTable,
        router: Any,
        rng: np.random.Generator,
        quality: Any = None,
    ) -> dict[str, float]:
        """Judge ``attempts`` (columns ``skill_pred``, ``tier``, ``model``, ``success``, ``status``,
        ``attempt``, ``prompt_tokens``, ``output_tokens``; for ``replay`` also ``skill`` and
        ``difficulty``), update the catalogue; return the night's accounting."""
        done = attempts.filter(pl.col("status") == "completed")
        if self.mode == "first":
            done = done.filter(pl.col("attempt") == 0)
        replay_usd = 0.0
        if self.mode == "replay":
            if quality is None:
                raise ConfigError("multiday.evaluator.mode=replay needs the quality model")
            done, replay_usd = self._replay(attempts, catalog, prices, quality, rng)
            pick = np.ones(done.height, dtype=bool)
        else:
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
        cost = tokens_in * p.input + judged.height * self.verdict_tokens * p.output + replay_usd
        return {
            "evaluated": float(judged.height),
            "evaluator_cost_usd": cost,
            "evaluator_replay_usd": replay_usd,
            "evaluator_agreement": float(correct.mean()) if judged.height else float("nan"),
        }

    def _replay(
        self,
        attempts: pl.DataFrame,
        catalog: ModelCatalog,
        prices: PriceTable,
        quality: Any,
        rng: np.random.Generator,
    ) -> tuple[pl.DataFrame, float]:
        """Re-run a ``sample_share`` of the day's requests on every model (batch API prices for API
        models); return one row per (request, model) with its drawn ``success`` and the USD spent."""
        first = attempts.filter(pl.col("attempt") == 0).sort("request_index")
        first = first.filter(pl.Series(rng.random(first.height) < self.sample_share))
        models = sorted({o.model for t in catalog.by_tier for o in catalog.by_tier[t]})
        local = {o.model for o in catalog.by_tier.get("local", [])}
        rows = []
        usd = 0.0
        skill_idx = np.array([quality.skills.index(s) for s in first["skill"].to_list()], dtype=np.int64)
        diffs = first["difficulty"].to_numpy().astype(np.float64)
        for m in models:
            model_idx = np.full(first.height, quality.models.index(m), dtype=np.int64)
            p = p_success_kernel(quality.ability, model_idx, skill_idx, diffs)
            ok = rng.random(first.height) < p
            rows.append(
                first.select("skill_pred", "prompt_tokens", "output_tokens").with_columns(
                    pl.lit(m).alias("model"), pl.Series("success", ok)
                )
            )
            if m not in local:
                b = prices.get(m).batch
                usd += (
                    float(first["prompt_tokens"].sum()) * b.input
                    + float(first["output_tokens"].sum()) * b.output
                )
        return pl.concat(rows) if rows else first, usd
