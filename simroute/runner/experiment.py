"""One ``simroute run``: load everything, simulate the policy and its baseline, write the results.

Outputs in ``out_dir``: ``requests.parquet`` (one row per request), ``baseline_requests.parquet``,
``sessions.parquet`` / ``baseline_sessions.parquet`` (one row per session), ``summary.json``
(deterministic), ``timing.json`` (wall time, simulated requests/s, peak memory, whether the hot
modules ran compiled — *not* deterministic) and the figures ``tier_share.png``,
``latency_cdf.png``, ``cost_vs_success.png``, ``session_makespan_cdf.png``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simroute import __version__, compiled
from simroute.analysis.sessions import SESSION_COLUMNS, session_summary, session_table
from simroute.analysis.summary import SUMMARY_ATTEMPT_COLUMNS, headline, paired, summarize
from simroute.economics.quality import QualityModel
from simroute.memory import LARGE_RUN_REQUESTS, fix_mmap_threshold, release_memory
from simroute.policy.catalog import ModelCatalog
from simroute.policy.registry import PolicyContext
from simroute.records import ArmRecords, SimResult, SpooledRecords
from simroute.runner.input_files import InputFiles, write_inputs
from simroute.sim.build import RunInputs, build_policies, prefix_runs, setup
from simroute.sim.lifecycle import Policies
from simroute.sim.run import SIMULATION_COLUMNS, ArmLogs, attempt_record_columns, result_tables, simulate_logs
from simroute.sim.sessions import ReplayConfig
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.schema import RequestTable


def policy_snapshot(
    pcfg: Mapping[str, Any], skills: tuple[str, ...], catalog: Any, router: Any
) -> dict[str, Any]:
    """What ``simroute export`` needs from a run: the policy config, the label vocabulary, the model
    offers with their rates and expected quality, and the router's learned state."""
    from simroute.outcomes import TIERS

    policy: dict[str, Any] = {
        k: dict(pcfg[k]) for k in ("classifier", "risk", "router", "selector", "escalation")
    }
    policy["verifier"] = dict(pcfg["verifier"])
    policy["response_cache"] = dict(pcfg.get("response_cache") or {"enabled": False})
    policy["sticky_sessions"] = bool(pcfg.get("sticky_sessions", False))
    policy["provision_local"] = bool(pcfg.get("provision_local", True))
    models = [
        {
            "model": o.model,
            "tier": o.tier,
            "mode": o.mode,
            "rates": [float(x) for x in o.rates],
            "standard_rates": [
                float(x) for x in (o.standard_rates if o.standard_rates is not None else o.rates)
            ],
            "expected_quality": {k: float(v) for k, v in o.expected_quality.items()},
            "capacity": int(o.capacity),
        }
        for t in TIERS
        for o in catalog.by_tier[t]
    ]
    state = router.export_state() if hasattr(router, "export_state") else None
    return {
        "skills": list(skills),
        "policy": policy,
        "models": models,
        "router_state": state,
        "label": str(pcfg.get("label", "")),
    }


def knowledge(policies: Policies, res: SimResult) -> dict[str, Any]:
    """What an architecture's decisions rest on: its verifier (name, judge model, error rates, USD
    spent on checks) and the components that read the truth (empty unless an oracle is used)."""
    v = policies.verifier
    return {
        "verifier": {
            "name": v.name,
            "model": v.model,
            "false_accept": float(v.false_accept),
            "false_reject": float(v.false_reject),
            "usd": float(res.requests["cost_verifier_usd"].sum()),
        },
        "uses_ground_truth": policies.uses_ground_truth(),
    }


def _policy_name(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("label") or cfg["router"]["name"])


def _policy_figures(res: SimResult, out_dir: Path, title: str) -> list[Path]:
    """The policy arm's tier-share and latency-CDF figures (drawn while its tables are held);
    their paths. Matplotlib is imported here, only by runs that draw (about 30 MiB a process
    otherwise)."""
    from simroute.analysis import plots

    paths = [out_dir / "tier_share.png", out_dir / "latency_cdf.png"]
    plots.tier_share(res, paths[0], title)
    plots.latency_cdf(res, paths[1], title)
    return paths


def _comparison_figures(
    summary: Mapping[str, Any],
    outs: Mapping[str, _ArmOutput],
    sessions: Mapping[str, _ArmSessions],
    out_dir: Path,
    title: str,
) -> None:
    """The cost-vs-success and session-makespan-CDF figures of the arms (``policy``, and
    ``baseline`` if the run has one)."""
    from simroute.analysis import plots

    names = {"policy": str(summary["policy"]), "baseline": str(summary.get("baseline_policy"))}
    arms = [(names[arm], arm) for arm in outs]  # a list: two arms may have the same name
    points = [{"name": name, **outs[arm].head} for name, arm in arms]
    plots.cost_vs_success(points, out_dir / "cost_vs_success.png", title)
    plots.session_makespan_cdf(
        {name: sessions[arm].makespans for name, arm in arms}, out_dir / "session_makespan_cdf.png", title
    )


@dataclass(frozen=True)
class ArmJob:
    """Everything one arm's simulation needs (picklable: it may run in another process)."""

    table: RequestTable
    pcfg: Mapping[str, Any]
    ctx: PolicyContext
    tiers_cfg: Mapping[str, Any]
    catalog: ModelCatalog
    quality: QualityModel
    seed: int
    label: str
    progress: bool
    replay: ReplayConfig
    prefixes: PrefixRuns | None = None

    def run(
        self, policies: Policies | None = None, attempt_columns: Collection[str] | None = None
    ) -> SimResult:
        """Simulate the arm (with ``policies``, or ones built from its config here); its attempts
        table holds only ``attempt_columns``, if given (see :func:`~simroute.sim.run.result_tables`)."""
        taken = None if attempt_columns is None else attempt_record_columns(attempt_columns)
        res = result_tables(
            self.table,
            self.records(policies, taken),
            self.catalog,
            self.quality,
            attempt_columns=attempt_columns,
        )
        if len(self.table) >= LARGE_RUN_REQUESTS:
            release_memory()  # the simulation's engines, caches and logs are reference cycles now
        return res

    def records(
        self, policies: Policies | None = None, attempt_columns: Collection[str] | None = None
    ) -> ArmRecords:
        """Simulate the arm (with ``policies``, or ones built from its config here) and return its
        records, not yet joined with the request table or priced (see
        :func:`~simroute.sim.run.result_tables`); of the attempts only the fields
        ``attempt_columns`` names, if given."""
        return self.logs(policies).take(attempt_columns)

    def logs(self, policies: Policies | None = None) -> ArmLogs:
        """Simulate the arm (with ``policies``, or ones built from its config here) and return its
        logs (:meth:`ArmLogs.take` makes its records; :meth:`ArmLogs.spool` writes them for
        another process)."""
        return simulate_logs(
            self.table,
            policies if policies is not None else build_policies(self.pcfg, self.ctx),
            self.tiers_cfg,
            self.catalog,
            self.quality,
            self.seed,
            label=self.label,
            progress=self.progress,
            replay=self.replay,
            prefixes=self.prefixes,
        )


def _job(
    cfg: Mapping[str, Any],
    inp: RunInputs,
    ctx: PolicyContext,
    arm: str,
    progress: bool,
    replay: ReplayConfig,
    prefixes: PrefixRuns | None = None,
) -> ArmJob:
    """The simulation job of ``arm`` (``policy`` or ``baseline``) of the run ``cfg``."""
    pcfg = cfg[arm]
    label = f"{_policy_name(pcfg)} ({arm})"
    return ArmJob(
        inp.table,
        pcfg,
        ctx,
        cfg["tiers"],
        inp.catalog,
        inp.quality,
        int(cfg["seed"]),
        label,
        progress,
        replay,
        prefixes,
    )


def arm_job(cfg: Mapping[str, Any], arm: str) -> ArmJob:
    """The simulation job of ``arm`` (``policy`` or ``baseline``) of the run ``cfg``, its inputs
    built here as a run builds them, without progress reporting: to time or profile one arm alone
    in this process (``experiments/scale_profile.py``)."""
    inp, prefixes = _inputs(cfg)
    ctx = PolicyContext(inp.skills.names, inp.catalog, int(cfg["seed"]))
    replay = ReplayConfig.from_config(cfg["workload"])
    return _job(cfg, inp, ctx, arm, progress=False, replay=replay, prefixes=prefixes)


def _inputs(cfg: Mapping[str, Any]) -> tuple[RunInputs, PrefixRuns]:
    """The run's inputs, with the prefix ids taken out of the table as runs of consecutive ids
    (about a twelfth of the flat ids' memory): the simulation reads those, and the per-row lists
    are dropped."""
    inp = setup(cfg, int(cfg["seed"]))
    prefixes = prefix_runs(inp.table)
    inp = replace(inp, table=inp.table.without_prefix_hashes())
    if len(inp.table) >= LARGE_RUN_REQUESTS:
        release_memory()  # the workload's temporaries and per-row lists are garbage now
    return inp, prefixes


def _baseline_from_files(
    cfg: Mapping[str, Any], files: InputFiles, progress: bool, spool: Path
) -> SpooledRecords:
    """In a worker process: read the run's inputs that the parent built (``files``) and simulate
    its baseline arm; its records go back through files in ``spool``, written a column at a time
    (:class:`~simroute.records.SpooledRecords`), and the parent joins them with its own request
    table (the table's columns are not sent back). Only the table's columns that a simulation
    reads are read; the input files are removed once read."""
    inp, prefixes = files.read(SIMULATION_COLUMNS)
    shutil.rmtree(files.folder, ignore_errors=True)
    ctx = PolicyContext(inp.skills.names, inp.catalog, int(cfg["seed"]))
    replay = ReplayConfig.from_config(cfg["workload"])
    return _job(cfg, inp, ctx, "baseline", progress, replay, prefixes).logs().spool(spool)


def _baseline_elsewhere(cfg: Mapping[str, Any]) -> bool:
    """Whether to simulate the baseline in a second process while this one runs the policy: with
    ``parallel_arms``, a baseline, two or more cores, and unless this process is itself a worker (a
    sweep job, whose sweep already uses the cores). The arms share nothing at run time, so the
    results are the same either way (tested)."""
    in_worker = multiprocessing.parent_process() is not None
    cores = os.cpu_count() or 1
    return bool(cfg.get("baseline")) and bool(cfg.get("parallel_arms", True)) and not in_worker and cores >= 2


def _baseline_main(cfg: Mapping[str, Any], progress: bool, spool: Path, conn: Connection) -> None:
    """A baseline process's body: wait for the parent's ``("inputs", InputFiles)``, simulate, send
    ``("ok", spooled records)`` or ``("error", exception)`` to the parent, and end (its memory goes
    back to the system at once). It ends quietly if the parent closes the pipe first."""
    fix_mmap_threshold()
    try:
        try:
            _, files = conn.recv()
        except EOFError:  # the parent failed building the inputs
            return
        conn.send(("ok", _baseline_from_files(cfg, files, progress, spool)))
    except BaseException as e:  # raised again in the parent
        conn.send(("error", e))
    finally:
        conn.close()


_SPOOL = ".baseline_result"
"""The folder in ``out_dir`` through which the baseline process hands back its records."""
_INPUTS = ".baseline_inputs"
"""The folder in ``out_dir`` through which this process hands the baseline process its inputs."""


def _stop(process: BaseProcess) -> None:
    """End ``process`` if it still runs (the run failed or was interrupted) and reap it."""
    if process.is_alive():
        process.terminate()
    process.join()


@dataclass(frozen=True)
class _BaselineWorker:
    """The baseline arm simulated in a second process (:func:`_baseline_main`) from the inputs this
    one built (:meth:`send_inputs`); it ends as soon as its records are written (it does not idle,
    holding memory, until the policy arm is done)."""

    process: BaseProcess
    conn: Connection
    out_dir: Path

    @classmethod
    def start(
        cls, cfg: Mapping[str, Any], out_dir: Path, progress: bool, stack: ExitStack
    ) -> _BaselineWorker:
        """Start it (it starts up while this process builds the inputs); ``stack`` ends it and
        removes its handoff folders in ``out_dir`` however the run ends."""
        ctx = multiprocessing.get_context("spawn")
        conn, child_end = ctx.Pipe()
        process = ctx.Process(target=_baseline_main, args=(cfg, progress, out_dir / _SPOOL, child_end))
        process.start()
        child_end.close()
        for folder in (_SPOOL, _INPUTS):
            stack.callback(shutil.rmtree, out_dir / folder, ignore_errors=True)
        stack.callback(_stop, process)
        stack.callback(conn.close)  # runs first: a worker still waiting for its inputs ends
        return cls(process, conn, out_dir)

    def send_inputs(self, inp: RunInputs, prefixes: PrefixRuns) -> None:
        """Write the run's inputs for the worker (:func:`~simroute.runner.input_files.write_inputs`)
        and tell it where they are."""
        try:
            files = write_inputs(inp, prefixes, self.out_dir / _INPUTS, SIMULATION_COLUMNS)  # all it reads
            self.conn.send(("inputs", files))
        except OSError:  # it ended before its inputs were ready
            self.process.join()
            raise RuntimeError(
                "the baseline arm's process ended before its inputs were sent "
                f"(exit code {self.process.exitcode})"
            ) from None

    def result(self, inp: RunInputs) -> SimResult:
        """Its result, joined with the request table of ``inp`` and priced here (the worker has
        ended before its records are read)."""
        try:
            kind, value = self.conn.recv()
        except EOFError:
            self.process.join()
            raise RuntimeError(
                f"the baseline arm's process ended without a result (exit code {self.process.exitcode})"
            ) from None
        self.process.join()
        if kind == "error":
            raise value
        return result_tables(  # the records passed on as a temporary (see result_tables)
            inp.table,
            value.read(attempt_record_columns(SUMMARY_ATTEMPT_COLUMNS)),
            inp.catalog,
            inp.quality,
            attempt_columns=SUMMARY_ATTEMPT_COLUMNS,  # the run writes no attempts table
        )


@dataclass(frozen=True)
class _ArmOutput:
    """What the summary and the figures need from an arm once its request table is written and
    freed (so the run never holds two arms' result tables at once).

    Attributes:
        head: its :func:`~simroute.analysis.summary.headline`.
        correct: its ``correct`` column (row order): the paired comparison reads it.
        knowledge: its :func:`knowledge` block.
        span_s: its last simulated issue time (s).
        requests: its ``requests.parquet``.
    """

    head: dict[str, Any]
    correct: np.ndarray
    knowledge: dict[str, Any]
    span_s: float
    requests: Path


@dataclass(frozen=True)
class _ArmSessions:
    """An arm's :func:`~simroute.analysis.sessions.session_summary` block and its sessions'
    ``makespan_s`` (one column, a row per session: the figure's)."""

    block: dict[str, Any]
    makespans: pl.DataFrame


@contextmanager
def _writing(df: pl.DataFrame, path: Path) -> Iterator[None]:
    """Write ``df`` to ``path`` (Parquet) in a thread while the block runs: Polars writes without
    holding the GIL, so the block's work (an arm's summary) and the write overlap. The file is
    whole when the block ends; a failed write raises then (a failing block's own error wins)."""
    with ThreadPoolExecutor(max_workers=1) as pool:  # its exit waits for the write, however the block ends
        job = pool.submit(df.write_parquet, path)
        yield
        job.result()


def _arm_output(res: SimResult, policies: Policies, path: Path) -> _ArmOutput:
    """What the summary needs from an arm whose request table goes to ``path`` (its sessions come
    after the table is freed: :func:`_write_sessions`)."""
    return _ArmOutput(
        headline(res),
        res.requests["correct"].to_numpy(),
        knowledge(policies, res),
        float(res.requests["arrival_s"].to_numpy().max()),
        path,
    )


def _write_sessions(out: _ArmOutput, out_dir: Path, prefix: str, written: list[Path]) -> _ArmSessions:
    """Write an arm's session table (``{prefix}sessions.parquet``, added to ``written``), grouped
    from the columns it needs read back from the arm's written request table: the arm's whole
    result table is freed by then (at 10 M requests the grouping's temporaries on top of it were
    the end phase's peak)."""
    sessions = session_table(pl.read_parquet(out.requests, columns=list(SESSION_COLUMNS)))
    written.append(out_dir / f"{prefix}sessions.parquet")
    sessions.write_parquet(written[-1])
    return _ArmSessions(session_summary(sessions), sessions.select("makespan_s"))


def _meta(cfg: Mapping[str, Any], inp: RunInputs, replay: ReplayConfig, span_s: float) -> dict[str, Any]:
    """The run-description block at the top of ``summary.json``."""
    table = inp.table
    return {
        "simroute_version": __version__,
        "seed": int(cfg["seed"]),
        "policy": _policy_name(cfg["policy"]),
        "baseline_policy": _policy_name(cfg["baseline"]) if cfg.get("baseline") else None,
        "workload": {
            "source": table.source,
            "n_requests": len(table),
            "replay": "closed_loop" if replay.closed_loop else "open_loop",
            "session_retry": replay.session_retry,
            "span_s": span_s,
            "block_tokens": table.block_tokens,
            "label_counts": dict(table.label_counts),
            "skill_share": {s: float(np.mean((table.df["skill"] == s).to_numpy())) for s in inp.skills.names},
        },
        "prices": inp.prices.source.split("/")[-1],
    }


@dataclass
class _Summary:
    """``summary.json`` assembled arm by arm, in the key order of one summary of both arms."""

    body: dict[str, Any]
    policy: _ArmOutput
    baseline: dict[str, Any] | None = None

    @classmethod
    def of_policy(cls, res: SimResult, meta: Mapping[str, Any], out: _ArmOutput) -> _Summary:
        """The policy arm's part: its :func:`~simroute.analysis.summary.summarize` body."""
        return cls(summarize(res, meta), out)

    def add_baseline(self, base: SimResult, out: _ArmOutput) -> None:
        """The paired comparison with the baseline arm ``base`` (its :class:`_ArmOutput` ``out``)."""
        block = paired(self.policy.head, self.policy.correct, base)
        block.update(out.knowledge)
        self.baseline = block

    def json(self, sessions: Mapping[str, _ArmSessions]) -> dict[str, Any]:
        """The summary: the policy's body, the baseline block (with its arm's ``sessions``), then
        knowledge and sessions."""
        out = dict(self.body)
        if self.baseline is not None:
            out["baseline"] = self.baseline | {"sessions": sessions["baseline"].block}
        out.update(self.policy.knowledge)
        out["sessions"] = sessions["policy"].block
        return out


@dataclass(frozen=True)
class _BaselineWritten:
    """What writing the baseline arm left: its summary inputs, its sessions, and the seconds its
    result took to come (simulated here, or from its process)."""

    out: _ArmOutput
    sessions: _ArmSessions
    fetch_s: float


def _baseline_outputs(
    fetch: Callable[[], SimResult], policies: Policies, summary: _Summary, out_dir: Path, written: list[Path]
) -> _BaselineWritten:
    """Get the baseline arm's result (``fetch()``) and write it: its request table while the paired
    comparison is added to ``summary``; then, the result freed, its session table."""
    t = time.perf_counter()
    base = fetch()
    fetch_s = time.perf_counter() - t
    written.append(out_dir / "baseline_requests.parquet")
    with _writing(base.requests, written[-1]):
        out = _arm_output(base, policies, written[-1])
        summary.add_baseline(base, out)
    large = base.requests.height >= LARGE_RUN_REQUESTS
    del base  # the only reference: freed before its sessions are grouped
    if large:
        release_memory()
    return _BaselineWritten(out, _write_sessions(out, out_dir, "baseline_", written), fetch_s)


def _remove_on_error(paths: list[Path]) -> Callable[..., bool]:
    """An exit callback that removes ``paths`` if the block it guards raised (a failed run leaves
    no result files behind)."""

    def exit_(exc_type: type[BaseException] | None, *_: Any) -> bool:
        if exc_type is not None:
            for p in paths:
                p.unlink(missing_ok=True)
        return False

    return exit_


def execute(cfg: Mapping[str, Any], out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the experiment described by the resolved config ``cfg``; return the summary.

    The policy arm's tables are written and freed before the baseline's are built: the run holds
    one arm's result tables at a time. ``timing.json``'s ``simulate_s`` is the time spent
    simulating the arms here or waiting for the other process's arm, records joined and priced."""
    t0 = time.perf_counter()
    fix_mmap_threshold()
    seed = int(cfg["seed"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with ExitStack() as stack:
        stack.push(_remove_on_error(written))  # runs last: after the worker has stopped
        # started first: it starts up while this one builds the inputs
        elsewhere = _BaselineWorker.start(cfg, out_dir, progress, stack) if _baseline_elsewhere(cfg) else None
        inp, prefixes = _inputs(cfg)
        if elsewhere is not None:
            elsewhere.send_inputs(inp, prefixes)
        ctx = PolicyContext(inp.skills.names, inp.catalog, seed)
        t_load = time.perf_counter()
        arms = {"policy": cfg["policy"]} | ({"baseline": cfg["baseline"]} if cfg.get("baseline") else {})
        built = {arm: build_policies(pcfg, ctx) for arm, pcfg in arms.items()}
        replay = ReplayConfig.from_config(cfg["workload"])
        local = [arm for arm in arms if not (arm == "baseline" and elsewhere is not None)]
        jobs = {arm: _job(cfg, inp, ctx, arm, progress, replay, prefixes) for arm in local}
        del prefixes  # the jobs hold them until they have run
        res = result_tables(  # the records passed on as a temporary (see result_tables)
            inp.table,
            jobs.pop("policy").records(built["policy"], attempt_record_columns(SUMMARY_ATTEMPT_COLUMNS)),
            inp.catalog,
            inp.quality,
            attempt_columns=SUMMARY_ATTEMPT_COLUMNS,  # the run writes no attempts table
        )
        if len(inp.table) >= LARGE_RUN_REQUESTS:
            release_memory()  # as ArmJob.run does
        sim_s = time.perf_counter() - t_load
        written.append(out_dir / "requests.parquet")
        with _writing(res.requests, written[-1]):  # the summary and figures while it is written
            outs = {"policy": _arm_output(res, built["policy"], written[-1])}
            summary = _Summary.of_policy(res, _meta(cfg, inp, replay, outs["policy"].span_s), outs["policy"])
            n = len(inp.table)
            title = f"{summary.body['policy']} on {Path(inp.table.source).name} ({n:,} requests, seed {seed})"
            if cfg.get("figures", True):
                written += _policy_figures(res, out_dir, title)
        del res  # freed before the baseline's tables are built
        if n >= LARGE_RUN_REQUESTS:
            release_memory()  # and given back (about 350 MiB a million requests)
        sessions = {"policy": _write_sessions(outs["policy"], out_dir, "", written)}
        if "baseline" in arms:
            fetch = (
                partial(elsewhere.result, inp)
                if elsewhere is not None
                else partial(jobs.pop("baseline").run, built["baseline"], SUMMARY_ATTEMPT_COLUMNS)
            )
            done = _baseline_outputs(fetch, built["baseline"], summary, out_dir, written)
            outs["baseline"], sessions["baseline"] = done.out, done.sessions
            sim_s += done.fetch_s
    out = summary.json(sessions)
    (out_dir / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    snapshot = policy_snapshot(cfg["policy"], inp.skills.names, inp.catalog, built["policy"].router)
    (out_dir / "policy_snapshot.json").write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    if cfg.get("figures", True):
        _comparison_figures(out, outs, sessions, out_dir, title)
    t_end = time.perf_counter()
    n_sim = n * len(arms)
    timing = {
        "wall_s": t_end - t0,
        "load_s": t_load - t0,
        "simulate_s": sim_s,
        "write_s": t_end - t_load - sim_s,
        "simulated_requests": n_sim,
        "simulated_requests_per_s": n_sim / max(sim_s, 1e-9),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "compiled": compiled.in_use(),  # the hot modules ran compiled (simroute.compiled)
    }
    (out_dir / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    return out
