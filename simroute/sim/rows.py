"""The request table as per-request :class:`~simroute.workload.request.Request` records built on
demand: number columns read in place from the table (views of its buffers where Polars allows, not
a copy), strings as small codes into a vocabulary, so a run holds a record only while its request is
in flight, not one Python object per field per row all run long."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import polars as pl

from simroute.workload.request import Request
from simroute.workload.schema import RequestTable

REQUEST_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Request) if f.name not in ("idx", "u_classify")
)
"""The request-table columns a request record carries (by name)."""

_CODED = ("skill", "urgency", "recorded_model")
"""String columns with few distinct values, held as codes."""

_FIELD_ORDER: tuple[str, ...] = tuple(f.name for f in fields(Request))
"""A :class:`Request`'s fields in constructor order."""


@dataclass(frozen=True, slots=True, init=False)
class StepGate:
    """A closed-loop step's session (id), the request ids it waits for and its think time (s)."""

    session_id: int
    after_ids: tuple[int, ...]
    think_s: float

    def __init__(self, session_id: int, after_ids: tuple[int, ...], think_s: float) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "after_ids", after_ids)
        object.__setattr__(self, "think_s", think_s)


class RequestRows:
    """``rows[i]`` is row ``i`` of ``table`` as a :class:`Request` (field by column name, the same
    Python values ``to_list()`` gives), with ``u_classify[i]`` as its classifier uniform.

    Args:
        table: the request table.
        u_classify: per row, the classifier's common random number.
    """

    def __init__(self, table: RequestTable, u_classify: np.ndarray) -> None:
        df = table.df
        self._n = df.height
        self._u = u_classify
        self._vocab: dict[str, tuple[str, ...]] = {}
        self._text: dict[str, list[str]] = {}
        cols: dict[str, np.ndarray] = {}
        for c in REQUEST_FIELDS:
            if c == "after_ids":
                continue
            s = df[c]
            if c in _CODED:
                self._vocab[c] = tuple(s.unique().sort().to_list())
                cols[c] = (s.rank("dense").to_numpy() - 1).astype(
                    np.int16 if len(self._vocab[c]) < 2**15 else np.int64
                )
            elif s.dtype == pl.String:
                self._text[c] = s.to_list()
            else:
                cols[c] = s.to_numpy()  # a view of the table's buffer when it is one chunk, no nulls
        self._cols = cols
        self._arrays = tuple(cols.values())  # read per row, in Request field order
        names = tuple(cols)
        self._decode = tuple((names.index(c), v) for c, v in self._vocab.items())
        self._arrival_at = names.index("arrival_s")
        # where the fields not read from ``_arrays`` go, in increasing field position
        self._inserts = tuple((_FIELD_ORDER.index(f), f) for f in _FIELD_ORDER if f not in cols)
        after = df["after_ids"]
        self._after_off = np.zeros(self._n + 1, dtype=np.int64)
        np.cumsum(after.list.len().to_numpy(), out=self._after_off[1:])
        self._after = after.explode(empty_as_null=False).to_numpy().astype(np.int64, copy=False)

    def __len__(self) -> int:
        return self._n

    def after_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's ``after_ids`` as flat arrays: offsets (length rows + 1) and ids."""
        return self._after_off, self._after

    def after_ids(self, i: int) -> tuple[int, ...]:
        """Row ``i``'s ``after_ids``."""
        return tuple(self._after[self._after_off[i] : self._after_off[i + 1]].tolist())

    def gate_of(self, i: int) -> StepGate:
        """What releasing closed-loop row ``i`` needs, without building its whole record."""
        return StepGate(int(self._cols["session_id"][i]), self.after_ids(i), float(self._cols["think_s"][i]))

    def __getitem__(self, i: int) -> Request:
        return self.get(i)

    def get(self, i: int, arrival_s: float | None = None) -> Request:
        """Row ``i`` as a :class:`Request`, its ``arrival_s`` replaced by ``arrival_s`` if given
        (the simulated issue time of a closed-loop step)."""
        vals: list[Any] = [a.item(i) for a in self._arrays]
        for k, vocab in self._decode:
            vals[k] = vocab[vals[k]]
        if arrival_s is not None:
            vals[self._arrival_at] = arrival_s
        for pos, name in self._inserts:
            vals.insert(pos, self._special(name, i))
        return Request(*vals)

    def _special(self, name: str, i: int) -> object:
        """Field ``name`` of row ``i`` that is not a number column: its index, its classifier
        uniform, its gates or a text column."""
        if name == "idx":
            return i
        if name == "u_classify":
            return float(self._u[i])
        if name == "after_ids":
            return self.after_ids(i)
        return self._text[name][i]
