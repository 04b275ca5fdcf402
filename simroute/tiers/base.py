"""The tier seam: ``submit(request, model, attempt) -> event`` and ``state()``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from simroute.policy.types import TierState
from simroute.signals import Waitable
from simroute.workload.request import Request


def delay_until(now: float, t: float) -> float:
    """A delay (s, >= 0) that SimPy, adding it to ``now`` (s), turns into ``t`` (s), or, where no
    delay reaches ``t`` from this ``now`` (a rounding tie, about 1 % of pairs with
    ``now < t / 2``), into the first time after it; never earlier; 0 when ``t <= now``.
    The plain ``t - now`` can land a rounding step early (an engine woken then would find its step
    not yet due) or late."""
    if t <= now:
        return 0.0
    d = t - now
    while now + d > t:
        d = math.nextafter(d, -math.inf)
    while now + d < t:
        d = math.nextafter(d, math.inf)
    return d


@dataclass(frozen=True, slots=True, init=False)
class AttemptResult:
    """Timing and accounting of one attempt at a tier (absolute simulated seconds).

    Attributes:
        status: one of :data:`~simroute.outcomes.ATTEMPT_STATUSES`.
        submit_s: when the attempt was handed to the tier.
        start_s: when service started (after queueing, rate-limit waits or batch accumulation).
        first_token_s: when the first output token was available.
        end_s: when the attempt ended.
        busy_s: GPU work attributed to this attempt (local tier; 0 elsewhere).
        retries: API calls retried within the attempt (after 429s, errors, outages).
        rate_limited: of those, 429 responses.
        cached_tokens: prompt tokens read from the provider's prompt cache.
        written_tokens: prompt tokens written to it.
    """

    status: str
    submit_s: float
    start_s: float
    first_token_s: float
    end_s: float
    busy_s: float = 0.0
    retries: int = 0
    rate_limited: int = 0
    cached_tokens: int = 0
    written_tokens: int = 0

    def __init__(
        self,
        status: str,
        submit_s: float,
        start_s: float,
        first_token_s: float,
        end_s: float,
        busy_s: float = 0.0,
        retries: int = 0,
        rate_limited: int = 0,
        cached_tokens: int = 0,
        written_tokens: int = 0,
    ) -> None:
        """Set the fields (written out: compiled, it runs natively; :mod:`simroute.compiled`)."""
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "submit_s", submit_s)
        object.__setattr__(self, "start_s", start_s)
        object.__setattr__(self, "first_token_s", first_token_s)
        object.__setattr__(self, "end_s", end_s)
        object.__setattr__(self, "busy_s", busy_s)
        object.__setattr__(self, "retries", retries)
        object.__setattr__(self, "rate_limited", rate_limited)
        object.__setattr__(self, "cached_tokens", cached_tokens)
        object.__setattr__(self, "written_tokens", written_tokens)


class Tier(Protocol):
    """A compute tier as the lifecycle process uses it."""

    name: str

    def submit(self, request: Request, model: str, attempt: int = 0) -> Waitable:
        """Start attempt number ``attempt`` of ``request`` on ``model``; the returned event's value
        is an :class:`AttemptResult`. Random draws are keyed by (request, attempt), so the same
        attempt gets the same luck in every policy."""
        ...

    def state(self) -> TierState:
        """Queue and occupancy now."""
        ...
