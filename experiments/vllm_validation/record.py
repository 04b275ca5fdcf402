"""Record a real vLLM V1 engine run, step by step, in the format of traces/vllm_runs/SCHEMA.md.

    VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 \\
        .venv-vllm/bin/python experiments/vllm_validation/record.py CASE.json OUT_DIR
    python experiments/vllm_validation/record.py CASE.json --check      # validate only, no vLLM
    python3 experiments/vllm_validation/record.py CASE.json OUT_DIR --device cuda   # CUDA build

``--device cuda`` (the CUDA build of vllm on a GPU machine, see experiments/gpu_recording) needs a
visible GPU and by default lets vLLM make the random weights itself (``--weights dummy``, vLLM's
``load_format="dummy"``: only ``config.json`` is written, so an 8B model costs no checkpoint);
``--enforce-eager`` overrides the case's ``enforce_eager``. Without these flags (``--device cpu``,
``--weights random``) the script does exactly what it did before they existed.

The case file holds the model architecture (random weights of that shape are built locally and
cached; their values do not affect timing), the engine settings and the workload (lengths, shared
prefixes, arrivals ``step`` or ``time``). Prompts are token-id lists; generation ignores EOS.
The engine runs in-process: requests are added and ``LLMEngine.step()`` is called here, and the
scheduler's own ``schedule()`` is wrapped to read every step's batch. Effective settings are
read back from the engine into ``run.json``. Works with the CPU build (``make vllm-env``) and
with the CUDA build of vllm on a GPU machine (``--device cuda``).

This script runs in the vLLM environment, not in simroute's: it imports only vllm, torch,
transformers, numpy and the standard library (``--check`` only numpy and the standard library).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_DISABLE_REQUEST_ID_RANDOMIZATION", "1")  # keep our request ids

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "traces"


# ---- workload ---------------------------------------------------------------------------------
def _lengths(
    spec: dict[str, Any], n: int, g: np.random.Generator, pairs: np.ndarray | None, col: int
) -> np.ndarray:
    if spec["dist"] == "uniform":
        return g.integers(int(spec["min"]), int(spec["max"]) + 1, n)
    if spec["dist"] == "trace":
        assert pairs is not None
        x = np.rint(pairs[:, col] * float(spec.get("scale", 1.0))).astype(np.int64)
        return np.clip(x, int(spec["min"]), int(spec["max"]))
    raise ValueError(f"unknown length dist {spec['dist']!r}")


def _trace_pairs(path: str, n: int, g: np.random.Generator) -> np.ndarray:
    p = Path(path)
    p = p if p.is_absolute() else TRACES / p.name
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(p.read_bytes()).decode())))
    pick = g.integers(0, len(rows), n)
    return np.array([[int(rows[i]["ContextTokens"]), int(rows[i]["GeneratedTokens"])] for i in pick])


def draw_workload(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's requests: token ids, output length, prefix group, arrival step / target time."""
    w = case["workload"]
    n, g = int(w["n"]), np.random.default_rng(int(w["seed"]))
    vocab = int(case["model"]["vocab_size"])
    pairs = _trace_pairs(w["trace"], n, g) if "trace" in w else None
    plen = _lengths(w["prompt_len"], n, g, pairs, 0)
    olen = _lengths(w["output_len"], n, g, pairs, 1)
    pre = w.get("prefix")
    groups = np.full(n, -1)
    ptok = np.zeros(n, dtype=np.int64)
    prefixes: list[np.ndarray] = []
    if pre:
        prefixes = [g.integers(0, vocab, int(pre["prefix_tokens"])) for _ in range(int(pre["groups"]))]
        member = g.random(n) < float(pre["fraction"])
        groups = np.where(member, g.integers(0, int(pre["groups"]), n), -1)
        ptok = np.where(member, int(pre["prefix_tokens"]), 0)
    arr = w["arrival"]
    if arr["kind"] == "all_at_start":
        steps, times = np.zeros(n, dtype=np.int64), np.zeros(n)
    elif arr["kind"] == "every":
        steps = (np.arange(n) // int(arr["per"])) * int(arr["interval"])
        times = np.zeros(n)
    elif arr["kind"] == "poisson":
        times = np.cumsum(g.exponential(1.0 / float(arr["rate"]), n))
        times -= times[0]
        steps = np.zeros(n, dtype=np.int64)
    else:
        raise ValueError(f"unknown arrival kind {arr['kind']!r}")
    reqs = []
    for i in range(n):
        own = g.integers(0, vocab, int(plen[i]))
        toks = np.concatenate([prefixes[groups[i]], own]) if groups[i] >= 0 else own
        reqs.append(
            {
                "request_id": f"r{i:04d}",
                "tokens": [int(t) for t in toks],
                "output_tokens": int(olen[i]),
                "prefix_group": int(groups[i]),
                "prefix_tokens": int(ptok[i]),
                "arrival_step": int(steps[i]),
                "arrival_target_s": float(times[i]),
            }
        )
    return reqs


# ---- case validation --------------------------------------------------------------------------
MODEL_INTS = (
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
)
ENGINE_REQUIRED = (
    "max_num_batched_tokens",
    "max_num_seqs",
    "block_size",
    "num_gpu_blocks",
    "enable_prefix_caching",
    "max_model_len",
)
ENGINE_OPTIONAL = (
    "long_prefill_token_threshold",
    "enforce_eager",
    "gpu_memory_utilization",
    "async_scheduling",
    "compilation_config",
)
DTYPES = ("bfloat16", "float16", "float32")


def _pos_int(d: dict[str, Any], k: str, where: str, errs: list[str], null_ok: bool = False) -> None:
    v = d.get(k)
    if v is None and null_ok and k in d:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        errs.append(f"{where}.{k}: expected an integer >= 1, got {v!r}")


def _check_model(m: dict[str, Any], errs: list[str]) -> None:
    for k in MODEL_INTS:
        _pos_int(m, k, "model", errs)
    if m.get("dtype", "bfloat16") not in DTYPES:
        errs.append(f"model.dtype: expected one of {DTYPES}, got {m.get('dtype')!r}")
    unknown = sorted(set(m) - {*MODEL_INTS, "dtype", "hf_config", "max_position_embeddings"})
    if unknown:
        errs.append(f"model: unknown key(s) {unknown}")
    if "hf_config" in m:
        p = REPO / str(m["hf_config"])
        if not p.is_file():
            errs.append(f"model.hf_config: {p} not found")
            return
        hf = json.loads(p.read_text())
        hf.setdefault("head_dim", hf.get("hidden_size", 0) // max(1, hf.get("num_attention_heads", 1)))
        for k in MODEL_INTS:
            if k in m and hf.get(k) != m[k]:
                errs.append(f"model.{k}: {m[k]!r} differs from {m['hf_config']} ({hf.get(k)!r})")


def _check_engine(e: dict[str, Any], errs: list[str]) -> None:
    for k in ("max_num_batched_tokens", "max_num_seqs", "block_size", "max_model_len"):
        _pos_int(e, k, "engine", errs)
    _pos_int(e, "num_gpu_blocks", "engine", errs, null_ok=True)
    for k in ("enable_prefix_caching", "enforce_eager", "async_scheduling"):
        if k in e and not isinstance(e[k], bool):
            errs.append(f"engine.{k}: expected true or false, got {e[k]!r}")
    if "enable_prefix_caching" not in e:
        errs.append("engine.enable_prefix_caching: missing")
    lpt = e.get("long_prefill_token_threshold", 0)
    if isinstance(lpt, bool) or not isinstance(lpt, int) or lpt < 0:
        errs.append(f"engine.long_prefill_token_threshold: expected an integer >= 0, got {lpt!r}")
    gmu = e.get("gpu_memory_utilization", 0.3)
    if isinstance(gmu, bool) or not isinstance(gmu, int | float) or not 0 < gmu <= 1:
        errs.append(f"engine.gpu_memory_utilization: expected a number in (0, 1], got {gmu!r}")
    if not isinstance(e.get("compilation_config", {}), dict):
        errs.append("engine.compilation_config: expected an object")
    unknown = sorted(set(e) - {*ENGINE_REQUIRED, *ENGINE_OPTIONAL})
    if unknown:
        errs.append(f"engine: unknown key(s) {unknown}")


def _check_lengths(w: dict[str, Any], errs: list[str]) -> None:
    for k in ("prompt_len", "output_len"):
        spec = w.get(k)
        if not isinstance(spec, dict) or spec.get("dist") not in ("uniform", "trace"):
            errs.append(f"workload.{k}.dist: expected 'uniform' or 'trace', got {spec!r}")
            continue
        _pos_int(spec, "min", f"workload.{k}", errs)
        _pos_int(spec, "max", f"workload.{k}", errs)
        if (
            isinstance(spec.get("min"), int)
            and isinstance(spec.get("max"), int)
            and spec["min"] > spec["max"]
        ):
            errs.append(f"workload.{k}: min {spec['min']} > max {spec['max']}")
        if spec["dist"] == "trace" and not (TRACES / Path(str(w.get("trace", ""))).name).is_file():
            errs.append(f"workload.trace: {w.get('trace')!r} not found in traces/ (needed by {k})")


def _check_workload(w: dict[str, Any], errs: list[str]) -> None:
    _pos_int(w, "n", "workload", errs)
    if isinstance(w.get("seed"), bool) or not isinstance(w.get("seed"), int):
        errs.append(f"workload.seed: expected an integer, got {w.get('seed')!r}")
    if w.get("arrival_mode") not in ("step", "time"):
        errs.append(f"workload.arrival_mode: expected 'step' or 'time', got {w.get('arrival_mode')!r}")
    arr = w.get("arrival") if isinstance(w.get("arrival"), dict) else {}
    kind = arr.get("kind")
    if kind == "every":
        _pos_int(arr, "per", "workload.arrival", errs)
        _pos_int(arr, "interval", "workload.arrival", errs)
    elif kind == "poisson":
        rate = arr.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
            errs.append(f"workload.arrival.rate: expected a number > 0, got {rate!r}")
    elif kind != "all_at_start":
        errs.append(f"workload.arrival.kind: expected all_at_start, every or poisson, got {kind!r}")
    if w.get("arrival_mode") == "time" and kind == "every":
        errs.append("workload.arrival: 'every' spaces arrivals by step; use arrival_mode 'step'")
    _check_lengths(w, errs)
    pre = w.get("prefix")
    if pre is not None:
        _pos_int(pre, "groups", "workload.prefix", errs)
        _pos_int(pre, "prefix_tokens", "workload.prefix", errs)
        f = pre.get("fraction")
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f <= 1:
            errs.append(f"workload.prefix.fraction: expected a number in [0, 1], got {f!r}")


def validate_case(case: Any) -> list[str]:
    """Every problem with a case file, each naming its field; empty when the case is usable."""
    if not isinstance(case, dict):
        return ["case: expected a JSON object"]
    errs = [
        f"{k}: missing or not an object"
        for k in ("model", "engine", "workload")
        if not isinstance(case.get(k), dict)
    ]
    if not isinstance(case.get("name"), str) or not case.get("name"):
        errs.append("name: expected a non-empty string")
    if errs:
        return errs
    _check_model(case["model"], errs)
    _check_engine(case["engine"], errs)
    _check_workload(case["workload"], errs)
    if errs:
        return errs
    limit = case["engine"]["max_model_len"]
    longest = max(len(r["tokens"]) + r["output_tokens"] for r in draw_workload(case))
    if longest > limit:
        errs.append(f"engine.max_model_len: {limit} < longest request (prompt + output) {longest}")
    return errs


# ---- model ------------------------------------------------------------------------------------
def build_model(spec: dict[str, Any], cache_dir: Path) -> Path:
    """A random-weight Llama of the given shape, saved once under ``cache_dir`` (no downloads)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    key = "_".join(f"{k}{v}" for k, v in sorted(spec.items()))
    out = cache_dir / f"llama_{key}"
    if (out / "config.json").exists():
        return out
    torch.manual_seed(0)
    cfg = LlamaConfig(
        num_hidden_layers=spec["num_hidden_layers"],
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        head_dim=spec["head_dim"],
        vocab_size=spec["vocab_size"],
        max_position_embeddings=int(spec.get("max_position_embeddings", 8192)),
        tie_word_embeddings=False,
        torch_dtype=spec.get("dtype", "bfloat16"),
    )
    model = LlamaForCausalLM(cfg).to(getattr(torch, spec.get("dtype", "bfloat16")))
    model.save_pretrained(out)
    return out


def write_config(spec: dict[str, Any], cache_dir: Path) -> Path:
    """A model folder holding only ``config.json``, for vLLM's dummy weights (``--weights dummy``).

    The case's ``hf_config`` (a real Hugging Face config, path from the repository root) is copied
    as it is; without one, a Llama config of the case's shape is written."""
    dtype = spec.get("dtype", "bfloat16")
    if "hf_config" in spec:
        cfg = json.loads((REPO / str(spec["hf_config"])).read_text())
    else:
        cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu"}
        cfg |= {"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False}
        cfg |= {k: spec[k] for k in MODEL_INTS}
        cfg["max_position_embeddings"] = int(spec.get("max_position_embeddings", 8192))
    cfg["torch_dtype"] = dtype
    key = "_".join(f"{k}{v}" for k, v in sorted(spec.items()) if k != "hf_config")
    out = cache_dir / f"config_only_{Path(str(spec.get('hf_config', 'llama'))).parent.name}_{key}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return out


# ---- engine -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """Command-line choices beside the case; the defaults are the CPU build's behaviour."""

    device: str = "cpu"
    weights: str = "random"  # random: transformers weights saved once; dummy: vLLM makes them
    enforce_eager: bool | None = None  # None: the case's enforce_eager (default true)


def engine_kwargs(case: dict[str, Any], model_dir: Path, opts: Options | None = None) -> dict[str, Any]:
    """``EngineArgs`` keyword arguments for the case (the CPU path's set is unchanged)."""
    opts = opts or Options()
    e = case["engine"]
    kw: dict[str, Any] = {
        "model": str(model_dir),
        "skip_tokenizer_init": True,
        "dtype": case["model"].get("dtype", "bfloat16"),
        "max_num_batched_tokens": e["max_num_batched_tokens"],
        "max_num_seqs": e["max_num_seqs"],
        "block_size": e["block_size"],
        "num_gpu_blocks_override": e["num_gpu_blocks"],
        "enable_prefix_caching": e["enable_prefix_caching"],
        "enable_chunked_prefill": True,
        "long_prefill_token_threshold": e.get("long_prefill_token_threshold", 0),
        "max_model_len": e["max_model_len"],
        "enforce_eager": e.get("enforce_eager", True) if opts.enforce_eager is None else opts.enforce_eager,
        "disable_log_stats": False,
        "seed": 0,
        # on the CPU build this is the share of host memory reserved; KV size is set by the block count
        "gpu_memory_utilization": float(e.get("gpu_memory_utilization", 0.3)),
    }
    # only what the case or the flags ask for beyond that (nothing on the CPU cases)
    kw |= {k: e[k] for k in ("async_scheduling", "compilation_config") if k in e}
    if opts.weights == "dummy":
        kw["load_format"] = "dummy"
    return kw


def make_engine(case: dict[str, Any], model_dir: Path, opts: Options | None = None) -> Any:
    from vllm import EngineArgs, LLMEngine

    return LLMEngine.from_engine_args(EngineArgs(**engine_kwargs(case, model_dir, opts)))


class Tap:
    """Wraps the in-process scheduler to record each step's batch and each preemption."""

    def __init__(self, engine: Any) -> None:
        core = engine.engine_core.engine_core
        self.sched = core.scheduler
        self.batch: list[tuple[str, int, int, bool]] = []
        self.preempted: dict[str, int] = {}
        self.cached: dict[str, int] = {}
        orig_schedule, orig_preempt = self.sched.schedule, self.sched._preempt_request

        def schedule(*a: Any, **k: Any) -> Any:
            out = orig_schedule(*a, **k)
            self.batch = []
            for rid, n in out.num_scheduled_tokens.items():
                r = self.sched.requests[rid]
                before = r.num_computed_tokens - n  # schedule() already advanced it
                is_decode = n == 1 and r.num_output_tokens > 0 and before == r.num_tokens - 1
                self.batch.append((rid, n, before, is_decode))
                if rid not in self.cached:  # first scheduling: computed-before = prefix-cache hit
                    self.cached[rid] = int(before)
            return out

        def preempt(request: Any, *a: Any, **k: Any) -> Any:
            self.preempted[request.request_id] = self.preempted.get(request.request_id, 0) + 1
            return orig_preempt(request, *a, **k)

        self.sched.schedule = schedule
        self.sched._preempt_request = preempt
        # time the model itself (forward + sampling): the rest of a step is framework overhead
        self.t_exec = 0.0
        self.t_sched = 0.0
        ex = core.model_executor
        for name in ("execute_model", "sample_tokens"):
            orig = getattr(ex, name)

            def timed(*a: Any, _orig: Any = orig, **k: Any) -> Any:
                t = time.perf_counter()
                out = _orig(*a, **k)
                if hasattr(out, "result"):
                    out.result()
                self.t_exec += time.perf_counter() - t
                return out

            setattr(ex, name, timed)

        def timed_schedule(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            out = schedule(*a, **k)
            self.t_sched += time.perf_counter() - t
            return out

        self.sched.schedule = timed_schedule

    def num_waiting(self) -> int:
        s = self.sched
        return len(s.waiting) + len(getattr(s, "kv_holding_waiting", ()))

    def kv_used(self) -> int:
        pool = self.sched.kv_cache_manager.block_pool
        return int(pool.num_gpu_blocks - 1 - pool.get_num_free_blocks())


def settings(engine: Any, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Effective settings, read back from the engine (SCHEMA.md run.json)."""
    import torch
    import vllm

    vc = engine.vllm_config
    sc, cc, mc = vc.scheduler_config, vc.cache_config, vc.model_config
    return {
        "vllm_version": vllm.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cpu_model": platform.processor() or platform.machine(),
        "gpu_model": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "model": case["model"],
        "max_num_batched_tokens": sc.max_num_batched_tokens,
        "max_num_seqs": sc.max_num_seqs,
        "block_size": cc.block_size,
        "num_gpu_blocks": cc.num_gpu_blocks,
        "enable_chunked_prefill": sc.enable_chunked_prefill,
        "enable_prefix_caching": cc.enable_prefix_caching,
        "long_prefill_token_threshold": sc.long_prefill_token_threshold,
        "max_num_partial_prefills": getattr(sc, "max_num_partial_prefills", None),
        "scheduling_policy": str(sc.policy),
        "max_model_len": mc.max_model_len,
        "scheduler_extra": {
            k: getattr(sc, k, None)
            for k in (
                "max_num_scheduled_tokens",
                "max_num_active_seqs",
                "long_prefill_token_threshold_adaptive",
                "scheduler_reserve_full_isl",
                "watermark",
                "prefill_schedule_interval",
                "async_scheduling",
                "stream_interval",
            )
        },
        "compilation_mode": str(getattr(vc.compilation_config, "mode", None)),
        "enforce_eager": mc.enforce_eager,
        "arrival_mode": mode,
        "case": case["name"],
        "notes": case.get("notes", ""),
    }


def record(
    case: dict[str, Any], out_dir: Path, cache_dir: Path, opts: Options | None = None
) -> dict[str, Any]:
    """Run the case and write run.json, requests.parquet, steps.parquet, schedule.parquet."""
    import pyarrow as pa  # vllm depends on it
    import pyarrow.parquet as pq
    from vllm import SamplingParams

    mode = case["workload"]["arrival_mode"]
    reqs = draw_workload(case)
    opts = opts or Options()
    if opts.weights == "dummy":
        model_dir = write_config(case["model"], cache_dir)
    else:
        model_dir = build_model({k: v for k, v in case["model"].items() if k != "hf_config"}, cache_dir)
    engine = make_engine(case, model_dir, opts)
    # warm-up, then forget it (prefix cache reset, as in the shared runs)
    for k in range(2):
        engine.add_request(
            f"warm{k}", {"prompt_token_ids": [1 + k] * 64}, SamplingParams(max_tokens=4, ignore_eos=True)
        )
    while engine.has_unfinished_requests():
        engine.step()
    engine.reset_prefix_cache()
    tap = Tap(engine)
    order = sorted(
        range(len(reqs)),
        key=lambda i: (reqs[i]["arrival_step"] if mode == "step" else reqs[i]["arrival_target_s"], i),
    )
    pending = 0
    shift = 0
    step = 0
    steps: list[dict[str, Any]] = []
    sched_rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    first: dict[str, int] = {}
    finish: dict[str, int] = {}
    t_first: dict[str, float] = {}
    t_done: dict[str, float] = {}
    added: dict[str, tuple[int, float]] = {}
    t0 = time.perf_counter()

    def add(i: int) -> None:
        r = reqs[i]
        engine.add_request(
            r["request_id"],
            {"prompt_token_ids": r["tokens"]},
            SamplingParams(max_tokens=r["output_tokens"], ignore_eos=True, temperature=0.0),
        )
        added[r["request_id"]] = (step, time.perf_counter() - t0)

    while pending < len(order) or engine.has_unfinished_requests():
        while pending < len(order):
            r = reqs[order[pending]]
            if mode == "step":
                if not engine.has_unfinished_requests() and r["arrival_step"] + shift > step:
                    shift = step - r["arrival_step"]
                if r["arrival_step"] + shift > step:
                    break
            else:
                now = time.perf_counter() - t0
                if r["arrival_target_s"] > now:
                    if engine.has_unfinished_requests():
                        break
                    time.sleep(r["arrival_target_s"] - now)
            add(order[pending])
            pending += 1
        ts = time.perf_counter() - t0
        tap.t_exec = tap.t_sched = 0.0
        outs = engine.step()
        te = time.perf_counter() - t0
        if not tap.batch:
            continue
        new_by_req: dict[str, int] = {}
        for o in outs:
            n = len(o.outputs[0].token_ids)
            new_by_req[o.request_id] = n - seen.get(o.request_id, 0)
            seen[o.request_id] = n
            if n > 0 and o.request_id not in first:
                first[o.request_id], t_first[o.request_id] = step, te
            if o.finished:
                finish[o.request_id], t_done[o.request_id] = step, te
        pre = sum(n for _, n, _, d in tap.batch if not d)
        dec = sum(1 for *_, d in tap.batch if d)
        steps.append(
            {
                "step": step,
                "t_start_s": ts,
                "t_end_s": te,
                "num_scheduled_tokens": pre + dec,
                "num_prefill_tokens": pre,
                "num_decode_tokens": dec,
                "num_running": len(tap.batch),
                "num_waiting": tap.num_waiting(),
                "kv_blocks_used": tap.kv_used(),
                "t_schedule_s": tap.t_sched,
                "t_model_s": tap.t_exec,
            }
        )
        for rid, n, before, d in tap.batch:
            sched_rows.append(
                {
                    "step": step,
                    "request_id": rid,
                    "num_tokens": n,
                    "num_computed_tokens": before,
                    "is_decode": d,
                    "new_tokens": new_by_req.get(rid, 0),
                }
            )
        tap.batch = []
        step += 1
    wall = time.perf_counter() - t0
    rows = []
    for r in reqs:
        rid = r["request_id"]
        a_step, a_s = added[rid]
        rows.append(
            {
                "request_id": rid,
                "arrival_step": a_step,
                "arrival_s": a_s,
                "arrival_target_s": r["arrival_target_s"] if mode == "time" else float("nan"),
                "prompt_tokens": len(r["tokens"]),
                "output_tokens": r["output_tokens"],
                "prefix_group": r["prefix_group"],
                "prefix_tokens": r["prefix_tokens"],
                "first_token_step": first[rid],
                "finish_step": finish[rid],
                "num_preemptions": tap.preempted.get(rid, 0),
                "num_cached_tokens": tap.cached.get(rid, 0),
                "ttft_s": t_first[rid] - a_s,
                "e2e_s": t_done[rid] - a_s,
            }
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    run = settings(engine, case, mode) | {
        "num_requests": len(reqs),
        "num_steps": step,
        "wall_s": round(wall, 3),
    }
    if opts.weights == "dummy":
        run["weights"] = "dummy (vLLM load_format='dummy': random values made by vLLM)"
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out_dir / "case.json").write_text(json.dumps(case, indent=2) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), out_dir / "requests.parquet")
    pq.write_table(pa.Table.from_pylist(steps), out_dir / "steps.parquet")
    pq.write_table(pa.Table.from_pylist(sched_rows), out_dir / "schedule.parquet")
    return run


def parse_args(argv: list[str]) -> argparse.Namespace:
    """``CASE [OUT_DIR] [--check] [--device cpu|cuda] [--weights random|dummy] [--enforce-eager]``."""
    ap = argparse.ArgumentParser(prog="record.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("case", type=Path, help="case file (JSON: model, engine, workload)")
    ap.add_argument("out_dir", type=Path, nargs="?", help="run folder to write")
    ap.add_argument("--check", action="store_true", help="validate the case, summarise it, run nothing")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda needs a visible GPU")
    ap.add_argument(
        "--weights",
        choices=("random", "dummy"),
        default=None,
        help="random: build and save weights (default on cpu); dummy: vLLM's (default on cuda)",
    )
    ap.add_argument(
        "--enforce-eager",
        action="store_true",
        default=None,
        help="override the case: no torch.compile, no CUDA graphs",
    )
    ap.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "vllm_models")
    a = ap.parse_args(argv)
    if a.out_dir is None and not a.check:
        ap.error("OUT_DIR is required unless --check")
    if a.weights is None:
        a.weights = "dummy" if a.device == "cuda" else "random"
    return a


def summarize(case: dict[str, Any]) -> dict[str, Any]:
    """What the case's workload amounts to (``--check``): counts, token totals, arrival span."""
    reqs = draw_workload(case)
    p = np.array([len(r["tokens"]) for r in reqs])
    o = np.array([r["output_tokens"] for r in reqs])
    timed = case["workload"]["arrival_mode"] == "time"
    span = max(r["arrival_target_s"] if timed else r["arrival_step"] for r in reqs)
    return {
        "case": case["name"],
        "requests": len(reqs),
        "prompt_tokens": {"min": int(p.min()), "mean": round(float(p.mean()), 1), "max": int(p.max())},
        "output_tokens": {"min": int(o.min()), "mean": round(float(o.mean()), 1), "max": int(o.max())},
        "total_tokens": int(p.sum() + o.sum()),
        "with_shared_prefix": sum(r["prefix_group"] >= 0 for r in reqs),
        "arrival_span": f"{span:.1f} s" if timed else f"{span} steps",
    }


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    case = json.loads(a.case.read_text())
    errs = validate_case(case)
    if errs:
        print(f"{a.case}: invalid case:\n  " + "\n  ".join(errs), file=sys.stderr)
        return 2
    if a.check:
        print(json.dumps(summarize(case), indent=1))
        return 0
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("record.py: --device cuda but torch sees no GPU", file=sys.stderr)
            return 2
    opts = Options(device=a.device, weights=a.weights, enforce_eager=a.enforce_eager)
    run = record(case, a.out_dir, a.cache_dir, opts)
    print(
        f"recorded {run['case']}: {run['num_requests']} requests, {run['num_steps']} steps, "
        f"{run['wall_s']} s "
        f"-> {a.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
