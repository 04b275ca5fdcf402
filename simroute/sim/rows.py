"""The request table as per-request :class:`~simroute.workload.request.Request` records built on
demand: number columns read in place from the table (views of its buffers where Polars allows, not
a copy), strings as small codes into a vocabulary, so a run holds a record only while its request is
in flight, not one Python object per field per row all run long."""

from __future__ import annotations

from collections.abc import Sequence
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


class _Views:
    """Typed, zero-copy views of a :class:`RequestRows`' columns (the ``memoryview`` of each buffer:
    indexing one gives a plain Python ``int``, ``float`` or ``bool``), the coded columns'
    vocabularies and the text columns, one attribute per :class:`Request` field."""

    def __init__(self, rows: RequestRows) -> None:
        cols, vocab, text = rows._cols, rows._vocab, rows._text

        def view(name: str) -> Any:
            return np.ascontiguousarray(cols[name]).data

        self.request_id: Sequence[int] = view("request_id")
        self.session_id: Sequence[int] = view("session_id")
        self.arrival_s: Sequence[float] = view("arrival_s")
        self.skill: Sequence[int] = view("skill")
        self.skill_words: tuple[str, ...] = vocab["skill"]
        self.urgency: Sequence[int] = view("urgency")
        self.urgency_words: tuple[str, ...] = vocab["urgency"]
        self.prompt_tokens: Sequence[int] = view("prompt_tokens")
        self.output_tokens: Sequence[int] = view("output_tokens")
        self.deadline_s: Sequence[float] = view("deadline_s")
        self.difficulty: Sequence[float] = view("difficulty")
        self.missing_repo_context: Sequence[bool] = view("missing_repo_context")
        self.dependency_chain: Sequence[int] = view("dependency_chain")
        self.risky_migration: Sequence[bool] = view("risky_migration")
        self.security_sensitive: Sequence[bool] = view("security_sensitive")
        self.high_consequence_write: Sequence[bool] = view("high_consequence_write")
        self.u_classify: Sequence[float] = np.ascontiguousarray(rows._u, dtype=np.float64).data
        self.content_id: Sequence[int] = view("content_id")
        self.intent_id: Sequence[int] = view("intent_id")
        self.prompt: Sequence[str] = text["prompt"]
        self.think_s: Sequence[float] = view("think_s")
        self.recorded_model: Sequence[int] = view("recorded_model")
        self.recorded_model_words: tuple[str, ...] = vocab["recorded_model"]
        self.after: Sequence[int] = np.ascontiguousarray(rows._after).data
        self.after_off: Sequence[int] = rows._after_off.data


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
        self._views = _Views(self)

    def __len__(self) -> int:
        return self._n

    def after_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's ``after_ids`` as flat arrays: offsets (length rows + 1) and ids."""
        return self._after_off, self._after

    def after_ids(self, i: int) -> tuple[int, ...]:
        """Row ``i``'s ``after_ids``."""
        v = self._views
        return tuple(v.after[v.after_off[i] : v.after_off[i + 1]])

    def gate_of(self, i: int) -> StepGate:
        """What releasing closed-loop row ``i`` needs, without building its whole record."""
        v = self._views
        return StepGate(v.session_id[i], self.after_ids(i), v.think_s[i])

    def __getitem__(self, i: int) -> Request:
        return self.get(i)

    def get(
        self, i: int, arrival_s: float | None = None, after_ids: tuple[int, ...] | None = None
    ) -> Request:
        """Row ``i`` as a :class:`Request`, its ``arrival_s`` replaced by ``arrival_s`` if given
        (the simulated issue time of a closed-loop step); ``after_ids``, if given, are its own
        (read already, e.g. by :meth:`gate_of`). Each field is read from its own column by name
        (a typed view of the column's buffer gives the same Python value ``to_list()`` does;
        tested against the table's rows)."""
        v = self._views
        return Request(
            idx=i,
            request_id=v.request_id[i],
            session_id=v.session_id[i],
            arrival_s=v.arrival_s[i] if arrival_s is None else arrival_s,
            skill=v.skill_words[v.skill[i]],
            urgency=v.urgency_words[v.urgency[i]],
            prompt_tokens=v.prompt_tokens[i],
            output_tokens=v.output_tokens[i],
            deadline_s=v.deadline_s[i],
            difficulty=v.difficulty[i],
            missing_repo_context=v.missing_repo_context[i],
            dependency_chain=v.dependency_chain[i],
            risky_migration=v.risky_migration[i],
            security_sensitive=v.security_sensitive[i],
            high_consequence_write=v.high_consequence_write[i],
            u_classify=v.u_classify[i],
            content_id=v.content_id[i],
            intent_id=v.intent_id[i],
            prompt=v.prompt[i],
            after_ids=self.after_ids(i) if after_ids is None else after_ids,
            think_s=v.think_s[i],
            recorded_model=v.recorded_model_words[v.recorded_model[i]],
        )

    def get_generic(self, i: int, arrival_s: float | None = None) -> Request:
        """:meth:`get` done field by field from the column list, whatever the fields: the
        straightforward reference that :meth:`get` is tested against."""
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
