"""Where a large run's time goes: each arm of ``N`` requests simulated alone in this process, the
local engines' kernel timed apart from the rest, and a cProfile of a smaller run's policy arm.

For each arm: seconds to simulate it (inputs built first, not counted), of which the local
engines' compiled kernel (:meth:`Replica._run` and :meth:`Replica.next_wake_s`, timed around each
call), the engine steps it ran and the requests the local engines took (with their mean prompt
and KV blocks: the kernel allocates, hashes, caches and frees KV blocks one at a time, as vLLM
does), the SimPy events scheduled, and the rest (Python: lifecycle, policies, caches, tiers, SimPy)
per simulated request. Timing each kernel call adds well under a microsecond a call.
``--cprofile-requests M`` also profiles the policy arm of ``M`` requests (cProfile; it slows Python
about twofold, not the kernel) and keeps the functions with the most time of their own.

Usage: ``python experiments/scale_profile.py [--requests 1000000] [--cprofile-requests 100000]
[--json OUT.json]`` (``make paper-timing`` writes ``paper/scale_profile.json``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import simpy

from simroute.config import REPO_ROOT, compose
from simroute.engine.replica import Replica
from simroute.runner.experiment import arm_job


@dataclass
class KernelMeter:
    """What the local engines did during one simulation: kernel seconds and calls, engine steps,
    requests added (and their prompt and output tokens summed), and the SimPy environments made."""

    kernel_s: float = 0.0
    kernel_calls: int = 0
    engine_steps: int = 0
    local_requests: int = 0
    local_prompt_tokens: int = 0
    local_output_tokens: int = 0
    envs: list[simpy.Environment] | None = None


@contextmanager
def metered() -> Iterator[KernelMeter]:
    """Time every kernel call of every :class:`Replica` and count what it does, while inside."""
    m = KernelMeter(envs=[])
    run, wake, add, env_init = Replica._run, Replica.next_wake_s, Replica.add, simpy.Environment.__init__

    def timed_run(self: Replica, *a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        out = run(self, *a, **k)
        m.kernel_s += time.perf_counter() - t
        m.kernel_calls += 1
        m.engine_steps += int(out[0])
        return out

    def timed_wake(self: Replica) -> float:
        t = time.perf_counter()
        out = wake(self)
        m.kernel_s += time.perf_counter() - t
        m.kernel_calls += 1
        return out

    def counted_add(self: Replica, prompt_tokens: int, max_tokens: int, **k: Any) -> int:
        m.local_requests += 1
        m.local_prompt_tokens += prompt_tokens
        m.local_output_tokens += max_tokens
        return add(self, prompt_tokens, max_tokens, **k)

    def kept_env(self: simpy.Environment, *a: Any, **k: Any) -> None:
        env_init(self, *a, **k)
        assert m.envs is not None
        m.envs.append(self)

    patches = {"_run": timed_run, "next_wake_s": timed_wake, "add": counted_add}
    for name, f in patches.items():
        setattr(Replica, name, f)
    simpy.Environment.__init__ = kept_env  # type: ignore[method-assign]
    try:
        yield m
    finally:
        Replica._run, Replica.next_wake_s, Replica.add = run, wake, add  # type: ignore[method-assign]
        simpy.Environment.__init__ = env_init  # type: ignore[method-assign]


def _events(envs: list[simpy.Environment]) -> int:
    """SimPy events scheduled in ``envs`` (each environment numbers its events from 0)."""
    return sum(next(env._eid) for env in envs)


def _block_tokens(cfg: dict[str, Any]) -> int:
    """The local pools' KV block size (tokens; they share one in the default tiers)."""
    sizes = {int(p["engine"]["block_size"]) for p in cfg["tiers"]["local"]["pools"]}
    if len(sizes) != 1:
        raise SystemExit(f"the local pools have different KV block sizes {sorted(sizes)}: report tokens only")
    return sizes.pop()


def arm_profile(n: int, arm: str) -> dict[str, Any]:
    """Simulate ``arm`` of the default run with ``n`` requests alone here; where its time went."""
    cfg = compose([f"workload.n_requests={n}", "progress=false"])
    block_tokens = _block_tokens(cfg)
    job = arm_job(cfg, arm)
    with metered() as m:
        t = time.perf_counter()
        job.logs()
        sim_s = time.perf_counter() - t
    rest_s = sim_s - m.kernel_s
    local = max(m.local_requests, 1)
    out = {k: v for k, v in asdict(m).items() if k != "envs"}
    events = _events(m.envs or [])
    out.update(
        requests=n,
        arm=arm,
        simulate_s=sim_s,
        simpy_events=events,
        simpy_events_per_request=events / n,
        rest_s=rest_s,
        rest_us_per_request=1e6 * rest_s / n,
        kernel_share=m.kernel_s / sim_s,
        kernel_us_per_local_request=1e6 * m.kernel_s / local,
        local_prompt_tokens_mean=m.local_prompt_tokens / local,
        block_tokens=block_tokens,
        local_kv_blocks_mean=(m.local_prompt_tokens + m.local_output_tokens) / local / block_tokens,
    )
    return out


def cprofile_top(n: int, top: int = 15) -> list[dict[str, Any]]:
    """The policy arm of ``n`` requests under cProfile: the ``top`` functions by own time."""
    job = arm_job(compose([f"workload.n_requests={n}", "progress=false"]), "policy")
    prof = cProfile.Profile()
    prof.enable()
    job.logs()
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (path, line, name), (_cc, ncalls, tottime, cumtime, _) in st.stats.items():  # type: ignore[attr-defined]
        where = path.split("site-packages/")[-1].removeprefix(f"{REPO_ROOT}/") if path != "~" else "builtin"
        rows.append(
            {"function": f"{where}:{line}({name})", "calls": ncalls, "own_s": tottime, "cum_s": cumtime}
        )
    rows.sort(key=lambda r: -r["own_s"])
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--cprofile-requests", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    arms = [arm_profile(a.requests, arm) for arm in ("policy", "baseline")]
    for r in arms:
        print(
            f"{r['arm']:>8}: {r['requests']:,} requests simulated in {r['simulate_s']:.1f} s; kernel "
            f"{r['kernel_s']:.1f} s ({r['kernel_calls']:,} calls, {r['engine_steps']:,} steps, "
            f"{r['local_requests']:,} local requests of {r['local_prompt_tokens_mean']:,.0f} prompt tokens, "
            f"{r['kernel_us_per_local_request']:.0f} us each); {r['simpy_events']:,} SimPy events; "
            f"the rest {r['rest_s']:.1f} s ({r['rest_us_per_request']:.1f} us a request)",
            flush=True,
        )
    out: dict[str, Any] = {"arms": arms}
    if a.cprofile_requests:
        out["cprofile_requests"] = a.cprofile_requests
        out["cprofile_top"] = cprofile_top(a.cprofile_requests)
        for r in out["cprofile_top"]:
            print(f"{r['own_s']:8.2f} s own {r['cum_s']:8.2f} s cum {r['calls']:>10,}  {r['function']}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
