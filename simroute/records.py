"""What a simulated architecture produces: one named record per request and per attempt, turned into
columnar tables by field name, and the :class:`SimResult` that analysis and export read.

Records are keyword-only dataclasses: a value can only reach its column by name, so reordering the
fields reorders the columns of the table and never misaligns a value (tested).
"""

from __future__ import annotations

import ast
import functools
import io
import operator
import os
import shutil
import tempfile
import weakref
from array import array
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

_DTYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
    "str | None": pl.String(),
}


def field_kinds(cls: type) -> dict[str, str]:
    """Field -> its annotation as written (``"int"``, ``"str | None"``, ...) of a record class, in
    field order. A compiled class (:mod:`simroute.compiled`) holds its annotations as types, and
    ``str | None`` only as ``type``: its annotations are read from its module's source instead."""
    fs = fields(cls)
    if all(isinstance(f.type, str) for f in fs):
        return {f.name: str(f.type) for f in fs}
    written = _source_annotations(cls.__module__, cls.__qualname__)
    return {f.name: written[f.name] for f in fs}


@functools.cache
def _source_annotations(module: str, qualname: str) -> dict[str, str]:
    """The annotations of class ``qualname`` in the source file of ``module`` (a module of this
    package), each as written."""
    path = Path(__file__).resolve().parent.parent.joinpath(*module.split(".")).with_suffix(".py")
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.ClassDef) and node.name == qualname:
            return {
                a.target.id: ast.unparse(a.annotation)
                for a in node.body
                if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
            }
    raise LookupError(f"{path}: no class {qualname}")


def schema(cls: type) -> dict[str, pl.DataType]:
    """Column -> Polars dtype of a record class, in field order."""
    return {name: _DTYPES[kind] for name, kind in field_kinds(cls).items()}


def to_frame(records: Sequence[Any], cls: type) -> pl.DataFrame:
    """The records of class ``cls`` as a table, each column filled by field name."""
    cols = schema(cls)
    if not records:
        return pl.DataFrame(schema=cols)
    get = operator.attrgetter(*cols)
    data = zip(*map(get, records), strict=True)
    series = [pl.Series(name, list(v), dtype=dt) for (name, dt), v in zip(cols.items(), data, strict=True)]
    return pl.DataFrame(series)


_ARRAY_CODES: dict[str, tuple[str, type]] = {
    "int": ("q", np.int64),
    "float": ("d", np.float64),
    "bool": ("b", np.int8),
}
"""Record field type -> (``array`` type code, NumPy dtype of its buffer)."""


SPILL_ROWS = 65_536
"""Records a :class:`RecordLog` holds in memory before it writes their columns to its spill file:
each of a run's two logs then holds fewer than this many records in memory, whatever the run's
size (about 17 MiB for both: 152 bytes a request record, 102 an attempt record, plus the buffers'
over-allocation)."""

FLUSH_ROWS = 4_096
"""Records a :class:`RecordLog` keeps as the tuples of their values before it moves them into its
column buffers in one pass per column (about 4 MiB for both of a run's logs)."""


@dataclass(frozen=True)
class _Chunk:
    """Where one spilled column chunk lies in a log's spill file: byte offset and values."""

    offset: int
    count: int


def _codes(vocab: dict[str | None, int], words: Sequence[str | None]) -> array[int]:
    """The words' codes in ``vocab``, a word not in it getting the next code the first time it is
    seen (new words in order of first sight)."""
    try:
        return array("i", map(vocab.__getitem__, words))  # most flushes bring no new word
    except KeyError:
        for word in dict.fromkeys(words):
            vocab.setdefault(word, len(vocab))
        return array("i", map(vocab.__getitem__, words))


class RecordLog:
    """An append-only log of records of one class, held by column: numbers and flags in typed
    ``array`` buffers (8 bytes a value, not a Python object each), strings as codes into a small
    per-column vocabulary. The latest records (fewer than :data:`FLUSH_ROWS`) wait as tuples of
    their values and move into the buffers a column at a time (a read moves them first). Every
    ``spill_rows`` records the buffers are written to an anonymous
    temporary file (in ``tempfile.gettempdir()``: ``TMPDIR``) and emptied, so a long run's log
    does not grow in memory (``None``: :data:`SPILL_ROWS` as it is when the log is made).
    :meth:`frame` gives the table :func:`to_frame` gives for the same records, spilled or not
    (tested); a record reaches its columns by field name, or by its own written-out ``values()``
    in field order (tested)."""

    def __init__(self, cls: type, spill_rows: int | None = None) -> None:
        self.cls = cls
        self._schema = schema(cls)
        values = getattr(cls, "values", None)  # a record's own written-out values, else by name
        self._get = values if callable(values) else operator.attrgetter(*self._schema)
        self._cols: dict[str, array[Any]] = {}
        self._vocab: dict[str, dict[str | None, int]] = {}
        self._kind = field_kinds(cls)
        for name, kind in self._kind.items():
            self._cols[name] = array(_ARRAY_CODES[kind][0] if kind in _ARRAY_CODES else "i")
            if kind not in _ARRAY_CODES:
                self._vocab[name] = {}
        self._rows: list[tuple[Any, ...]] = []  # the latest records' values, not yet in the buffers
        self._n = 0
        self._spill_rows = SPILL_ROWS if spill_rows is None else spill_rows
        self._flush_rows = min(FLUSH_ROWS, self._spill_rows)
        self._spilled = 0  # records in the spill file
        self._file: io.BufferedRandom | None = None
        self._chunks: dict[str, list[_Chunk]] = {name: [] for name in self._schema}

    def __len__(self) -> int:
        return self._n

    def append(self, record: Any) -> None:
        """Add one record (an instance of the log's class)."""
        self.extend((self._get(record),))

    def extend(self, values: Sequence[tuple[Any, ...]]) -> None:
        """Add records given as their values, each in field order (what a record's own
        ``values()`` gives): as :meth:`append` of each, in one call."""
        self._rows.extend(values)
        self._n += len(values)
        if len(self._rows) >= self._flush_rows or self._n - self._spilled >= self._spill_rows:
            self._flush()
            if self._n - self._spilled >= self._spill_rows:
                self._spill()

    def _flush(self) -> None:
        """Move the pending records' values into the column buffers, one column at a time (a
        string gets its column's next code the first time it is seen). All or nothing: a value
        of the wrong type leaves the buffers as they were and raises a TypeError naming its field."""
        if not self._rows:
            return
        moved: list[array[Any]] = []
        for name, values in zip(self._schema, zip(*self._rows, strict=True), strict=True):
            buf = self._cols[name]
            vocab = self._vocab.get(name)
            if vocab is not None:
                moved.append(_codes(vocab, values))
                continue
            try:
                moved.append(array(buf.typecode, values))
            except TypeError as e:
                kind = self._kind[name]
                raise TypeError(f"{self.cls.__name__}.{name}: expected {kind} values ({e})") from e
        for buf, new in zip(self._cols.values(), moved, strict=True):
            buf.extend(new)
        self._rows.clear()

    def _spill(self) -> None:
        """Append every column's buffer to the spill file and empty the buffers."""
        if self._file is None:
            # closed by take_frame, or when the log is collected (a failed run): it has no name
            self._file = tempfile.TemporaryFile(prefix="simroute-log-")  # noqa: SIM115
            weakref.finalize(self, self._file.close)
        self._file.seek(0, os.SEEK_END)  # reading a column moved the position
        for name, buf in self._cols.items():
            self._chunks[name].append(_Chunk(self._file.tell(), len(buf)))
            buf.tofile(self._file)
            del buf[:]
        self._spilled = self._n

    def frame(self) -> pl.DataFrame:
        """The logged records as a table, one column per field in field order."""
        return pl.DataFrame([self._series(name) for name in self._schema])

    def column(self, name: str) -> np.ndarray:
        """A logged number or flag column (int8 for flags; a copy)."""
        return self._values(name, _ARRAY_CODES[self._kind[name]][1])

    def _values(self, name: str, dtype: type, out: np.ndarray | None = None) -> np.ndarray:
        """Column ``name``'s values, spilled chunks then buffer, as a new array of ``dtype`` (or
        into ``out``, of that dtype and length, returned). Each spilled chunk is read straight into
        its place: no array of its own per chunk (fresh memory costs page faults)."""
        self._flush()
        if out is None:
            out = np.empty(self._n, dtype)
        if out.dtype != dtype or len(out) != self._n:
            have = f"{len(out)} of {out.dtype}"
            raise ValueError(f"column {name!r} needs {self._n} values of {np.dtype(dtype)}, not {have}")
        k = 0
        for c in self._chunks[name]:
            assert self._file is not None
            self._file.seek(c.offset)
            want = c.count * out.itemsize
            got = self._file.readinto(out[k : k + c.count].data.cast("B"))
            if got != want:
                raise OSError(f"short read from the record log's spill file ({got} of {want} bytes)")
            k += c.count
        buf = self._cols[name]
        if len(buf):
            out[k:] = np.frombuffer(buf, dtype=dtype)
        return out

    def take_frame(self, order: np.ndarray, columns: Collection[str] | None = None) -> pl.DataFrame:
        """The logged records in the row order ``order`` (a permutation of the record numbers) as
        :meth:`frame` would give them sorted so, and the log emptied: each column is reordered and
        its buffer freed before the next, so the log and the table are never both held in full.
        ``columns``: only the fields it names (field order), if given. The log is emptied whether
        or not this raises (a log whose columns were partly freed is never left to read)."""
        names = [name for name in self._schema if columns is None or name in columns]
        scratch: dict[type, np.ndarray] = {}  # each column read into one array, then put in order
        try:
            series = [self._series(name, order, scratch) for name in names]
        finally:  # emptied as documented even when a column fails: never left half-taken
            self._empty()
        return pl.DataFrame(series)

    def spool(self, folder: Path, order: np.ndarray) -> ColumnSpool:
        """Write the logged records, in the row order ``order``, into ``folder`` (created) one
        column at a time, each freed before the next is built, and empty the log: the table is
        never held whole here (:meth:`ColumnSpool.frame` reads it back equal to
        :meth:`take_frame`'s). The log is emptied whether or not this raises."""
        folder.mkdir(parents=True, exist_ok=True)
        scratch: dict[type, np.ndarray] = {}
        try:
            for i, name in enumerate(self._schema):
                np.save(folder / f"{i}.npy", self._ordered(name, order, scratch))
            words = {name: self._words(name) for name in self._vocab}
        finally:  # emptied as documented even when a write fails: never left half-taken
            self._empty()
        return ColumnSpool(self.cls, folder, words)

    def _empty(self) -> None:
        """Forget every record (every column's buffer emptied, taken or not) and close the spill
        file."""
        for buf in self._cols.values():
            del buf[:]
        self._rows.clear()
        self._n = self._spilled = 0
        self._chunks = {name: [] for name in self._schema}
        if self._file is not None:
            self._file.close()
            self._file = None

    def _ordered(
        self, name: str, order: np.ndarray | None, scratch: dict[type, np.ndarray] | None = None
    ) -> np.ndarray:
        """Column ``name``'s values (string codes for a string column), in ``order`` and its
        buffer then emptied if given; read into ``scratch``'s array of their dtype (made there
        the first time) before they are put in order, if given: the columns of one take share it."""
        kind = self._kind[name]
        dtype = np.int32 if name in self._vocab else _ARRAY_CODES[kind][1]
        buf = None
        if order is not None and scratch is not None:
            buf = scratch.get(dtype)
            if buf is None:
                buf = scratch[dtype] = np.empty(self._n, dtype)
        vals = self._values(name, dtype, buf)
        if order is not None:
            del self._cols[name][:]
            vals = vals[order]
        return vals

    def _words(self, name: str) -> list[str | None]:
        """String column ``name``'s vocabulary, by code."""
        self._flush()
        words: list[str | None] = [None] * len(self._vocab[name])
        for w, code in self._vocab[name].items():
            words[code] = w
        return words

    def _series(
        self, name: str, order: np.ndarray | None = None, scratch: dict[type, np.ndarray] | None = None
    ) -> pl.Series:
        """Column ``name`` (in ``order``, its buffer then emptied, if given; see :meth:`_ordered`)."""
        words = self._words(name) if name in self._vocab else None
        return _column(name, self._schema[name], self._kind[name], self._ordered(name, order, scratch), words)


def _column(
    name: str, dtype: pl.DataType, kind: str, vals: np.ndarray, words: list[str | None] | None
) -> pl.Series:
    """A log column as a Series: its values, or for a string column its codes into ``words``."""
    if words is not None:
        return pl.Series(name, words, dtype=pl.String).gather(vals)
    return pl.Series(name, vals.astype(bool) if kind == "bool" else vals, dtype=dtype)


@dataclass(frozen=True)
class ColumnSpool:
    """A record log's table written by :meth:`RecordLog.spool`: one ``{i}.npy`` per field of
    ``cls`` in field order (a string column as int32 codes into ``words[name]``). Small enough to
    send to another process, which reads the table back with :meth:`frame`."""

    cls: type
    folder: Path
    words: dict[str, list[str | None]]

    def frame(self, columns: Collection[str] | None = None) -> pl.DataFrame:
        """The table, equal to what :meth:`RecordLog.take_frame` would have given (values, dtypes
        and order); only the fields ``columns`` names, if given."""
        kinds = field_kinds(self.cls)
        series = [
            _column(name, dtype, kinds[name], np.load(self.folder / f"{i}.npy"), self.words.get(name))
            for i, (name, dtype) in enumerate(schema(self.cls).items())
            if columns is None or name in columns
        ]
        return pl.DataFrame(series)


@dataclass(frozen=True)
class ArmRecords:
    """What a finished simulation logged, before it is joined with the request table and priced
    (:func:`simroute.sim.run.result_tables` makes the :class:`SimResult`): small enough to hand
    from a worker process, since it holds none of the request table's columns.

    Attributes:
        requests: :class:`RequestRecord` columns, one row per request, in row (``idx``) order.
        attempts: :class:`AttemptRecord` columns, by ``idx`` then ``attempt``.
        local_gpus: GPUs provisioned for the local tier.
        gpu_hour_usd: what a provisioned GPU-hour costs (USD).
        provision_local: whether the architecture provisions the local GPUs.
        batch_jobs: batch jobs submitted; ``batch_expired_jobs`` of them expired.
        batch_expired_jobs: see ``batch_jobs``.
        cache_counts: response-cache lookups by outcome, inserts, evictions, expiries (this run).
    """

    requests: pl.DataFrame
    attempts: pl.DataFrame
    local_gpus: int
    gpu_hour_usd: float
    provision_local: bool
    batch_jobs: int
    batch_expired_jobs: int
    cache_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SpooledRecords:
    """An arm's :class:`ArmRecords` handed from a worker process through files: its two tables as
    :class:`ColumnSpool` s under ``folder`` and its other fields in ``rest``. A pickled result of a
    million requests would be hundreds of MiB of bytes held whole while as much again is
    unpickled; written a column at a time, the worker never holds a whole table, and the parent
    reads each back once (equal: values, dtypes, order)."""

    folder: Path
    requests: ColumnSpool
    attempts: ColumnSpool
    rest: dict[str, Any]

    def read(self, attempt_columns: Collection[str] | None = None) -> ArmRecords:
        """The records (of the attempts, only the fields ``attempt_columns`` names, if given);
        ``folder`` is then removed."""
        out = ArmRecords(self.requests.frame(), self.attempts.frame(attempt_columns), **self.rest)
        shutil.rmtree(self.folder)
        return out


@dataclass(frozen=True)
class SimResult:
    """What one simulated architecture produced.

    Attributes:
        requests: one row per request (see :func:`simroute.sim.run.simulate`), in ``request_id`` order.
        attempts: one row per attempt.
        local_fixed_usd: provisioned local GPU cost over the billing horizon (USD).
        local_gpus: GPUs provisioned.
        horizon_s: billing horizon of the local GPUs (s).
        batch_jobs: batch jobs submitted; ``batch_expired_jobs`` of them expired.
        batch_expired_jobs: see ``batch_jobs``.
        cache_counts: response-cache lookups by outcome, inserts, evictions, expiries (empty: none).
    """

    requests: pl.DataFrame
    attempts: pl.DataFrame
    local_fixed_usd: float
    local_gpus: int
    horizon_s: float
    batch_jobs: int
    batch_expired_jobs: int
    cache_counts: Mapping[str, int] = field(default_factory=dict)
