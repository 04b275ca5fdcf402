"""A run's inputs handed to another process through files: built once, read back equal.

The baseline arm's process used to build its own inputs from the config while this process built
the same ones: at 10 M requests the two builds' temporaries peaked together at about 10 GiB. Now
this process builds them once and writes the request table (Arrow IPC, uncompressed) and the
prefix runs (``.npy``) into a folder, and the worker reads them back: it never holds a build's
temporaries. The small parts (skills, prices, quality, offers) travel pickled through the pipe
between the two processes, never through a file.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from simroute.sim.build import RunInputs
from simroute.workload.prefix_runs import PrefixRuns

_RUNS = ("row_runs", "start", "length")
"""The :class:`PrefixRuns` arrays, each written as ``{name}.npy``."""


@dataclass(frozen=True)
class InputFiles:
    """Where :func:`write_inputs` put a run's inputs, and their small parts.

    Attributes:
        folder: holds ``table.arrow`` and the prefix runs' ``.npy`` files.
        inputs: the run inputs with a zero-row request table (same columns, dtypes and metadata).
    """

    folder: Path
    inputs: RunInputs

    def read(self, columns: Collection[str] | None = None) -> tuple[RunInputs, PrefixRuns]:
        """The inputs and prefix runs as written (equal values, dtypes and row order); the table
        with only the columns ``columns`` names if given (a simulation reads few). The table is
        read a column at a time: a whole read holds the file's bytes besides the table (at 10 M
        requests the inputs' read peaked at 4.6 GiB for 2.9 GiB held after; a column at a time, at
        what is held), each made one chunk (the file's record batches would be chunks, and the
        simulation's request rows read a column in place only if it is one chunk: else each is
        copied, about 85 MiB a million requests)."""
        path = self.folder / "table.arrow"
        names = [c for c in pl.read_ipc_schema(path) if columns is None or c in columns]
        table = self.inputs.table.with_frame(
            pl.DataFrame([pl.read_ipc(path, columns=[c]).to_series().rechunk() for c in names])
        )
        prefixes = PrefixRuns(*(np.load(self.folder / f"{k}.npy", allow_pickle=False) for k in _RUNS))
        return replace(self.inputs, table=table), prefixes


def write_inputs(
    inp: RunInputs, prefixes: PrefixRuns, folder: Path, columns: Collection[str] | None = None
) -> InputFiles:
    """Write ``inp``'s request table (only the columns ``columns`` names, if given: those the other
    process reads) and ``prefixes`` into ``folder`` (created) for :meth:`InputFiles.read` in
    another process."""
    folder.mkdir(parents=True, exist_ok=True)
    df = inp.table.df
    df.select(c for c in df.columns if columns is None or c in columns).write_ipc(folder / "table.arrow")
    for k in _RUNS:
        np.save(folder / f"{k}.npy", getattr(prefixes, k), allow_pickle=False)
    return InputFiles(folder, replace(inp, table=inp.table.with_frame(inp.table.df.clear())))
