"""API prices from the LiteLLM model cost map (USD per token).

The bundled file is LiteLLM 1.110.2's ``model_prices_and_context_window_backup.json`` (see
``traces/SOURCES.md``). For every chat/completion model with an input price, :class:`ModelPrice`
resolves the rates of each *mode* — ``standard``, ``batch`` (async batch API, LiteLLM's
``*_batches`` fields) and ``priority`` (``*_priority``) — for input, prompt-cache reads
(``cache_read_input_token_cost``), prompt-cache writes (``cache_creation_input_token_cost``) and
output, plus the long-context rates above 200k input tokens (``*_above_200k_tokens``).

Fallbacks, when a field is absent: a mode's rate falls back to the standard rate; a batch
cache-read rate to the standard cache-read rate scaled by the model's batch/standard input ratio;
a cache-read rate to the input rate (no discount); a cache-write rate to the input rate (no
surcharge); a long-context rate to the base rate. Unknown models raise :class:`ConfigError` with
the closest known names; aliases map other spellings (e.g. ``openai/gpt-4.1``) to table keys.
"""

from __future__ import annotations

import difflib
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from simroute.errors import ConfigError, InputError

MODES: tuple[str, ...] = ("standard", "batch", "priority")
LONG_CONTEXT_TOKENS = 200_000
"""Input size above which the ``*_above_200k_tokens`` rates apply to the whole request."""

_SUFFIX = {"standard": "", "batch": "_batches", "priority": "_priority"}


@dataclass(frozen=True)
class Rates:
    """USD per token of one mode; ``*_hi`` apply when input tokens exceed ``LONG_CONTEXT_TOKENS``."""

    input: float
    cached_input: float
    cache_write: float
    output: float
    input_hi: float
    cached_input_hi: float
    output_hi: float


@dataclass(frozen=True)
class ModelPrice:
    """Every rate of one API model.

    Attributes:
        model: LiteLLM model id.
        provider: LiteLLM provider name.
        standard, batch, priority: the :class:`Rates` of each mode.
        has_batch: the provider publishes batch prices (else ``batch`` equals ``standard``).
        has_priority: the provider publishes priority prices.
        has_long_context: the provider publishes prices above 200k input tokens.
    """

    model: str
    provider: str
    standard: Rates
    batch: Rates
    priority: Rates
    has_batch: bool
    has_priority: bool
    has_long_context: bool

    def rates(self, mode: str) -> Rates:
        """The rates of ``mode`` (one of :data:`MODES`)."""
        if mode not in MODES:
            raise ConfigError(f"unknown price mode {mode!r}; valid: {', '.join(MODES)}")
        r: Rates = getattr(self, mode)
        return r

    # convenience for the common standard/batch rates (USD per token)
    @property
    def input(self) -> float:
        """Standard input rate."""
        return self.standard.input

    @property
    def output(self) -> float:
        """Standard output rate."""
        return self.standard.output

    @property
    def cached_input(self) -> float:
        """Standard prompt-cache read rate."""
        return self.standard.cached_input

    @property
    def batch_input(self) -> float:
        """Batch input rate."""
        return self.batch.input

    @property
    def batch_output(self) -> float:
        """Batch output rate."""
        return self.batch.output


class PriceTable:
    """Lookup of :class:`ModelPrice` by LiteLLM model id (e.g. ``gpt-4.1``, ``claude-sonnet-4-5``)."""

    def __init__(
        self, entries: dict[str, ModelPrice], source: str, aliases: Mapping[str, str] | None = None
    ) -> None:
        self._entries = entries
        self.source = source
        self.aliases = dict(aliases or {})

    def __contains__(self, model: str) -> bool:
        return self.resolve(model) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def models(self) -> list[str]:
        """All model ids in the table."""
        return list(self._entries)

    def resolve(self, model: str) -> str | None:
        """The table key ``model`` stands for: itself, a configured alias, or the id without a
        ``provider/`` prefix; None if none exists."""
        for cand in (model, self.aliases.get(model), model.split("/", 1)[1] if "/" in model else None):
            if cand is not None and cand in self._entries:
                return cand
        return None

    def get(self, model: str) -> ModelPrice:
        """Return the prices of ``model``; ConfigError with close matches when unknown."""
        key = self.resolve(model)
        if key is not None:
            return self._entries[key]
        close = difflib.get_close_matches(model, list(self._entries), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"model {model!r} is not in the price table {Path(self.source).name}{hint}")

    def with_batch_scale(self, scale: float) -> PriceTable:
        """A copy whose published batch rates (every field of :class:`Rates`, USD per token) are
        multiplied by ``scale`` (> 0; 1.0 returns this table). Models without published batch prices
        keep ``batch == standard``: no discount is invented. For sensitivity analyses only."""
        if not scale > 0:
            raise ConfigError(f"models.batch_price_scale must be > 0, got {scale}")
        if scale == 1.0:
            return self

        def scaled(r: Rates) -> Rates:
            return Rates(**{f.name: getattr(r, f.name) * scale for f in fields(Rates)})

        entries = {
            k: replace(p, batch=scaled(p.batch)) if p.has_batch else p for k, p in self._entries.items()
        }
        return PriceTable(entries, self.source, self.aliases)


def batch_price_ratios(table: PriceTable) -> dict[str, list[float]]:
    """Batch/standard price ratios (dimensionless, rounded to 3 digits) of every model in ``table``
    that publishes batch prices and has positive standard rates: ``{"input": [...], "output": [...]}``
    in table order."""
    out: dict[str, list[float]] = {"input": [], "output": []}
    for m in table.models():
        p = table.get(m)
        if p.has_batch and p.standard.input > 0 and p.standard.output > 0:
            out["input"].append(round(p.batch.input / p.standard.input, 3))
            out["output"].append(round(p.batch.output / p.standard.output, 3))
    return out


def _price(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _rates(rec: Mapping[str, Any], mode: str) -> Rates:
    sfx = _SUFFIX[mode]

    def field(base: str, hi: bool) -> float | None:
        h = "_above_200k_tokens" if hi else ""
        return _price(rec.get(f"{base}{h}{sfx}"))

    std_in = _price(rec["input_cost_per_token"])
    assert std_in is not None
    std_out = _price(rec["output_cost_per_token"]) or 0.0
    inp = field("input_cost_per_token", False)
    inp = std_in if inp is None else inp
    out = field("output_cost_per_token", False)
    out = std_out if out is None else out
    ratio = inp / std_in if std_in else 1.0
    cached = field("cache_read_input_token_cost", False)
    if cached is None:
        std_cached = _price(rec.get("cache_read_input_token_cost"))
        cached = inp if std_cached is None else std_cached * ratio
    write = field("cache_creation_input_token_cost", False)
    if write is None:
        std_write = _price(rec.get("cache_creation_input_token_cost"))
        write = inp if std_write is None else std_write * ratio
    inp_hi = field("input_cost_per_token", True)
    out_hi = field("output_cost_per_token", True)
    cached_hi = field("cache_read_input_token_cost", True)
    return Rates(
        input=inp,
        cached_input=cached,
        cache_write=write,
        output=out,
        input_hi=inp if inp_hi is None else inp_hi,
        cached_input_hi=cached if cached_hi is None else cached_hi,
        output_hi=out if out_hi is None else out_hi,
    )


def load_litellm(path: str | Path, aliases: Mapping[str, str] | None = None) -> PriceTable:
    """Load a LiteLLM ``model_prices_and_context_window`` JSON (optionally ``.gz``)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except FileNotFoundError:
        raise InputError(str(p), "price table not found") from None
    except (OSError, EOFError, ValueError) as e:
        raise InputError(str(p), f"not a readable LiteLLM price JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(str(p), "expected a JSON object keyed by model id")
    entries: dict[str, ModelPrice] = {}
    for name, rec in data.items():
        if name == "sample_spec" or not isinstance(rec, dict):
            continue
        if rec.get("mode", "chat") not in ("chat", "completion", "responses"):
            continue
        if (
            _price(rec.get("input_cost_per_token")) is None
            or _price(rec.get("output_cost_per_token")) is None
        ):
            continue
        entries[name] = ModelPrice(
            model=name,
            provider=str(rec.get("litellm_provider", "")),
            standard=_rates(rec, "standard"),
            batch=_rates(rec, "batch"),
            priority=_rates(rec, "priority"),
            has_batch=_price(rec.get("input_cost_per_token_batches")) is not None,
            has_priority=_price(rec.get("input_cost_per_token_priority")) is not None,
            has_long_context=_price(rec.get("input_cost_per_token_above_200k_tokens")) is not None,
        )
    for alias, target in (aliases or {}).items():
        if target not in entries:
            raise ConfigError(f"price alias {alias!r} -> {target!r}: no such model in {p.name}")
    return PriceTable(entries, str(p), aliases)
