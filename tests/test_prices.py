"""The LiteLLM price table: real rates per mode, fallbacks, aliases, the cost command."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from simroute.economics.costs import request_cost
from simroute.economics.prices import PriceTable, batch_price_ratios, load_litellm
from simroute.errors import ConfigError


def test_known_rates(prices: PriceTable) -> None:
    p = prices.get("gpt-4.1")
    assert (p.standard.input, p.standard.output, p.standard.cached_input) == (2e-6, 8e-6, 5e-7)
    assert (p.batch.input, p.batch.output) == (1e-6, 4e-6)
    assert p.batch.cached_input == pytest.approx(2.5e-7)  # no batch cache field: scaled by batch ratio
    assert (p.priority.input, p.priority.output) == (3.5e-6, 1.4e-5)
    s = prices.get("claude-sonnet-4-5")
    assert (s.standard.cache_write, s.batch.cache_write, s.batch.cached_input) == (3.75e-6, 1.875e-6, 1.5e-7)
    g = prices.get("gemini/gemini-2.5-pro")
    assert g.has_long_context and (g.standard.input_hi, g.standard.output_hi) == (2.5e-6, 1.5e-5)
    assert len(prices) > 3000


def test_fallbacks_when_fields_are_missing(prices: PriceTable) -> None:
    d = prices.get("deepseek/deepseek-chat")
    assert not d.has_batch and d.batch == d.standard
    assert not prices.get("gpt-4.1").has_long_context


def test_aliases_and_provider_prefix(cfg) -> None:
    t = load_litellm(cfg["prices"], aliases={"sonnet": "claude-sonnet-4-5"})
    assert t.get("sonnet").model == "claude-sonnet-4-5"
    assert t.get("openai/gpt-4.1").model == "gpt-4.1"
    with pytest.raises(ConfigError, match="no such model"):
        load_litellm(cfg["prices"], aliases={"x": "not-a-model"})


def test_unknown_model_suggests_close_matches(prices: PriceTable) -> None:
    with pytest.raises(ConfigError, match=r"did you mean .*claude-sonnet-4-5"):
        prices.get("claude-sonet-4-5")


def test_request_cost_standard_batch_cached_tiered(prices: PriceTable) -> None:
    c = request_cost(prices.get("gpt-4.1"), 10_000, 500, 4_000)
    assert c.total_usd == pytest.approx(0.012 + 0.002 + 0.004)
    b = request_cost(prices.get("gpt-4.1"), 10_000, 500, 4_000, "batch")
    assert b.total_usd == pytest.approx(0.009) and b.discount_usd == pytest.approx(0.009)
    h = request_cost(prices.get("claude-haiku-4-5"), 2_000, 1_000, 0, "batch")
    assert h.total_usd == pytest.approx(2_000 * 5e-7 + 1_000 * 2.5e-6)
    long = request_cost(prices.get("gemini/gemini-2.5-pro"), 250_000, 1_000)
    assert long.long_context_rates and long.total_usd == pytest.approx(0.625 + 0.015)
    short = request_cost(prices.get("gemini/gemini-2.5-pro"), 150_000, 1_000)
    assert short.total_usd == pytest.approx(150_000 * 1.25e-6 + 1_000 * 1e-5)


def test_cost_command_prints_json() -> None:
    proc = run_cli(
        ["cost", "gpt-4o-mini", "--input-tokens", "1000000", "--output-tokens", "1000000", "--batch"]
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["total_usd"] == pytest.approx(0.075 + 0.30)
    assert out["standard_total_usd"] == pytest.approx(0.15 + 0.60)
    bad = run_cli(["cost", "gpt-4.1-turbo-x", "--input-tokens", "1", "--output-tokens", "1"])
    assert bad.returncode == 2 and "did you mean" in bad.stderr and "Traceback" not in bad.stderr


def test_batch_price_scale_scales_published_batch_rates_only(prices: PriceTable) -> None:
    half = prices.with_batch_scale(0.5)
    p, q = prices.get("gpt-4.1"), half.get("gpt-4.1")
    assert q.standard == p.standard and q.priority == p.priority
    assert (q.batch.input, q.batch.output, q.batch.cached_input) == pytest.approx(
        (0.5 * p.batch.input, 0.5 * p.batch.output, 0.5 * p.batch.cached_input)
    )
    d = half.get("deepseek/deepseek-chat")  # no published batch prices: no discount invented
    assert d.batch == d.standard
    assert prices.with_batch_scale(1.0) is prices
    with pytest.raises(ConfigError, match="batch_price_scale"):
        prices.with_batch_scale(0.0)


def test_batch_price_ratios_over_the_table(prices: PriceTable) -> None:
    r = batch_price_ratios(prices)
    assert len(r["input"]) == len(r["output"]) > 100
    assert sorted(r["input"])[len(r["input"]) // 2] == 0.5  # the median batch discount is 50 %
