"""The vocabulary of a simulated run, in one place: tiers, terminal outcomes, attempt statuses and
response-cache lookups. Every module that writes or reads these strings imports them from here."""

from __future__ import annotations

from typing import Final

TIERS: tuple[str, ...] = ("local", "batch", "realtime")
"""Compute tiers, cheapest first: local GPUs, async batch API, real-time API."""

CACHE_TIER: Final = "cache"
"""The ``final_tier`` of a request answered by the response cache (no attempt)."""

NO_TIER: Final = "none"
"""The ``first_tier``/``final_tier`` of a request that was never issued (``cancelled``)."""

SERVED_BY: tuple[str, ...] = (*TIERS, CACHE_TIER, NO_TIER)
"""Where a request's final answer can come from (``none``: nowhere, the request was cancelled)."""

SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
DROPPED: Final = "dropped"
TIMED_OUT: Final = "timed_out"
CANCELLED: Final = "cancelled"
OUTCOMES: tuple[str, ...] = (SUCCEEDED, FAILED, DROPPED, TIMED_OUT, CANCELLED)
"""Terminal states of a request; every request ends in exactly one.

* ``succeeded`` — an attempt completed, the quality draw says correct, within the deadline (and the
  verifier accepted it), or a response-cache hit served a right answer;
* ``timed_out`` — an attempt ended after the deadline (no further attempts are made);
* ``failed`` — a wrong answer was accepted (an undetected failure), or the last attempt completed
  incorrectly, its batch job expired, or its API calls kept failing past the retries or deadline,
  and the escalation policy offered no further route;
* ``dropped`` — the last attempt was rejected by its tier (queue full) with no further route;
* ``cancelled`` — closed-loop sessions only: a step this request waits for (``after_ids``) ended
  without an answer (``failed`` with no accepted answer, ``dropped``, ``timed_out`` or
  ``cancelled``), so the session ended and this request was never issued (no attempt, no cost,
  ``first_tier == final_tier == "none"``, ``arrival_s`` when its session ended, latencies NaN,
  ``deadline_met`` false, ``cache_lookup`` ``off``), unless ``workload.session_retry`` lets the
  session go on.
"""

COMPLETED: Final = "completed"
REJECTED: Final = "rejected"
EXPIRED: Final = "expired"
ERROR: Final = "error"
ATTEMPT_STATUSES: tuple[str, ...] = (COMPLETED, REJECTED, EXPIRED, ERROR)
"""How an attempt can end at a tier: the model produced an answer (correct or not, judged by the
quality model); the tier refused it (queue full, too long); the batch job missed its completion
window; or the API kept failing (rate limits, errors, outages) until retries or the deadline ran
out."""

OUTCOME_IF_LAST: dict[str, str] = {COMPLETED: FAILED, EXPIRED: FAILED, ERROR: FAILED, REJECTED: DROPPED}
"""A request's outcome when an unaccepted attempt with this status is its last one."""

LOOKUPS: tuple[str, ...] = ("exact", "semantic", "miss", "bypass")
"""What a response-cache lookup can find."""

LOOKUP_OFF: Final = "off"
"""The lookup outcome recorded when no response cache is configured."""

CACHE_LOOKUPS: tuple[str, ...] = (*LOOKUPS, LOOKUP_OFF)
"""Every value of the ``cache_lookup`` column."""
