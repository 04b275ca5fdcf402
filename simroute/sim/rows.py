"""The request table as per-request :class:`~simroute.workload.request.Request` records built on
demand: columns held as NumPy arrays (strings as codes into a small vocabulary), so a run holds a
record only while its request is in flight, not one Python object per field per row all run long."""

from __future__ import annotations

from dataclasses import dataclass, fields

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


@dataclass(frozen=True, slots=True)
class StepGate:
    """A closed-loop step's session (id), the request ids it waits for and its think time (s)."""

    session_id: int
    after_ids: tuple[int, ...]
    think_s: float


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
        packed: dict[str, np.ndarray] = {}
        self._vocab: dict[str, tuple[str, ...]] = {}
        self._text: dict[str, list[str]] = {}
        for c in REQUEST_FIELDS:
            if c == "after_ids":
                continue
            s = df[c]
            if c in _CODED:
                self._vocab[c] = tuple(s.unique().sort().to_list())
                packed[c] = (s.rank("dense").to_numpy() - 1).astype(np.int64)
            elif s.dtype == pl.String:
                self._text[c] = s.to_list()
            else:
                packed[c] = s.to_numpy()
        self._names = tuple(packed)
        self._packed = np.empty(self._n, dtype=[(c, a.dtype) for c, a in packed.items()])
        for c, a in packed.items():
            self._packed[c] = a
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
        return StepGate(
            int(self._packed["session_id"][i]), self.after_ids(i), float(self._packed["think_s"][i])
        )

    def __getitem__(self, i: int) -> Request:
        return self.get(i)

    def get(self, i: int, arrival_s: float | None = None) -> Request:
        """Row ``i`` as a :class:`Request`, its ``arrival_s`` replaced by ``arrival_s`` if given
        (the simulated issue time of a closed-loop step)."""
        vals = dict(zip(self._names, self._packed[i].item(), strict=True))
        for c, vocab in self._vocab.items():
            vals[c] = vocab[vals[c]]
        for c, text in self._text.items():
            vals[c] = text[i]
        if arrival_s is not None:
            vals["arrival_s"] = arrival_s
        return Request(idx=i, u_classify=float(self._u[i]), after_ids=self.after_ids(i), **vals)
