"""Smoke test of the real-vLLM recording harness (marker ``vllm``; needs ``make vllm-env``).

Records a tiny run with the CPU build of vLLM 0.32.0 in its own venv, then checks the simulator
reproduces its schedule exactly. Skipped when that venv is absent (the default ``make test``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from simroute.config import REPO_ROOT
from simroute.engine.replay import DEFAULT_CPU_STEP, compare, load_inputs, simulate_run

VLLM_PY = REPO_ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not VLLM_PY.exists(), reason="no .venv-vllm (run `make vllm-env`)"),
]


def test_record_a_tiny_real_run_and_replay_it_exactly(tmp_path: Path) -> None:
    probe = subprocess.run([str(VLLM_PY), "-c", "import vllm"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("vllm does not import in .venv-vllm")
    out = tmp_path / "smoke"
    env = {
        **os.environ,
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
        "VLLM_DISABLE_REQUEST_ID_RANDOMIZATION": "1",
    }
    proc = subprocess.run(
        [
            str(VLLM_PY),
            str(REPO_ROOT / "experiments/vllm_validation/record.py"),
            str(REPO_ROOT / "experiments/vllm_validation/cases/smoke.json"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for f in ("run.json", "case.json", "requests.parquet", "steps.parquet", "schedule.parquet"):
        assert (out / f).exists(), f
    inp = load_inputs(out)
    assert inp.run["vllm_version"].startswith("0.32")
    c = compare(simulate_run(inp, DEFAULT_CPU_STEP), inp.requests)
    assert c["exact_both_steps"] == 1.0
    assert c["match_num_cached_tokens"] == 1.0
