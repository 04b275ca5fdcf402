"""Replay a recorded real vLLM run through the simulated engine and compare.

    python -m simroute.engine.replay RUN_DIR [--calibrate-from OTHER_RUN_DIR [--structure cpu|base]]
        --out OUT.parquet
    python -m simroute.engine.replay RUN_DIR --gpu H200 --out OUT.parquet

The simulation reads only the run's *inputs*: ``run.json`` (engine settings, arrival mode) and the
input columns of ``requests.parquet`` (``request_id``, ``arrival_step`` / ``arrival_target_s`` /
``arrival_s``, ``prompt_tokens``, ``output_tokens``, ``prefix_group``, ``prefix_tokens``). Step
times come from a model fitted to ``--calibrate-from`` (another recorded run) or, without it, the
default CPU model of the shared runs, or with ``--gpu NAME`` from the first-principles GPU model
(:mod:`simroute.engine.gpu_model`, ``conf/gpu_model.json``) of the run's ``model`` on that GPU,
tensor parallelism 1 (no client front-end time: a recording times the engine alone). The fit uses
the CPU step structure (:data:`~simroute.engine.steptime.CPU_FEATURES`: constant, per computed
token, per scheduled request, per new request, per prefill attention pair) or, with ``--structure
base``, the six features of the first engine release. Recorded results, when present, are used only
for the printed comparison. Step-mode runs are scheduled exactly by arrival step; time-mode runs by
arrival time, so their step indices depend on the predicted step times (``--arrivals step`` replays
a time-mode run by its recorded arrival steps instead, which checks the scheduler alone).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simroute.config import CONF_DIR
from simroute.engine import kernel as K
from simroute.engine.config import EngineConfig
from simroute.engine.gpu_hardware import gpu_by_name
from simroute.engine.gpu_model import gpu_step_time, load_coefficients
from simroute.engine.model_arch import arch_from_config
from simroute.engine.replica import Replica
from simroute.engine.steptime import BASE_FEATURES, CPU_FEATURES, LinearStepTime, StepTimeModel, fit_run
from simroute.errors import InputError, SimrouteError
from simroute.jsonfile import read_json

DEFAULT_CPU_STEP = LinearStepTime(const_s=0.0035, per_prefill_token_s=0.00010, per_decode_s=0.0003)
"""The shared runs' README: ~3.5 ms + 0.10 ms per prefill token + 0.3 ms per decoding request."""

INPUT_COLS = ("request_id", "prompt_tokens", "output_tokens", "prefix_group", "prefix_tokens")
RESULT_COLS = ("first_token_step", "finish_step", "num_preemptions", "num_cached_tokens", "ttft_s", "e2e_s")


@dataclass(frozen=True)
class RunInputs:
    """What a recorded run gives the simulator (SCHEMA.md)."""

    path: Path
    run: dict[str, Any]
    config: EngineConfig
    requests: pl.DataFrame


def load_inputs(run_dir: str | Path) -> RunInputs:
    """Read and check ``run.json`` and the input columns of ``requests.parquet``."""
    d = Path(run_dir)
    rj = d / "run.json"
    run = read_json(rj, "file not found (a run folder needs run.json and requests.parquet)")
    try:
        config = EngineConfig.from_run_json(run)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(str(rj), f"missing or invalid engine setting {e}") from None
    if run.get("arrival_mode") not in ("step", "time"):
        raise InputError(
            str(rj),
            f"arrival_mode must be 'step' or 'time', got {run.get('arrival_mode')!r}",
            column="arrival_mode",
        )
    rp = d / "requests.parquet"
    try:
        req = pl.read_parquet(rp)
    except FileNotFoundError:
        raise InputError(str(rp), "file not found") from None
    except Exception as e:
        raise InputError(str(rp), f"unreadable Parquet ({type(e).__name__}: {e})") from None
    need = [*INPUT_COLS, "arrival_step" if run["arrival_mode"] == "step" else "arrival_s"]
    missing = [c for c in need if c not in req.columns]
    if missing:
        raise InputError(str(rp), f"missing column(s) {missing}")
    for c in ("prompt_tokens", "output_tokens"):
        bad = req[c].is_null() | (req[c] < 1)
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputError(str(rp), f"expected an integer >= 1, got {req[c][i]!r}", row=i + 1, column=c)
    long = req["prompt_tokens"] > config.max_model_len
    if long.any():
        i = int(long.arg_true()[0])
        raise InputError(
            str(rp),
            f"a prompt of {req['prompt_tokens'][i]} tokens is longer than max_model_len "
            f"({config.max_model_len} in run.json): vLLM refuses it",
            row=i + 1,
            column="prompt_tokens",
        )
    return RunInputs(d, run, config, req)


def gpu_model_for(inp: RunInputs, gpu: str) -> StepTimeModel:
    """The first-principles GPU step time of the run's model (``run.json`` ``model``) on ``gpu``."""
    model = inp.run.get("model")
    if not isinstance(model, dict):
        raise InputError(str(inp.path / "run.json"), "no model architecture (key 'model')", column="model")
    arch = arch_from_config(model, str(inp.run.get("case", inp.path.name)), str(inp.path / "run.json"))
    coef = load_coefficients(CONF_DIR / "gpu_model.json")
    return gpu_step_time(arch, gpu_by_name(gpu), 1, coef, inp.config.max_num_batched_tokens)


def simulate_run(inp: RunInputs, step_time: StepTimeModel, arrivals: str | None = None) -> pl.DataFrame:
    """Replay the run's requests through a :class:`Replica`; one row per request."""
    mode = arrivals or inp.run["arrival_mode"]
    req = inp.requests
    n = req.height
    rep = Replica(inp.config, step_time, mode=mode, capacity=n + 1, log_steps=0)
    bs = inp.config.block_size
    if mode == "time":
        t = (req["arrival_target_s"] if "arrival_target_s" in req.columns else req["arrival_s"]).to_numpy()
        t = np.where(np.isnan(t), req["arrival_s"].to_numpy(), t)
        order = np.argsort(t, kind="stable")
    else:
        order = np.argsort(req["arrival_step"].to_numpy(), kind="stable")
    prompt = req["prompt_tokens"].to_numpy()
    out = req["output_tokens"].to_numpy()
    group = req["prefix_group"].to_numpy()
    ptok = req["prefix_tokens"].to_numpy()
    astep = req["arrival_step"].to_numpy() if "arrival_step" in req.columns else np.zeros(n, dtype=np.int64)
    for i in order:
        keys = None
        if group[i] >= 0 and ptok[i] >= bs:
            keys = int(group[i]) * (1 << 20) + np.arange(int(ptok[i]) // bs, dtype=np.int64)
        rep.add(
            int(prompt[i]),
            int(out[i]),
            arrival_s=float(t[i]) if mode == "time" else 0.0,
            arrival_step=int(astep[i]),
            prefix_keys=keys,
        )
    rep.run_until()
    eng = np.empty(n, dtype=np.int64)
    eng[order] = np.arange(n)
    added = rep.request_time(K.ADDT)[eng]
    return pl.DataFrame(
        {
            "request_id": req["request_id"],
            "arrival_step": rep.request_field(K.ARRSTEP)[eng],
            "arrival_s": added,
            "first_token_step": rep.request_field(K.FSTEP)[eng],
            "finish_step": rep.request_field(K.DSTEP)[eng],
            "num_preemptions": rep.request_field(K.NPRE)[eng],
            "num_cached_tokens": rep.request_field(K.NCACHED)[eng],
            "ttft_s": rep.request_time(K.FIRSTT)[eng] - added,
            "e2e_s": rep.request_time(K.DONET)[eng] - added,
        }
    )


def compare(sim: pl.DataFrame, real: pl.DataFrame) -> dict[str, float]:
    """Exact-match shares and MAPEs of the simulated against the recorded results."""
    m = sim.join(real.select(["request_id", *RESULT_COLS]), on="request_id", suffix="_real")

    def share(c: str) -> float:
        return float((m[c] == m[f"{c}_real"]).mean())  # type: ignore[arg-type]

    def mape(c: str) -> float:
        a, b = m[c].to_numpy(), m[f"{c}_real"].to_numpy()
        return float(np.mean(np.abs(a - b) / np.abs(b)))

    both = (m["first_token_step"] == m["first_token_step_real"]) & (m["finish_step"] == m["finish_step_real"])
    return {
        "requests": float(m.height),
        "exact_first_token_step": share("first_token_step"),
        "exact_finish_step": share("finish_step"),
        "exact_both_steps": float(both.mean()),  # type: ignore[arg-type]
        "match_num_preemptions": share("num_preemptions"),
        "match_num_cached_tokens": share("num_cached_tokens"),
        "mape_ttft": mape("ttft_s"),
        "mape_e2e": mape("e2e_s"),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(
        prog="python -m simroute.engine.replay", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("run_dir", type=Path)
    how = ap.add_mutually_exclusive_group()
    how.add_argument(
        "--gpu",
        default=None,
        help="step times from the first-principles GPU model on this GPU (H100, H200, A100)",
    )
    how.add_argument(
        "--calibrate-from",
        type=Path,
        default=None,
        help="recorded run whose measured step times fit the step-time model",
    )
    ap.add_argument(
        "--structure",
        choices=("cpu", "base"),
        default="cpu",
        help="step-time features the calibration fits (cpu: constant, per token, per request, per new "
        "request, prefill attention; base: the first release's six)",
    )
    ap.add_argument(
        "--arrivals",
        choices=("step", "time"),
        default=None,
        help="override the run's arrival mode (step: use recorded arrival steps)",
    )
    ap.add_argument("--out", type=Path, required=True, help="output Parquet, one row per request")
    args = ap.parse_args(argv)
    try:
        inp = load_inputs(args.run_dir)
        use = CPU_FEATURES if args.structure == "cpu" else BASE_FEATURES
        model: StepTimeModel = DEFAULT_CPU_STEP
        if args.calibrate_from:
            model = fit_run(args.calibrate_from, use)
        elif args.gpu:
            model = gpu_model_for(inp, args.gpu)
        sim = simulate_run(inp, model, args.arrivals)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sim.write_parquet(args.out)
    except SimrouteError as e:
        print(f"simroute: error: {e}", file=sys.stderr)
        return 2
    print(f"simulated {sim.height} requests of {args.run_dir} -> {args.out}")
    if all(c in inp.requests.columns for c in RESULT_COLS):
        for k, v in compare(sim, inp.requests).items():
            print(f"  {k:28s} {v:.4f}" if k != "requests" else f"  {k:28s} {int(v)}")
    else:
        print("  (no recorded results in this folder: nothing to compare)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
