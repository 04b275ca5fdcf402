"""``simroute cost MODEL ...``: USD cost of one request from the simulator's price table, as JSON."""

from __future__ import annotations

import argparse
import json

from simroute.commands import fail
from simroute.config import TRACES_DIR
from simroute.economics.costs import request_cost
from simroute.economics.prices import load_litellm
from simroute.errors import SimrouteError


def main(argv: list[str]) -> None:
    """Run ``simroute cost`` with the arguments after the command name."""
    ap = argparse.ArgumentParser(prog="simroute cost", description="USD cost of one request (JSON).")
    ap.add_argument("model", help="LiteLLM model id, e.g. gpt-4.1, claude-sonnet-4-5")
    ap.add_argument("--input-tokens", type=int, required=True)
    ap.add_argument("--output-tokens", type=int, required=True)
    ap.add_argument("--cached-tokens", type=int, default=0, help="prompt tokens read from the prompt cache")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--batch", action="store_true", help="async batch API prices")
    mode.add_argument("--priority", action="store_true", help="priority-tier prices")
    ap.add_argument(
        "--prices",
        default=str(TRACES_DIR / "litellm_prices_1.110.2.json.gz"),
        help="LiteLLM cost map (default: the bundled 1.110.2 table)",
    )
    a = ap.parse_args(argv)
    m = "batch" if a.batch else "priority" if a.priority else "standard"
    try:
        price = load_litellm(a.prices).get(a.model)
        if min(a.input_tokens, a.output_tokens, a.cached_tokens) < 0 or a.cached_tokens > a.input_tokens:
            raise SimrouteError("need token counts >= 0 and --cached-tokens <= --input-tokens")
        c = request_cost(price, a.input_tokens, a.output_tokens, a.cached_tokens, m)
    except SimrouteError as e:
        fail(e)
    rates = price.rates(m)
    print(
        json.dumps(
            {
                "model": price.model,
                "provider": price.provider,
                "mode": m,
                "input_tokens": c.input_tokens,
                "cached_tokens": c.cached_tokens,
                "output_tokens": c.output_tokens,
                "input_usd": c.input_usd,
                "cached_input_usd": c.cached_input_usd,
                "output_usd": c.output_usd,
                "total_usd": c.total_usd,
                "standard_total_usd": c.standard_total_usd,
                "discount_vs_standard_usd": c.discount_usd,
                "long_context_rates": c.long_context_rates,
                "published_batch_prices": price.has_batch,
                "usd_per_million_tokens": {
                    "input": rates.input * 1e6,
                    "cached_input": rates.cached_input * 1e6,
                    "output": rates.output * 1e6,
                },
            },
            indent=2,
        )
    )
