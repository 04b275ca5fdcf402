"""Scale benchmark: N requests through router-first and its baseline (`simroute run`), timed.

Targets (issue: a million-request agent day in a minute): 1 M requests in <= 60 s wall and <= 2 GB
peak RSS on 2 cores; 10 M in <= 12 min and <= 8 GB. Prints wall time, simulated requests per second
and peak RSS of the run, and whether each target holds; writes ``--json`` if given.
Usage: ``python experiments/scale_bench.py [--requests 1000000] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {1_000_000: (60.0, 2048.0), 10_000_000: (720.0, 8192.0)}  # wall s, peak RSS MiB


def run(n: int) -> dict[str, float]:
    """One ``simroute run`` of ``n`` requests (both arms) in a fresh process."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        proc = subprocess.run(
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
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        timing = json.loads((Path(d) / "timing.json").read_text())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "requests": n,
        "wall_s": wall,
        "simulate_s": timing["simulate_s"],
        "simulated_requests_per_s": timing["simulated_requests_per_s"],
        "peak_rss_mib": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    rows = []
    for n in a.requests:
        r = run(n)
        wall_t, rss_t = TARGETS.get(n, (float("inf"), float("inf")))
        r["target_wall_s"], r["target_rss_mib"] = TARGETS.get(n, (None, None))
        has_target = n in TARGETS
        r["meets_target"] = bool(r["wall_s"] <= wall_t and r["peak_rss_mib"] <= rss_t) if has_target else None
        rows.append(r)
        verdict = ("meets" if r["meets_target"] else "misses") + " the target" if has_target else "no target"
        print(
            f"{n:>10,} requests: wall {r['wall_s']:7.1f} s, {r['simulated_requests_per_s']:8,.0f} simulated "
            f"req/s, peak RSS {r['peak_rss_mib']:7.0f} MiB -> {verdict} (targets: {TARGETS})",
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
