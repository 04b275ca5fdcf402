"""Distillation: local models learn the skills that stronger tiers keep solving.

Every accepted answer from a teacher tier (real-time or batch) is a training example for its
predicted skill. A local model's ability on a skill grows with the examples collected so far along
a learning curve with diminishing returns and a cap:
``ability = base + gain_max · (1 - 2^(-examples / examples_half))``; training costs
``usd_per_example`` per new example (fine-tuning compute and data handling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simroute.economics.quality import QualityModel
from simroute.errors import ConfigError
from simroute.policy.catalog import ModelCatalog
from simroute.workload.skills import SkillCatalog


def learning_curve(examples: np.ndarray, gain_max: float, examples_half: float) -> np.ndarray:
    """Ability gain (logits) after ``examples`` teacher examples: monotone, capped at ``gain_max``."""
    return np.asarray(gain_max * (1.0 - np.exp2(-np.maximum(examples, 0.0) / examples_half)))


@dataclass
class Distiller:
    """See the module docstring.

    Attributes:
        gain_max: largest ability gain per skill (logits).
        examples_half: examples that give half of it.
        usd_per_example: training cost per new example.
        teacher_tiers: tiers whose accepted answers become examples.
    """

    gain_max: float = 1.5
    examples_half: float = 3000.0
    usd_per_example: float = 0.002
    teacher_tiers: tuple[str, ...] = ("realtime", "batch")
    examples: dict[str, float] = field(default_factory=dict)
    base: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.gain_max < 0 or self.examples_half <= 0 or self.usd_per_example < 0:
            raise ConfigError(
                "multiday.distillation: need gain_max >= 0, examples_half > 0, usd_per_example >= 0"
            )

    def night(
        self, attempts: pl.DataFrame, quality: QualityModel, catalog: ModelCatalog, skills: SkillCatalog
    ) -> dict[str, float]:
        """Collect the day's examples and raise the local models' true abilities (the catalogue's
        expectations are not touched: only the nightly evaluator updates what the policies know)."""
        teach = attempts.filter(pl.col("tier").is_in(list(self.teacher_tiers)) & pl.col("accepted"))
        new = 0.0
        for (skill,), g in teach.group_by(["skill_pred"]):
            self.examples[str(skill)] = self.examples.get(str(skill), 0.0) + g.height
            new += g.height
        local = [o.model for o in catalog.by_tier["local"]]
        rows = np.array([quality.models.index(m) for m in local], dtype=np.int64)
        if self.base is None:
            self.base = quality.ability[rows].copy()
        ex = np.array([self.examples.get(s, 0.0) for s in quality.skills])
        quality.ability[rows] = self.base + learning_curve(ex, self.gain_max, self.examples_half)[None, :]
        # only the world changes: the policies learn the gain through the evaluator's judged samples
        return {
            "distilled_examples": new,
            "distillation_cost_usd": new * self.usd_per_example,
            "examples_total": float(sum(self.examples.values())),
        }
