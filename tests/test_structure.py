"""Structure: no import cycle between simroute's subpackages or between its modules; records can
only be filled by field name."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from simroute import record_types, records
from simroute.config import REPO_ROOT
from simroute.workload.request import Request
from simroute.workload.schema import SCHEMA

PKG = REPO_ROOT / "simroute"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """simroute module -> the simroute modules it imports (anywhere in the file, including
    function-local and TYPE_CHECKING imports)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            graph[mod] |= {t for t in targets if t in modules and t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_no_import_cycle_between_subpackages() -> None:
    units: dict[str, set[str]] = {}
    for mod, deps in import_graph().items():
        units.setdefault(_unit(mod), set()).update(_unit(d) for d in deps if _unit(d) != _unit(mod))
    assert cycles(units) == []


def test_request_view_fields_are_table_columns() -> None:
    """The per-request view is the table's row by name: every field but ``idx`` and
    ``u_classify`` is a column of the request table."""
    view = {f.name for f in dataclasses.fields(Request)} - {"idx", "u_classify"}
    assert view <= set(SCHEMA), sorted(view - set(SCHEMA))


@pytest.mark.parametrize("cls", [record_types.RequestRecord, record_types.AttemptRecord])
def test_records_are_filled_by_name(cls: type) -> None:
    """Records cannot be built positionally, and the table is built by field name: a record class
    with the same fields in another order gives the same columns with the same values."""
    names = [f.name for f in dataclasses.fields(cls)]
    with pytest.raises(TypeError):
        cls(*range(len(names)))
    rng = np.random.default_rng(0)
    kinds = records.field_kinds(cls)
    values = [{n: _value(kinds[n], rng) for n in names}, {n: _value(kinds[n], rng) for n in names}]
    table = records.to_frame([cls(**v) for v in values], cls)
    order = list(reversed(names))
    shuffled = dataclasses.make_dataclass("Shuffled", [(n, kinds[n]) for n in order], kw_only=True)
    other = records.to_frame([shuffled(**v) for v in values], shuffled)
    assert other.columns == order
    assert other.select(names).equals(table)
    for n in names:
        assert table[n].to_list() == [v[n] for v in values]


def _value(typ: str, rng: np.random.Generator) -> object:
    return {
        "int": int(rng.integers(0, 1000)),
        "float": float(rng.random()),
        "bool": bool(rng.integers(0, 2)),
        "str": f"s{rng.integers(0, 1000)}",
        "str | None": f"o{rng.integers(0, 1000)}",
    }[typ]


def test_empty_records_have_the_schema() -> None:
    t = records.to_frame([], record_types.AttemptRecord)
    assert t.height == 0
    assert t.schema["busy_s"] == pl.Float64()


@pytest.mark.parametrize("spill_rows", [10**9, 7, 10, 50])
@pytest.mark.parametrize("cls", [record_types.RequestRecord, record_types.AttemptRecord])
def test_record_log_gives_the_table_to_frame_gives(cls: type, spill_rows: int) -> None:
    """The columnar log (what simulations use) equals the straightforward per-record table, with
    repeated and missing strings, whether its records stay in memory or were written to its spill
    file in chunks (with a partial chunk left in memory, none, or all records spilled); an empty
    log has the schema."""
    kinds = records.field_kinds(cls)
    rng = np.random.default_rng(1)
    recs = []
    for k in range(50):
        v = {name: _value(kind, rng) for name, kind in kinds.items()}
        for name, kind in kinds.items():
            if kind == "str | None" and k % 7 == 0:
                v[name] = None
            elif kind.startswith("str"):
                v[name] = f"w{k % 3}"
        recs.append(cls(**v))
    log = records.RecordLog(cls, spill_rows=spill_rows)
    for r in recs:
        log.append(r)
    assert len(log) == 50
    in_memory = min(len(b) for b in log._cols.values()) + len(log._rows)  # buffers, pending tuples
    assert in_memory == 50 % spill_rows  # the rest were spilled
    assert log.frame().equals(records.to_frame(recs, cls))
    idx = next(name for name, kind in kinds.items() if kind == "int")
    assert log.column(idx).tolist() == [getattr(r, idx) for r in recs]
    more = records.RecordLog(cls, spill_rows=spill_rows)  # a column read between spills
    for k, r in enumerate(recs):
        more.append(r)
        if k in (9, 23):
            assert more.column(idx).tolist() == [getattr(x, idx) for x in recs[: k + 1]]
    assert more.frame().equals(records.to_frame(recs, cls))
    batched = records.RecordLog(cls, spill_rows=spill_rows)  # given as values, in uneven batches
    for a, b in ((0, 3), (3, 3), (3, 20), (20, 50)):
        batched.extend([r.values() for r in recs[a:b]])
    assert len(batched) == 50 and batched.frame().equals(records.to_frame(recs, cls))
    assert records.RecordLog(cls).frame().schema == records.to_frame([], cls).schema
    order = rng.permutation(50)
    assert log.take_frame(order).equals(records.to_frame([recs[i] for i in order], cls))
    assert len(log) == 0 and log.frame().height == 0  # taken: the log is empty
    assert records.RecordLog(cls).take_frame(np.zeros(0, np.int64)).schema == records.to_frame([], cls).schema
    if spill_rows < 50:  # a spill file cut short is an error, not a column of garbage
        for r in recs:
            log.append(r)
        assert log._file is not None
        log._file.truncate(8)
        with pytest.raises(OSError, match="short read"):
            log.column(idx)


@pytest.mark.parametrize("overrides", [["workload.n_requests=3000"], ["experiment=claude_code"]])
def test_request_rows_give_each_row_by_column_name(overrides: list[str]) -> None:
    """A request record built from the row store (the field-by-field fast path and the generic
    reference) equals one filled by name from the table's row (types included: ints, floats, flags,
    text, gates), with an issue time given or not; so do a step's gates."""
    from simroute.config import compose
    from simroute.sim.build import setup
    from simroute.sim.rows import RequestRows, StepGate

    table = setup(compose(overrides), 0).table
    u = np.random.default_rng(0).random(len(table))
    rows = RequestRows(table, u)
    names = [f.name for f in dataclasses.fields(Request)]
    for i in range(0, len(table), max(len(table) // 300, 1)):
        row = table.df.row(i, named=True)
        kw = {n: row[n] for n in names if n not in ("idx", "u_classify", "after_ids")}
        want = Request(idx=i, u_classify=float(u[i]), after_ids=tuple(row["after_ids"]), **kw)
        for got in (rows.get(i), rows.get_generic(i)):
            types = [type(getattr(r, n)) for r in (got, want) for n in names]
            assert got == want and types[: len(names)] == types[len(names) :]
        assert rows.get(i, arrival_s=7.5) == dataclasses.replace(want, arrival_s=7.5)
        assert rows.get_generic(i, arrival_s=7.5) == dataclasses.replace(want, arrival_s=7.5)
        gate = rows.gate_of(i)
        assert gate == StepGate(want.session_id, want.after_ids, want.think_s)


@pytest.mark.parametrize("cls", [record_types.RequestRecord, record_types.AttemptRecord])
def test_record_column_kinds_read_from_source_match_the_annotations(cls: type) -> None:
    """A compiled record class holds ``str | None`` only as ``type``, so its column kinds are read
    from its module's source: they are the annotations the interpreted class holds, in field order."""
    read = records._source_annotations(cls.__module__, cls.__qualname__)
    assert list(read) == [f.name for f in dataclasses.fields(cls)]
    assert read == records.field_kinds(cls)
    assert "str | None" in read.values() or cls is record_types.AttemptRecord
