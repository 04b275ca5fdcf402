"""The simulation's hot modules compiled to C with mypyc, used only while they match their sources.

The per-request Python of a simulation (lifecycle, tiers, policies, request rows) is most of a large
run's time. ``make compiled`` (which ``make run``, ``make test`` and ``make bench`` run first; it
calls :func:`main`) compiles :data:`MODULES` from their own, unchanged sources with mypyc into
``build/mypyc/`` beside the package, with a manifest of the SHA-256 of every source file of the
package (mypyc copies constants of the modules they import into the compiled code, so any change
makes a build stale) and of ``pyproject.toml`` (the type-checking settings). :func:`install` (run
when :mod:`simroute` is imported) loads a compiled module in place of its source only while every
file still hashes as it did when built, on the Python that built it; otherwise all of them run
interpreted, and a process that is not a worker says so once on stderr when a build exists but no
longer matches (a package never built, or whose build failed, runs interpreted without a word).
The interpreted modules are the reference: the same config and seed give byte-identical outputs
either way (tested). ``SIMROUTE_COMPILED=0`` runs interpreted. A machine without a C compiler and
the Python headers runs interpreted (the build says why, records it and is not retried until a
source changes). Each run's ``timing.json`` says which it ran (``compiled``).

Not compiled: the modules with Numba kernels (Numba needs their Python bytecode), the record logs
(their spooled records are pickled to the parent process; compiled classes do not unpickle; the
records themselves are compiled, :mod:`simroute.record_types`) and the model catalog (pickled
to the baseline's process).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

MODULES: tuple[str, ...] = (
    "simroute.sim.lifecycle",
    "simroute.signals",
    "simroute.sim.event_loop",
    "simroute.sim.rows",
    "simroute.sim.session_gate",
    "simroute.sim.luck_blocks",
    "simroute.tiers.base",
    "simroute.tiers.realtime",
    "simroute.tiers.local",
    "simroute.tiers.batch",
    "simroute.tiers.token_latency",
    "simroute.policy.types",
    "simroute.policy.classifiers",
    "simroute.policy.risk",
    "simroute.policy.routers",
    "simroute.policy.running_quantile",
    "simroute.policy.selectors",
    "simroute.policy.offer_pick",
    "simroute.policy.escalation",
    "simroute.policy.verifiers",
    "simroute.policy.response_cache",
    "simroute.workload.request",
    "simroute.record_types",
    "simroute.engine.replica",
    "simroute.economics.prompt_cache",
)
"""The modules compiled (each imports only interpreted modules or others of these)."""

GROUP = "simroute_native"
"""mypyc's name for the shared library of the compiled modules (``GROUP__mypyc``)."""

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""The folder that holds the ``simroute`` package (a checkout's root)."""

BUILD_DIR = PACKAGE_ROOT / "build" / "mypyc"
"""Where the compiled modules and their manifest are built."""

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What a build produced: the Python it was built for (``sys.implementation.cache_tag`` and
    ``sys.version``), each module's source SHA-256, the compiled file of each module and of the
    shared library (paths relative to the build folder), or why the build failed (``error``)."""

    cache_tag: str
    python: str
    sources: Mapping[str, str]
    files: Mapping[str, str]
    error: str = ""

    @staticmethod
    def read(folder: Path) -> Manifest | None:
        """The manifest in ``folder`` (None: none, or not readable as one)."""
        try:
            doc = json.loads((folder / MANIFEST).read_text())
            return Manifest(
                str(doc["cache_tag"]),
                str(doc["python"]),
                dict(doc["sources"]),
                dict(doc["files"]),
                str(doc.get("error", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, folder: Path) -> None:
        """Write it to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "cache_tag": self.cache_tag,
            "python": self.python,
            "sources": dict(self.sources),
            "files": dict(self.files),
            "error": self.error,
        }
        (folder / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def source_path(module: str, root: Path = PACKAGE_ROOT) -> Path:
    """The source file of ``module`` under ``root``."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def source_hashes(root: Path = PACKAGE_ROOT) -> dict[str, str]:
    """SHA-256 of every source file of the package under ``root`` and of its ``pyproject.toml``
    (if there is one), by path relative to ``root``."""
    files = sorted((root / "simroute").rglob("*.py"))
    if (root / "pyproject.toml").is_file():
        files.append(root / "pyproject.toml")
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def compiled_files() -> set[str]:
    """The modules a build compiles, and its shared library."""
    return {*MODULES, f"{GROUP}__mypyc"}


def stale_reason(man: Manifest | None, folder: Path, root: Path = PACKAGE_ROOT) -> str:
    """Why the build in ``folder`` must not be used ("" when it may): none, failed, another
    Python or module list, a file missing from it, or a source added, removed or changed since."""
    if man is None:
        return "not built (make compiled)"
    if man.error:
        return f"the build failed: {man.error}"
    if man.cache_tag != sys.implementation.cache_tag or man.python != sys.version:
        return f"built for another Python ({man.python.split()[0]})"
    if set(man.files) != compiled_files():
        return "built for another module list"
    now = source_hashes(root)
    changed = sorted(f for f in set(now) | set(man.sources) if now.get(f) != man.sources.get(f))
    if changed:
        what = "changed" if changed[0] in now and changed[0] in man.sources else "added or removed"
        return f"{changed[0]} {what} since the build"
    missing = [f for f in man.files.values() if not (folder / f).is_file()]
    return f"{missing[0]} is missing" if missing else ""


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the compiled module files of a build (before the interpreted sources)."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = dict(files)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec of ``fullname``'s compiled file, or None (not compiled: the next finder's)."""
        f = self.files.get(fullname)
        return None if f is None else importlib.util.spec_from_file_location(fullname, f)


_STATE: dict[str, str] = {}


def install(folder: Path = BUILD_DIR) -> bool:
    """Use the build in ``folder`` for :data:`MODULES` if it matches their sources (see the module
    docstring); whether it is used. Call before any of them is imported."""
    if os.environ.get("SIMROUTE_COMPILED", "1") == "0":
        _STATE["reason"] = "SIMROUTE_COMPILED=0"
        return False
    man = Manifest.read(folder)
    reason = stale_reason(man, folder)
    if reason or man is None:
        _STATE["reason"] = reason
        if man is not None and not man.error and not _is_worker():
            print(f"simroute: running interpreted (slower): compiled modules {reason}", file=sys.stderr)
        return False
    sys.meta_path.insert(0, _Finder({name: folder / f for name, f in man.files.items()}))
    _STATE["reason"] = ""
    return True


def _is_worker() -> bool:
    """Whether this process is a multiprocessing child (its parent has reported already)."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def in_use() -> bool:
    """Whether this process runs the compiled modules (every one of them imported compiled)."""
    if _STATE.get("reason", "?"):
        return False
    mods = [sys.modules.get(m) for m in MODULES]
    return all(m is None or not str(getattr(m, "__file__", "")).endswith(".py") for m in mods)


def build(folder: Path = BUILD_DIR, root: Path = PACKAGE_ROOT) -> Manifest:
    """Compile :data:`MODULES` (sources under ``root``) into ``folder`` with mypyc and the C compiler
    (their output in ``folder/mypyc.log``); the manifest written, which names the error if the build
    failed. Built into a new folder of its own (builds at the same time do not mix) that replaces
    ``folder`` only once complete."""
    import tempfile

    hashes = source_hashes(root)  # before compiling: a source edited meanwhile makes it stale
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        files = _compile(tmp, root, tmp / "mypyc.log")
        man = Manifest(sys.implementation.cache_tag, sys.version, hashes, files)
    except (Exception, SystemExit) as e:  # any failure (mypyc exits on one) leaves them interpreted
        man = Manifest(
            sys.implementation.cache_tag, sys.version, hashes, {}, _one_line(e, folder / "mypyc.log")
        )
    man.write(tmp)
    _remove(folder)
    try:
        tmp.rename(folder)
    except OSError:  # another build has just put its folder there: keep that one
        _remove(tmp)
    return man


def _compile(out: Path, root: Path, log: Path) -> dict[str, str]:
    """Run mypyc and build the extensions into ``out`` (C sources in ``out/c``); module (and
    shared library) -> compiled file, relative to ``out``."""
    # run inside root: mypy finds the package and its cache from there
    with (
        log.open("w") as f,
        contextlib.redirect_stdout(f),
        contextlib.redirect_stderr(f),
        contextlib.chdir(root),
    ):
        from mypyc.build import mypycify
        from setuptools import Distribution

        paths = [str(source_path(m, root).relative_to(root)) for m in MODULES]
        exts = mypycify(
            ["--config-file", str(root / "pyproject.toml"), *paths],
            opt_level="3",
            debug_level="0",
            target_dir=str(out / "c"),
            group_name=GROUP,
        )
        dist = Distribution({"name": GROUP, "ext_modules": exts})  # no pyproject.toml read
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib, cmd.build_temp = str(out / "lib"), str(out / "obj")
        cmd.parallel = os.cpu_count() or 1
        cmd.force = True  # never reuse an extension setuptools thinks is up to date
        dist.run_command("build_ext")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    files = {m: Path("lib", *m.split(".")).with_suffix(suffix).as_posix() for m in sorted(compiled_files())}
    missing = [f for f in files.values() if not (out / f).is_file()]
    if missing:
        raise RuntimeError(f"the build made no {missing[0]}")
    return files


def _remove(folder: Path) -> None:
    """Remove ``folder`` and what it holds, if it exists."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _one_line(e: BaseException, log: Path) -> str:
    """A failed build's reason in one line (the full output is in ``log``)."""
    msg = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {msg[:300]} (see {log})"


def main() -> int:
    """``make compiled``: build; 0 when built, 1 when the modules stay interpreted."""
    man = build()
    if man.error:
        say = f"simroute: compiled modules not built, simulations run interpreted: {man.error}"
        print(say, file=sys.stderr)
        return 1
    print(f"simroute: {len(MODULES)} modules compiled into {BUILD_DIR}", file=sys.stderr)
    return 0
