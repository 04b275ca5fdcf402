"""Regenerate every stored output of the paper, then render README.md and paper/README.md.

``make paper`` runs this: the steps below (each an ordinary command that writes its CSV/JSON/PNG
under ``paper/``, ``validation/`` or ``conf/``), at most ``--jobs`` at a time (each heavy step also
uses two worker processes), then ``experiments/paper/render.py``. Every step is deterministic (fixed
seeds, figure metadata stripped), so running it twice, or in a fresh clone, leaves ``git status``
clean. Timing outputs (``paper/scale_bench.json``, ``paper/scale_bench_interpreted.json``,
``paper/scale_profile.json``, ``paper/engine_bench.json``) are measurements of
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


def _exp(name: str, *quick: str, quick_mode: bool = True) -> Step:
    """The step that runs ``experiments/NAME.py --out paper``; its quick variant writes to ``{out}``
    with the extra arguments ``quick`` (``quick_mode=False``: no quick variant)."""
    script = f"experiments/{name}.py"
    fast = _py(script, "--out", "{out}", *quick) if quick_mode else None
    return Step(name, _py(script, "--out", "paper"), fast)


SIMROUTE = (PY, "-m", "simroute.cli")
MTBENCH_CSV = "outputs/mtbench_outcomes.csv"
STEPS: tuple[Step, ...] = (
    _exp("arms", "--seeds", "2", "--quick"),
    _exp("sensitivity", "--quick"),
    _exp("risk_vs_evaluator", quick_mode=False),
    _exp("router_sweep", "--requests", "2000"),
    _exp("fleet_14d", quick_mode=False),
    Step("gpu_fit_report", _py("experiments/gpu_validation/fit_report.py")),
    _exp("honest_headline", "--requests", "2000"),
    _exp("savings", "--n", "2000"),
    _exp("tier_economics", "--requests", "2000"),
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
        "mtbench_calibration",
        (
            "sh",
            "-c",
            f"{PY} experiments/mtbench_outcomes.py --out {MTBENCH_CSV} && {PY} -m simroute.cli calibrate "
            f"{MTBENCH_CSV} --models {MIXTRAL} {GPT4} --skill-column category "
            "--json paper/mtbench_calibration.json",
        ),
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
    _exp("engine_validation", quick_mode=False),
    _exp("bundled_data", quick_mode=False),
    Step("local_gpu_model", _py("experiments/local_gpu_model.py", "--json", "paper/local_gpu_model.json")),
    Step(
        "attempt_correlation",
        _py("experiments/attempt_correlation.py", "--json", "paper/attempt_correlation.json"),
    ),
    _exp("classifier_mtbench"),
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
