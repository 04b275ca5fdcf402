"""The simulated vLLM V1 engine against the bundled real vLLM runs (``traces/vllm_runs``).

Replays every run as ``python -m simroute.engine.replay`` does (:mod:`simroute.engine.replay`) and
stores what the README quotes:

- per run: requests whose first-token and finish steps are exact (a timed run replayed by its
  recorded arrival steps, which checks the scheduler alone), preemptions and cached prompt tokens
  simulated vs recorded, and the TTFT / e2e MAPE of its timing — step-mode runs of the default
  CPU step model's machine with that model, v3 calibrated on v1, v6 on itself (both with the CPU
  step structure and, as ``base``, the first release's six features); v5 was recorded on another
  machine and has no other run to calibrate on, so its times are not compared;
- the CPU step structure fitted on v1, and v3's timing calibrated on each other run (MAPEs, mean
  signed TTFT error, how much longer v3's prefill steps took than the fit predicts);
- the spread of per-step times around a CPU-structure fit to the same run (CV of the residuals).

Writes ``OUT/engine_validation.json`` and ``OUT/engine_validation.md`` (the README's table).
Deterministic. Usage: ``python experiments/engine_validation.py [--out paper]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simroute.config import TRACES_DIR
from simroute.engine.replay import DEFAULT_CPU_STEP, compare, load_inputs, simulate_run
from simroute.engine.steptime import BASE_FEATURES, CPU_FEATURES, LinearStepTime, fit_run, run_features

RUNS = TRACES_DIR / "vllm_runs"
TABLE: tuple[tuple[str, str, str | None], ...] = (
    ("v1_offline_basic", " (step arrivals)", "default"),
    ("v2_kv_pressure", " ({num_gpu_blocks} KV blocks, {preemptions} preemptions)", "default"),
    ("v4_prefix", " ({cached:,} cached prompt tokens)", "default"),
    ("v3_timed_poisson", " (time arrivals), calibrated on v1", "v1_offline_basic"),
    ("v5_lpt_prefix_pressure", " (recorded here: caching under KV pressure, prefill cap 64)", None),
    (
        "v6_timed_gqa_code",
        " (recorded here: GQA model, time arrivals), calibrated on itself (no other run of its model)",
        "v6_timed_gqa_code",
    ),
)
"""(run, what its table row says after the name, timing: ``default`` CPU step model, the run to
calibrate on, or None)."""
V3, V3_CALIBRATIONS = (
    "v3_timed_poisson",
    ("v1_offline_basic", "v2_kv_pressure", "v4_prefix", "v3_timed_poisson"),
)
CV_RUNS = ("v1_offline_basic", "v2_kv_pressure", "v3_timed_poisson", "v4_prefix")
"""The runs recorded on the machine of the default CPU step model (AMD EPYC)."""


def _sim_vs_real(run: str, model: LinearStepTime, arrivals: str | None = None) -> tuple[pl.DataFrame, Any]:
    inp = load_inputs(RUNS / run)
    sim = simulate_run(inp, model, arrivals)
    return sim.join(inp.requests, on="request_id", suffix="_real"), compare(sim, inp.requests)


def _timing(run: str, calibration: str | None) -> dict[str, Any] | None:
    """TTFT and e2e MAPE of the run's replay by time (CPU structure, and ``base`` when calibrated)."""
    if calibration is None:
        return None
    if calibration == "default":
        c = _sim_vs_real(run, DEFAULT_CPU_STEP)[1]
        return {"calibrated_on": None, "mape_ttft": c["mape_ttft"], "mape_e2e": c["mape_e2e"], "base": None}
    cpu, base = (_sim_vs_real(run, fit_run(RUNS / calibration, f))[1] for f in (CPU_FEATURES, BASE_FEATURES))
    return {
        "calibrated_on": calibration,
        "mape_ttft": cpu["mape_ttft"],
        "mape_e2e": cpu["mape_e2e"],
        "base": {"mape_ttft": base["mape_ttft"], "mape_e2e": base["mape_e2e"]},
    }


def run_record(run: str, calibration: str | None) -> dict[str, Any]:
    """Scheduler exactness, preemptions, cached tokens and timing of one recorded run."""
    inp = load_inputs(RUNS / run)
    arrivals = "step"  # a timed run by its recorded arrival steps: the scheduler alone
    m, c = _sim_vs_real(run, DEFAULT_CPU_STEP, arrivals)
    both = (m["first_token_step"] == m["first_token_step_real"]) & (m["finish_step"] == m["finish_step_real"])
    return {
        "arrival_mode": inp.run["arrival_mode"],
        "requests": m.height,
        "num_gpu_blocks": inp.config.num_gpu_blocks,
        "exact_steps": int(both.sum()),
        "preemptions": {
            "simulated": int(m["num_preemptions"].sum()),
            "recorded": int(m["num_preemptions_real"].sum()),
            "match_share": c["match_num_preemptions"],
        },
        "cached_tokens": {
            "simulated": int(m["num_cached_tokens"].sum()),
            "recorded": int(m["num_cached_tokens_real"].sum()),
            "match_share": c["match_num_cached_tokens"],
        },
        "timing": _timing(run, calibration),
    }


def v3_by_calibration() -> dict[str, Any]:
    """v3 replayed with the CPU structure fitted on each run: MAPEs, mean signed TTFT error and the
    excess of v3's recorded prefill-step time over what that fit predicts for the same steps."""
    x, y = run_features(RUNS / V3)
    prefill = x[:, 1] > 0
    out = {}
    for cal in V3_CALIBRATIONS:
        model = fit_run(RUNS / cal, CPU_FEATURES)
        m, c = _sim_vs_real(V3, model)
        rel = (m["ttft_s"] - m["ttft_s_real"]) / m["ttft_s_real"]
        base = _sim_vs_real(V3, fit_run(RUNS / cal, BASE_FEATURES))[1]
        out[cal] = {
            "mape_ttft": c["mape_ttft"],
            "mape_e2e": c["mape_e2e"],
            "mean_ttft_error": float(rel.mean()),  # type: ignore[arg-type]
            "prefill_step_excess": float(y[prefill].sum() / model.predict(x[prefill]).sum() - 1),
            "base": {"mape_ttft": base["mape_ttft"], "mape_e2e": base["mape_e2e"]},
        }
    return out


def step_time_cv() -> dict[str, Any]:
    """Standard deviation of the residual step times over the mean step time, per run fitted on itself."""
    runs = {}
    for run in CV_RUNS:
        x, y = run_features(RUNS / run)
        runs[run] = float(np.std(y - fit_run(RUNS / run, CPU_FEATURES).predict(x)) / np.mean(y))
    return {"runs": runs, "min": min(runs.values()), "max": max(runs.values())}


def _cell(part: dict[str, Any], zero: str = "match") -> str:
    sim, rec = part["simulated"], part["recorded"]
    if part["match_share"] < 1:
        return f"{sim:,}/{rec:,} ({part['match_share']:.0%} of requests match)"
    return zero if rec == 0 else f"{sim:,}/{rec:,}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def table(runs: dict[str, Any]) -> str:
    """The README's table of the replays (Markdown)."""
    lines = [
        "| run | first-token and finish step exact | preemptions | cached tokens | TTFT MAPE | e2e MAPE |",
        "|---|---|---|---|---|---|",
    ]
    for run, label, _ in TABLE:
        r = runs[run]
        name = run + label.format(
            num_gpu_blocks=r["num_gpu_blocks"],
            cached=r["cached_tokens"]["recorded"],
            preemptions=r["preemptions"]["recorded"],
        )
        exact = f"{r['exact_steps']}/{r['requests']}"
        if r["arrival_mode"] == "time":
            exact += " given its arrival steps"
        t = r["timing"]
        ttft = e2e = "—"
        if t is not None:
            ttft, e2e = _pct(t["mape_ttft"]), _pct(t["mape_e2e"])
            if t["base"] is not None:
                prefix = "base features: " if run == V3 else ""
                ttft += f" ({prefix}{_pct(t['base']['mape_ttft'])})"
                e2e += f" ({_pct(t['base']['mape_e2e'])})"
        cells = [name, exact, _cell(r["preemptions"]), _cell(r["cached_tokens"]), ttft, e2e]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("paper"))
    a = ap.parse_args()
    v1 = fit_run(RUNS / "v1_offline_basic", CPU_FEATURES)
    d = DEFAULT_CPU_STEP
    runs = {run: run_record(run, timing) for run, _, timing in TABLE}
    stored = {
        "command": "python experiments/engine_validation.py",
        "default_cpu_step_ms": {
            "const": 1e3 * d.const_s,
            "per_prefill_token": 1e3 * d.per_prefill_token_s,
            "per_decode": 1e3 * d.per_decode_s,
        },
        "runs": runs,
        "v1_cpu_fit": {
            "const_ms": 1e3 * v1.const_s,
            "per_token_ms": 1e3 * v1.per_prefill_token_s,
            "per_request_ms": 1e3 * v1.per_request_s,
            "per_new_request_ms": 1e3 * v1.per_new_request_s,
            "per_prefill_attention_pair_us": 1e6 * v1.per_prefill_attention_pair_s,
        },
        "v3_by_calibration": v3_by_calibration(),
        "step_time_cv": step_time_cv(),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "engine_validation.json").write_text(json.dumps(stored, indent=1) + "\n")
    (a.out / "engine_validation.md").write_text(table(runs))
    print((a.out / "engine_validation.md").read_text())


if __name__ == "__main__":
    main()
