"""GPU datasheet figures a step-time model needs: dense tensor-core FLOP/s per dtype, HBM bytes/s and
capacity, and the GPU-to-GPU interconnect.

Built-in entries are NVIDIA's datasheet numbers (dense, i.e. *without* the 2:4-sparsity doubling the
datasheets print): H100 SXM 80 GB (989 BF16 / 1979 FP8 TFLOP/s, 3.35 TB/s, NVLink 900 GB/s), H200 SXM
141 GB (same compute, 4.8 TB/s), A100 SXM 80 GB (312 BF16 TFLOP/s, no FP8, 2.039 TB/s, NVLink 600 GB/s).
:func:`load_datasheet` reads the JSON format of ``gpu_vllm/hardware/h100-*.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from simroute.errors import InputError


@dataclass(frozen=True)
class GpuSpec:
    """One GPU's peak figures.

    Attributes:
        name: model name.
        bf16_flops: dense BF16/FP16 tensor-core peak (FLOP/s).
        fp8_flops: dense FP8 tensor-core peak (FLOP/s; 0 = no FP8 units: FP8 weights are upcast).
        hbm_bytes_per_s: HBM bandwidth (bytes/s).
        memory_bytes: HBM capacity as the driver reports it (bytes).
        link_bytes_per_s: NVLink bandwidth per GPU, both directions together (bytes/s).
    """

    name: str
    bf16_flops: float
    fp8_flops: float
    hbm_bytes_per_s: float
    memory_bytes: float
    link_bytes_per_s: float

    def flops(self, fp8: bool) -> float:
        """Peak FLOP/s for linear layers in FP8 (if the GPU has FP8 units) or BF16."""
        return self.fp8_flops if fp8 and self.fp8_flops > 0 else self.bf16_flops


BUILTIN: dict[str, GpuSpec] = {
    # "80 GB" parts report 79.65 GiB (81,559 MiB) to the driver; H200 143,771 MiB.
    "H100": GpuSpec("H100 SXM", 989.5e12, 1979e12, 3.35e12, 81559 * 2**20, 900e9),
    "H200": GpuSpec("H200 SXM", 989.5e12, 1979e12, 4.8e12, 143771 * 2**20, 900e9),
    "A100": GpuSpec("A100 SXM 80GB", 312e12, 0.0, 2.039e12, 81251 * 2**20, 600e9),
}
"""Datasheet figures by short name (``H100``, ``H200``, ``A100``)."""


def gpu_by_name(name: str) -> GpuSpec:
    """A built-in :class:`GpuSpec` by short name or by a name containing it (``"H100 SXM 80GB"``)."""
    key = name.upper()
    for short, spec in BUILTIN.items():
        if key == short or short in key.replace("-", " ").split() or key.startswith(short):
            return spec
    raise InputError("<hardware>", f"unknown GPU {name!r}; known: {', '.join(BUILTIN)}", column="hardware")


def load_datasheet(path: str | Path) -> GpuSpec:
    """Read a datasheet JSON (``compute.bf16_tensor_core`` / ``fp8_tensor_core`` in TFLOP/s with a
    ``with_sparsity`` flag, ``memory.capacity_gb``, ``memory.bandwidth_tb_s``,
    ``interconnect.nvlink_bandwidth_gb_s``)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
        c, m = d["compute"], d["memory"]
        sparse = 2.0 if c.get("with_sparsity") else 1.0
        return GpuSpec(
            name=str(d.get("name", p.stem)),
            bf16_flops=float(c["bf16_tensor_core"]) * 1e12 / sparse,
            fp8_flops=float(c.get("fp8_tensor_core") or 0.0) * 1e12 / sparse,
            hbm_bytes_per_s=float(m["bandwidth_tb_s"]) * 1e12,
            memory_bytes=float(m["capacity_gb"]) * 1e9 * 0.9955,  # "80 GB" = 79.65 GiB reported
            link_bytes_per_s=float(d.get("interconnect", {}).get("nvlink_bandwidth_gb_s", 0.0)) * 1e9,
        )
    except FileNotFoundError:
        raise InputError(str(p), "GPU datasheet not found") from None
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(str(p), f"not a GPU datasheet ({type(e).__name__}: {e})") from None
