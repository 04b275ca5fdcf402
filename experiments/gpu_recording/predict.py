"""Predict a case's recording before spending device time on it: simroute's engine with the
first-principles GPU step time replays the case's drawn workload (no vLLM, no GPU).

    .venv/bin/python experiments/gpu_recording/predict.py \\
        experiments/vllm_validation/cases/gpu_h200_llama31_8b.json --gpu H200

Writes a run folder holding only the inputs (``run.json`` from the case, the input columns of
``requests.parquet``, SCHEMA.md) to a temporary folder, simulates it with
``simroute.engine.replay --gpu`` and prints the predicted recorded part's wall time, TTFT and e2e.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments" / "vllm_validation"))

import record  # noqa: E402  (experiments/vllm_validation/record.py; needs numpy only here)

from simroute.engine.replay import gpu_model_for, load_inputs, simulate_run  # noqa: E402


def inputs_run(case: dict[str, Any], out: Path) -> Path:
    """A run folder with the case's inputs only (no recorded results)."""
    e, w = case["engine"], case["workload"]
    reqs = record.draw_workload(case)
    run = {k: e[k] for k in record.ENGINE_REQUIRED} | {
        "long_prefill_token_threshold": e.get("long_prefill_token_threshold", 0),
        "enable_chunked_prefill": True,
        "arrival_mode": w["arrival_mode"],
        "model": case["model"],
        "case": case["name"],
    }
    if run["num_gpu_blocks"] is None:
        raise SystemExit("predict.py: the case leaves num_gpu_blocks to vLLM; give a number to predict")
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    timed = w["arrival_mode"] == "time"
    rows = {
        "request_id": [r["request_id"] for r in reqs],
        "arrival_step": [r["arrival_step"] for r in reqs],
        "arrival_s": [r["arrival_target_s"] for r in reqs],
        "arrival_target_s": [r["arrival_target_s"] if timed else float("nan") for r in reqs],
        "prompt_tokens": [len(r["tokens"]) for r in reqs],
        "output_tokens": [r["output_tokens"] for r in reqs],
        "prefix_group": [r["prefix_group"] for r in reqs],
        "prefix_tokens": [r["prefix_tokens"] for r in reqs],
    }
    pl.DataFrame(rows).write_parquet(out / "requests.parquet")
    return out


def predict(case: dict[str, Any], gpu: str) -> dict[str, float]:
    """Predicted wall time of the recorded part and TTFT / e2e statistics, in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        inp = load_inputs(inputs_run(case, Path(tmp) / "run"))
        sim = simulate_run(inp, gpu_model_for(inp, gpu))
    end = (sim["arrival_s"] + sim["e2e_s"]).to_numpy()
    ttft, e2e = sim["ttft_s"].to_numpy(), sim["e2e_s"].to_numpy()
    return {
        "wall_s": float(end.max()),
        "ttft_mean_s": float(ttft.mean()),
        "ttft_p90_s": float(np.quantile(ttft, 0.9)),
        "e2e_mean_s": float(e2e.mean()),
        "e2e_p90_s": float(np.quantile(e2e, 0.9)),
        "steps": float(sim["finish_step"].max() + 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("case", type=Path)
    ap.add_argument("--gpu", default="H200")
    a = ap.parse_args(argv)
    case = json.loads(a.case.read_text())
    errs = record.validate_case(case)
    if errs:
        print(f"{a.case}: invalid case:\n  " + "\n  ".join(errs), file=sys.stderr)
        return 2
    for k, v in predict(case, a.gpu).items():
        print(f"{k:12s} {v:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
