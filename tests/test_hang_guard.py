"""The test suite's hang guard (``conftest._hang_guard``) ends a test stuck in compiled code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

_STUCK = """
import numba


@numba.njit
def spin(n):
    i = 0
    while i >= 0:
        i = (i + 1) % n
    return i


def test_stuck():
    spin(10)
"""


def test_a_test_stuck_in_compiled_code_ends_the_run(tmp_path: Path) -> None:
    """A test spinning inside a Numba loop (deaf to Python signals) ends the run within seconds,
    with exit status 1 and the stuck test's line in the traceback on the terminal."""
    shutil.copy(REPO_ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_stuck.py").write_text(_STUCK)
    env = {**os.environ, "SIMROUTE_TEST_HANG_S": "3"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_stuck.py"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout + run.stderr
    assert "Timeout (0:00:03)!" in out and 'test_stuck.py", line 14 in test_stuck' in out, out
