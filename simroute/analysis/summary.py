"""``summary.json``: totals, shares, percentiles and SLO attainment of one simulated run.

Latency field names follow ``vllm bench serve`` where one exists (``mean_ttft_ms``,
``median_ttft_ms``, ``p99_ttft_ms``, ``mean_tpot_ms``, ``mean_e2el_ms`` ...). Everything here is a
pure function of the result tables, so the same run gives a byte-identical file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from simroute.outcomes import CACHE_LOOKUPS, ERROR, OUTCOMES, SERVED_BY, SUCCEEDED, TIERS
from simroute.records import SimResult
from simroute.workload.skills import URGENCIES

PERCENTILES = (50, 90, 99)


SUMMARY_ATTEMPT_COLUMNS: tuple[str, ...] = (
    "request_index",
    "tier",
    "status",
    "cost_usd",
    "rate_limited",
    "cached_tokens",
)
"""The columns of a result's attempts table that :func:`headline`, :func:`summarize` and
:func:`paired` read (tested: they give the same with the attempts table cut to these)."""


def _pcts(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if not len(x):
        return {f"p{p}": None for p in PERCENTILES}
    return {f"p{p}": float(np.percentile(x, p)) for p in PERCENTILES}


def _bench(x: np.ndarray, name: str) -> dict[str, float | None]:
    """vLLM-bench style mean/median/p99 in milliseconds."""
    x = x[np.isfinite(x)] * 1000.0
    if not len(x):
        return {f"mean_{name}_ms": None, f"median_{name}_ms": None, f"p99_{name}_ms": None}
    return {
        f"mean_{name}_ms": float(x.mean()),
        f"median_{name}_ms": float(np.median(x)),
        f"p99_{name}_ms": float(np.percentile(x, 99)),
    }


def headline(res: SimResult) -> dict[str, Any]:
    """The few numbers that compare architectures: cost (USD), success (mean of ``correct``: the
    final answer is right) and SLO attainment (mean of ``correct & deadline_met``)."""
    r = res.requests
    n = r.height
    correct = r["correct"].to_numpy()
    ok = int(correct.sum())
    api = float(r["cost_api_usd"].sum())
    total = (
        api
        + res.local_fixed_usd
        + float(r["cost_classifier_usd"].sum())
        + float(r["cost_verifier_usd"].sum())
        + float(r["cost_cache_usd"].sum())
    )
    return {
        "n_requests": n,
        "success_rate": ok / n,
        "slo_attainment": float(np.mean(correct & r["deadline_met"].to_numpy())),
        "cost_total_usd": total,
        "cost_per_request_usd": total / n,
        "cost_per_successful_task_usd": total / ok if ok else None,
    }


def summarize(res: SimResult, meta: Mapping[str, Any], baseline: SimResult | None = None) -> dict[str, Any]:
    """Full summary of ``res``; with ``baseline``, a paired comparison block."""
    r = res.requests
    head = headline(res)
    out: dict[str, Any] = {**meta, **head}
    out["outcomes"] = {o: int((r["outcome"] == o).sum()) for o in OUTCOMES}
    out["cost"] = _cost(res, head)
    out["tier_share"] = _tier_share(r)
    out["savings"] = savings(res)
    out["risk_predictor"] = _risk_predictor(r)
    out["undetected_failures"] = int(r["undetected_failure"].sum())
    inter = r.select("urgency", "e2e_s", "deadline_s").filter(
        (pl.col("urgency") == "interactive") & pl.col("e2e_s").is_not_nan()
    )  # issued
    out["interactive_p95_deadline_ratio"] = (
        float(np.percentile((inter["e2e_s"] / inter["deadline_s"]).to_numpy(), 95)) if inter.height else None
    )
    out["escalations"] = _escalations(res)
    out["latency"] = _latency(r)
    out["by_skill"] = _by_skill(r)
    if baseline is not None:
        out["baseline"] = paired(head, r["correct"].to_numpy(), baseline)
    return out


def _cost(res: SimResult, head: Mapping[str, Any]) -> dict[str, Any]:
    """The cost block (USD): totals, API parts, discounts, local fixed cost, per tier."""
    r, a = res.requests, res.attempts
    a = a.select("tier", "cost_usd")  # filters copy only what they read (memory)
    by_tier_cost = {t: float(a.filter(pl.col("tier") == t)["cost_usd"].sum()) for t in TIERS}
    by_tier_cost["local"] += res.local_fixed_usd
    return {
        "total_usd": head["cost_total_usd"],
        "api_usd": float(r["cost_api_usd"].sum()),
        "api_input_usd": float(r["cost_input_usd"].sum()),
        "api_cached_input_usd": float(r["cost_cached_input_usd"].sum()),
        "api_output_usd": float(r["cost_output_usd"].sum()),
        "batch_discount_usd": float(r["cost_batch_discount_usd"].sum()),
        "escalations_usd": float(r["cost_escalations_usd"].sum()),
        "prompt_cache_hit_token_share": float(
            r["cached_tokens"].sum() / max(int(r["prompt_tokens"].sum()), 1)
        ),
        "local_fixed_usd": res.local_fixed_usd,
        "classifier_usd": float(r["cost_classifier_usd"].sum()),
        "verifier_usd": float(r["cost_verifier_usd"].sum()),
        "response_cache_lookups_usd": float(r["cost_cache_usd"].sum()),
        "local_gpus": res.local_gpus,
        "local_billing_horizon_s": res.horizon_s,
        "by_tier_usd": by_tier_cost,
        "per_request_usd": head["cost_per_request_usd"],
        "per_successful_task_usd": head["cost_per_successful_task_usd"],
    }


def _tier_share(r: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Shares of requests routed to / served by each tier (and the cache), and of served tokens."""
    n = r.height
    tokens = (r["prompt_tokens"] + r["output_tokens"]).to_numpy()
    return {
        "routed": {t: float((r["first_tier"] == t).sum() / n) for t in SERVED_BY},
        "served": {t: float((r["final_tier"] == t).sum() / n) for t in SERVED_BY},
        "served_tokens": {
            t: float(tokens[(r["final_tier"] == t).to_numpy()].sum() / tokens.sum()) for t in SERVED_BY
        },
    }


def _risk_predictor(r: pl.DataFrame) -> dict[str, Any]:
    """Precision and recall of the risk predictor's escalations against the hard-request truth."""
    hard = r["hard_truth"].to_numpy()
    esc = r["risk_escalated"].to_numpy()
    return {
        "truth": "best local model more likely fails than not (P(success) < 0.5)",
        "hard_share": float(hard.mean()),
        "escalated_share": float(esc.mean()),
        "precision": float((hard & esc).sum() / esc.sum()) if esc.any() else None,
        "recall": float((hard & esc).sum() / hard.sum()) if hard.any() else None,
    }


def _escalations(res: SimResult) -> dict[str, int]:
    """Counts of escalations, API retries and errors, attempts and batch jobs."""
    r, a = res.requests, res.attempts
    return {
        "requests_escalated": int((r["attempts"] > 1).sum()),
        "api_retries": int(r["api_retries"].sum()),
        "api_rate_limited": int(a["rate_limited"].sum()),
        "api_error_attempts": int((a["status"] == ERROR).sum()),
        "attempts_total": int(r["attempts"].sum()),
        "risk_escalated": int(r["risk_escalated"].sum()),
        "batch_jobs": res.batch_jobs,
        "batch_expired_jobs": res.batch_expired_jobs,
    }


def _latency(r: pl.DataFrame) -> dict[str, Any]:
    """vLLM-bench latency fields, and percentiles per serving tier and per urgency class."""
    r = r.select("ttft_s", "tpot_s", "e2e_s", "final_tier", "urgency", "correct", "deadline_met")  # memory
    return {
        **_bench(r["ttft_s"].to_numpy(), "ttft"),
        **_bench(r["tpot_s"].to_numpy(), "tpot"),
        **_bench(r["e2e_s"].to_numpy(), "e2el"),
        "by_tier": {
            t: {
                "n": int((r["final_tier"] == t).sum()),
                "e2e_s": _pcts(r.filter(pl.col("final_tier") == t)["e2e_s"].to_numpy()),
                "ttft_s": _pcts(r.filter(pl.col("final_tier") == t)["ttft_s"].to_numpy()),
            }
            for t in SERVED_BY
        },
        "by_urgency": {
            u: {
                "n": int((r["urgency"] == u).sum()),
                "e2e_s": _pcts(r.filter(pl.col("urgency") == u)["e2e_s"].to_numpy()),
                "ttft_s": _pcts(r.filter(pl.col("urgency") == u)["ttft_s"].to_numpy()),
                "slo_attainment": _slo(r.filter(pl.col("urgency") == u)),
            }
            for u in URGENCIES
        },
    }


def _by_skill(r: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per true skill: requests, success, classifier accuracy, local share, cost (USD)."""
    return {
        s: {
            "n": int(g.height),
            "success_rate": _mean(g["correct"]),
            "classifier_accuracy": _mean(g["skill_pred"].drop_nulls() == s),
            "served_local": _mean(g["final_tier"] == "local"),
            "cost_usd": float(g["cost_total_usd"].sum()),
        }
        for s, g in (
            (str(k[0]), g)
            for k, g in r.select("skill", "correct", "skill_pred", "final_tier", "cost_total_usd").group_by(
                "skill", maintain_order=True
            )
        )
    }


def paired(head: Mapping[str, Any], ok: np.ndarray, baseline: SimResult) -> dict[str, Any]:
    """The baseline's headline, the cost reduction and the paired success comparison against an
    arm of headline ``head`` (:func:`headline`) whose requests were answered right where ``ok``
    (its ``correct`` column, in row order): all the comparison needs of that arm, so its tables
    can be freed before the baseline's are built."""
    b = headline(baseline)
    ok_base = baseline.requests["correct"].to_numpy()
    return {
        **b,
        "cost_reduction": 1.0 - head["cost_total_usd"] / b["cost_total_usd"] if b["cost_total_usd"] else None,
        "success_rate_delta": head["success_rate"] - b["success_rate"],
        "paired_success_disagreement": float(np.mean(ok != ok_base)),
    }


def savings(res: SimResult) -> dict[str, Any]:
    """What each caching mechanism saved in this run, by direct accounting.

    * ``response_cache``: lookups by outcome (they sum to the requests: conservation), hit shares,
      answers served wrong, and the USD the hits saved, each hit counted at what its source request
      cost (``unattributed_hits``: sources outside this table, e.g. an earlier simulated day);
    * ``provider_prompt_cache``: API prompt tokens read from the provider's cache and the USD saved
      against the same calls uncached (cache-write premiums subtracted);
    * ``local_prefix_cache``: prompt tokens the local engines did not recompute (vLLM prefix caching).

    Session stickiness acts through the two prompt caches; its own effect needs a run without it
    (``experiments/savings.py`` runs the ablations)."""
    r, a = res.requests, res.attempts
    look = {k: int((r["cache_lookup"] == k).sum()) for k in CACHE_LOOKUPS}
    hits = r.select("final_tier", "saved_response_cache_usd", "outcome").filter(
        pl.col("final_tier") == "cache"
    )
    saved = hits["saved_response_cache_usd"].to_numpy()
    eligible = look["exact"] + look["semantic"] + look["miss"]
    a = a.select("tier", "status", "request_index", "cached_tokens")  # filters copy only these (memory)
    api = a.filter(pl.col("tier") != "local")
    loc = a.filter((pl.col("tier") == "local") & (pl.col("status") == "completed"))
    loc_prompt = (
        int(r["prompt_tokens"].to_numpy()[loc["request_index"].to_numpy()].sum()) if loc.height else 0
    )
    return {
        "response_cache": {
            "lookups": look,
            "hit_share_of_requests": (look["exact"] + look["semantic"]) / max(r.height, 1),
            "hit_share_of_eligible": (look["exact"] + look["semantic"]) / eligible if eligible else None,
            "wrong_answers_served": int((hits["outcome"] != SUCCEEDED).sum()),
            "saved_usd": float(np.nansum(saved)),
            "unattributed_hits": int(np.isnan(saved).sum()),
            "lookup_cost_usd": float(r["cost_cache_usd"].sum()),
            **{k: int(v) for k, v in res.cache_counts.items() if k in ("inserts", "evictions", "expired")},
        },
        "provider_prompt_cache": {
            "cached_tokens": int(api["cached_tokens"].sum()),
            "saved_usd": float(r["saved_prompt_cache_usd"].sum()),
        },
        "local_prefix_cache": {
            "cached_tokens": int(loc["cached_tokens"].sum()),
            "share_of_local_prompt_tokens": float(loc["cached_tokens"].sum() / loc_prompt)
            if loc_prompt
            else None,
        },
    }


def _slo(g: pl.DataFrame) -> float | None:
    """SLO attainment of the rows ``g``: the share answered right by their deadline."""
    return _mean(g["correct"] & g["deadline_met"])


def _mean(s: pl.Series) -> float | None:
    return float(np.mean(s.cast(pl.Float64).to_numpy())) if s.len() else None
