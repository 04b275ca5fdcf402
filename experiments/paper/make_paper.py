"""Regenerate every stored output of the paper, then render README.md and paper/README.md.

``make paper`` runs this: the steps below (each an ordinary command that writes its CSV/JSON/PNG
under ``paper/``, ``validation/`` or ``conf/``), at most ``--jobs`` at a time (each heavy step also
uses two worker processes), then ``experiments/paper/render.py``. Every step is deterministic (fixed
seeds, figure metadata stripped), so running it twice, or in a fresh clone, leaves ``git status``
clean. Timing outputs (``paper/scale_bench.json``, ``paper/engine_bench.json``) are measurements of
a machine, not simulations: ``make paper`` renders them but does not re-measure them
(``make paper-timing`` does).

After the steps, ``experiments/paper/derive.py`` writes the tables and aggregates the documents
quote (``paper/tables/*.md``, ``paper/derived.json``). ``--quick OUT``: every step that has a quick
mode, tiny, writing under OUT, and the derived tables from them (tests use it); the documents are
not rendered.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
GSM8K = "traces/quality/routellm_gsm8k_responses.csv.gz"
MIXTRAL, GPT4 = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


@dataclass(frozen=True)
class Step:
    """One command of the build. ``quick``: the arguments of its tiny variant, ``{out}`` replaced by
    the quick output folder (None: no quick mode)."""

    name: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None = None


def _py(*args: str) -> tuple[str, ...]:
    return (PY, *args)


SIMROUTE = (PY, "-m", "simroute.cli")
STEPS: tuple[Step, ...] = (
    Step(
        "arms",
        _py("experiments/arms.py", "--out", "paper"),
        _py("experiments/arms.py", "--out", "{out}", "--seeds", "2", "--quick"),
    ),
    Step(
        "sensitivity",
        _py("experiments/sensitivity.py", "--out", "paper"),
        _py("experiments/sensitivity.py", "--out", "{out}", "--quick"),
    ),
    Step("risk_vs_evaluator", _py("experiments/risk_vs_evaluator.py", "--out", "paper")),
    Step(
        "router_sweep",
        _py("experiments/router_sweep.py", "--out", "paper"),
        _py("experiments/router_sweep.py", "--out", "{out}", "--requests", "2000"),
    ),
    Step("fleet_14d", _py("experiments/fleet_14d.py", "--out", "paper")),
    Step("gpu_fit_report", _py("experiments/gpu_validation/fit_report.py")),
    Step(
        "honest_headline",
        _py("experiments/honest_headline.py", "--out", "paper"),
        _py("experiments/honest_headline.py", "--out", "{out}", "--requests", "2000"),
    ),
    Step(
        "savings",
        _py("experiments/savings.py", "--out", "paper"),
        _py("experiments/savings.py", "--out", "{out}", "--n", "2000"),
    ),
    Step(
        "tier_economics",
        _py("experiments/tier_economics.py", "--out", "paper"),
        _py("experiments/tier_economics.py", "--out", "{out}", "--requests", "2000"),
    ),
    Step(
        "gsm8k_routers",
        (
            *SIMROUTE,
            "eval-router",
            GSM8K,
            "--weak",
            MIXTRAL,
            "--strong",
            GPT4,
            "--json",
            "paper/gsm8k_routers.json",
            "--plot",
            "paper/figures/gsm8k_routers.png",
        ),
    ),
    Step(
        "gsm8k_calibration",
        (*SIMROUTE, "calibrate", GSM8K, "--models", MIXTRAL, GPT4, "--json", "paper/gsm8k_calibration.json"),
    ),
    Step(
        "claude_api_latency",
        _py(
            "-m",
            "simroute.tiers.api_call_fit",
            "traces/claude_code_2025.parquet",
            "--out",
            "conf/tiers/claude_api_latency.json",
        ),
    ),
    Step("engine_validation", _py("experiments/engine_validation.py", "--out", "paper")),
    Step("bundled_data", _py("experiments/bundled_data.py", "--out", "paper")),
    Step("local_gpu_model", _py("experiments/local_gpu_model.py", "--json", "paper/local_gpu_model.json")),
    Step(
        "attempt_correlation",
        _py("experiments/attempt_correlation.py", "--json", "paper/attempt_correlation.json"),
    ),
    Step(
        "classifier_mtbench",
        _py("experiments/classifier_mtbench.py", "--out", "paper"),
        _py("experiments/classifier_mtbench.py", "--out", "{out}"),
    ),
)
"""The build, longest first (so two workers finish together)."""


def run_step(step: Step, quick_out: Path | None) -> tuple[str, float, int, str]:
    """Run one step from the repository root; (name, seconds, exit status, last output lines)."""
    if quick_out is None:
        args = step.full
    else:
        args = tuple(a.replace("{out}", str(quick_out)) for a in step.quick or ())
    t0 = time.perf_counter()
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
    return step.name, time.perf_counter() - t0, p.returncode, tail


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2, help="steps at a time")
    ap.add_argument("--quick", type=Path, default=None, metavar="OUT", help="tiny steps into OUT")
    ap.add_argument("--only", nargs="*", default=None, help="run only these steps")
    a = ap.parse_args()
    steps = [s for s in STEPS if (a.only is None or s.name in a.only) and (a.quick is None or s.quick)]
    if a.quick is not None:
        (a.quick / "figures").mkdir(parents=True, exist_ok=True)
    failed = []
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for name, secs, rc, tail in pool.map(lambda s: run_step(s, a.quick), steps):
            print(f"{name:20s} {secs:7.1f} s  {'ok' if rc == 0 else f'FAILED ({rc})'}", flush=True)
            if rc:
                failed.append(name)
                print(tail, file=sys.stderr)
    if failed:
        print(f"failed steps: {failed}", file=sys.stderr)
        return 1
    derive = _py("experiments/paper/derive.py", "--paper", str(a.quick or "paper"))
    if subprocess.run(derive, cwd=ROOT, check=False).returncode:
        return 1
    if a.quick is None:
        return subprocess.run(_py("experiments/paper/render.py"), cwd=ROOT, check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
