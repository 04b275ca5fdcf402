"""An arm's result handed over through files comes back equal, and its files are removed."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from simroute.outcomes import OUTCOMES
from simroute.records import ArmRecords, SimResult
from simroute.runner.handoff import SpooledResult


def test_a_result_comes_back_equal_through_files(tmp_path: Path) -> None:
    requests = pl.DataFrame(
        {"request_id": [0, 1, 2], "cost_total_usd": [0.1, float("nan"), 2.5], "final_model": ["a", None, "b"]}
    ).with_columns(outcome=pl.Series(["succeeded", "failed", "timed_out"], dtype=pl.Enum(list(OUTCOMES))))
    attempts = pl.DataFrame({"request_index": [0, 0, 2], "tier": ["local", "realtime", "batch"]})
    res = SimResult(requests, attempts, 12.5, 4, 86_400.0, 3, 1, {"exact": 2})
    spooled = SpooledResult.write(res, tmp_path / "spool")
    back = spooled.read()
    assert back.requests.equals(res.requests) and back.requests.schema == res.requests.schema
    assert back.attempts.equals(res.attempts)
    assert (back.local_fixed_usd, back.local_gpus, back.horizon_s) == (12.5, 4, 86_400.0)
    assert (back.batch_jobs, back.batch_expired_jobs, dict(back.cache_counts)) == (3, 1, {"exact": 2})
    assert not (tmp_path / "spool").exists()


def test_an_arms_records_come_back_equal_and_of_their_class(tmp_path: Path) -> None:
    rec = ArmRecords(
        pl.DataFrame({"idx": [0, 1], "route_reason": ["a", None]}),
        pl.DataFrame({"idx": [0, 0], "attempt": [0, 1]}),
        8,
        2.5,
        False,
        4,
        0,
        {"miss": 7},
    )
    back = SpooledResult.write(rec, tmp_path / "spool").read()
    assert isinstance(back, ArmRecords)
    assert back.requests.equals(rec.requests) and back.attempts.equals(rec.attempts)
    assert (back.local_gpus, back.gpu_hour_usd, back.provision_local) == (8, 2.5, False)
    assert (back.batch_jobs, back.batch_expired_jobs, dict(back.cache_counts)) == (4, 0, {"miss": 7})
    assert not (tmp_path / "spool").exists()


def test_a_baseline_process_error_or_crash_is_raised_in_the_parent(tmp_path: Path) -> None:
    from contextlib import ExitStack

    import pytest

    from simroute.config import compose
    from simroute.errors import ConfigError
    from simroute.runner.experiment import _BaselineWorker

    with ExitStack() as stack:  # an error in the worker: the same error here, the worker reaped
        worker = _BaselineWorker.start(compose(["workload.n_requests=0"]), tmp_path, False, stack)
        with pytest.raises(ConfigError, match="n_requests must be >= 1"):
            worker.result(None)  # type: ignore[arg-type]
        assert not worker.process.is_alive()
    with ExitStack() as stack:  # a worker that dies without a word: a clear error, no hang
        worker = _BaselineWorker.start(compose(["workload.n_requests=200"]), tmp_path, False, stack)
        worker.process.kill()
        with pytest.raises(RuntimeError, match="ended without a result"):
            worker.result(None)  # type: ignore[arg-type]
    assert not (tmp_path / ".baseline_result").exists()


def test_an_input_error_in_the_baseline_process_reaches_the_parent_whole(tmp_path: Path) -> None:
    from contextlib import ExitStack

    import pytest

    from simroute.config import compose
    from simroute.errors import InputError
    from simroute.runner.experiment import _BaselineWorker

    trace = tmp_path / "t.txt"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n1,-4,10\n")
    cfg = compose(["workload=trace", f"workload.path={trace}", "workload.format=azure"])
    with ExitStack() as stack, pytest.raises(InputError) as ei:
        _BaselineWorker.start(cfg, tmp_path, False, stack).result(None)  # type: ignore[arg-type]
    assert (ei.value.row, ei.value.column) == (2, "ContextTokens")
    assert "expected an integer >= 1 (tokens), got -4" in str(ei.value)
