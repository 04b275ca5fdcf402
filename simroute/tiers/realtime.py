"""Real-time API tier: per-model log-normal TTFT and inter-token latency, a concurrency cap.

TTFT and ITL medians default to the LLMPerf leaderboard (Dec 2023) measurements in ``../shared``
(e.g. Together Llama-2-70B: TTFT p50 0.64 s, ITL p50 15.3 ms); per-model overrides come from
``tiers.realtime.models``. The API-tiers issue replaces these with fitted distributions, rate
limits and outages.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from simroute.errors import ConfigError
from simroute.policy.types import Request, TierState
from simroute.tiers.base import AttemptResult


@dataclass(frozen=True)
class LatencySpec:
    """Log-normal latency parameters of one API model (seconds)."""

    ttft_median_s: float
    ttft_sigma: float
    itl_median_s: float
    itl_sigma: float

    @staticmethod
    def from_config(cfg: Mapping[str, Any], where: str) -> LatencySpec:
        """Parse and check a latency mapping."""
        try:
            spec = LatencySpec(
                float(cfg["ttft_median_s"]),
                float(cfg["ttft_sigma"]),
                float(cfg["itl_median_s"]),
                float(cfg["itl_sigma"]),
            )
        except KeyError as e:
            raise ConfigError(f"{where}: missing key {e}") from None
        if spec.ttft_median_s <= 0 or spec.itl_median_s <= 0 or min(spec.ttft_sigma, spec.itl_sigma) < 0:
            raise ConfigError(f"{where}: medians must be > 0 and sigmas >= 0")
        return spec


class RealtimeTier:
    """Hosted real-time APIs.

    Args:
        env: the SimPy environment.
        latency: default latency spec; ``per_model`` overrides it for named models.
        max_concurrency: requests in flight at once across the tier (0 = unbounded).
        rng: the tier's generator (latency draws).
    """

    name = "realtime"

    def __init__(
        self,
        env: simpy.Environment,
        latency: LatencySpec,
        per_model: Mapping[str, LatencySpec],
        max_concurrency: int,
        rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.latency = latency
        self.per_model = dict(per_model)
        self.slots = simpy.Resource(env, max_concurrency) if max_concurrency > 0 else None
        self.rng = rng
        self._in_flight = 0

    def submit(self, request: Request, model: str) -> simpy.Event:
        """Call the API for ``model``."""
        return self.env.process(self._call(request, self.per_model.get(model, self.latency)))

    def _call(self, req: Request, spec: LatencySpec) -> Generator[simpy.Event, Any, AttemptResult]:
        submit = self.env.now
        z = self.rng.standard_normal(2)
        ttft = spec.ttft_median_s * float(np.exp(spec.ttft_sigma * z[0]))
        itl = spec.itl_median_s * float(np.exp(spec.itl_sigma * z[1]))
        if self.slots is None:
            start = self.env.now
            self._in_flight += 1
            yield self.env.timeout(ttft + (req.output_tokens - 1) * itl)
            self._in_flight -= 1
        else:
            with self.slots.request() as slot:
                yield slot
                start = self.env.now
                yield self.env.timeout(ttft + (req.output_tokens - 1) * itl)
        return AttemptResult("completed", submit, start, start + ttft, self.env.now)

    def state(self) -> TierState:
        """Calls waiting for a concurrency slot and in flight."""
        if self.slots is None:
            return TierState(0, self._in_flight, 0)
        return TierState(len(self.slots.queue), self.slots.count, int(self.slots.capacity))
