"""Local GPU tier: replicas of self-hosted models, with a simple batched-decoding capacity model.

Each replica serves up to ``max_num_seqs`` requests at once (a SimPy resource); an admitted request
takes ``prompt_tokens / prefill_tokens_per_s`` seconds of prefill and then ``output_tokens`` decode
steps of ``tpot_base_s + tpot_per_seq_s * running`` seconds, where ``running`` is the replica's
occupancy at admission. Requests join the replica with the fewest requests (join-shortest-queue);
when every replica's queue holds ``max_queue`` requests the attempt is rejected. The vLLM-engine
issue replaces this model with an iteration-level vLLM V1 scheduler.

Defaults (conf/tiers) follow the Vidur H100 profile of Llama-2-7B in ``../shared``: about 5.6 ms of
non-attention compute per decode step at batch 1 and ~40 ms at 2,048 batched tokens.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import simpy

from simroute.errors import ConfigError
from simroute.policy.types import Request, TierState
from simroute.tiers.base import AttemptResult


@dataclass(frozen=True)
class PoolSpec:
    """One self-hosted model's replica pool (times in seconds, rates in tokens/s)."""

    model: str
    replicas: int
    gpus_per_replica: int
    max_num_seqs: int
    prefill_tokens_per_s: float
    tpot_base_s: float
    tpot_per_seq_s: float
    max_queue: int

    @staticmethod
    def from_config(cfg: Mapping[str, Any]) -> PoolSpec:
        """Parse and check one ``tiers.local.pools`` entry."""
        try:
            spec = PoolSpec(
                str(cfg["model"]),
                int(cfg["replicas"]),
                int(cfg["gpus_per_replica"]),
                int(cfg["max_num_seqs"]),
                float(cfg["prefill_tokens_per_s"]),
                float(cfg["tpot_base_s"]),
                float(cfg["tpot_per_seq_s"]),
                int(cfg["max_queue"]),
            )
        except KeyError as e:
            raise ConfigError(f"tiers.local.pools: missing key {e}") from None
        if (
            min(spec.replicas, spec.gpus_per_replica, spec.max_num_seqs) < 1
            or min(spec.prefill_tokens_per_s, spec.tpot_base_s) <= 0
            or spec.max_queue < 0
        ):
            raise ConfigError(f"tiers.local.pools[{spec.model}]: sizes and rates must be positive")
        return spec


class LocalTier:
    """Self-hosted models on provisioned GPUs.

    Args:
        env: the SimPy environment.
        pools: one :class:`PoolSpec` per local model.
        gpu_hour_usd: provisioned cost per GPU-hour (USD).
    """

    name = "local"

    def __init__(self, env: simpy.Environment, pools: list[PoolSpec], gpu_hour_usd: float) -> None:
        self.env = env
        self.specs = {p.model: p for p in pools}
        self.replicas = {
            p.model: [simpy.Resource(env, p.max_num_seqs) for _ in range(p.replicas)] for p in pools
        }
        self.gpu_hour_usd = gpu_hour_usd

    @property
    def n_gpus(self) -> int:
        """GPUs provisioned across all pools."""
        return sum(p.replicas * p.gpus_per_replica for p in self.specs.values())

    def submit(self, request: Request, model: str) -> simpy.Event:
        """Queue the request on the least-loaded replica of ``model``'s pool."""
        if model not in self.specs:
            raise ConfigError(f"local tier has no pool for model {model!r}")
        return self.env.process(self._serve(request, self.specs[model], self.replicas[model]))

    def _serve(
        self, req: Request, spec: PoolSpec, replicas: list[simpy.Resource]
    ) -> Generator[simpy.Event, Any, AttemptResult]:
        now = self.env.now
        rep = min(replicas, key=lambda r: r.count + len(r.queue))
        if len(rep.queue) >= spec.max_queue and rep.count >= rep.capacity:
            return AttemptResult("rejected", now, now, now, now)
        with rep.request() as slot:
            yield slot
            start = self.env.now
            running = rep.count
            prefill = req.prompt_tokens / spec.prefill_tokens_per_s
            tpot = spec.tpot_base_s + spec.tpot_per_seq_s * running
            yield self.env.timeout(prefill + req.output_tokens * tpot)
            end = self.env.now
        busy = (end - start) * spec.gpus_per_replica / running
        return AttemptResult("completed", now, start, start + prefill + tpot, end, busy)

    def state(self) -> TierState:
        """Waiting and running requests over all replicas."""
        q = s = c = 0
        for reps in self.replicas.values():
            for r in reps:
                q += len(r.queue)
                s += r.count
                c += int(r.capacity)
        return TierState(q, s, c)
