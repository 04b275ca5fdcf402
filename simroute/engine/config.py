"""Engine settings of one replica (the vLLM V1 scheduler and KV-cache settings that change scheduling)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simroute.errors import ConfigError


@dataclass(frozen=True)
class EngineConfig:
    """vLLM V1 scheduler/KV settings (names as in vLLM's ``SchedulerConfig``/``CacheConfig``).

    Attributes:
        max_num_batched_tokens: token budget of one step (tokens).
        max_num_seqs: requests in the running batch at most.
        block_size: tokens per KV block.
        num_gpu_blocks: KV blocks *including* vLLM's reserved null block.
        enable_prefix_caching: reuse full blocks with equal hashes.
        long_prefill_token_threshold: cap on one request's prefill chunk per step (0 = none).
        max_model_len: prompt + output tokens at most (tokens).
        enable_chunked_prefill: split prompts over steps.
        reserve_full_isl: admit a waiting request only if blocks for its whole prompt are free
            (``scheduler_reserve_full_isl``).
        watermark: fraction of blocks kept free when admitting waiting requests.
    """

    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    block_size: int = 16
    num_gpu_blocks: int = 8192
    enable_prefix_caching: bool = True
    long_prefill_token_threshold: int = 0
    max_model_len: int = 32768
    enable_chunked_prefill: bool = True
    reserve_full_isl: bool = True
    watermark: float = 0.0

    def __post_init__(self) -> None:
        if min(self.max_num_batched_tokens, self.max_num_seqs, self.block_size, self.max_model_len) < 1:
            raise ConfigError(f"engine: sizes must be >= 1 ({self})")
        if self.num_gpu_blocks < 2:
            raise ConfigError("engine.num_gpu_blocks must be >= 2 (one is vLLM's null block)")

    @property
    def watermark_blocks(self) -> int:
        """Blocks kept free when admitting (vLLM: ``int(watermark * num_gpu_blocks)``)."""
        return int(self.watermark * self.num_gpu_blocks)

    def as_array(self) -> np.ndarray:
        """The int64 settings vector the kernel reads (see ``kernel.C_*``)."""
        return np.array(
            [
                self.max_num_batched_tokens,
                self.max_num_seqs,
                self.block_size,
                self.num_gpu_blocks,
                int(self.enable_prefix_caching),
                self.long_prefill_token_threshold,
                self.max_model_len,
                int(self.reserve_full_isl),
                self.watermark_blocks,
                int(self.enable_chunked_prefill),
            ],
            dtype=np.int64,
        )

    @staticmethod
    def from_run_json(run: Mapping[str, Any]) -> EngineConfig:
        """The settings a recorded run (``run.json``, SCHEMA.md) was made with."""
        extra = run.get("scheduler_extra") or {}
        return EngineConfig(
            max_num_batched_tokens=int(run["max_num_batched_tokens"]),
            max_num_seqs=int(run["max_num_seqs"]),
            block_size=int(run["block_size"]),
            num_gpu_blocks=int(run["num_gpu_blocks"]),
            enable_prefix_caching=bool(run["enable_prefix_caching"]),
            long_prefill_token_threshold=int(run.get("long_prefill_token_threshold") or 0),
            max_model_len=int(run["max_model_len"]),
            enable_chunked_prefill=bool(run.get("enable_chunked_prefill", True)),
            reserve_full_isl=bool(extra.get("scheduler_reserve_full_isl", True)),
            watermark=float(extra.get("watermark") or 0.0),
        )
