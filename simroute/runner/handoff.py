"""Hand an arm's result from a worker process to its parent through files, not a pickle.

A pickled result of a million requests is hundreds of MiB of bytes that the parent holds whole
while it unpickles as much again from them. Written as Arrow IPC files by the worker and read back
by the parent, the tables cross once, and the parent never holds the bytes and the tables at the
same time. The tables read back are equal to those written (same values, dtypes and order), so
every output is unchanged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

import polars as pl

T = TypeVar("T")


@dataclass(frozen=True)
class SpooledResult(Generic[T]):
    """A result record (a dataclass such as :class:`~simroute.records.ArmRecords`) whose tables wait
    in ``folder`` (one ``NAME.arrow`` per table field); ``rest`` holds its other fields."""

    cls: type[T]
    folder: Path
    tables: tuple[str, ...]
    rest: dict[str, Any]

    @classmethod
    def write(cls, res: T, folder: Path) -> SpooledResult[T]:
        """Write ``res``'s tables into ``folder`` (created) and keep the rest."""
        folder.mkdir(parents=True, exist_ok=True)
        tables = tuple(f.name for f in fields(res) if isinstance(getattr(res, f.name), pl.DataFrame))  # type: ignore[arg-type]
        for name in tables:
            getattr(res, name).write_ipc(folder / f"{name}.arrow")
        rest = {f.name: getattr(res, f.name) for f in fields(res) if f.name not in tables}  # type: ignore[arg-type]
        return cls(type(res), folder, tables, rest)

    def read(self) -> T:
        """The result, its tables read back; ``folder`` is removed (Polars may map the files into
        memory: on Linux and macOS a mapping outlives the file's removal)."""
        tables = {name: pl.read_ipc(self.folder / f"{name}.arrow") for name in self.tables}
        shutil.rmtree(self.folder)
        return self.cls(**tables, **self.rest)
