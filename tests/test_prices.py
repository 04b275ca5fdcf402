"""The LiteLLM price table: real prices, batch fallbacks, and a helpful unknown-model error."""

from __future__ import annotations

import pytest

from simroute.economics.prices import PriceTable
from simroute.errors import ConfigError


def test_known_prices(prices: PriceTable) -> None:
    p = prices.get("gpt-4.1")
    assert (p.input, p.output, p.batch_input, p.batch_output, p.cached_input) == (
        2e-6,
        8e-6,
        1e-6,
        4e-6,
        5e-7,
    )
    s = prices.get("claude-sonnet-4-5")
    assert (s.input, s.output, s.batch_input, s.batch_output) == (3e-6, 1.5e-5, 1.5e-6, 7.5e-6)
    assert len(prices) > 3000


def test_model_without_batch_price_falls_back_to_standard(prices: PriceTable) -> None:
    d = prices.get("deepseek/deepseek-chat")
    assert not d.has_batch and d.batch_input == d.input


def test_unknown_model_suggests_close_matches(prices: PriceTable) -> None:
    with pytest.raises(ConfigError, match=r"did you mean .*claude-sonnet-4-5"):
        prices.get("claude-sonet-4-5")
