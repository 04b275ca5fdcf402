"""Where a large run's time goes: each arm of ``N`` requests simulated alone in this process, the
local engines' kernel calls timed apart from the rest, and a cProfile of a smaller run's policy arm.

For each arm (:class:`ArmProfile`): seconds to simulate it (the run's inputs are built first and
not counted; its policies, tiers and engines are built inside the timed simulation), of which the
local engines' kernel calls (the engine kernel's ``run`` and ``next_wake``, timed around each
call: the compiled code and Numba's dispatch, about 1 µs a call; the replica's own Python, compiled
with the hot modules, is in the rest), the engine steps they ran and the requests the local engines
took (attempts at the local tier not rejected, read from the arm's records; with their mean prompt
tokens, and prompt plus output in KV blocks: the kernel allocates, hashes, caches and frees KV
blocks one at a time, as vLLM does), the SimPy events scheduled, and the rest (Python: lifecycle,
policies, caches, tiers, SimPy) per simulated request. Timing a call adds well under a
microsecond.
``--cprofile-requests M`` also profiles the policy arm of ``M`` requests (cProfile; it slows Python
about twofold, not the kernel) and keeps the functions with the most time of their own. It runs
the compiled hot modules where built (:mod:`simroute.compiled`; ``compiled`` in the output), and
cProfile does not see inside those (``SIMROUTE_COMPILED=0`` profiles the interpreted ones).

Usage: ``python experiments/scale_profile.py [--requests 1000000] [--cprofile-requests 100000]
[--json OUT.json]`` (``make paper-timing`` writes ``paper/scale_profile.json``).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import pstats
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import simpy

from simroute import compiled
from simroute.config import REPO_ROOT, compose
from simroute.engine import kernel
from simroute.runner.experiment import ArmJob, arm_job
from simroute.sim.run import ArmLogs


@dataclass
class KernelMeter:
    """What the local engines did during one simulation.

    Attributes:
        kernel_s: seconds inside kernel calls (compiled code and Numba's dispatch).
        run_calls: ``kernel.run`` calls (each runs steps).
        wake_calls: wake-up plans: ``kernel.next_wake`` calls (after a request is added; each
            runs no step) and ``kernel.run`` calls that plan the next wake-up in the same call.
        engine_steps: engine steps run.
        envs: the SimPy environments made meanwhile.
    """

    kernel_s: float = 0.0
    run_calls: int = 0
    wake_calls: int = 0
    engine_steps: int = 0
    envs: list[simpy.Environment] = field(default_factory=list)


@contextmanager
def metered() -> Iterator[KernelMeter]:
    """Time every call of the engine kernel's ``run`` and ``next_wake`` (looked up in the kernel
    module at each call, by the replica compiled or not) and keep the SimPy environments made, while
    inside (the kernel functions and SimPy's class are restored on leaving, also on an error)."""
    m = KernelMeter()
    run, wake, env_init = kernel.run, kernel.next_wake, simpy.Environment.__init__

    def timed_run(*a: Any) -> Any:
        t = time.perf_counter()
        out = run(*a)
        m.kernel_s += time.perf_counter() - t
        m.run_calls += 1
        m.wake_calls += bool(a[-1])  # ``want_wake``: it planned the next wake-up too
        m.engine_steps += int(out[0])
        return out

    def timed_wake(*a: Any) -> Any:
        t = time.perf_counter()
        out = wake(*a)
        m.kernel_s += time.perf_counter() - t
        m.wake_calls += 1
        return out

    def kept_env(self: simpy.Environment, *a: Any, **k: Any) -> None:
        env_init(self, *a, **k)
        m.envs.append(self)

    try:
        kernel.run, kernel.next_wake = timed_run, timed_wake
        simpy.Environment.__init__ = kept_env  # type: ignore[method-assign]
        yield m
    finally:
        kernel.run, kernel.next_wake = run, wake
        simpy.Environment.__init__ = env_init  # type: ignore[method-assign]


@dataclass(frozen=True)
class LocalLoad:
    """The requests the local engines took (attempts at the local tier not rejected) and their
    prompt and output tokens, summed."""

    requests: int
    prompt_tokens: int
    output_tokens: int


def local_load(job: ArmJob, logs: ArmLogs) -> LocalLoad:
    """What the local engines took in a simulated arm, read from its attempt records."""
    att = logs.records.attempts.frame()
    idx = att.filter((att["tier"] == "local") & (att["status"] != "rejected"))["idx"].to_numpy()
    df = job.table.df
    return LocalLoad(
        len(idx),
        int(df["prompt_tokens"].to_numpy()[idx].sum()),
        int(df["output_tokens"].to_numpy()[idx].sum()),
    )


def events(envs: list[simpy.Environment]) -> int:
    """SimPy events scheduled so far in ``envs`` (read from a copy of each environment's event
    counter, which numbers its events from 0; the counter itself is left as it is)."""
    return sum(next(copy.copy(env._eid)) for env in envs)


@dataclass(frozen=True)
class ArmProfile:
    """Where one arm's simulation time went (see the module docstring).

    Attributes:
        requests, arm: the run's size and the arm (``policy`` or ``baseline``).
        simulate_s: seconds to simulate the arm; ``kernel_s`` of them in kernel calls, ``rest_s``
            in the rest.
        kernel_share: ``kernel_s / simulate_s``.
        run_calls, wake_calls, engine_steps: see :class:`KernelMeter`.
        local_requests: requests the local replicas took.
        local_prompt_tokens_mean: their mean prompt (tokens).
        block_tokens: the local pools' KV block size (tokens).
        local_kv_blocks_mean: their mean prompt plus output, in KV blocks.
        kernel_us_per_local_request: kernel µs per local request.
        simpy_events, simpy_events_per_request: SimPy events scheduled, in all and per request.
        rest_us_per_request: the rest, µs per simulated request.
    """

    requests: int
    arm: str
    simulate_s: float
    kernel_s: float
    rest_s: float
    kernel_share: float
    run_calls: int
    wake_calls: int
    engine_steps: int
    local_requests: int
    local_prompt_tokens_mean: float
    block_tokens: int
    local_kv_blocks_mean: float
    kernel_us_per_local_request: float
    simpy_events: int
    simpy_events_per_request: float
    rest_us_per_request: float


def _block_tokens(cfg: dict[str, Any]) -> int:
    """The local pools' KV block size (tokens; they share one in the default tiers)."""
    sizes = {int(p["engine"]["block_size"]) for p in cfg["tiers"]["local"]["pools"]}
    if len(sizes) != 1:
        raise SystemExit(f"the local pools have different KV block sizes {sorted(sizes)}: report tokens only")
    return sizes.pop()


def arm_profile(n: int, arm: str) -> ArmProfile:
    """Simulate ``arm`` of the default run with ``n`` requests alone here; where its time went."""
    cfg = compose([f"workload.n_requests={n}", "progress=false"])
    bt = _block_tokens(cfg)
    job = arm_job(cfg, arm)
    with metered() as m:
        t = time.perf_counter()
        logs = job.logs()
        sim_s = time.perf_counter() - t
    load = local_load(job, logs)
    local = max(load.requests, 1)
    ev = events(m.envs)
    return ArmProfile(
        requests=n,
        arm=arm,
        simulate_s=sim_s,
        kernel_s=m.kernel_s,
        rest_s=sim_s - m.kernel_s,
        kernel_share=m.kernel_s / sim_s,
        run_calls=m.run_calls,
        wake_calls=m.wake_calls,
        engine_steps=m.engine_steps,
        local_requests=load.requests,
        local_prompt_tokens_mean=load.prompt_tokens / local,
        block_tokens=bt,
        local_kv_blocks_mean=(load.prompt_tokens + load.output_tokens) / local / bt,
        kernel_us_per_local_request=1e6 * m.kernel_s / local,
        simpy_events=ev,
        simpy_events_per_request=ev / n,
        rest_us_per_request=1e6 * (sim_s - m.kernel_s) / n,
    )


@dataclass(frozen=True)
class ProfileRow:
    """One function of a cProfile: where it is, its calls, and its own and cumulative seconds."""

    function: str
    calls: int
    own_s: float
    cum_s: float


def cprofile_top(n: int, top: int = 15) -> list[ProfileRow]:
    """The policy arm of ``n`` requests under cProfile: the ``top`` functions by own time."""
    job = arm_job(compose([f"workload.n_requests={n}", "progress=false"]), "policy")
    prof = cProfile.Profile()
    prof.enable()
    job.logs()
    prof.disable()
    rows = []
    for (path, line, name), (_cc, ncalls, own, cum, _) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        where = path.split("site-packages/")[-1].removeprefix(f"{REPO_ROOT}/") if path != "~" else "builtin"
        rows.append(ProfileRow(f"{where}:{line}({name})", ncalls, own, cum))
    rows.sort(key=lambda r: -r.own_s)
    return rows[:top]


def _say(r: ArmProfile) -> str:
    """One arm's profile as a line of text."""
    return (
        f"{r.arm:>8}: {r.requests:,} requests simulated in {r.simulate_s:.1f} s; kernel calls "
        f"{r.kernel_s:.1f} s ({r.run_calls:,} runs, {r.wake_calls:,} wake plans, {r.engine_steps:,} steps, "
        f"{r.local_requests:,} local requests of {r.local_prompt_tokens_mean:,.0f} prompt tokens, "
        f"{r.kernel_us_per_local_request:.0f} us each); {r.simpy_events:,} SimPy events; "
        f"the rest {r.rest_s:.1f} s ({r.rest_us_per_request:.1f} us a request)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--cprofile-requests", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    arms = [arm_profile(a.requests, arm) for arm in ("policy", "baseline")]
    for r in arms:
        print(_say(r), flush=True)
    out: dict[str, Any] = {"compiled": compiled.in_use(), "arms": [asdict(r) for r in arms]}
    if a.cprofile_requests:
        top = cprofile_top(a.cprofile_requests)
        out["cprofile_requests"] = a.cprofile_requests
        out["cprofile_top"] = [asdict(r) for r in top]
        for p in top:
            print(f"{p.own_s:8.2f} s own {p.cum_s:8.2f} s cum {p.calls:>10,}  {p.function}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
