"""Scale benchmark: N requests through router-first and its baseline (`simroute run`), timed.

Targets (issue: a million-request agent day in a minute): 1 M requests in <= 60 s wall and <= 2 GB
peak RSS on 2 cores; 10 M in <= 12 min and <= 8 GB. Prints wall time, simulated requests per second
and peak memory of the run, and whether each target holds; writes ``--json`` if given. The run
uses the compiled hot modules where they are built (:mod:`simroute.compiled`; ``compiled`` in the
output says whether it did), or the interpreted ones with ``--interpreted``.

Memory is measured two ways: ``peak_rss_mib``, the peak resident size of the largest single process
(the run and its baseline process each count alone; ``getrusage``), and ``peak_tree_rss_mib``, the
peak of the resident sizes of all the run's processes added up (sampled every 50 ms from
``/proc``): what the machine must hold. The memory target is judged on the second.
Usage: ``python experiments/scale_bench.py [--requests 1000000] [--json OUT.json] [--interpreted]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGETS = {1_000_000: (60.0, 2048.0), 10_000_000: (720.0, 8192.0)}  # wall s, peak RSS MiB


def _rss_kib(pid: str) -> int:
    """Resident size of process ``pid`` (KiB; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[str]:
    """``root`` and all its descendants (process ids)."""
    children: dict[str, list[str]] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(pid)
    out, todo = [], [str(root)]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class TreeSampler:
    """Samples the summed resident size of a process tree every ``period_s`` seconds (KiB); the
    tree's members are looked up every ``rescan`` samples (a scan of ``/proc`` costs CPU)."""

    def __init__(self, root: int, period_s: float = 0.05, rescan: int = 10) -> None:
        self.root, self.period_s, self.rescan, self.peak_kib = root, period_s, rescan, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        pids: list[str] = []
        i = 0
        while not self._stop.is_set():
            if i % self.rescan == 0:
                pids = _tree(self.root)
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in pids))
            i += 1
            self._stop.wait(self.period_s)

    def stop(self) -> int:
        """Stop sampling; the peak seen (KiB)."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib


def run(n: int, compiled: bool = True) -> dict[str, Any]:
    """One ``simroute run`` of ``n`` requests (both arms) in a fresh process: with the compiled hot
    modules where built (``compiled``; see :mod:`simroute.compiled`), else interpreted."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simroute.cli",
                "run",
                f"workload.n_requests={n}",
                "figures=false",
                "progress=false",
                f"hydra.run.dir={d}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "SIMROUTE_COMPILED": "1" if compiled else "0"},
        )
        sampler = TreeSampler(proc.pid)
        try:
            _, err = proc.communicate()
        finally:
            if proc.poll() is None:  # interrupted: end the run (its clean-up stops its baseline process)
                proc.terminate()
                proc.wait()
        wall = time.perf_counter() - t0
        tree_peak = sampler.stop() / 1024.0
        if proc.returncode:
            raise SystemExit(err[-2000:])
        timing = json.loads((Path(d) / "timing.json").read_text())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "requests": n,
        "wall_s": wall,
        "simulate_s": timing["simulate_s"],
        "simulated_requests_per_s": timing["simulated_requests_per_s"],
        "peak_rss_mib": peak,
        "peak_tree_rss_mib": tree_peak,
        "compiled": bool(timing.get("compiled", False)),
    }


def main() -> None:
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))  # clean-up runs
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--interpreted", action="store_true", help="run without the compiled modules")
    a = ap.parse_args()
    rows = []
    for n in a.requests:
        r: dict[str, Any] = dict(run(n, compiled=not a.interpreted))
        wall_t, rss_t = TARGETS.get(n, (float("inf"), float("inf")))
        r["target_wall_s"], r["target_rss_mib"] = TARGETS.get(n, (None, None))
        has_target = n in TARGETS
        holds = r["wall_s"] <= wall_t and r["peak_tree_rss_mib"] <= rss_t
        r["meets_target"] = bool(holds) if has_target else None
        rows.append(r)
        verdict = ("meets" if r["meets_target"] else "misses") + " the target" if has_target else "no target"
        print(
            f"{n:>10,} requests: wall {r['wall_s']:7.1f} s, {r['simulated_requests_per_s']:8,.0f} simulated "
            f"req/s, peak RSS {r['peak_tree_rss_mib']:7.0f} MiB all processes "
            f"({r['peak_rss_mib']:7.0f} MiB the largest), {'compiled' if r['compiled'] else 'interpreted'} "
            f"-> {verdict} (targets: {TARGETS})",
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
