"""The test suite's hang guard (``conftest._hang_guard``) ends a test stuck in compiled code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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

_STUCK_SLOW = _STUCK.replace("import numba\n", "import numba\nimport pytest\n").replace(
    "def test_stuck", "@pytest.mark.slow\ndef test_stuck"
)


@pytest.mark.parametrize(
    ("source", "limit", "line"), [(_STUCK, "0:00:03", 14), (_STUCK_SLOW, "0:00:05", 16)], ids=["fast", "slow"]
)
def test_a_test_stuck_in_compiled_code_ends_the_run(
    tmp_path: Path, source: str, limit: str, line: int
) -> None:
    """A test spinning inside a Numba loop (deaf to Python signals) ends the run within seconds,
    with exit status 1 and the stuck test's line in the traceback on the terminal; a test of a
    long suite (here ``slow``) gets the long suites' limit."""
    shutil.copy(REPO_ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_stuck.py").write_text(source)
    env = {**os.environ, "SIMROUTE_TEST_HANG_S": "3", "SIMROUTE_TEST_HANG_LONG_S": "5"}
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
    assert f"Timeout ({limit})!" in out and f'test_stuck.py", line {line} in test_stuck' in out, out
