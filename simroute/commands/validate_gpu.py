"""``simroute validate-gpu``: simulate GPU vLLM experiments (inference-perf workloads) with the GPU
step-time model and the step-exact scheduler; predicted per-stage latencies as JSON, optional figure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simroute.analysis.gpu_validation import REFERENCE, median_abs, plot, validate
from simroute.commands import fail
from simroute.config import CONF_DIR
from simroute.engine.gpu_experiments import load_specs
from simroute.engine.gpu_model import load_coefficients
from simroute.errors import SimrouteError

DEFAULT_COEFFICIENTS = CONF_DIR / "gpu_model.json"


def main(argv: list[str]) -> None:
    """Run ``simroute validate-gpu`` with the arguments after the command name."""
    ap = argparse.ArgumentParser(prog="simroute validate-gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "specs",
        nargs="+",
        help="experiments JSON (format of gpu_vllm/experiments.json), an inference-perf run folder "
        "(exp-config.yaml + results/config.yaml), or a folder of run folders",
    )
    ap.add_argument("--json", required=True, help="output JSON")
    ap.add_argument("--plot", default=None, help="output PNG")
    ap.add_argument("--coefficients", default=str(DEFAULT_COEFFICIENTS), help="fitted GPU coefficients")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        coef = load_coefficients(a.coefficients)
        exps = [x for s in a.specs for x in load_specs(s)]
        records = validate(exps, coef, a.seed)
    except SimrouteError as e:
        fail(e)
    out = {"coefficients": coef.to_json(), "experiments": records}
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    if a.plot:
        plot(records, Path(a.plot))
    for r in records:
        err = r.get("error") or {}
        p = r["predicted"]["-1"]
        print(
            f"  {r['id'][:42]:42s} E2E {p['e2e_mean_ms']:9.0f} ms"
            + (f" ({100 * err['e2e_mean']:+6.1f} %)" if err.get("e2e_mean") is not None else " " * 11)
            + f"  TTFT {p['ttft_mean_ms']:9.1f} ms"
            + (f" ({100 * err['ttft_mean']:+6.1f} %)" if err.get("ttft_mean") is not None else " " * 11)
            + ("  OVERLOADED" if r["overloaded"] else "")
        )
    ok = [r for r in records if not r["overloaded"]]
    print(
        f"median |error| (not overloaded): E2E {100 * median_abs(ok, 'e2e_mean'):.1f} %, "
        f"TTFT {100 * median_abs(ok, 'ttft_mean'):.1f} %; {REFERENCE}: "
        f"E2E {100 * median_abs(ok, 'e2e_mean', 'reference_error'):.1f} %, "
        f"TTFT {100 * median_abs(ok, 'ttft_mean', 'reference_error'):.1f} %"
    )
