"""API prices from the LiteLLM model cost map (USD per token).

The bundled file is LiteLLM 1.110.2's ``model_prices_and_context_window_backup.json`` (see
``traces/SOURCES.md``). Only chat/completion entries with an input price are usable. An unknown
model raises :class:`ConfigError` listing the closest known names.
"""

from __future__ import annotations

import difflib
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simroute.errors import ConfigError, InputError


@dataclass(frozen=True)
class ModelPrice:
    """Prices of one API model, USD per token.

    ``batch_*`` are the async batch API prices (falling back to the standard price when the
    provider publishes none, flagged by ``has_batch``); ``cached_input`` the prompt-cache read price
    (falls back to ``input``).
    """

    model: str
    provider: str
    input: float
    output: float
    batch_input: float
    batch_output: float
    cached_input: float
    has_batch: bool


class PriceTable:
    """Lookup of :class:`ModelPrice` by LiteLLM model id (e.g. ``gpt-4.1``, ``claude-sonnet-4-5``)."""

    def __init__(self, entries: dict[str, ModelPrice], source: str) -> None:
        self._entries = entries
        self.source = source

    def __contains__(self, model: str) -> bool:
        return model in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model: str) -> ModelPrice:
        """Return the prices of ``model``; ConfigError with close matches when unknown."""
        try:
            return self._entries[model]
        except KeyError:
            close = difflib.get_close_matches(model, list(self._entries), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"model {model!r} is not in the price table {self.source}{hint}") from None


def _price(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def load_litellm(path: str | Path) -> PriceTable:
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
        pin, pout = (
            _price(rec.get("input_cost_per_token")),
            _price(rec.get("output_cost_per_token")),
        )
        if pin is None or pout is None:
            continue
        bin_, bout = (
            _price(rec.get("input_cost_per_token_batches")),
            _price(rec.get("output_cost_per_token_batches")),
        )
        cached = _price(rec.get("cache_read_input_token_cost"))
        entries[name] = ModelPrice(
            model=name,
            provider=str(rec.get("litellm_provider", "")),
            input=pin,
            output=pout,
            batch_input=pin if bin_ is None else bin_,
            batch_output=pout if bout is None else bout,
            cached_input=pin if cached is None else cached,
            has_batch=bin_ is not None and bout is not None,
        )
    return PriceTable(entries, str(p))
