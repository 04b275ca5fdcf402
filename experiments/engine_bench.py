"""Engine throughput: one vLLM V1 replica (Llama-2-7B H100 profile, budget 4096 tokens, 128 seqs)
on 10,000 requests with Azure-conv token lengths arriving Poisson at 5 requests/s.

Reports simulated requests per second for the engine alone (no SimPy) and inside a SimPy
simulation (the local tier's driver), plus peak memory; ``--json PATH`` also stores them (a
measurement of this machine: ``make paper`` renders ``paper/engine_bench.json`` but does not
re-measure it). Usage:
``python experiments/engine_bench.py [--requests N] [--rate R] [--json paper/engine_bench.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simroute import rng as rng_mod
from simroute.config import TRACES_DIR
from simroute.engine.config import EngineConfig
from simroute.engine.profiles import kv_bytes_per_token, profile_step_time
from simroute.engine.replica import Replica
from simroute.tiers.local import LocalTier, PoolSpec
from simroute.workload.loaders import load_raw
from simroute.workload.request import Request

CONFIG = EngineConfig(
    max_num_batched_tokens=4096,
    max_num_seqs=128,
    block_size=16,
    num_gpu_blocks=7000,
    enable_prefix_caching=True,
    max_model_len=16384,
)


def step_model() -> Any:
    """Llama-2-7B on one H100: Vidur non-attention profile + KV-read attention."""
    return profile_step_time(
        TRACES_DIR / "vidur_h100_llama2_7b_mlp.csv.gz",
        max_tokens=4096,
        kv_bytes_per_context_token=kv_bytes_per_token(32, 32, 128),
        hbm_bytes_per_s=3.35e12,
    )


def workload(n: int, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrival times (s), prompt and output tokens: Azure conv 2023 pairs, Poisson arrivals."""
    raw = load_raw(TRACES_DIR / "azure_conv_2023.csv.gz").df
    g = rng_mod.stream(seed, "bench.engine")
    pick = g.integers(0, raw.height, n)
    prompt = raw["prompt_tokens"].to_numpy()[pick]
    out = raw["output_tokens"].to_numpy()[pick]
    return np.cumsum(g.exponential(1 / rate, n)), prompt, out


def engine_alone(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray) -> tuple[float, Replica]:
    """Wall seconds to register and run every request through a bare Replica."""
    t0 = time.perf_counter()
    rep = Replica(CONFIG, step_model(), mode="time", capacity=len(arr) + 1)
    for a, p, o in zip(arr, prompt, out, strict=True):
        rep.add(int(p), int(o), arrival_s=float(a))
    rep.run_until()
    return time.perf_counter() - t0, rep


def in_simulation(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray) -> tuple[float, int]:
    """Wall seconds for a SimPy run where a source submits every request to a LocalTier."""
    env = simpy.Environment()
    spec = PoolSpec("m", 1, 1, 10**9, CONFIG, step_model())
    tier = LocalTier(env, [spec], 2.5)
    done = [0]

    def one(i: int) -> Any:
        req = Request(
            i,
            i,
            i,
            float(arr[i]),
            "draft_reply",
            "interactive",
            int(prompt[i]),
            int(out[i]),
            1e9,
            0.0,
            False,
            0,
            False,
            False,
            False,
            0.5,
        )
        yield tier.submit(req, "m")
        done[0] += 1

    def source() -> Any:
        for i in range(len(arr)):
            yield env.timeout(float(arr[i]) - env.now)
            env.process(one(i))

    t0 = time.perf_counter()
    env.process(source())
    env.run()
    return time.perf_counter() - t0, done[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--json", type=Path, default=None, help="also store the measurement here")
    a = ap.parse_args()
    arr, prompt, out = workload(a.requests, a.rate)
    engine_alone(arr[:200], prompt[:200], out[:200])  # compile / warm the Numba cache
    wall, rep = engine_alone(arr, prompt, out)
    print(
        f"engine alone : {a.requests} requests, {rep.steps} steps in {wall:.3f} s "
        f"-> {a.requests / wall:,.0f} requests/s ({rep.steps / wall:,.0f} steps/s)"
    )
    wall2, n = in_simulation(arr, prompt, out)
    print(f"in simulation: {n} requests in {wall2:.3f} s -> {n / wall2:,.0f} requests/s")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss_mib:.0f} MiB")
    if a.json is not None:
        stored = {
            "command": "python experiments/engine_bench.py",
            "requests": a.requests,
            "rate_per_s": a.rate,
            "cpu_count": os.cpu_count(),
            "engine_alone": {
                "wall_s": wall,
                "steps": rep.steps,
                "requests_per_s": a.requests / wall,
                "steps_per_s": rep.steps / wall,
            },
            "in_simulation": {"wall_s": wall2, "requests": n, "requests_per_s": n / wall2},
            "peak_rss_mib": rss_mib,
        }
        a.json.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
