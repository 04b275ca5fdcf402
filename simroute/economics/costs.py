"""Cost kernels: USD per attempt from token counts and per-token prices, summed per request.

Each attempt is billed ``prompt_tokens * price_in + output_tokens * price_out`` (USD); local
attempts have zero marginal price and instead share the provisioned GPU cost, allocated in
proportion to their busy time (``service_s``). The Numba kernel and its NumPy reference must agree.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def attempt_costs_kernel(
    request: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    price_in: np.ndarray,
    price_out: np.ndarray,
    n_requests: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-request (input USD, output USD) summed over attempts (arrays of length n_requests)."""
    cin = np.zeros(n_requests)
    cout = np.zeros(n_requests)
    for a in range(request.shape[0]):
        r = request[a]
        cin[r] += prompt_tokens[a] * price_in[a]
        cout[r] += output_tokens[a] * price_out[a]
    return cin, cout


def attempt_costs_reference(
    request: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    price_in: np.ndarray,
    price_out: np.ndarray,
    n_requests: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-NumPy reference of :func:`attempt_costs_kernel`."""
    cin = np.bincount(request, weights=prompt_tokens * price_in, minlength=n_requests)
    cout = np.bincount(request, weights=output_tokens * price_out, minlength=n_requests)
    return cin.astype(np.float64), cout.astype(np.float64)


def allocate_fixed(total_usd: float, request: np.ndarray, weight: np.ndarray, n_requests: int) -> np.ndarray:
    """Split a fixed cost (USD) over requests in proportion to per-attempt ``weight`` (e.g. GPU
    work); if every weight is 0 (all attempts were rejected), split it evenly over the attempts."""
    out = np.zeros(n_requests)
    if total_usd <= 0 or len(request) == 0:
        return out
    s = float(weight.sum())
    if s <= 0:
        weight, s = np.ones(len(request)), float(len(request))
    np.add.at(out, request, weight * (total_usd / s))
    return out
