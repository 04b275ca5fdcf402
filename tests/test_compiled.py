"""The compiled hot modules (:mod:`simroute.compiled`): used only while they match their sources,
and they give byte-identical outputs to the interpreted modules, the reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from simroute import compiled
from simroute.compiled import BUILD_DIR, MODULES, Manifest, compiled_files, source_hashes, stale_reason
from simroute.config import REPO_ROOT

BUILT = stale_reason(Manifest.read(BUILD_DIR), BUILD_DIR)
"""Why the checkout's build is not usable ("" when it is: ``make compiled``)."""


def _manifest() -> Manifest:
    """A manifest of a build of the current sources on this Python."""
    files = {m: f"lib/{m}.so" for m in compiled_files()}
    return Manifest(sys.implementation.cache_tag, sys.version, source_hashes(), files)


def test_a_build_is_used_only_while_it_matches_every_source_and_the_python(tmp_path: Path) -> None:
    """Any source file of the package counts, not only the compiled ones: mypyc copies the
    constants of the modules they import (e.g. the outcome names) into the compiled code."""
    fresh = _manifest()
    for f in fresh.files.values():
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    assert stale_reason(fresh, tmp_path) == ""
    assert "simroute/outcomes.py" in fresh.sources and "pyproject.toml" in fresh.sources
    edited = replace(fresh, sources={**fresh.sources, "simroute/outcomes.py": "0" * 64})
    assert stale_reason(edited, tmp_path) == "simroute/outcomes.py changed since the build"
    added = replace(fresh, sources={k: v for k, v in fresh.sources.items() if k != "simroute/rng.py"})
    assert stale_reason(added, tmp_path) == "simroute/rng.py added or removed since the build"
    other = replace(fresh, python="3.10.1 (main)")
    assert stale_reason(other, tmp_path) == "built for another Python (3.10.1)"
    assert stale_reason(replace(fresh, error="no cc"), tmp_path) == "the build failed: no cc"
    fewer = replace(fresh, files={m: f for m, f in fresh.files.items() if m != MODULES[-1]})
    assert stale_reason(fewer, tmp_path) == "built for another module list"
    (tmp_path / fresh.files[MODULES[0]]).unlink()
    assert stale_reason(fresh, tmp_path) == f"{fresh.files[MODULES[0]]} is missing"
    assert stale_reason(None, tmp_path).startswith("not built")


def test_manifest_round_trip_and_unreadable_is_none(tmp_path: Path) -> None:
    m = replace(_manifest(), files={MODULES[0]: "lib/a.so"})
    m.write(tmp_path)
    assert Manifest.read(tmp_path) == m
    (tmp_path / "manifest.json").write_text("{not json")
    assert Manifest.read(tmp_path) is None


@pytest.mark.skipif(os.environ.get("SIMROUTE_TEST_COMPILED") == "1", reason="suite asked to run compiled")
def test_the_suite_runs_interpreted() -> None:
    """conftest asks for the reference modules: none of them is a compiled file here."""
    import simroute.sim.lifecycle as lc

    assert str(lc.__file__).endswith(".py") and not compiled.in_use()


def _run(out: Path, mode: str, args: list[str]) -> dict[str, object]:
    """``simroute run`` with the compiled modules on (``"1"``) or off (``"0"``); its timing.json."""
    env = {**os.environ, "SIMROUTE_COMPILED": mode, "HYDRA_FULL_ERROR": "0"}
    cmd = [sys.executable, "-m", "simroute.cli", "run", *args, "progress=false", f"hydra.run.dir={out}"]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "running interpreted" not in proc.stderr
    timing: dict[str, object] = json.loads((out / "timing.json").read_text())
    return timing


@pytest.mark.skipif(BUILT != "", reason=f"compiled modules not usable here: {BUILT}")
@pytest.mark.parametrize(
    "args",
    [
        ["workload.n_requests=4000", "figures=false"],
        ["experiment=claude_code", "workload.n_requests=1500", "figures=false"],
        ["workload=azure_conv", "workload.n_requests=3000", "figures=false", "policy=win_rate"],
        ["workload.n_requests=3000", "figures=false", "policy=thompson"],
        ["workload.n_requests=3000", "figures=false", "policy=cascade"],
    ],
    ids=["agent_fleet", "claude_code", "azure_conv_win_rate", "thompson", "cascade"],
)
def test_compiled_and_interpreted_runs_write_the_same_bytes(tmp_path: Path, args: list[str]) -> None:
    fast = _run(tmp_path / "c", "1", args)
    ref = _run(tmp_path / "i", "0", args)
    assert fast["compiled"] is True and ref["compiled"] is False
    written = sorted(p.name for p in (tmp_path / "i").iterdir() if p.suffix in (".parquet", ".json"))
    assert "requests.parquet" in written and "summary.json" in written
    for name in written:
        if name != "timing.json":
            assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "i" / name).read_bytes(), name


def _written_out_initialisers() -> list[type]:
    """The dataclasses of the compiled modules whose ``__init__`` is written out by hand and takes
    every field: the frozen ones and the (keyword-only) records."""
    import dataclasses
    import importlib
    import inspect

    out = []
    for name in MODULES:
        for cls in vars(importlib.import_module(name)).values():
            if inspect.isclass(cls) and cls.__module__ == name and dataclasses.is_dataclass(cls):
                params = cls.__dataclass_params__  # type: ignore[attr-defined]
                if (params.frozen or name == "simroute.record_types") and not params.init:
                    out.append(cls)
    return out


@pytest.mark.skipif(compiled.in_use(), reason="compiled classes check their arguments' types")
def test_written_out_initialisers_take_and_set_every_field_in_order() -> None:
    """A frozen dataclass or record with an explicit ``__init__`` (it runs natively when compiled)
    takes its fields in field order with the fields' defaults (a record by keyword only), and sets
    each field to its own argument; a record's written-out ``values`` gives every field in field
    order."""
    import dataclasses
    import inspect

    classes = _written_out_initialisers()
    assert {c.__name__ for c in classes} >= {
        *("Request", "RequestView", "AttemptResult", "Route", "Decision", "RequestRecord", "AttemptRecord")
    }
    for cls in classes:
        fs = dataclasses.fields(cls)
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert [p.name for p in params] == [f.name for f in fs], cls
        for p, f in zip(params, fs, strict=True):
            want = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
            assert p.default == want and f.default_factory is dataclasses.MISSING, (cls, f.name)
            assert (p.kind == inspect.Parameter.KEYWORD_ONLY) == f.kw_only, (cls, f.name)
        values = {f.name: object() for f in fs}
        obj = cls(**values)
        assert all(getattr(obj, k) is v for k, v in values.items()), cls
        if hasattr(cls, "values"):  # a record's written-out values, as its log stores them
            assert all(a is b for a, b in zip(obj.values(), values.values(), strict=True)), cls
        if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(obj, fs[0].name, 1)
