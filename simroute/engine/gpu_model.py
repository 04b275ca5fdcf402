"""GPU step times from first principles: a roofline over the model's shape and the GPU's datasheet,
plus a few coefficients fitted to real vLLM runs (:class:`GpuCoefficients`).

One engine step on one GPU of a tensor-parallel (TP) group of ``tp`` GPUs, ``T`` batched tokens:

* linear layers (attention projections, dense MLPs, shared experts, routers):
  ``max(2·T·P_on/tp / (F·mfu), P_on·w/tp / (B·bw))`` — compute- or weight-read-bound; in an FP8
  checkpoint that keeps the attention projections in BF16 (:attr:`ModelArch.attn_quantized`), those
  are a second such term at 2 bytes per weight and the BF16 peak;
* routed experts (MoE): ``2·T·k·P_exp·L_moe/tp`` FLOPs, and the weights of the *distinct* experts the
  batch touches, ``E·(1 − (1 − k/E)^T)`` per MoE layer (uniform routing), read once;
* LM head: its weights read once per step; ``2·hidden·vocab/tp`` FLOPs at the BF16 peak per
  scheduled request (vLLM computes logits only for each request's last token; FP8 checkpoints keep
  the LM head in BF16);
* attention: KV of every attended context token read once (``kv_bytes/(B·bw)`` per context token),
  and prefill attention FLOPs ``4·L·(H/tp)·d`` per (query, key) pair — ``n·(c + n/2)`` pairs for a
  prefill chunk of ``n`` tokens over ``c`` already-computed ones (an earlier chunk of the same prompt
  or a prefix-cache hit), the kernel's ``prefill_attention_pairs`` feature summed over the step's
  chunks;
* TP all-reduce, two per layer: ``2·(tp−1)/tp · T·hidden·2 bytes`` over NVLink plus a latency of
  ``(tp − 1) ×`` a fitted constant;
* CPU: a per-step overhead (scheduler, input preparation, sampling, output processing) and a cost per
  scheduled request;
* FP8 MoE (FP8 checkpoints with routed experts only): a fixed time per MoE layer per step,
  ``fp8_moe_layer_s``. vLLM 0.15 runs per-channel FP8 experts with per-token dynamic activation
  scales through its CUTLASS grouped-GEMM path on Hopper (``CutlassExpertsFp8``), a chain of about
  a dozen kernels per MoE layer besides the two grouped GEMMs — router GEMM, top-k and sigmoid,
  per-token FP8 quantisation of the input, expert problem sizes / offsets / permutation (one of them
  a single-thread loop over the experts), row shuffles, SiLU-and-multiply with re-quantisation,
  un-permute and weighted sum — and the shared expert's two CUTLASS scaled-mm GEMMs each behind a
  per-token quantisation. At decode batch sizes these are latency-bound, not bandwidth-bound, so
  the roofline above misses them. The BF16 fused-MoE path of the fit set (Mixtral) is covered by
  the shared coefficients and gets no such term.

Every term is a function of ``T`` alone (a table the kernel looks up) or linear in the kernel's step
features (:mod:`simroute.engine.steptime`), so the step-exact vLLM scheduler kernel runs unchanged.
A client-side TTFT/E2E also includes a per-request front-end time (HTTP, tokenization, streaming):
``front_end_s``, applied outside the engine by the caller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from simroute.engine.gpu_hardware import GpuSpec
from simroute.engine.model_arch import ModelArch
from simroute.engine.profiles import ProfileStepTime
from simroute.engine.steptime import LinearStepTime
from simroute.errors import InputError
from simroute.jsonfile import read_json


@dataclass(frozen=True)
class GpuCoefficients:
    """The fitted and assumed constants of the GPU model, shared by every model and GPU.

    Attributes:
        step_overhead_s: CPU time of one engine step (s). Fitted.
        front_end_s: client-side time per request outside the engine: HTTP, tokenization,
            streaming (s). Fitted.
        compute_efficiency: achieved fraction of tensor-core peak in GEMMs and attention. Fitted.
        bandwidth_efficiency: achieved fraction of HBM bandwidth for weight and KV reads. Fitted.
        per_request_s: CPU time per scheduled request per step (s). Assumed.
        allreduce_latency_s: fixed latency of one TP all-reduce per extra GPU in the group (s): an
            all-reduce over ``tp`` GPUs costs ``(tp − 1) ×`` this. Fitted.
        link_efficiency: achieved fraction of NVLink bandwidth in all-reduces. Assumed.
        admission_lag_steps: engine steps between a request's arrival at the engine and the step
            that could first schedule it, beyond the step in progress: 1 with vLLM's asynchronous
            scheduling (the next step is scheduled while the current one runs). Assumed; the
            validation applies it after the simulation as that many of the request's own mean
            decode steps added to its TTFT and E2E.
        fp8_moe_layer_s: fixed time per MoE layer per engine step of vLLM's FP8 MoE kernel path
            (s); applies only to FP8 checkpoints with routed experts. Fitted separately, with the
            other coefficients held fixed (:func:`simroute.engine.gpu_fit.fit_fp8_moe`); 0 = none.
    """

    step_overhead_s: float = 0.002
    front_end_s: float = 0.015
    compute_efficiency: float = 0.6
    bandwidth_efficiency: float = 0.8
    per_request_s: float = 2e-5
    allreduce_latency_s: float = 8e-6
    link_efficiency: float = 0.7
    admission_lag_steps: float = 1.0
    fp8_moe_layer_s: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not np.isfinite(v) or v < 0:
                raise InputError(
                    "<gpu coefficients>", f"must be a finite number >= 0, got {v!r}", column=f.name
                )
        if not 0 < self.compute_efficiency <= 1 or not 0 < self.bandwidth_efficiency <= 1:
            raise InputError("<gpu coefficients>", "efficiencies must lie in (0, 1]")

    def to_json(self) -> dict[str, float]:
        """The coefficients by name."""
        return asdict(self)


FITTED: tuple[str, ...] = (
    "step_overhead_s",
    "front_end_s",
    "compute_efficiency",
    "bandwidth_efficiency",
    "allreduce_latency_s",
)
"""The coefficients :func:`simroute.engine.gpu_fit.fit` fits on the BF16 fit set; the others are
assumptions, except :data:`FITTED_FP8_MOE`."""

FITTED_FP8_MOE: tuple[str, ...] = ("fp8_moe_layer_s",)
"""Fitted by :func:`simroute.engine.gpu_fit.fit_fp8_moe` on one FP8 MoE experiment, the others held
fixed."""


def load_coefficients(path: str | Path) -> GpuCoefficients:
    """Read ``{"coefficients": {...}}`` (as written by the fit) into :class:`GpuCoefficients`."""
    p = Path(path)
    d = read_json(p, "GPU coefficient file not found")
    c = d.get("coefficients") if isinstance(d, dict) else None
    if not isinstance(c, dict):
        raise InputError(str(p), "expected an object with a 'coefficients' object", column="coefficients")
    names = {f.name for f in fields(GpuCoefficients)}
    unknown = sorted(set(c) - names)
    if unknown:
        raise InputError(str(p), f"unknown coefficient(s) {unknown}", column="coefficients")
    try:
        return GpuCoefficients(**{k: float(v) for k, v in c.items()})
    except (TypeError, ValueError) as e:
        raise InputError(str(p), f"bad coefficient value ({e})", column="coefficients") from None


def experts_touched(tokens: np.ndarray, num_experts: int, top_k: int) -> np.ndarray:
    """Expected distinct experts a batch of ``tokens`` routes to, per MoE layer (uniform routing)."""
    p_miss = 1.0 - top_k / num_experts
    return np.asarray(num_experts * (1.0 - p_miss ** np.asarray(tokens, dtype=np.float64)))


def linear_seconds(
    arch: ModelArch, gpu: GpuSpec, tp: int, c: GpuCoefficients, tokens: np.ndarray
) -> np.ndarray:
    """Seconds of all weight-bearing layers and TP all-reduces for ``tokens`` batched tokens."""
    t = np.asarray(tokens, dtype=np.float64)
    flops = gpu.flops(arch.fp8_compute) * c.compute_efficiency
    bw = gpu.hbm_bytes_per_s * c.bandwidth_efficiency
    on = arch.always_on_params / tp
    if arch.attn_quantized:
        sec = np.maximum(2.0 * t * on / flops, on * arch.weight_bytes / bw)
    else:  # BF16 attention projections in an FP8 checkpoint: their own roofline term
        attn = arch.num_layers * arch.attn_params_per_layer / tp
        bf16 = gpu.bf16_flops * c.compute_efficiency
        sec = np.maximum(2.0 * t * attn / bf16, attn * arch.attn_weight_bytes / bw)
        sec = sec + np.maximum(2.0 * t * (on - attn) / flops, (on - attn) * arch.weight_bytes / bw)
    sec = sec + arch.lm_head_params * arch.act_bytes / tp / bw
    if arch.is_moe:
        per_layer = arch.expert_params / tp
        touched = experts_touched(t, arch.num_experts, arch.experts_per_token)
        moe_flops = 2.0 * t * arch.experts_per_token * per_layer * arch.moe_layers
        moe_bytes = touched * per_layer * arch.moe_layers * arch.weight_bytes
        sec = sec + np.maximum(moe_flops / flops, moe_bytes / bw)
    if tp > 1:
        link = gpu.link_bytes_per_s / 2.0 * c.link_efficiency
        ar_bytes = 2.0 * (tp - 1) / tp * t * arch.hidden_size * arch.act_bytes
        sec = sec + 2 * arch.num_layers * ar_bytes / link
    return np.asarray(np.where(t > 0, sec, 0.0))


def gpu_step_time(
    arch: ModelArch, gpu: GpuSpec, tp: int, c: GpuCoefficients, max_tokens: int
) -> ProfileStepTime:
    """The step-time model (table over batched tokens 0..``max_tokens`` + linear terms) of ``arch``
    served with tensor parallelism ``tp`` on ``gpu``."""
    if tp < 1:
        raise InputError("<gpu model>", f"tensor parallelism must be >= 1, got {tp}", column="tp")
    table = linear_seconds(arch, gpu, tp, c, np.arange(max_tokens + 1))
    attn_flops = gpu.bf16_flops * c.compute_efficiency
    bw = gpu.hbm_bytes_per_s * c.bandwidth_efficiency
    heads = arch.num_heads / tp
    const_s = c.step_overhead_s + 2 * arch.num_layers * (tp - 1) * c.allreduce_latency_s
    if arch.is_moe and arch.fp8_compute:
        const_s += c.fp8_moe_layer_s * arch.moe_layers
    linear = LinearStepTime(
        const_s=const_s,
        per_request_s=c.per_request_s
        + 2.0 * arch.lm_head_params / tp / gpu.bf16_flops / c.compute_efficiency,  # LM head: BF16
        per_prefill_attention_pair_s=4.0 * arch.num_layers * heads * arch.head_dim / attn_flops,
        per_context_token_s=arch.kv_bytes_per_token(tp) / bw,
    )
    table.flags.writeable = False
    return ProfileStepTime(table, linear)
