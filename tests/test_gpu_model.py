"""GPU model: shapes from configs, roofline terms, KV capacity vs vLLM's reported blocks, the
inference-perf workload, the validate-gpu command end to end on two experiments, clean errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from simroute.cli import main as cli_main
from simroute.engine.gpu_experiments import load_specs
from simroute.engine.gpu_fit import fit_fp8_moe, shortened
from simroute.engine.gpu_hardware import BUILTIN
from simroute.engine.gpu_memory import kv_blocks
from simroute.engine.gpu_model import GpuCoefficients, experts_touched, gpu_step_time
from simroute.engine.model_arch import arch_from_config, load_arch
from simroute.engine.validate_gpu import simulate, stage_stats
from simroute.errors import InputError
from simroute.workload.inference_perf import InferencePerfWorkload, LoadStage, SharedPrefix

DATA = Path(__file__).resolve().parents[2] / "shared" / "gpu_vllm"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/gpu_vllm not present")

LLAMA7B = {
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "vocab_size": 32000,
}


def test_llama7b_shape_and_roofline() -> None:
    a = arch_from_config(LLAMA7B, "7b", "<t>")
    assert 6.6e9 < a.total_params < 6.8e9
    assert a.kv_bytes_per_token() == 2 * 32 * 32 * 128 * 2
    st = gpu_step_time(a, BUILTIN["H100"], 1, GpuCoefficients(), 2048)
    t = st.table()
    # decode is weight-read bound: ~13.5 GB at 0.8 x 3.35 TB/s ~ 5 ms; flat for small batches
    assert 4e-3 < t[1] < 6e-3 and t[8] == pytest.approx(t[1])
    # prefill is compute bound: grows linearly with tokens at large batches
    assert t[2048] / t[1024] == pytest.approx(2.0, rel=0.05)
    assert st.linear.per_prefill_attention_pair_s > 0 and st.linear.per_context_token_s > 0
    assert st.linear.per_prefill_token_sq_s == 0  # attention pairs are counted per chunk, over its context


def test_moe_experts_touched() -> None:
    assert experts_touched(np.array([1]), 8, 2)[0] == pytest.approx(2.0)
    assert experts_touched(np.array([10_000]), 8, 2)[0] == pytest.approx(8.0)


FP8_MOE = {
    "text_config": {
        **LLAMA7B,
        "num_local_experts": 16,
        "num_experts_per_tok": 1,
        "intermediate_size": 8192,
        "intermediate_size_mlp": 16384,
    },
    "quantization_config": {
        "quant_method": "compressed-tensors",
        "config_groups": {"g": {"weights": {"type": "float", "num_bits": 8}}},
        "ignore": [f"language_model.model.layers.{i}.self_attn.{p}_proj" for i in range(32) for p in "qkvo"]
        + ["vision_model.model.layers.0.self_attn.q_proj", "language_model.lm_head"],
    },
}


def test_fp8_checkpoint_keeps_ignored_attention_in_bf16() -> None:
    a = arch_from_config(FP8_MOE, "fp8", "<t>")
    assert a.fp8_compute and a.weight_bytes == 1 and not a.attn_quantized and a.attn_weight_bytes == 2
    quantized = arch_from_config({**FP8_MOE, "quantization_config": {"quant_method": "fp8"}}, "q", "<t>")
    assert quantized.attn_quantized and quantized.attn_weight_bytes == 1
    regex = {**FP8_MOE, "quantization_config": {"quant_method": "fp8", "ignore": ["re:.*self_attn.*"]}}
    assert not arch_from_config(regex, "r", "<t>").attn_quantized
    attn = a.num_layers * a.attn_params_per_layer
    assert a.weight_bytes_total() == pytest.approx(quantized.weight_bytes_total() + attn)
    assert arch_from_config(LLAMA7B, "7b", "<t>").attn_quantized  # BF16 models: one format for all
    gpu, c = BUILTIN["H100"], GpuCoefficients()
    slow, fast = gpu_step_time(a, gpu, 2, c, 64).table(), gpu_step_time(quantized, gpu, 2, c, 64).table()
    # decode: the extra BF16 attention bytes at the fitted bandwidth
    extra = attn / 2 / (gpu.hbm_bytes_per_s * c.bandwidth_efficiency)
    assert slow[1] - fast[1] == pytest.approx(extra, rel=1e-9)


def test_fp8_moe_layer_time_only_for_fp8_moe() -> None:
    gpu, tau = BUILTIN["H100"], 5e-5
    c0, c1 = GpuCoefficients(), GpuCoefficients(fp8_moe_layer_s=tau)
    fp8 = arch_from_config(FP8_MOE, "fp8", "<t>")
    bf16 = arch_from_config({**FP8_MOE, "quantization_config": None}, "bf16", "<t>")
    d = gpu_step_time(fp8, gpu, 2, c1, 8).linear.const_s - gpu_step_time(fp8, gpu, 2, c0, 8).linear.const_s
    assert d == pytest.approx(tau * fp8.moe_layers) and fp8.moe_layers == 32
    for a in (bf16, arch_from_config(LLAMA7B, "7b", "<t>")):
        assert gpu_step_time(a, gpu, 2, c1, 8).linear == gpu_step_time(a, gpu, 2, c0, 8).linear


def test_workload_arrivals_and_prompts() -> None:
    wl = InferencePerfWorkload(SharedPrefix(10, 10, 100, 400, 50), (LoadStage(5.0, 60.0),))
    g = np.random.default_rng(0)
    t = wl.arrival_offsets(wl.stages[0], g)
    assert len(t) == 300 and t[-1] == pytest.approx(60.0) and np.all(np.diff(t) > 0)
    p = wl.prompts(g)
    assert len(p.group) == 100 and np.bincount(p.group).tolist() == [10] * 10


@needs_data
def test_kv_capacity_matches_vllm_reported_blocks() -> None:
    for m, tp, blocks in [
        ("llama-2-7b-hf", 1, 7463),
        ("llama-3.1-70b-instruct", 4, 30251),
        ("mistral-nemo-instruct-2407", 2, 48009),
        ("qwen2.5-7b-instruct", 1, 65352),
    ]:
        n = kv_blocks(load_arch(DATA / "model_configs" / m), BUILTIN["H100"], tp)
        assert abs(n / blocks - 1) < 0.015, (m, n, blocks)


@needs_data
def test_validate_gpu_two_experiments_end_to_end(tmp_path: Path) -> None:
    doc = json.loads((DATA / "experiments.json").read_text())
    keep = [e for e in doc["experiments"] if e["id"] in ("60", "62")]
    for e in keep:  # shorten the stages: steady state within a minute
        e["model_config_dir"] = str(DATA / e["model_config_dir"])
        for s in e["workload"]["inference_perf"]["stages"]:
            s["duration"] = 60
    spec = tmp_path / "specs.json"
    spec.write_text(json.dumps({"hardware": "H100", "experiments": keep}))
    out = tmp_path / "out.json"
    cli_main(["validate-gpu", str(spec), "--json", str(out)])
    res = json.loads(out.read_text())["experiments"]
    assert [r["id"] for r in res] == ["60", "62"]
    for r, e in zip(res, keep, strict=True):
        assert set(r["predicted"]) == {"-1", "0", "1"} and not r["overloaded"]
        for k in ("e2e_mean_ms", "ttft_mean_ms"):
            got, want = r["predicted"]["-1"][k], e["measured"]["-1"][k]
            assert abs(got / want - 1) < 0.25, (r["id"], k, got, want)
        assert r["predicted"]["-1"]["ttft_mean_ms"] <= r["predicted"]["-1"]["e2e_mean_ms"]


@needs_data
def test_fp8_moe_fit_recovers_a_known_layer_time() -> None:
    (x,) = [s for s in load_specs(DATA / "experiments.json") if s.id == "21"]
    assert x.arch.is_moe and x.arch.fp8_compute and not x.arch.attn_quantized
    x = shortened(x, 60 / 1200)
    true = GpuCoefficients(fp8_moe_layer_s=5e-5)
    x = dataclasses.replace(x, measured=stage_stats(simulate(x, true)))
    r = fit_fp8_moe([x], GpuCoefficients(), iters=16)
    assert r.coefficients.fp8_moe_layer_s == pytest.approx(5e-5, rel=0.02) and r.objective < 1e-4


@needs_data
def test_run_folder_loads_with_what_actually_ran() -> None:
    (x,) = load_specs(DATA / "inference_perf_runs" / "20260217-155451-llama-2-7b-tp1-codegen")
    assert (x.workload.data.num_groups, x.workload.data.num_prompts_per_group) == (10, 10)
    assert x.measured is not None and set(x.measured) == {"-1", "0", "1"}


def test_bad_spec_names_experiment_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"experiments": [{"id": "x1", "model_config_dir": "m", "tp": 0}]}))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(LLAMA7B))
    with pytest.raises(SystemExit) as e:
        cli_main(["validate-gpu", str(spec), "--json", str(tmp_path / "o.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "experiment x1" in err and "'tp'" in err and "Traceback" not in err
    with pytest.raises(InputError, match="hidden_size"):
        arch_from_config({**LLAMA7B, "hidden_size": "big"}, "m", "<t>")
