"""Cost accounting of a simulated run, in one place: every attempt's API cost from its tokens and
rates, the batch discount and prompt-cache savings, the provisioned local GPU cost and how it is
allocated, and the per-request cost columns (all USD). Pure functions over arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simroute.economics.costs import allocate_fixed, attempt_costs_kernel, per_request


@dataclass(frozen=True)
class AttemptTokens:
    """Billable tokens of each attempt (0 for attempts that did not complete)."""

    prompt: np.ndarray
    cached: np.ndarray
    written: np.ndarray
    output: np.ndarray


@dataclass(frozen=True)
class AttemptCosts:
    """Per-attempt USD: input (uncached + cache writes), cached input, output, their sum ``api``,
    what the provider prompt cache saved against the same call uncached, and the batch discount
    against the same model's standard rates (0 outside the batch tier)."""

    input: np.ndarray
    cached_input: np.ndarray
    output: np.ndarray
    api: np.ndarray
    saved_prompt_cache: np.ndarray
    batch_discount: np.ndarray


def attempt_costs(
    tokens: AttemptTokens, rates: np.ndarray, standard_rates: np.ndarray, is_batch: np.ndarray
) -> AttemptCosts:
    """Price every attempt: ``rates`` and ``standard_rates`` are per-attempt rate rows
    (:data:`~simroute.economics.costs.RATE_COLUMNS`), ``is_batch`` marks batch-tier attempts."""
    t = tokens
    cin, ccached, cout = attempt_costs_kernel(t.prompt, t.cached, t.written, t.output, rates)
    sin, scached, sout = attempt_costs_kernel(t.prompt, t.cached, t.written, t.output, standard_rates)
    api = cin + ccached + cout
    zero = np.zeros_like(t.cached)
    ucin, _, ucout = attempt_costs_kernel(t.prompt, zero, zero, t.output, rates)
    return AttemptCosts(
        input=cin,
        cached_input=ccached,
        output=cout,
        api=api,
        saved_prompt_cache=ucin + ucout - api,
        batch_discount=np.where(is_batch, sin + scached + sout - api, 0.0),
    )


def local_fixed_usd(n_gpus: int, gpu_hour_usd: float, horizon_s: float, provisioned: bool) -> float:
    """Provisioned local GPU cost over the billing horizon: GPUs x $/GPU-hour x hours, whether or
    not anything ran on them (0 when the architecture provisions no local GPUs)."""
    return n_gpus * gpu_hour_usd * horizon_s / 3600.0 if provisioned else 0.0


def billing_horizon_s(last_arrival_s: float, local_end_s: np.ndarray) -> float:
    """The local GPUs are billed until the last arrival or the last local attempt ends (s)."""
    return max(last_arrival_s, float(local_end_s.max()) if len(local_end_s) else 0.0)


@dataclass(frozen=True)
class RequestCostInputs:
    """What the per-request cost columns are summed from: the attempts' request index, attempt
    number, priced attempts, local-tier mask and GPU-busy weights, and the per-request lookup costs."""

    request_index: np.ndarray
    attempt: np.ndarray
    costs: AttemptCosts
    cached_tokens: np.ndarray
    retries: np.ndarray
    is_local: np.ndarray
    busy_s: np.ndarray
    classifier_usd: np.ndarray  # classifier and verifier calls
    cache_usd: np.ndarray


def request_cost_columns(x: RequestCostInputs, fixed_usd: float, n: int) -> dict[str, np.ndarray]:
    """Per-request columns: ``api_retries``, ``cached_tokens`` and the ``cost_*``/``saved_*`` USD
    columns (``cost_local_usd`` is the request's share of ``fixed_usd`` by GPU-busy time)."""
    idx, c = x.request_index, x.costs
    clocal = allocate_fixed(fixed_usd, idx[x.is_local], x.busy_s[x.is_local], n)
    api_req = per_request(idx, c.api, n)
    return {
        "api_retries": per_request(idx, x.retries, n).astype(np.int32),
        "cached_tokens": per_request(idx, x.cached_tokens, n).astype(np.int64),
        "cost_input_usd": per_request(idx, c.input, n),
        "cost_cached_input_usd": per_request(idx, c.cached_input, n),
        "cost_output_usd": per_request(idx, c.output, n),
        "cost_api_usd": api_req,
        "cost_batch_discount_usd": per_request(idx, c.batch_discount, n),
        "cost_escalations_usd": per_request(idx, c.api * (x.attempt > 0), n),
        "cost_local_usd": clocal,
        "cost_total_usd": api_req + clocal + x.classifier_usd + x.cache_usd,
        "saved_prompt_cache_usd": per_request(idx, c.saved_prompt_cache, n),
    }
