"""Installation: Numba's kernel cache goes to a user cache directory, never into the package tree
(which may be read-only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simroute.config import REPO_ROOT

SHOW_DIR = "import {first}; import numba; print(numba.config.CACHE_DIR)"


def _run(tmp_path: Path, code: str, **env: str) -> Path:
    """The path ``code`` prints in a fresh interpreter with HOME in ``tmp_path`` and neither
    NUMBA_CACHE_DIR nor XDG_CACHE_HOME set unless given in ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    base |= {"HOME": str(tmp_path / "home"), **env}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=base, cwd=REPO_ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


@pytest.mark.parametrize("first", ["simroute", "numba, simroute"])
def test_numba_cache_goes_to_xdg_cache_home(tmp_path: Path, first: str) -> None:
    # also when numba was imported before simroute (it is made to re-read its environment)
    got = _run(tmp_path, SHOW_DIR.format(first=first), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert got == tmp_path / "xdg" / "simroute" / "numba"


def test_numba_cache_defaults_to_home_cache(tmp_path: Path) -> None:
    got = _run(tmp_path, SHOW_DIR.format(first="simroute"))
    assert got == tmp_path / "home" / ".cache" / "simroute" / "numba"


def test_user_numba_cache_dir_is_kept(tmp_path: Path) -> None:
    got = _run(tmp_path, SHOW_DIR.format(first="simroute"), NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert got == tmp_path / "mine"


def test_kernel_cache_files_are_located_there(tmp_path: Path) -> None:
    # where a kernel's compiled code would be written (Numba's per-function cache locator, chosen
    # when the module is imported; nothing is compiled here, that would take seconds)
    code = "from simroute.engine import kernel as K; print(K.run._cache._cache_path)"
    got = _run(tmp_path, code, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert got.is_relative_to(tmp_path / "xdg" / "simroute" / "numba")
