"""KV-cache capacity of a vLLM GPU replica, computed as vLLM does at start-up.

vLLM sizes the KV cache from what is left of ``gpu_memory_utilization × GPU memory`` after the
weights (per GPU of a tensor-parallel group) and the peak activation / non-PyTorch memory of its
profiling run: ``num_gpu_blocks = (budget − weights − reserve) // (block_size × kv_bytes_per_token)``.
The reserve is a constant here (:data:`RESERVE_BYTES`), 1.5 GiB: on the four dense-model specs of
``gpu_vllm/experiments.json`` that report ``total_kv_blocks`` the formula is then within ~1 %
(:func:`kv_blocks`'s tests). Vision towers of multimodal checkpoints are not counted.
"""

from __future__ import annotations

from simroute.engine.gpu_hardware import GpuSpec
from simroute.engine.model_arch import ModelArch
from simroute.errors import InputError

RESERVE_BYTES = 1.5 * 2**30
"""Activation peak, CUDA graphs, NCCL and allocator overhead per GPU (bytes)."""


def kv_blocks(
    arch: ModelArch,
    gpu: GpuSpec,
    tp: int,
    *,
    gpu_memory_utilization: float = 0.9,
    block_size: int = 16,
    reserve_bytes: float = RESERVE_BYTES,
) -> int:
    """KV blocks of ``block_size`` tokens vLLM would allocate (per replica; all TP GPUs hold a slice
    of every block)."""
    budget = gpu.memory_bytes * gpu_memory_utilization
    free = budget - arch.weight_bytes_total() / tp - reserve_bytes
    per_block = block_size * arch.kv_bytes_per_token(tp)
    n = int(free // per_block)
    if n < 2:
        raise InputError(
            "<gpu model>",
            f"{arch.name} on {tp}x {gpu.name}: weights leave no room for a KV cache",
            column="tp",
        )
    return n
