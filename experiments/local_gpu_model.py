"""The local tier's step-time models side by side: ``kind: gpu_model`` (tiers/default.yaml) against the
earlier ``kind: profile`` (tiers/profile.yaml), for each local pool.

For one request alone on an idle replica: TTFT (s) by prompt length (chunked prefill at the pool's
token budget, no prefix hit), and the decode step time (ms) at a few batch sizes and context lengths.
``--json PATH`` also stores them (``ttft_s`` by prompt tokens and ``decode_ms`` by
``<requests>x<context tokens>``, per pool and step-time model) with, per pool, the range of the
share of decode-step time the gpu_model saves against the profile model (``decode_faster``).
Usage: ``python experiments/local_gpu_model.py [--json paper/local_gpu_model.json]``. Deterministic
(no randomness).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from simroute.config import compose
from simroute.engine import kernel as K
from simroute.engine.replica import Replica
from simroute.tiers.local import PoolSpec

PROMPTS = (1_000, 8_000, 16_000, 32_000, 64_000, 120_000)
DECODES = ((1, 2_000), (16, 8_000), (16, 32_000), (64, 8_000))  # (requests, context tokens each)


def pools(name: str) -> list[PoolSpec]:
    """The local pools of a run with ``tiers=<name>``, composed as ``simroute run`` does."""
    raw: Any = compose([f"tiers={name}"])["tiers"]
    return [PoolSpec.from_config(p) for p in raw["local"]["pools"]]


def ttft_alone(spec: PoolSpec, prompt: int) -> float:
    """Seconds from arrival to first token of one ``prompt``-token request on an idle replica."""
    rep = Replica(spec.engine, spec.step_time, mode="time", capacity=4)
    rep.add(prompt, 1, arrival_s=0.0)
    rep.run_until()
    return float(rep.request_time(K.FIRSTT)[0])


def decode_step_ms(spec: PoolSpec, batch: int, context: int) -> float:
    """Milliseconds of one pure-decode step of ``batch`` requests with ``context`` tokens each."""
    coef = spec.step_time.coefficients()
    table = spec.step_time.table()
    feats = [1.0, 0.0, batch, batch, 0.0, batch * (context + 1), 0.0, 0.0]
    return 1e3 * float(
        table[min(batch, len(table) - 1)] + sum(c * f for c, f in zip(coef, feats, strict=True))
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path, default=None, help="also store the numbers here")
    a = ap.parse_args()
    stored: dict[str, Any] = {}
    for kind in ("profile", "default"):
        for spec in pools(kind):
            label = "gpu_model" if kind == "default" else "profile"
            ttft = {str(p): ttft_alone(spec, p) for p in PROMPTS}
            dec = {f"{b}x{c}": decode_step_ms(spec, b, c) for b, c in DECODES}
            stored.setdefault(spec.model, {})[label] = {"ttft_s": ttft, "decode_ms": dec}
            print(
                f"{spec.model:28s} {label:9s} TTFT s  "
                + " ".join(f"{int(p) // 1000}k:{t:7.3f}" for p, t in ttft.items())
            )
            print(f"{'':28s} {'':9s} decode ms " + " ".join(f"{k}:{v:6.2f}" for k, v in dec.items()))
    for pool in stored.values():
        faster = [1 - pool["gpu_model"]["decode_ms"][k] / v for k, v in pool["profile"]["decode_ms"].items()]
        pool["decode_faster"] = {"min": min(faster), "max": max(faster)}
    if a.json is not None:
        a.json.write_text(
            json.dumps({"command": "python experiments/local_gpu_model.py", "pools": stored}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
