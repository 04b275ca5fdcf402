"""Render the README and the paper from templates whose every result number is a reference.

A template is Markdown with placeholders ``{{ FILE | SELECTOR | FORMAT }}`` that read one value from
a stored output (CSV, JSON or YAML under the repository) and format it, and ``{{ include FILE }}``
that pastes a stored Markdown table. Selectors:

- JSON / YAML: a dotted path, list indices as numbers (``summary.baseline.cost_total_usd``,
  ``experiments.0.id``); a key that itself contains dots is matched whole
  (``accuracy.gpt-4-1106-preview``, ``ability.mistralai/Mixtral-8x7B-Instruct-v0.1.all``);
- CSV (or a JSON list of objects): ``COLUMN`` of the single row matching ``KEY=VALUE,KEY=VALUE``
  filters, written ``KEY=VALUE,KEY=VALUE : COLUMN`` (values compared as strings).

Formats (units in the name): ``pct0/pct1/pct2`` (fraction -> percent, e.g. ``66.1 %``),
``pp1/pp2`` (signed percentage points from a fraction difference), ``ppa1`` (unsigned),
``spct1`` (signed percent from a fraction), ``usd0/usd1/usd2/usd4`` (``$1,821``), ``int``
(``49,334``), ``f0``..``f4``, ``x1``
(``12.3×``), ``s0/s1/s2`` (seconds), ``ms0/ms1``, ``gb1``, ``ms_s0`` (stored in milliseconds, shown
in seconds), ``mib_gib1`` (stored in MiB, shown in GiB), ``raw`` (as stored). A stored null renders
as ``—``. Usage:
``python experiments/paper/render.py [--check]`` renders ``paper/templates/*.md`` to their
targets (``--check``: exit 1 if a target differs, without writing).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"paper/templates/README.md": "README.md", "paper/templates/paper.md": "paper/README.md"}
"""Template -> rendered file, both relative to the repository root."""
PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)


class RenderError(Exception):
    """A placeholder that does not resolve: names the template, the placeholder and why."""


def _signed(x: float, digits: int, unit: str) -> str:
    s = f"{x:+,.{digits}f}".replace("-", "−")
    return f"{s} {unit}" if unit else s


def _usd(x: float, d: int) -> str:
    return f"${x:,.{d}f}".replace("$-", "−$")


_KINDS: dict[str, Callable[[float, int], str]] = {
    "f": lambda x, d: f"{x:,.{d}f}",
    "pct": lambda x, d: f"{100 * x:.{d}f} %",
    "pp": lambda x, d: _signed(100 * x, d, "pp"),
    "ppa": lambda x, d: f"{100 * x:.{d}f} pp",
    "spct": lambda x, d: _signed(100 * x, d, "%"),
    "usd": _usd,
    "x": lambda x, d: f"{x:,.{d}f}×",
    "s": lambda x, d: f"{x:,.{d}f} s",
    "ms": lambda x, d: f"{x:,.{d}f} ms",
    "gb": lambda x, d: f"{x:.{d}f} GB",
    "ms_s": lambda x, d: f"{x / 1000:,.{d}f} s",
    "mib_gib": lambda x, d: f"{x / 1024:,.{d}f} GiB",
}
FORMAT = re.compile(r"(raw|int|[a-z_]+?)(\d?)$")


def fmt(name: str, value: Any) -> str:
    """Format ``value`` by ``name``: ``raw``, ``int``, ``met`` (a stored true/false: met / missed) or
    a kind of :data:`_KINDS` plus a digit count; a stored null (``None``) is ``—`` whatever the
    format."""
    if value is None:
        return "—"
    if name == "raw":
        return str(value)
    if name == "int":
        return f"{round(float(value)):,}"
    if name == "met":  # a stored verdict (e.g. a bench's meets_target)
        if not isinstance(value, bool):
            raise RenderError(f"format 'met' needs true or false, got {value!r}")
        return "met" if value else "missed"
    m = FORMAT.match(name)
    if not m or m.group(1) not in _KINDS or not m.group(2):
        raise RenderError(f"unknown format {name!r} (raw, int or one of {sorted(_KINDS)} + digits)")
    return _KINDS[m.group(1)](float(value), int(m.group(2)))


def _load(path: Path, cache: dict[Path, Any]) -> Any:
    if path not in cache:
        if not path.is_file():
            raise RenderError(f"no such stored output: {path.relative_to(ROOT)}")
        text = path.read_text()
        if path.suffix == ".csv":
            cache[path] = list(csv.DictReader(text.splitlines()))
        elif path.suffix in (".yaml", ".yml"):
            cache[path] = yaml.safe_load(text)
        elif path.suffix == ".json":
            cache[path] = json.loads(text)
        else:
            cache[path] = text
    return cache[path]


def _select(data: Any, selector: str, name: str) -> Any:
    if isinstance(data, list) and data and isinstance(data[0], dict) and ":" in selector:
        filt, col = (p.strip() for p in selector.rsplit(":", 1))
        conds = [tuple(c.strip().split("=", 1)) for c in filt.split(",") if c.strip()]
        rows = [r for r in data if all(str(r.get(k)) == v for k, v in conds)]
        if len(rows) != 1:
            raise RenderError(f"{name}: {len(rows)} rows match {filt!r} (expected exactly 1)")
        if col not in rows[0]:
            raise RenderError(f"{name}: no column {col!r}")
        return rows[0][col]
    parts = selector.split(".")
    i = 0
    while i < len(parts):
        if isinstance(data, dict):  # the longest run of parts that is a key (keys may hold dots)
            j = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in data), i + 1)
            key: Any = ".".join(parts[i:j])
        else:
            j, key = i + 1, parts[i]
        try:
            data = data[int(key)] if isinstance(data, list) else data[key]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise RenderError(f"{name}: no {parts[i]!r} in path {selector!r}") from exc
        i = j
    return data


def resolve(expr: str, cache: dict[Path, Any]) -> str:
    """The text that replaces one placeholder ``expr`` (without the braces)."""
    if expr.startswith("include "):
        return str(_load(ROOT / expr.split(None, 1)[1].strip(), cache)).rstrip("\n")
    parts = [p.strip() for p in expr.split("|")]
    if len(parts) != 3:
        raise RenderError(f"placeholder {{{{ {expr} }}}}: expected FILE | SELECTOR | FORMAT")
    file, selector, name = parts
    value = _select(_load(ROOT / file, cache), selector, file)
    try:
        return fmt(name, value)
    except (TypeError, ValueError) as exc:
        raise RenderError(f"placeholder {{{{ {expr} }}}}: value {value!r} is not a number") from exc


def render(template: str, source: str = "template") -> str:
    """``template`` with every placeholder replaced; RenderError names the first that fails."""
    cache: dict[Path, Any] = {}

    def sub(m: re.Match[str]) -> str:
        try:
            return resolve(m.group(1), cache)
        except RenderError as exc:
            raise RenderError(f"{source}: {exc}") from None

    return PLACEHOLDER.sub(sub, template)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    a = ap.parse_args()
    stale = []
    for tpl, target in TARGETS.items():
        text = render((ROOT / tpl).read_text(), tpl)
        out = ROOT / target
        if a.check:
            if not out.is_file() or out.read_text() != text:
                stale.append(target)
        else:
            out.write_text(text)
    for s in stale:
        print(f"{s} differs from its template rendered with the stored outputs", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
