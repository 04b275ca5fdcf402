"""Memory hygiene: freed memory goes back to the system (changes no result)."""

from __future__ import annotations

import subprocess
import sys


def _env_after(code: str, env_extra: dict[str, str]) -> str:
    env = {"PATH": "/usr/bin:/bin", **env_extra}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def _effective(conf: str) -> dict[str, str]:
    """jemalloc's options as it reads them: the last setting of each key wins (Polars puts its own
    defaults in front of what it finds)."""
    return dict(kv.split(":", 1) for kv in conf.split(","))


def test_polars_allocator_returns_freed_pages_unless_the_user_says_otherwise() -> None:
    read = "import os, simroute, polars; print(os.environ['_RJEM_MALLOC_CONF'])"
    ours = _effective(_env_after(read, {}))
    assert ours["dirty_decay_ms"] == "0" and ours["muzzy_decay_ms"] == "0"
    assert _effective(_env_after(read, {"_RJEM_MALLOC_CONF": "dirty_decay_ms:5"}))["dirty_decay_ms"] == "5"


def test_the_run_machinery_does_not_load_matplotlib() -> None:
    """The baseline's worker and runs without figures do not pay for matplotlib (about 30 MiB)."""
    code = "import sys, simroute.cli, simroute.runner.experiment; print('matplotlib' in sys.modules)"
    assert _env_after(code, {}) == "False"
