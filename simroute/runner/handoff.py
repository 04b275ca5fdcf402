"""Hand an arm's result from a worker process to its parent through files, not a pickle.

A pickled :class:`~simroute.records.SimResult` of a million requests is about 600 MiB of bytes that
the parent holds whole while it unpickles another 600 MiB from them. Written as Arrow IPC files by
the worker and read back by the parent, the tables cross once, and the parent never holds the
bytes and the tables at the same time. The tables read back are equal to those written (same
values, dtypes and order), so every output is unchanged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import polars as pl

from simroute.records import SimResult

_TABLES = ("requests", "attempts")


@dataclass(frozen=True)
class SpooledResult:
    """A :class:`SimResult` whose tables wait in ``folder`` (``requests.arrow``, ``attempts.arrow``);
    ``rest`` holds its other fields."""

    folder: Path
    rest: dict[str, Any]

    @classmethod
    def write(cls, res: SimResult, folder: Path) -> SpooledResult:
        """Write ``res``'s tables into ``folder`` (created) and keep the rest."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in _TABLES:
            getattr(res, name).write_ipc(folder / f"{name}.arrow")
        rest = {f.name: getattr(res, f.name) for f in fields(res) if f.name not in _TABLES}
        return cls(folder, rest)

    def read(self) -> SimResult:
        """The result, its tables read back; ``folder`` is removed (Polars may map the files into
        memory: on Linux and macOS a mapping outlives the file's removal)."""
        requests = pl.read_ipc(self.folder / "requests.arrow")
        attempts = pl.read_ipc(self.folder / "attempts.arrow")
        shutil.rmtree(self.folder)
        return SimResult(requests, attempts, **self.rest)
