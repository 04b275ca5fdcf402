"""Record a real vLLM V1 engine run, step by step, in the format of traces/vllm_runs/SCHEMA.md.

    VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 \\
        .venv-vllm/bin/python experiments/vllm_validation/record.py CASE.json OUT_DIR

The case file holds the model architecture (random weights of that shape are built locally and
cached; their values do not affect timing), the engine settings and the workload (lengths, shared
prefixes, arrivals ``step`` or ``time``). Prompts are token-id lists; generation ignores EOS.
The engine runs in-process: requests are added and ``LLMEngine.step()`` is called here, and the
scheduler's own ``schedule()`` is wrapped to read every step's batch. Effective settings are
read back from the engine into ``run.json``. Works with the CPU build (``make vllm-env``) and,
unchanged, with the CUDA build of vllm on a GPU machine.

This script runs in the vLLM environment, not in simroute's: it imports only vllm, torch,
transformers, numpy and the standard library.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import platform
import sys
import time
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


# ---- engine -----------------------------------------------------------------------------------
def make_engine(case: dict[str, Any], model_dir: Path) -> Any:
    from vllm import EngineArgs, LLMEngine

    e = case["engine"]
    args = EngineArgs(
        model=str(model_dir),
        skip_tokenizer_init=True,
        dtype=case["model"].get("dtype", "bfloat16"),
        max_num_batched_tokens=e["max_num_batched_tokens"],
        max_num_seqs=e["max_num_seqs"],
        block_size=e["block_size"],
        num_gpu_blocks_override=e["num_gpu_blocks"],
        enable_prefix_caching=e["enable_prefix_caching"],
        enable_chunked_prefill=True,
        long_prefill_token_threshold=e.get("long_prefill_token_threshold", 0),
        max_model_len=e["max_model_len"],
        enforce_eager=e.get("enforce_eager", True),
        disable_log_stats=False,
        seed=0,
        # on the CPU build this is the share of host memory reserved; KV size is set by the block count
        gpu_memory_utilization=float(e.get("gpu_memory_utilization", 0.3)),
    )
    return LLMEngine.from_engine_args(args)


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


def record(case: dict[str, Any], out_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Run the case and write run.json, requests.parquet, steps.parquet, schedule.parquet."""
    import pyarrow as pa  # vllm depends on it
    import pyarrow.parquet as pq
    from vllm import SamplingParams

    mode = case["workload"]["arrival_mode"]
    reqs = draw_workload(case)
    engine = make_engine(case, build_model(case["model"], cache_dir))
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
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out_dir / "case.json").write_text(json.dumps(case, indent=2) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), out_dir / "requests.parquet")
    pq.write_table(pa.Table.from_pylist(steps), out_dir / "steps.parquet")
    pq.write_table(pa.Table.from_pylist(sched_rows), out_dir / "schedule.parquet")
    return run


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    case = json.loads(Path(argv[0]).read_text())
    run = record(case, Path(argv[1]), REPO / ".cache" / "vllm_models")
    print(
        f"recorded {run['case']}: {run['num_requests']} requests, {run['num_steps']} steps, "
        f"{run['wall_s']} s "
        f"-> {argv[1]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
