"""inference-perf's ``shared_prefix`` workload under ``load.type: constant`` stages, as the version
that recorded ``gpu_vllm/inference_perf_runs`` ran it (kubernetes-sigs/inference-perf between commits
b81afa4 and ad40050, Oct–Nov 2025: its ``results/config.yaml`` has request timeouts and circuit
breakers but neither ``trace`` nor ``enable_multi_turn_chat``).

What that code does, reproduced here (read, not copied):

* **Prompts.** ``num_groups`` system prompts of ``system_prompt_len`` random tokens; for each,
  ``num_prompts_per_group`` questions of ``question_len`` random tokens; prompt = system text + " " +
  question text. All ``num_groups × num_prompts_per_group`` prompts are made once, then shuffled.
  Every request asks for exactly ``output_len`` tokens (``ignore_eos``). Single-turn: that version
  has no multi-turn chat and silently ignores the newer keys ``num_unique_system_prompts``,
  ``num_users_per_system_prompt`` and ``enable_multi_turn_chat`` (so it ran its defaults, 10 × 10).
* **Which prompt.** Request ``n`` of a stage (``n`` counts from 0 in every stage) gets prompt
  ``n mod len(prompts)`` of the shuffled list — a fixed round-robin, so each prompt recurs every 100
  requests (and hits vLLM's prefix cache whole).
* **Arrivals in a ``constant`` stage.** ``int(rate × duration)`` requests; the gaps are exponential
  draws of mean ``1/rate`` *rescaled so that they sum to exactly ``duration``*; request ``i`` is sent
  at ``start + Σ_{j≤i} gap_j`` (the first one gap after the start, the last at the stage's end).
  Poisson-like spacing, not a fixed interval.
* **Stages** run one after another: a stage waits until all its requests finished, then the tool
  sleeps ``load.interval`` (1 s) and starts the next stage 1 s after setting it up.

Token counts: random token ids decoded to text and re-tokenized by the server come out longer;
on the 16 recorded runs (Llama-2 and Mixtral tokenizers) the measured prompt lengths are
``1.045 ×`` (system + question) tokens (:data:`RETOKENIZE`), which is used for every model.
The tool draws its random numbers unseeded; here they come from ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simroute.errors import InputError

RETOKENIZE = 1.045
"""Measured prompt tokens per requested (system + question) token on the recorded runs."""
STAGE_GAP_S = 2.0
"""Pause between a stage's last completion and the next stage's start (``interval`` 1 s + 1 s set-up)."""


@dataclass(frozen=True)
class SharedPrefix:
    """The ``data.shared_prefix`` block (token counts)."""

    num_groups: int
    num_prompts_per_group: int
    system_prompt_len: int
    question_len: int
    output_len: int


@dataclass(frozen=True)
class LoadStage:
    """One ``load.stages`` entry: ``rate`` (requests/s) for ``duration`` (s)."""

    rate: float
    duration: float

    @property
    def num_requests(self) -> int:
        """Requests the stage sends (``int(rate × duration)``, as inference-perf)."""
        return int(self.rate * self.duration)


@dataclass(frozen=True)
class PromptSet:
    """The shuffled prompts: per prompt its group, shared tokens (system prompt) and total tokens."""

    group: np.ndarray
    shared_tokens: np.ndarray
    prompt_tokens: np.ndarray


@dataclass(frozen=True)
class InferencePerfWorkload:
    """A ``shared_prefix`` workload with ``constant`` load stages."""

    data: SharedPrefix
    stages: tuple[LoadStage, ...]
    retokenize: float = RETOKENIZE

    def prompts(self, rng: np.random.Generator) -> PromptSet:
        """The prompt list in the tool's shuffled order."""
        d = self.data
        n = d.num_groups * d.num_prompts_per_group
        group = np.repeat(np.arange(d.num_groups, dtype=np.int64), d.num_prompts_per_group)
        order = rng.permutation(n)
        shared = round(d.system_prompt_len * self.retokenize)
        total = max(round((d.system_prompt_len + d.question_len) * self.retokenize), 1)
        return PromptSet(
            group[order],
            np.full(n, min(shared, total), dtype=np.int64),
            np.full(n, total, dtype=np.int64),
        )

    @staticmethod
    def arrival_offsets(stage: LoadStage, rng: np.random.Generator) -> np.ndarray:
        """Send times (s after the stage's start) of a ``constant`` stage's requests."""
        n = stage.num_requests
        if n == 0:
            return np.zeros(0)
        gaps = rng.exponential(1.0 / stage.rate, n)
        return np.asarray(np.cumsum(gaps * (stage.duration / gaps.sum())))


def _num(block: Mapping[str, Any], key: str, where: str, *, positive: bool = True) -> float:
    v = block.get(key)
    if (
        isinstance(v, bool)
        or not isinstance(v, int | float)
        or not np.isfinite(v)
        or v < 0
        or (positive and v <= 0)
    ):
        raise InputError(
            where, f"expected a {'positive' if positive else 'non-negative'} number, got {v!r}", column=key
        )
    return float(v)


def parse_shared_prefix(block: object, where: str) -> SharedPrefix:
    """A :class:`SharedPrefix` from a ``shared_prefix`` mapping (either the tool's own key names or the
    newer spec names; the group counts of the newer names are not what ran — see module doc)."""
    if not isinstance(block, Mapping):
        raise InputError(where, "expected an object", column="shared_prefix")
    groups = block.get("num_groups", 10)
    per = block.get("num_prompts_per_group", 10)
    tmp = {"num_groups": groups, "num_prompts_per_group": per}
    return SharedPrefix(
        num_groups=int(_num(tmp, "num_groups", where)),
        num_prompts_per_group=int(_num(tmp, "num_prompts_per_group", where)),
        system_prompt_len=int(_num(block, "system_prompt_len", where, positive=False)),
        question_len=int(_num(block, "question_len", where, positive=False)),
        output_len=int(_num(block, "output_len", where)),
    )


def parse_stages(stages: object, where: str) -> tuple[LoadStage, ...]:
    """``load.stages``: a non-empty list of ``{rate, duration}``."""
    if not isinstance(stages, list) or not stages:
        raise InputError(where, "expected a non-empty list of {rate, duration}", column="stages")
    out = []
    for i, s in enumerate(stages):
        if not isinstance(s, Mapping):
            raise InputError(where, f"stage {i} is not an object", column="stages")
        out.append(
            LoadStage(_num(s, "rate", f"{where}, stage {i}"), _num(s, "duration", f"{where}, stage {i}"))
        )
    return tuple(out)
