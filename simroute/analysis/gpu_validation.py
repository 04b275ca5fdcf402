"""Validation results of the GPU model: one record per experiment (predicted vs measured vs other
simulators), summary errors, and the comparison figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simroute.engine.gpu_experiments import GpuExperiment
from simroute.engine.gpu_model import GpuCoefficients
from simroute.engine.validate_gpu import relative_error, simulate, stage_stats

REFERENCE = "blis-evolved"
"""The published simulator compared against."""


def validate(exps: Sequence[GpuExperiment], coef: GpuCoefficients, seed: int = 0) -> list[dict[str, Any]]:
    """Simulate every experiment; one JSON-ready record each (errors = predicted / measured − 1 of the
    whole run, "-1")."""
    out = []
    for x in exps:
        sim = simulate(x, coef, seed)
        pred = stage_stats(sim)
        rec: dict[str, Any] = {
            "id": x.id,
            "model": x.arch.name,
            "tp": x.tp,
            "kv_blocks": x.engine.num_gpu_blocks - 1,
            "kv_blocks_source": "spec" if x.kv_blocks_given else "computed",
            "predicted": pred,
            "overloaded": sim.overloaded,
            "served_share": list(sim.stage_served_share),
        }
        if x.measured:
            rec["measured"] = x.measured
            rec["error"] = {
                k: relative_error(pred, x.measured, f"{k}_ms") for k in ("e2e_mean", "ttft_mean", "e2e_p90")
            }
        ref = (x.others or {}).get(REFERENCE)
        if ref and x.measured:
            rec["reference_error"] = {
                k: relative_error(ref, x.measured, f"{k}_ms") for k in ("e2e_mean", "ttft_mean")
            }
        out.append(rec)
    return out


def plot(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Bar chart: per measured experiment, E2E-mean and TTFT-mean error (predicted / measured − 1,
    in %) of simroute and of BLIS-evolved (no bar: no published BLIS prediction; experiments whose
    ``role`` starts with "fit" are labelled ``[fit]``). One deterministic prediction per experiment:
    no error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simroute.analysis.plots import save_figure

    rows = [r for r in records if r.get("error") and not r["overloaded"]]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.55 * len(rows) + 2), 7.5), sharex=True)
    x = np.arange(len(rows))
    for ax, key, title in zip(axes, ("e2e_mean", "ttft_mean"), ("E2E latency", "TTFT"), strict=True):
        sim = [100 * (r["error"][key] or 0) for r in rows]
        ref = [100 * ((r.get("reference_error") or {}).get(key) or np.nan) for r in rows]
        ax.bar(x - 0.2, sim, 0.4, label="simroute")
        ax.bar(x + 0.2, ref, 0.4, label="BLIS-evolved")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{title}, mean over the run's requests", fontsize=10, loc="left")
        ax.set_ylabel("predicted / measured − 1 (%)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(loc="lower left", fontsize=8)
    fit = [str(r.get("role", "")).startswith("fit") for r in rows]
    labels = [str(r["id"])[:28] + (" [fit]" if f else "") for r, f in zip(rows, fit, strict=True)]
    axes[1].set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    axes[1].set_xlabel("experiment (recorded run)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110, svg=False)


def median_abs(records: Sequence[dict[str, Any]], key: str, field: str = "error") -> float:
    """Median |error| of ``key`` over records that have it (NaN if none)."""
    v = [abs(r[field][key]) for r in records if r.get(field) and r[field].get(key) is not None]
    return float(np.median(v)) if v else float("nan")
