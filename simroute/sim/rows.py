"""The request table as per-request :class:`~simroute.workload.request.Request` records built on
demand: columns held as NumPy arrays (strings as codes into a small vocabulary), so a run holds a
record only while its request is in flight, not one Python object per field per row all run long."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
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
        self._cols: dict[str, Any] = {}
        for c in REQUEST_FIELDS:
            if c == "after_ids":
                continue
            s = df[c]
            if c in _CODED:
                vocab = tuple(s.unique().sort().to_list())
                self._cols[c] = (vocab, (s.rank("dense").to_numpy() - 1).astype(np.int32))
            elif s.dtype == pl.String:
                self._cols[c] = s.to_list()
            else:
                self._cols[c] = s.to_numpy()
        after = df["after_ids"]
        self._after_off = np.zeros(self._n + 1, dtype=np.int64)
        np.cumsum(after.list.len().to_numpy(), out=self._after_off[1:])
        self._after = after.explode(empty_as_null=False).to_numpy().astype(np.int64, copy=False)

    def __len__(self) -> int:
        return self._n

    def after_ids(self, i: int) -> tuple[int, ...]:
        """Row ``i``'s ``after_ids``."""
        return tuple(int(v) for v in self._after[self._after_off[i] : self._after_off[i + 1]])

    def _value(self, c: str, i: int) -> Any:
        col = self._cols[c]
        if c in _CODED:
            vocab, codes = col
            return vocab[codes[i]]
        if isinstance(col, list):
            return col[i]
        return col[i].item()

    def __getitem__(self, i: int) -> Request:
        vals = {c: self._value(c, i) for c in self._cols}
        return Request(idx=i, u_classify=float(self._u[i]), after_ids=self.after_ids(i), **vals)

    def __iter__(self) -> Iterator[Request]:
        return (self[i] for i in range(self._n))
