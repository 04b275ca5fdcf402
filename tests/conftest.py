"""Shared fixtures: the real configs composed through Hydra, and small builders for tests."""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The suite runs the interpreted modules, the reference, here and in the processes it starts
# (simroute.compiled; SIMROUTE_TEST_COMPILED=1 runs it compiled, as `make test-slow` can be);
# test_compiled compares the compiled ones with them. Set before simroute loads.
os.environ["SIMROUTE_COMPILED"] = "1" if os.environ.get("SIMROUTE_TEST_COMPILED") == "1" else "0"

from simroute.config import REPO_ROOT, compose
from simroute.economics.prices import PriceTable, load_litellm
from simroute.policy.catalog import ModelCatalog
from simroute.policy.registry import PolicyContext
from simroute.sim.build import build_catalog, build_quality
from simroute.workload.skills import SkillCatalog, catalog_from_config

HANG_LIMIT_S = float(os.environ.get("SIMROUTE_TEST_HANG_S", "900"))
"""Seconds one test may run before the test process is ended as hung (``SIMROUTE_TEST_HANG_S``)."""
HANG_LIMIT_LONG_S = float(os.environ.get("SIMROUTE_TEST_HANG_LONG_S", "5400"))
"""The same for a test of the opt-in long suites (:data:`LONG_MARKS`; ``SIMROUTE_TEST_HANG_LONG_S``):
two quick paper builds or a cluster sweep may rightly run past :data:`HANG_LIMIT_S`."""
LONG_MARKS = ("slow", "benchmark", "cluster", "vllm")


@pytest.fixture(autouse=True)
def _hang_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """End the whole test run, with every thread's traceback on the terminal and exit status 1,
    when a test runs past :data:`HANG_LIMIT_S` (:data:`HANG_LIMIT_LONG_S` in the long suites): a
    hang then fails fast instead of holding CI to its own limit. ``faulthandler`` fires from its
    own thread, so it also stops a test stuck inside compiled (Numba) code, which no Python-level
    timeout interrupts; the traceback goes to the terminal through the copy of stderr pytest keeps
    beside its output capture."""
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        fd = request.config.stash.get(fault_handler_stderr_fd_key, None)
    except ImportError:  # pragma: no cover - another pytest: the captured stderr, still exits
        fd = None
    long = any(request.node.get_closest_marker(m) is not None for m in LONG_MARKS)
    limit = HANG_LIMIT_LONG_S if long else HANG_LIMIT_S
    faulthandler.dump_traceback_later(limit, exit=True, file=sys.stderr if fd is None else fd)
    yield
    faulthandler.cancel_dump_traceback_later()


def compose_cfg(overrides: list[str] | None = None) -> dict[str, Any]:
    """The resolved run config for ``overrides`` (:func:`simroute.config.compose`)."""
    return compose(overrides or [])


@pytest.fixture(scope="session")
def cfg() -> dict[str, Any]:
    """The default run config."""
    return compose_cfg()


@pytest.fixture(scope="session")
def skills(cfg: dict[str, Any]) -> SkillCatalog:
    """The default skill catalogue."""
    return catalog_from_config(cfg["skills"])


@pytest.fixture(scope="session")
def prices(cfg: dict[str, Any]) -> PriceTable:
    """The bundled LiteLLM price table."""
    return load_litellm(cfg["prices"])


@pytest.fixture(scope="session")
def catalog(cfg: dict[str, Any], skills: SkillCatalog, prices: PriceTable) -> ModelCatalog:
    """The default model catalogue."""
    return build_catalog(cfg["models"], prices, build_quality(cfg["models"], skills), skills)


@pytest.fixture(scope="session")
def ctx(skills: SkillCatalog, catalog: ModelCatalog) -> PolicyContext:
    """Policy build context."""
    return PolicyContext(skills.names, catalog)


def run_cli(
    args: list[str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``simroute`` in a subprocess (no progress bar), capturing output."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "simroute.cli", *args, "progress=false"]
        if args[:1] == ["run"]
        else [sys.executable, "-m", "simroute.cli", *args],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The :func:`run_cli` helper as a fixture."""
    return run_cli


def request_row(i: int = 0, **kw: Any) -> dict[str, Any]:
    """One canonical request-table row with harmless defaults, overridden by ``kw``."""
    row: dict[str, Any] = {
        "request_id": i,
        "session_id": i,
        "step": 0,
        "arrival_s": float(i),
        "skill": "draft_reply",
        "urgency": "interactive",
        "prompt_tokens": 1000,
        "output_tokens": 100,
        "deadline_s": 60.0,
        "difficulty": 0.0,
        "missing_repo_context": False,
        "dependency_chain": 0,
        "risky_migration": False,
        "security_sensitive": False,
        "high_consequence_write": False,
        "prefix_hashes": [],
    }
    row.update(kw)
    return row


def make_view(**kw: Any) -> Any:
    """The policy-facing :class:`RequestView` of :func:`make_request`."""
    from simroute.policy.types import RequestView

    return RequestView.of(make_request(**kw))


def make_request(**kw: Any) -> Any:
    """A world :class:`Request` built from :func:`request_row` fields."""
    from simroute.workload.request import Request

    idx = int(kw.pop("idx", 0))
    u = float(kw.pop("u_classify", 0.5))
    content = int(kw.pop("content_id", kw.get("i", kw.get("request_id", 0))))
    intent = int(kw.pop("intent_id", content))
    row = request_row(**kw)
    return Request(
        idx=idx,
        request_id=row["request_id"],
        session_id=row["session_id"],
        arrival_s=row["arrival_s"],
        skill=row["skill"],
        urgency=row["urgency"],
        prompt_tokens=row["prompt_tokens"],
        output_tokens=row["output_tokens"],
        deadline_s=row["deadline_s"],
        difficulty=row["difficulty"],
        missing_repo_context=row["missing_repo_context"],
        dependency_chain=row["dependency_chain"],
        risky_migration=row["risky_migration"],
        security_sensitive=row["security_sensitive"],
        high_consequence_write=row["high_consequence_write"],
        u_classify=u,
        content_id=content,
        intent_id=intent,
    )
