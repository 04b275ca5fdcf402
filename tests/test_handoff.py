"""An arm's records handed over through files come back equal, and its files are removed; a
baseline process's failure reaches its parent."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from simroute import compiled, records
from simroute.record_types import AttemptRecord, RequestRecord
from simroute.records import RecordLog, SpooledRecords, field_kinds, to_frame


def _logs(n: int, spill_rows: int) -> tuple[RecordLog, RecordLog, list[RequestRecord], list[AttemptRecord]]:
    """Logs of ``n`` requests (and one or two attempts each) logged out of row order, with strings,
    None, NaN and flags, spilling every ``spill_rows`` records."""
    g = np.random.default_rng(4)
    reqs, atts = RecordLog(RequestRecord, spill_rows), RecordLog(AttemptRecord, spill_rows)
    rr, aa = [], []
    for idx in g.permutation(n).tolist():
        r = _record(RequestRecord, idx, g)
        reqs.append(r)
        rr.append(r)
        for k in range(int(g.integers(1, 3))):
            a = _record(AttemptRecord, idx, g, attempt=k)
            atts.append(a)
            aa.append(a)
    return reqs, atts, rr, aa


def _record(cls: type, idx: int, g: np.random.Generator, **given: int) -> Any:
    """A record of ``cls`` with arbitrary values of each field's type."""
    vals: dict[str, Any] = {}
    for f in fields(cls):
        kind = field_kinds(cls)[f.name]
        if f.name in given or f.name == "idx":
            vals[f.name] = given.get(f.name, idx)
        elif kind == "int":
            vals[f.name] = int(g.integers(-5, 1000))
        elif kind == "float":
            vals[f.name] = float("nan") if g.random() < 0.1 else float(g.normal())
        elif kind == "bool":
            vals[f.name] = bool(g.random() < 0.5)
        else:
            vals[f.name] = None if kind == "str | None" and g.random() < 0.2 else f"w{int(g.integers(0, 4))}"
    return cls(**vals)


@pytest.mark.parametrize("spill_rows", [7, 10_000])
def test_spooled_logs_come_back_equal_to_their_tables(tmp_path: Path, spill_rows: int) -> None:
    """Logs written a column at a time (spilled or not) read back as the tables ``take`` builds
    from the same logs: same values, dtypes and row order; the folder is then removed."""
    reqs, atts, rr, aa = _logs(60, spill_rows)
    by_idx = np.argsort(reqs.column("idx"), kind="stable")
    by_attempt = np.lexsort((atts.column("attempt"), atts.column("idx")))
    spooled = SpooledRecords(
        tmp_path / "spool",
        reqs.spool(tmp_path / "spool" / "requests", by_idx),
        atts.spool(tmp_path / "spool" / "attempts", by_attempt),
        {"local_gpus": 8, "gpu_hour_usd": 2.5, "provision_local": False, "batch_jobs": 4,
         "batch_expired_jobs": 0, "cache_counts": {"miss": 7}},
    )  # fmt: skip
    assert len(reqs) == len(atts) == 0  # the logs are emptied as they are written
    back = spooled.read()
    want_r = to_frame([rr[i] for i in by_idx], RequestRecord)
    want_a = to_frame([aa[i] for i in by_attempt], AttemptRecord)
    assert back.requests.equals(want_r) and back.requests.schema == want_r.schema
    assert back.attempts.equals(want_a) and back.attempts.schema == want_a.schema
    assert (back.local_gpus, back.gpu_hour_usd, back.provision_local) == (8, 2.5, False)
    assert (back.batch_jobs, back.batch_expired_jobs, dict(back.cache_counts)) == (4, 0, {"miss": 7})
    assert not (tmp_path / "spool").exists()


@pytest.mark.parametrize("spill_rows", [7, 10_000])
def test_a_log_taken_in_part_gives_those_columns_and_is_left_empty(spill_rows: int) -> None:
    _, atts, _, aa = _logs(40, spill_rows)
    by_attempt = np.lexsort((atts.column("attempt"), atts.column("idx")))
    part = atts.take_frame(by_attempt, {"idx", "tier", "cached_tokens"})
    want = to_frame([aa[i] for i in by_attempt], AttemptRecord)
    assert part.equals(want.select("idx", "tier", "cached_tokens"))
    assert len(atts) == 0 and atts.frame().height == 0  # no column keeps records behind
    atts.append(aa[0])
    assert atts.frame().equals(to_frame([aa[0]], AttemptRecord))


@pytest.mark.parametrize(("flush_rows", "spill_rows"), [(3, 7), (4, 10), (5, 5), (64, 10_000)])
def test_a_log_read_between_appends_at_uneven_buffer_sizes_gives_every_record_in_order(
    monkeypatch: pytest.MonkeyPatch, flush_rows: int, spill_rows: int
) -> None:
    """Records waiting as value tuples, in the column buffers and in the spill file all read back,
    in logged order, whenever the log is read (a column, the whole table) and more are appended
    after; it never holds ``spill_rows`` records or more in memory."""
    monkeypatch.setattr(records, "FLUSH_ROWS", flush_rows)
    g = np.random.default_rng(9)
    log, logged = RecordLog(RequestRecord, spill_rows), []
    for n in (1, 12, 13, 40, 61):
        while len(logged) < n:
            logged.append(_record(RequestRecord, len(logged), g))
            log.append(logged[-1])
            assert len(log) - log._spilled < spill_rows
        assert log.column("idx").tolist() == list(range(n))
        want = to_frame(logged, RequestRecord)
        got = log.frame()
        assert got.equals(want) and got.schema == want.schema


def test_a_record_with_a_wrongly_typed_value_is_refused_whole_and_names_its_field() -> None:
    """A value of the wrong type is found when the pending records move into the buffers: a
    TypeError names the field, and no column takes any of those records (reading again gives the
    same error, never a half-moved table)."""
    g = np.random.default_rng(2)
    log = RecordLog(AttemptRecord, spill_rows=100)
    good = [_record(AttemptRecord, i, g) for i in range(3)]
    for r in good:
        log.append(r)
    assert log.column("idx").tolist() == [0, 1, 2]
    bad = _record(AttemptRecord, 3, g)
    if compiled.in_use():  # a compiled record refuses the wrong type itself
        with pytest.raises(TypeError):
            bad.end_s = None  # type: ignore[assignment]
        return
    bad.end_s = None  # type: ignore[assignment]
    log.append(bad)
    for _ in range(2):
        with pytest.raises(TypeError, match=r"AttemptRecord\.end_s: expected float"):
            log.column("idx")
    assert {len(b) for b in log._cols.values()} == {3}


@pytest.mark.parametrize("how", ["take_frame", "spool"])
def test_a_log_whose_column_fails_to_read_is_left_empty_not_half_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A column that cannot be read back (a short read of the spill file, say) fails the call, and
    the log is then empty and usable, not left with some columns freed and others full."""
    _, atts, _, aa = _logs(30, 7)
    by_attempt = np.lexsort((atts.column("attempt"), atts.column("idx")))
    real, calls = RecordLog._values, []

    def flaky(self: RecordLog, name: str, dtype: type, out: np.ndarray | None = None) -> np.ndarray:
        calls.append(name)
        if len(calls) == 3:
            raise OSError("short read from the record log's spill file (test)")
        return real(self, name, dtype, out)

    monkeypatch.setattr(RecordLog, "_values", flaky)
    take = (
        (lambda: atts.take_frame(by_attempt))
        if how == "take_frame"
        else (lambda: atts.spool(tmp_path / "a", by_attempt))
    )
    with pytest.raises(OSError, match="short read"):
        take()
    monkeypatch.undo()
    assert len(calls) == 3 and len(atts) == 0 and atts.frame().height == 0
    atts.append(aa[0])
    assert atts.frame().equals(to_frame([aa[0]], AttemptRecord))


def test_an_empty_log_spools_to_an_empty_table_of_its_schema(tmp_path: Path) -> None:
    spool = RecordLog(AttemptRecord).spool(tmp_path / "a", np.zeros(0, np.int64))
    assert spool.frame().schema == to_frame([], AttemptRecord).schema
    assert spool.frame().height == 0


def _inputs(n: int) -> Any:
    """A run config of ``n`` synthetic requests, its inputs and prefix runs as a run builds them."""
    from simroute.config import compose
    from simroute.runner.experiment import _inputs

    cfg = compose([f"workload.n_requests={n}"])
    return (cfg, *_inputs(cfg))


def test_written_inputs_read_back_equal(tmp_path: Path) -> None:
    """The request table (values, dtypes, order, metadata) and prefix runs a worker reads are the
    ones this process built."""

    from simroute.runner.input_files import write_inputs

    _, inp, prefixes = _inputs(300)
    files = write_inputs(inp, prefixes, tmp_path / "in")
    inp.table.df.write_ipc(files.folder / "table.arrow", record_batch_size=64)  # as a large table is
    back, runs = files.read()
    assert back.table.df.equals(inp.table.df) and back.table.df.schema == inp.table.df.schema
    assert back.table.df.height == 300
    # one chunk a column: the simulation reads number columns in place, not as copies
    assert {s.n_chunks() for s in back.table.df.iter_columns()} == {1}
    for f in ("source", "block_tokens", "skills", "label_counts", "column_names", "prefixes"):
        assert getattr(back.table, f) == getattr(inp.table, f), f
    assert (back.skills, back.catalog, back.quality.models) == (inp.skills, inp.catalog, inp.quality.models)
    for k in ("row_runs", "start", "length"):
        got, want = getattr(runs, k), getattr(prefixes, k)
        assert got.dtype == want.dtype and np.array_equal(got, want), k


def test_inputs_read_for_a_simulation_hold_only_its_columns(tmp_path: Path) -> None:
    from simroute.runner.input_files import write_inputs
    from simroute.sim.run import SIMULATION_COLUMNS

    _, inp, prefixes = _inputs(200)
    kept = [c for c in inp.table.df.columns if c in SIMULATION_COLUMNS]
    for written in (None, SIMULATION_COLUMNS):  # all columns written, or only those (as a run does)
        files = write_inputs(inp, prefixes, tmp_path / str(written is None), written)
        back, _ = files.read(SIMULATION_COLUMNS)
        assert back.table.df.columns == kept and len(kept) < inp.table.df.width
        assert back.table.df.equals(inp.table.df.select(kept))
    assert list(pl.read_ipc_schema(files.folder / "table.arrow")) == kept  # the rest never written


def test_a_simulation_reads_no_column_but_its_own() -> None:
    """Columns outside SIMULATION_COLUMNS replaced by random values: the same records, requests and
    attempts. (simulate_logs cuts its table to those columns, so every in-process simulation test
    runs on them alone; this checks the results do not depend on the rest.)"""
    from simroute.policy.registry import PolicyContext
    from simroute.sim.build import build_policies
    from simroute.sim.run import SIMULATION_COLUMNS, simulate_logs
    from simroute.sim.sessions import ReplayConfig

    cfg, inp, prefixes = _inputs(400)
    df = inp.table.df
    others = [c for c in df.columns if c not in SIMULATION_COLUMNS]
    assert {"agent", "recorded_api_s", "step"} <= set(others)
    rng = np.random.default_rng(5)
    noise = {
        c: df[c].sample(df.height, with_replacement=True, seed=int(rng.integers(1 << 30))) for c in others
    }
    noise = {
        c: pl.Series(c, rng.random(df.height) * 100.0) if df[c].dtype == pl.Float64 else s
        for c, s in noise.items()
    }
    scrambled = df.with_columns(noise.values())
    assert not scrambled["recorded_api_s"].equals(df["recorded_api_s"])
    frames = []
    for table in (inp.table, inp.table.with_frame(scrambled)):
        policies = build_policies(cfg["policy"], PolicyContext(inp.skills.names, inp.catalog, 0))
        logs = simulate_logs(
            table,
            policies,
            cfg["tiers"],
            inp.catalog,
            inp.quality,
            0,
            progress=False,
            replay=ReplayConfig(),
            prefixes=prefixes,
        )
        frames.append(logs.take())
    assert frames[0].requests.equals(frames[1].requests) and frames[0].attempts.equals(frames[1].attempts)


def test_a_baseline_process_error_or_crash_is_raised_in_the_parent(tmp_path: Path) -> None:
    from contextlib import ExitStack

    from simroute.runner.experiment import _BaselineWorker
    from simroute.runner.input_files import write_inputs

    cfg, inp, prefixes = _inputs(200)
    with ExitStack() as stack:  # an error in the worker (its inputs unreadable): raised here, worker reaped
        worker = _BaselineWorker.start(cfg, tmp_path, False, stack)
        files = write_inputs(inp, prefixes, tmp_path / ".baseline_inputs")
        (files.folder / "start.npy").write_bytes(b"not an array")
        worker.conn.send(("inputs", files))
        with pytest.raises(ValueError):
            worker.result(inp)
        assert not worker.process.is_alive()
    with ExitStack() as stack:  # a worker that dies without a word: a clear error, no hang
        worker = _BaselineWorker.start(cfg, tmp_path, False, stack)
        worker.process.kill()
        with pytest.raises(RuntimeError, match="ended without a result"):
            worker.result(inp)
    with ExitStack() as stack:  # one that dies before its inputs are sent: a clear error here too
        worker = _BaselineWorker.start(cfg, tmp_path, False, stack)
        worker.process.kill()
        worker.process.join()
        with pytest.raises(RuntimeError, match="ended before its inputs were sent"):
            worker.send_inputs(inp, prefixes)
    assert not (tmp_path / ".baseline_result").exists()
    assert not (tmp_path / ".baseline_inputs").exists()


def test_a_worker_waiting_for_inputs_ends_when_the_parent_fails(tmp_path: Path) -> None:
    """An input error in the parent's build is raised whole (row and column) and leaves no files;
    a worker never sent its inputs ends by itself, cleanly, once the parent's end of the pipe
    closes."""
    from contextlib import ExitStack

    from simroute.config import compose
    from simroute.errors import InputError
    from simroute.runner.experiment import _BaselineWorker, execute

    trace = tmp_path / "t.txt"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n1,-4,10\n")
    cfg = compose(["workload=trace", f"workload.path={trace}", "workload.format=azure"])
    with pytest.raises(InputError) as ei:
        execute(cfg, tmp_path / "out", progress=False)
    assert (ei.value.row, ei.value.column) == (2, "ContextTokens")
    assert "expected an integer >= 1 (tokens), got -4" in str(ei.value)
    assert list((tmp_path / "out").iterdir()) == []
    with ExitStack() as stack:
        worker = _BaselineWorker.start(cfg, tmp_path, False, stack)
        worker.conn.close()
        worker.process.join(timeout=120)
        assert worker.process.exitcode == 0


def _state(pid: int) -> str:
    """The process state letter of ``pid`` (``""`` once it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _children(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is ``pid``, read from ``/proc``."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):  # it ended while we looked
            continue
        if int(ppid) == pid and state != "Z":
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(
    not Path("/proc/self/stat").exists() or (os.cpu_count() or 1) < 2, reason="Linux, 2+ cores"
)
def test_sigterm_ends_a_run_through_its_clean_up_and_stops_its_baseline_process(tmp_path: Path) -> None:
    """A scheduler's SIGTERM (cancel, time limit) ends ``simroute run`` as an exception would (status
    143): its baseline arm's process is stopped, not left running orphaned, and its handoff folders
    are removed."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = ["run", "workload.n_requests=400000", "parallel_arms=true", "figures=false", "progress=false"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "simroute.cli", *args, f"hydra.run.dir={out}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not (kids := _children(proc.pid)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kids, "the run started no baseline process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while (alive := [k for k in kids if _state(k) not in ("", "Z")]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive == []
        assert not (out / ".baseline_result").exists() and not (out / ".baseline_inputs").exists()
    finally:
        for pid in [proc.pid, *kids]:
            if _state(pid) not in ("", "Z"):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_a_table_written_while_the_summary_is_built_is_whole_or_its_error_raised(tmp_path: Path) -> None:
    """``_writing``: the file is whole once the block ends; a write that fails raises then, and an
    error of the block itself is the one raised (the write still finished first)."""
    from simroute.runner.experiment import _writing

    df = pl.DataFrame({"a": np.arange(100_000), "b": np.linspace(0.0, 1.0, 100_000)})
    with _writing(df, tmp_path / "t.parquet"):
        total = float(df["b"].sum())  # work beside the write
    assert pl.read_parquet(tmp_path / "t.parquet").equals(df) and total > 0
    with pytest.raises(OSError), _writing(df, tmp_path / "missing" / "t.parquet"):
        pass
    with pytest.raises(ValueError, match="the block's"), _writing(df, tmp_path / "u.parquet"):
        raise ValueError("the block's")
    assert pl.read_parquet(tmp_path / "u.parquet").equals(df)
