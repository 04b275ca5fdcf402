"""Token-dependent API latency of one model, as fitted to recorded calls (:mod:`api_call_fit`).

A call with ``p`` prompt tokens has median time to first token ``ttft_base_s +
ttft_per_1k_prompt_s · p / 1000`` seconds and median time per output token ``tpot_s`` seconds; one
log-normal factor ``exp(sigma · z)`` (``z`` standard normal) scales both phases (a slow call is slow
throughout, as in the fit). The fitted coefficients live in a JSON file
(``conf/tiers/claude_api_latency.json``, written by ``python -m simroute.tiers.api_call_fit``):
``{"models": {litellm_id: {"ttft_base_s", "ttft_per_1k_prompt_s", "tpot_s", "sigma", ...}}}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simroute.errors import InputError
from simroute.jsonfile import read_json

FIELDS: tuple[str, ...] = ("ttft_base_s", "ttft_per_1k_prompt_s", "tpot_s", "sigma")
"""The coefficients every model entry needs (seconds, seconds per 1,000 prompt tokens, seconds per
output token, log-standard-deviation)."""


@dataclass(frozen=True)
class TokenLatencySpec:
    """Median TTFT ``ttft_base_s + ttft_per_1k_prompt_s · p/1000`` (s), median time per output token
    ``tpot_s`` (s), one log-normal factor with log-sd ``sigma`` for the whole call."""

    ttft_base_s: float
    ttft_per_1k_prompt_s: float
    tpot_s: float
    sigma: float

    def median_ttft_s(self, prompt_tokens: int) -> float:
        """Median time to first token (s) of a call with ``prompt_tokens`` prompt tokens."""
        return self.ttft_base_s + self.ttft_per_1k_prompt_s * prompt_tokens / 1000.0


def _spec(path: str, model: str, entry: Any) -> TokenLatencySpec:
    """One model's entry, checked: finite numbers >= 0 and a positive TTFT."""
    if not isinstance(entry, dict):
        raise InputError(
            path, f"expected an object of {list(FIELDS)}, got {entry!r}", column=f"models.{model}"
        )
    vals = []
    for key in FIELDS:
        v = entry.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise InputError(
                path, f"expected a finite number >= 0, got {v!r}", column=f"models.{model}.{key}"
            )
        vals.append(float(v))
    if vals[0] + vals[1] <= 0:
        raise InputError(
            path, "a TTFT of 0 for every prompt (base and slope both 0)", column=f"models.{model}.ttft_base_s"
        )
    return TokenLatencySpec(*vals)


def load_token_fits(path: str | Path) -> dict[str, TokenLatencySpec]:
    """The per-model fits in ``path`` (see the module docstring); problems raise :class:`InputError`."""
    p = str(path)
    doc = read_json(path, "API latency fits not found (python -m simroute.tiers.api_call_fit)")
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict) or not models:
        raise InputError(p, "expected an object with a non-empty 'models' mapping", column="models")
    return {str(m): _spec(p, str(m), e) for m, e in sorted(models.items())}
