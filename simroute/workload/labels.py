"""Fill in what real traces lack — skill, urgency, deadline, difficulty, risk — by a documented rule.

Real traces carry arrival times and token counts only. The *skill* of each request is assigned by
the first matching **token-shape rule** of the workload config (``labels.rules``: inclusive bounds
``prompt_min``/``prompt_max``/``output_min``/``output_max`` in tokens; a missing bound is open),
falling back to ``labels.default``. A rule may also require fields the trace itself records
(``when: {column: value or [values]}``, e.g. ``{stop_reason: tool_use}`` or ``{output_types: thinking}``
for the Claude Code sessions): a text or boolean column matches when its value is listed, a list column
when any listed value is in the row's list. Urgency, deadline, difficulty and risk features are then drawn
from that skill's profile (the same profiles the synthetic generator uses) with the generator
``rng.stream(seed, "workload.labels")``; in a trace of closed-loop sessions (``after_ids``, e.g. the
Claude Code sessions) urgency is a property of the session, drawn once from its first call's skill.
Columns the trace already has (e.g. a native Parquet
table) are kept as they are. ``label_counts`` records how many rows each rule labelled; it goes
into ``summary.json`` so the assignment is never silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from simroute import rng as rng_mod
from simroute.errors import ConfigError
from simroute.workload.loaders import RawTrace
from simroute.workload.schema import SCHEMA, RequestTable
from simroute.workload.skills import RISK_FEATURES, SkillCatalog, draw_urgency, sample_attributes


@dataclass(frozen=True)
class ShapeRule:
    """Assign ``skill`` to requests whose token counts fall in the inclusive bounds (tokens)."""

    skill: str
    prompt_min: int = 0
    prompt_max: int = 2**62
    output_min: int = 0
    output_max: int = 2**62
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(raw trace column, accepted values) pairs that must all match."""

    def describe(self) -> str:
        """Human-readable form used as the key of ``label_counts``."""
        parts = []
        if self.prompt_min > 0:
            parts.append(f"prompt>={self.prompt_min}")
        if self.prompt_max < 2**62:
            parts.append(f"prompt<={self.prompt_max}")
        if self.output_min > 0:
            parts.append(f"output>={self.output_min}")
        if self.output_max < 2**62:
            parts.append(f"output<={self.output_max}")
        parts += [
            f"{col} in {list(vals)}" if len(vals) > 1 else f"{col}={vals[0]}" for col, vals in self.when
        ]
        return f"{self.skill} ({', '.join(parts) or 'any'})"


def rules_from_config(rules: Sequence[Mapping[str, Any]], catalog: SkillCatalog) -> list[ShapeRule]:
    """Parse ``labels.rules`` entries, checking the skill names and bound keys."""
    out = []
    allowed = {"skill", "prompt_min", "prompt_max", "output_min", "output_max", "when"}
    for k, r in enumerate(rules):
        extra = set(r) - allowed
        if extra:
            raise ConfigError(f"labels.rules[{k}]: unknown key(s) {sorted(extra)}; allowed {sorted(allowed)}")
        catalog.profile(str(r["skill"]))
        big = 2**62
        out.append(
            ShapeRule(
                str(r["skill"]),
                int(r.get("prompt_min", 0)),
                int(r.get("prompt_max", big)),
                int(r.get("output_min", 0)),
                int(r.get("output_max", big)),
                _when(r.get("when") or {}, f"labels.rules[{k}].when"),
            )
        )
    return out


def _when(spec: Mapping[str, Any], where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{column: value or [values]}`` -> sorted (column, values as text) pairs."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping of trace column -> value(s), got {spec!r}")
    out = []
    for col, v in spec.items():
        vals = list(v) if isinstance(v, list | tuple) else [v]
        if not vals:
            raise ConfigError(f"{where}.{col}: give at least one value")
        out.append((str(col), tuple(_text(x) for x in vals)))
    return tuple(sorted(out))


def _text(v: Any) -> str:
    """A config value as the text form of a trace value (booleans as ``true``/``false``)."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def field_mask(df: pl.DataFrame, column: str, values: tuple[str, ...], where: str) -> np.ndarray:
    """Rows whose ``column`` matches ``values`` (a list column: any listed value is in the list)."""
    if column not in df.columns:
        raise ConfigError(
            f"{where}: the trace has no column {column!r}; "
            f"it has {sorted(c for c in df.columns if c[0] != '_')}"
        )
    s = df[column]
    if s.dtype == pl.List(pl.String):
        m = s.list.eval(pl.element().is_in(list(values))).list.any().fill_null(False)
    elif s.dtype == pl.Boolean:
        m = s.cast(pl.String).str.to_lowercase().is_in(list(values)).fill_null(False)
    else:
        m = s.cast(pl.String).is_in(list(values)).fill_null(False)
    return np.asarray(m.to_numpy(), dtype=bool)


def assign_skills(
    prompt: np.ndarray,
    output: np.ndarray,
    rules: Sequence[ShapeRule],
    default: str,
    fields: pl.DataFrame | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Apply the first-match rules to token counts (and ``fields``, the raw trace columns a rule's
    ``when`` names); return skill names and per-rule counts."""
    skill = np.full(len(prompt), default, dtype=object)
    done = np.zeros(len(prompt), dtype=bool)
    counts: dict[str, int] = {}
    for k, r in enumerate(rules):
        m = (
            ~done
            & (prompt >= r.prompt_min)
            & (prompt <= r.prompt_max)
            & (output >= r.output_min)
            & (output <= r.output_max)
        )
        for col, vals in r.when:
            if fields is None:
                raise ConfigError(f"labels.rules[{k}]: 'when' needs the trace's own columns")
            m &= field_mask(fields, col, vals, f"labels.rules[{k}].when")
        skill[m] = r.skill
        done |= m
        counts[f"rule {k + 1}: {r.describe()}"] = int(m.sum())
    counts[f"default: {default}"] = int((~done).sum())
    return skill.astype(str), counts


def _session_urgency(
    df: pl.DataFrame, catalog: SkillCatalog, code: np.ndarray, seed: int
) -> np.ndarray | None:
    """For a trace of closed-loop sessions (some ``after_ids``): one urgency per session, drawn from
    the skill mix of its first call (stream ``workload.session_urgency``), so every step of an
    interactive session is interactive and none of them can wait for the batch tier. None (one
    urgency per request) for other traces."""
    if "after_ids" not in df.columns or "session_id" not in df.columns:
        return None
    if int(df["after_ids"].list.len().sum()) == 0:
        return None
    sess = df["session_id"].cast(pl.Int64).to_numpy()
    _, first, inverse = np.unique(sess, return_index=True, return_inverse=True)
    per_session = draw_urgency(
        list(catalog.profiles), code[first], rng_mod.stream(seed, "workload.session_urgency")
    )
    return np.asarray(per_session[inverse.reshape(-1)])


def label_trace(
    raw: RawTrace,
    catalog: SkillCatalog,
    rules: Sequence[ShapeRule],
    default: str,
    seed: int,
) -> RequestTable:
    """Turn a raw trace into a validated :class:`RequestTable` (see module docstring)."""
    catalog.profile(default)
    df = raw.df
    n = df.height
    cols: dict[str, Any] = {}
    if "request_id" not in df.columns:
        cols["request_id"] = np.arange(n, dtype=np.int64)
    if "session_id" not in df.columns:
        cols["session_id"] = (
            df["request_id"].to_numpy() if "request_id" in df.columns else np.arange(n, dtype=np.int64)
        )
    if "step" not in df.columns:
        cols["step"] = np.zeros(n, dtype=np.int32)
    if "prefix_hashes" not in df.columns:
        cols["prefix_hashes"] = pl.Series("prefix_hashes", [[]] * n, dtype=pl.List(pl.Int64))
    label_counts: dict[str, int] = {}
    if "skill" in df.columns:
        label_counts["given in trace"] = n
    else:
        p = df["prompt_tokens"].cast(pl.Int64, strict=False).fill_null(0).to_numpy()
        o = df["output_tokens"].cast(pl.Int64, strict=False).fill_null(0).to_numpy()
        cols["skill"], label_counts = assign_skills(p, o, rules, default, df)
    need = ["urgency", "deadline_s", "difficulty", *RISK_FEATURES]
    if any(c not in df.columns for c in need):
        lookup = {name: i for i, name in enumerate(catalog.names)}
        skills = cols["skill"] if "skill" in cols else df["skill"].cast(pl.String).to_list()
        code = np.array([lookup.get(s, 0) for s in skills], dtype=np.int64)
        attrs = sample_attributes(
            list(catalog.profiles),
            code,
            catalog.deadlines_s,
            rng_mod.stream(seed, "workload.labels"),
            urgency=_session_urgency(df, catalog, code, seed),
        )
        for c in need:
            if c not in df.columns:
                cols[c] = attrs[c]
    df = df.with_columns([pl.Series(k, v) for k, v in cols.items()])
    if "content_id" in df.columns:  # a repeated prompt is the same task: same labels as its first
        first = pl.col("_row_index").first().over("content_id")
        drawn = [c for c in ("skill", *need) if c in cols]
        df = (
            df.with_row_index("_row_index")
            .with_columns([pl.col(c).gather(first) for c in drawn])
            .drop("_row_index")
        )
    label_counts.update(raw.adjustments)
    keep = [c for c in SCHEMA if c in df.columns] + ["_row"]
    return RequestTable(
        df.select(keep), raw.source, raw.block_tokens, catalog.names, label_counts, raw.column_names
    )
