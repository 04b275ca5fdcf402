"""Compare a recorded real vLLM run with the simulator and write ``report.md`` plus figures.

    python experiments/vllm_validation/validate.py --calibration RUN_DIR --target RUN_DIR --out validation

The target run is replayed by :mod:`simroute.engine.replay` with a step-time model fitted to the
calibration run (another recording); the report gives the exact-match shares, TTFT/e2e MAPE, the
scheduler check by recorded arrival steps, the step-time fit and the harness's own overhead per step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from simroute.analysis.plots import save_figure
from simroute.engine.replay import compare, load_inputs, simulate_run
from simroute.engine.steptime import FEATURES, fit_run, run_features


def scatter(sim: pl.DataFrame, real: pl.DataFrame, path: Path, title: str) -> None:
    """Simulated against recorded TTFT and e2e latency per request (s, log-log, with the identity
    line). One replay of one recorded run: no error bars."""
    m = sim.join(real, on="request_id", suffix="_real")
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, col, what in zip(axes, ("ttft_s", "e2e_s"), ("TTFT", "end-to-end latency"), strict=True):
        x, y = m[f"{col}_real"].to_numpy(), m[col].to_numpy()
        ax.scatter(x, y, s=12, alpha=0.7, label=f"requests (n={m.height})")
        lo, hi = min(x.min(), y.min()) * 0.8, max(x.max(), y.max()) * 1.2
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, label="simulated = real")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"real vLLM {what} (s)")
        ax.set_ylabel(f"simulated {what} (s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, svg=False)


def step_fit_plot(cal: Path, target: Path, path: Path) -> dict[str, float]:
    """Measured against predicted step times (ms) for the calibration (in-sample) and target runs;
    returns the step-time MAPE (share) of each."""
    model = fit_run(cal)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    out = {}
    for name, d in (("calibration", cal), ("target", target)):
        x, y = run_features(d)
        p = model.predict(x)
        out[name] = float(np.mean(np.abs(p - y) / y))
        ax.scatter(y * 1e3, p * 1e3, s=6, alpha=0.4, label=f"{name} (step MAPE {out[name]:.1%})")
    hi = ax.get_xlim()[1]
    ax.plot([0, hi], [0, hi], color="grey", lw=1, label="model = measured")
    ax.set_xlabel("measured step time (ms)")
    ax.set_ylabel("model step time (ms)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("step-time model fitted to the calibration run", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, svg=False)
    return out


def overhead(run_dir: Path) -> dict[str, float] | None:
    """Mean step, model (forward + sampling) and scheduler time (ms) if the recorder measured them."""
    s = pl.read_parquet(run_dir / "steps.parquet")
    if "t_model_s" not in s.columns:
        return None
    dt = (s["t_end_s"] - s["t_start_s"]).to_numpy()
    return {
        "step_ms": float(dt.mean() * 1e3),
        "model_ms": float(s["t_model_s"].mean() * 1e3),  # type: ignore[operator]
        "schedule_ms": float(s["t_schedule_s"].mean() * 1e3),
    }  # type: ignore[operator]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--target", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("validation"))
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    inp = load_inputs(a.target)
    model = fit_run(a.calibration)
    sim = simulate_run(inp, model)
    c = compare(sim, inp.requests)
    sched = compare(simulate_run(inp, model, arrivals="step"), inp.requests)
    scatter(sim, inp.requests, a.out / "sim_vs_real.png", f"{inp.run.get('case')}: simulated vs real vLLM")
    fits = step_fit_plot(a.calibration, a.target, a.out / "step_time_fit.png")
    coef = dict(zip(FEATURES, (float(v) for v in model.coefficients()), strict=True))
    ov = overhead(a.target)
    run = inp.run
    lines = [
        "# simroute vs real vLLM: validation report",
        "",
        f"Target run `{a.target.name}` ({run.get('num_requests')} requests, {run.get('num_steps')} steps, "
        f"arrivals by {run['arrival_mode']}), vLLM {run.get('vllm_version')} on {run.get('device')} "
        f"({run.get('cpu_count')} cores); step-time model fitted to `{a.calibration.name}`.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| first-token step exact | {c['exact_first_token_step']:.1%} |",
        f"| finish step exact | {c['exact_finish_step']:.1%} |",
        "| both exact, replayed by recorded arrival steps (scheduler alone) | "
        f"{sched['exact_both_steps']:.1%} |",
        f"| preemptions match | {c['match_num_preemptions']:.1%} |",
        f"| cached tokens match | {c['match_num_cached_tokens']:.1%} |",
        f"| TTFT MAPE | {c['mape_ttft']:.1%} |",
        f"| e2e MAPE | {c['mape_e2e']:.1%} |",
        f"| step-time MAPE, calibration run (in-sample) | {fits['calibration']:.1%} |",
        f"| step-time MAPE, target run | {fits['target']:.1%} |",
        "",
        "Step-time model (seconds per unit): " + ", ".join(f"{k} {v:.3g}" for k, v in coef.items() if v),
        "",
    ]
    if ov:
        lines += [
            f"Harness overhead: a step takes {ov['step_ms']:.2f} ms on average, of which the model "
            f"(forward + sampling) {ov['model_ms']:.2f} ms and the scheduler {ov['schedule_ms']:.2f} ms; "
            f"the remaining {ov['step_ms'] - ov['model_ms']:.2f} ms is engine/output-processing overhead "
            "outside the model. "
            "In the step-time model it is part of the constant term.",
            "",
        ]
    lines += ["![simulated vs real](sim_vs_real.png)", "", "![step-time fit](step_time_fit.png)", ""]
    (a.out / "report.md").write_text("\n".join(lines))
    (a.out / "report.json").write_text(
        json.dumps(
            {"replay": c, "scheduler_check": sched, "step_fit": fits, "step_model": coef, "overhead_ms": ov},
            indent=2,
        )
        + "\n"
    )
    print("\n".join(lines[:20]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
