"""Cost kernels: USD of every attempt from its tokens and rates, summed per request.

An attempt with ``input_tokens`` prompt tokens, of which ``cached_tokens`` were read from the
provider's prompt cache and ``written_tokens`` written to it, and ``output_tokens`` generated, costs
``(input - cached - written)·input + written·cache_write + cached·cached_input + output·output``;
when ``input_tokens`` exceeds the model's long-context threshold, the ``*_hi`` rates apply to the
whole attempt. Local attempts have zero marginal rates and share the provisioned GPU cost instead
(:func:`allocate_fixed`). The Numba kernel and its NumPy reference must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from simroute.economics.prices import LONG_CONTEXT_TOKENS, ModelPrice

RATE_COLUMNS: tuple[str, ...] = (
    "input",
    "cached_input",
    "cache_write",
    "output",
    "input_hi",
    "cached_input_hi",
    "output_hi",
    "threshold",
)
"""Columns of the per-attempt rate matrix the kernels take (USD per token; threshold in tokens)."""

NO_THRESHOLD = 1e18
"""Long-context threshold of models without long-context prices (finite, so artifacts stay JSON)."""


def rate_row(price: ModelPrice | None, mode: str, long_context: bool = True) -> np.ndarray:
    """One row of the rate matrix for ``price`` in ``mode`` (zeros for a local model)."""
    if price is None:
        return np.array([0, 0, 0, 0, 0, 0, 0, NO_THRESHOLD], dtype=np.float64)
    r = price.rates(mode)
    thr = float(LONG_CONTEXT_TOKENS) if (long_context and price.has_long_context) else NO_THRESHOLD
    return np.array(
        [r.input, r.cached_input, r.cache_write, r.output, r.input_hi, r.cached_input_hi, r.output_hi, thr],
        dtype=np.float64,
    )


@numba.njit(cache=True)
def attempt_costs_kernel(
    input_tokens: np.ndarray,
    cached_tokens: np.ndarray,
    written_tokens: np.ndarray,
    output_tokens: np.ndarray,
    rates: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per attempt: (uncached input + cache-write USD, cached-input USD, output USD)."""
    n = input_tokens.shape[0]
    cin = np.empty(n)
    ccached = np.empty(n)
    cout = np.empty(n)
    for a in range(n):
        hi = input_tokens[a] > rates[a, 7]
        pin = rates[a, 4] if hi else rates[a, 0]
        pcached = rates[a, 5] if hi else rates[a, 1]
        pout = rates[a, 6] if hi else rates[a, 3]
        fresh = input_tokens[a] - cached_tokens[a] - written_tokens[a]
        cin[a] = fresh * pin + written_tokens[a] * rates[a, 2]
        ccached[a] = cached_tokens[a] * pcached
        cout[a] = output_tokens[a] * pout
    return cin, ccached, cout


def attempt_costs_reference(
    input_tokens: np.ndarray,
    cached_tokens: np.ndarray,
    written_tokens: np.ndarray,
    output_tokens: np.ndarray,
    rates: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-NumPy reference of :func:`attempt_costs_kernel`."""
    hi = input_tokens > rates[:, 7]
    pin = np.where(hi, rates[:, 4], rates[:, 0])
    pcached = np.where(hi, rates[:, 5], rates[:, 1])
    pout = np.where(hi, rates[:, 6], rates[:, 3])
    fresh = input_tokens - cached_tokens - written_tokens
    return (fresh * pin + written_tokens * rates[:, 2], cached_tokens * pcached, output_tokens * pout)


@dataclass(frozen=True)
class RequestCost:
    """Cost of one request at one price (USD), as ``simroute cost`` reports it."""

    model: str
    mode: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    input_usd: float
    cached_input_usd: float
    output_usd: float
    total_usd: float
    standard_total_usd: float
    long_context_rates: bool

    @property
    def discount_usd(self) -> float:
        """Saving against the standard (real-time) price of the same request."""
        return self.standard_total_usd - self.total_usd


def request_cost(
    price: ModelPrice, input_tokens: int, output_tokens: int, cached_tokens: int = 0, mode: str = "standard"
) -> RequestCost:
    """Cost of one request (the same kernel the simulator uses)."""
    if min(input_tokens, output_tokens, cached_tokens) < 0 or cached_tokens > input_tokens:
        raise ValueError("need tokens >= 0 and cached_tokens <= input_tokens")
    arr = np.array([float(input_tokens)])

    def run(m: str) -> tuple[float, float, float]:
        a, b, c = attempt_costs_kernel(
            arr,
            np.array([float(cached_tokens)]),
            np.zeros(1),
            np.array([float(output_tokens)]),
            rate_row(price, m)[None, :],
        )
        return float(a[0]), float(b[0]), float(c[0])

    cin, ccached, cout = run(mode)
    std = sum(run("standard"))
    return RequestCost(
        price.model,
        mode,
        input_tokens,
        cached_tokens,
        output_tokens,
        cin,
        ccached,
        cout,
        cin + ccached + cout,
        std,
        price.has_long_context and input_tokens > LONG_CONTEXT_TOKENS,
    )


def per_request(request: np.ndarray, values: np.ndarray, n_requests: int) -> np.ndarray:
    """Sum per-attempt ``values`` into per-request totals."""
    return np.bincount(request, weights=values, minlength=n_requests).astype(np.float64, copy=False)


def allocate_fixed(total_usd: float, request: np.ndarray, weight: np.ndarray, n_requests: int) -> np.ndarray:
    """Split a fixed cost (USD) over requests in proportion to per-attempt ``weight`` (e.g. GPU
    work); if every weight is 0 (all attempts were rejected), split it evenly over the attempts;
    with no attempt at all (GPUs provisioned but unused), evenly over every request."""
    out = np.zeros(n_requests)
    if total_usd <= 0 or n_requests == 0:
        return out
    if len(request) == 0:
        out[:] = total_usd / n_requests
        return out
    s = float(weight.sum())
    if s <= 0:
        weight, s = np.ones(len(request)), float(len(request))
    np.add.at(out, request, weight * (total_usd / s))
    return out
