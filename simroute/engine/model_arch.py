"""A transformer's shape from its Hugging Face ``config.json``: parameter counts, FLOPs and bytes.

Only what a step-time model needs: layers, hidden size, attention heads and KV heads (GQA), head
size, MLP width, mixture-of-experts layout (experts, experts per token, shared expert, which layers),
vocabulary, and the bytes per weight (2 for BF16/FP16, 1 for FP8 checkpoints). FP8 checkpoints may
leave modules unquantized (``quantization_config.ignore`` / ``modules_to_not_convert``): when that
list names the language model's attention projections (as RedHatAI's Llama-4-Scout FP8-dynamic
does for all 48 layers), those stay BF16 — 2 bytes per weight, BF16 tensor cores. Multimodal configs
(``text_config``) are read for their language model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simroute.errors import InputError
from simroute.jsonfile import read_json


@dataclass(frozen=True)
class ModelArch:
    """Shape of a decoder-only transformer (counts; bytes per value).

    Attributes:
        name: a label (the config folder's name).
        num_layers: decoder layers.
        hidden_size: model width.
        num_heads: query heads.
        num_kv_heads: key/value heads (GQA).
        head_dim: size of one head.
        intermediate_size: MLP width of a dense layer (or of one expert if ``expert_intermediate_size``
            is 0).
        vocab_size: tokens in the vocabulary (LM head rows).
        num_experts: routed experts per MoE layer (1 = dense model).
        experts_per_token: routed experts each token uses (top-k).
        expert_intermediate_size: MLP width of one routed expert.
        shared_intermediate_size: MLP width of an always-on shared expert (0 = none).
        moe_layers: how many layers are MoE layers (the rest are dense).
        weight_bytes: bytes per weight of the linear layers (1 = FP8).
        act_bytes: bytes per activation / KV value (2 = BF16).
        fp8_compute: linear layers run on FP8 tensor cores.
        attn_quantized: the attention projections (Q, K, V, O) share the linear layers' format
            (``weight_bytes``, ``fp8_compute``); False = an FP8 checkpoint that keeps them in BF16.
    """

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    num_experts: int = 1
    experts_per_token: int = 1
    expert_intermediate_size: int = 0
    shared_intermediate_size: int = 0
    moe_layers: int = 0
    weight_bytes: int = 2
    act_bytes: int = 2
    fp8_compute: bool = False
    attn_quantized: bool = True

    @property
    def attn_weight_bytes(self) -> int:
        """Bytes per attention-projection weight (``weight_bytes``, or ``act_bytes`` if unquantized)."""
        return self.weight_bytes if self.attn_quantized else self.act_bytes

    @property
    def is_moe(self) -> bool:
        """Whether any layer routes tokens to experts."""
        return self.num_experts > 1 and self.moe_layers > 0

    @property
    def attn_params_per_layer(self) -> int:
        """Q, K, V and output projection weights of one layer."""
        q = self.num_heads * self.head_dim
        kv = 2 * self.num_kv_heads * self.head_dim
        return self.hidden_size * (q + kv) + q * self.hidden_size

    @property
    def dense_mlp_params(self) -> int:
        """Weights of one dense (gated) MLP."""
        return 3 * self.hidden_size * self.intermediate_size

    @property
    def expert_params(self) -> int:
        """Weights of one routed expert (gated MLP)."""
        return 3 * self.hidden_size * self.expert_intermediate_size

    @property
    def always_on_params(self) -> int:
        """Weights every token passes through (attention, dense MLPs, shared experts, routers), LM
        head excluded."""
        dense_layers = self.num_layers - self.moe_layers
        moe_fixed = 3 * self.hidden_size * self.shared_intermediate_size + self.hidden_size * self.num_experts
        return (
            self.num_layers * self.attn_params_per_layer
            + dense_layers * self.dense_mlp_params
            + (self.moe_layers * moe_fixed if self.is_moe else 0)
        )

    @property
    def lm_head_params(self) -> int:
        """Weights of the output projection (hidden -> vocabulary)."""
        return self.hidden_size * self.vocab_size

    @property
    def total_params(self) -> int:
        """All weights (embedding and LM head included)."""
        experts = self.moe_layers * self.num_experts * self.expert_params if self.is_moe else 0
        return self.always_on_params + experts + 2 * self.lm_head_params

    def weight_bytes_total(self) -> float:
        """Bytes of all weights (linear layers at ``weight_bytes``, unquantized attention projections
        at ``act_bytes``; embedding and LM head at ``act_bytes``, as FP8 checkpoints keep them in
        BF16)."""
        linear = self.total_params - 2 * self.lm_head_params
        if self.attn_quantized:
            return float(linear * self.weight_bytes + 2 * self.lm_head_params * self.act_bytes)
        attn = self.num_layers * self.attn_params_per_layer
        return float((linear - attn) * self.weight_bytes + (attn + 2 * self.lm_head_params) * self.act_bytes)

    def kv_bytes_per_token(self, tensor_parallel: int = 1) -> float:
        """Bytes of K and V cache per token on one GPU of a TP group (KV heads split across GPUs,
        replicated when fewer than GPUs)."""
        heads = max(self.num_kv_heads / tensor_parallel, 1.0)
        return 2.0 * self.num_layers * heads * self.head_dim * self.act_bytes


def _int(cfg: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InputError(where, f"expected a non-negative integer, got {v!r}", column=key)
    return v


def arch_from_config(cfg: Mapping[str, Any], name: str, where: str) -> ModelArch:
    """The :class:`ModelArch` of a Hugging Face config mapping (``where`` names it in errors)."""
    t = cfg.get("text_config", cfg)
    if not isinstance(t, Mapping):
        raise InputError(where, "text_config is not an object", column="text_config")
    if "kv_lora_rank" in t or "n_routed_experts" in t:
        raise InputError(
            where, "multi-head latent attention / DeepSeek-style MoE is not modelled", column="kv_lora_rank"
        )
    hidden = _int(t, "hidden_size", where)
    heads = _int(t, "num_attention_heads", where)
    layers = _int(t, "num_hidden_layers", where)
    if min(hidden, heads, layers) < 1:
        raise InputError(where, "hidden_size, num_attention_heads and num_hidden_layers must be >= 1")
    head_dim = _int(t, "head_dim", where, hidden // heads) or hidden // heads
    experts = _int(t, "num_local_experts", where, _int(t, "num_experts", where, 1)) or 1
    inter = _int(t, "intermediate_size", where)
    moe_inter = _int(t, "moe_intermediate_size", where, 0)
    shared = 0
    moe_layers = 0
    if experts > 1:
        step = _int(t, "interleave_moe_layer_step", where, _int(t, "decoder_sparse_step", where, 1)) or 1
        moe_layers = layers // step
        if "intermediate_size_mlp" in t:  # Llama 4: routed experts + a shared expert of equal width
            moe_inter, shared = inter, inter
            inter = _int(t, "intermediate_size_mlp", where)
        moe_inter = moe_inter or inter
        shared = shared or _int(t, "shared_expert_intermediate_size", where, 0)
    quant = cfg.get("quantization_config") or t.get("quantization_config")
    fp8 = _is_fp8(quant)
    return ModelArch(
        name=name,
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=_int(t, "num_key_value_heads", where, heads) or heads,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=_int(t, "vocab_size", where),
        num_experts=experts,
        experts_per_token=_int(t, "num_experts_per_tok", where, 1) or 1,
        expert_intermediate_size=moe_inter if experts > 1 else 0,
        shared_intermediate_size=shared,
        moe_layers=moe_layers,
        weight_bytes=1 if fp8 else 2,
        fp8_compute=fp8,
        attn_quantized=not (fp8 and _attention_unquantized(quant, layers)),
    )


def _is_fp8(quant: object) -> bool:
    """FP8 weights per a ``quantization_config`` (compressed-tensors 8-bit float, ``quant_method: fp8``)."""
    if not isinstance(quant, Mapping):
        return False
    if str(quant.get("quant_method", "")).lower() == "fp8":
        return True
    groups = quant.get("config_groups") or {}
    for g in groups.values() if isinstance(groups, Mapping) else []:
        w = g.get("weights") if isinstance(g, Mapping) else None
        if isinstance(w, Mapping) and w.get("type") == "float" and w.get("num_bits") == 8:
            return True
    return False


_ATTN_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")


def _attention_unquantized(quant: object, num_layers: int) -> bool:
    """Whether a quantization config leaves the language model's attention projections unquantized:
    its ``ignore`` (compressed-tensors) or ``modules_to_not_convert`` list names ``self_attn``
    Q/K/V/O of every layer, or holds a ``re:`` pattern matching them (vision-tower entries are not
    counted). A list covering only some layers counts as quantized."""
    if not isinstance(quant, Mapping):
        return False
    names = quant.get("ignore") or quant.get("modules_to_not_convert") or []
    if not isinstance(names, list):
        return False
    probe = [f"{pre}model.layers.0.self_attn.{p}" for pre in ("", "language_model.") for p in _ATTN_PROJ]
    plain = 0
    for n in (str(x) for x in names):
        if n.startswith("re:"):
            if any(re.match(n[3:], q) for q in probe):
                return True
        elif "vision" not in n and ".self_attn." in n and n.rsplit(".", 1)[-1] in _ATTN_PROJ:
            plain += 1
    return plain >= len(_ATTN_PROJ) * num_layers


def load_arch(config_dir: str | Path) -> ModelArch:
    """Read ``<config_dir>/config.json`` (or a ``config.json`` path) as a :class:`ModelArch`."""
    p = Path(config_dir)
    path = p if p.suffix == ".json" else p / "config.json"
    cfg = read_json(path, "model config not found")
    if not isinstance(cfg, Mapping):
        raise InputError(str(path), "expected a JSON object")
    return arch_from_config(cfg, path.parent.name, str(path))
