"""Real-time API tier: fitted latency, rate limits with 429s and backoff, faults, prompt caching.

* **Latency**: per model, TTFT and per-request inter-token latency drawn from log-normals fitted to
  the LLMPerf leaderboard's real measurements (:mod:`latency_fit`; a model names a
  ``provider/size`` profile) or given explicitly; ``dist: empirical`` resamples the measured
  requests instead. A model with a token-dependent fit (:mod:`token_latency`, the Claude models
  fitted to the recorded Claude Code calls) has a median TTFT that grows with its prompt tokens.
* **Rate limits**: a token bucket per model for requests/minute and tokens/minute (prompt +
  output); a call that does not fit gets a 429 and is retried after exponential backoff with
  jitter (``retry``), up to ``max_retries`` and never past the request's deadline.
* **Faults**: ``error_rate`` (each call fails with this probability) and ``outages`` (time windows,
  optionally per model, in which every call fails) — retried the same way.
* **Concurrency**: ``max_concurrency`` calls in flight across the tier (0 = unbounded).
* **Prompt caching**: a :class:`~simroute.economics.prompt_cache.PromptCache` per model; a call's
  writes become readable when its prefill is done (TTFT after it starts).
* **Paired luck**: every draw (latency, errors, backoff jitter) is keyed by (seed, request, attempt,
  retry, purpose) — :mod:`simroute.luck` — so the same attempt gets the same luck in every policy.

An attempt that runs out of retries or deadline ends with status ``error``; it never disappears.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import simpy

from simroute import luck
from simroute.economics.prompt_cache import PromptCache
from simroute.errors import ConfigError
from simroute.policy.types import TierState
from simroute.signals import Signal, Waitable, timeout
from simroute.tiers.base import AttemptResult
from simroute.tiers.latency_fit import LatencySpec
from simroute.tiers.token_latency import TokenLatencySpec
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.request import Request


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``min(base · 2^k, max) · (1 + jitter · U)`` seconds before retry k."""

    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    jitter: float = 0.5


@dataclass(frozen=True)
class RateLimit:
    """Per-model limits: requests and tokens (prompt + output) per minute; 0 = unlimited."""

    rpm: float = 0.0
    tpm: float = 0.0


@dataclass(frozen=True)
class Outage:
    """A window ``[start_s, end_s)`` in which calls fail (all models if ``models`` is empty)."""

    start_s: float
    end_s: float
    models: tuple[str, ...] = ()


_STD_NORMAL = NormalDist()
try:  # NormalDist.inv_cdf's own computation (C in CPython), without its method's Python call
    from statistics import _normal_dist_inv_cdf  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python: the method itself
    _normal_dist_inv_cdf = None


def _std_normal_quantile(u: float) -> float:
    """``NormalDist().inv_cdf(u)``, the same value (tested); its error for ``u`` outside (0, 1)."""
    if _normal_dist_inv_cdf is None or not 0.0 < u < 1.0:
        return _STD_NORMAL.inv_cdf(u)
    z: float = _normal_dist_inv_cdf(u, 0.0, 1.0)
    return z


_P_ERROR = luck.purpose_key("realtime.error")
_P_JITTER = luck.purpose_key("realtime.jitter")
_P_TTFT = luck.purpose_key("realtime.ttft")
_P_ITL = luck.purpose_key("realtime.itl")
_P_JUDGE_TTFT = luck.purpose_key("verifier.ttft")
_P_JUDGE_ITL = luck.purpose_key("verifier.itl")


class _Bucket:
    """Token bucket refilled continuously at ``per_minute / 60`` per second, capacity one minute."""

    def __init__(self, per_minute: float) -> None:
        self.cap = per_minute
        self.level = per_minute
        self.t = 0.0

    def take(self, amount: float, now: float) -> bool:
        if self.cap <= 0:
            return True
        self.level = min(self.cap, self.level + (now - self.t) * self.cap / 60.0)
        self.t = now
        if amount <= self.level:
            self.level -= amount
            return True
        return False


class LatencyModel:
    """Draws (TTFT, inter-token latency) in seconds for one model: a log-normal ``spec``, measured
    ``samples`` (TTFT, ITL) or a token-dependent fit ``tokens``; exactly one of them."""

    def __init__(
        self,
        spec: LatencySpec | None = None,
        samples: tuple[np.ndarray, np.ndarray] | None = None,
        tokens: TokenLatencySpec | None = None,
    ) -> None:
        if sum(x is not None for x in (spec, samples, tokens)) != 1:
            raise ValueError("give a log-normal spec, empirical samples or a token-dependent fit")
        self.spec = spec
        self.samples = samples
        self.tokens = tokens

    def draw(self, u_ttft: float, u_itl: float, prompt_tokens: int = 0) -> tuple[float, float]:
        """One call's TTFT and inter-token latency (s) from two Uniform(0, 1) numbers (the
        empirical distribution resamples one measured request with ``u_ttft``; a token-dependent
        fit scales both medians by one factor drawn with ``u_ttft``, its TTFT median growing with
        ``prompt_tokens``)."""
        if self.samples is not None:
            t, i = self.samples
            k = min(int(u_ttft * len(t)), len(t) - 1)
            return float(t[k]), float(i[k])
        if self.tokens is not None:
            f = self.tokens
            factor = float(np.exp(f.sigma * _std_normal_quantile(u_ttft)))
            return f.median_ttft_s(prompt_tokens) * factor, f.tpot_s * factor
        s = self.spec
        assert s is not None
        z0, z1 = _std_normal_quantile(u_ttft), _std_normal_quantile(u_itl)
        return (
            s.ttft_median_s * float(np.exp(s.ttft_sigma * z0)),
            s.itl_median_s * float(np.exp(s.itl_sigma * z1)),
        )


class RealtimeTier:
    """Hosted real-time APIs.

    Args:
        env: the SimPy environment.
        latency: model -> :class:`LatencyModel` (``"*"`` is the default).
        limits: model -> :class:`RateLimit` (``"*"`` is the default).
        retry: backoff policy for 429s and errors.
        error_rate: probability a call fails (5xx).
        outages: fault windows.
        max_concurrency: calls in flight at once across the tier (0 = unbounded).
        seed: the run seed; every draw is keyed by (seed, request, attempt, retry, purpose).
        prompt_cache: model -> its :class:`PromptCache` (absent = no caching).
        prefix_ids: the request table's prefix-block ids, by request index (for the prompt cache).
    """

    name = "realtime"

    def __init__(
        self,
        env: simpy.Environment,
        latency: Mapping[str, LatencyModel],
        limits: Mapping[str, RateLimit],
        retry: RetryPolicy,
        error_rate: float,
        outages: Sequence[Outage],
        max_concurrency: int,
        seed: int,
        prompt_cache: Mapping[str, PromptCache] | None = None,
        prefix_ids: PrefixRuns | None = None,
    ) -> None:
        if "*" not in latency:
            raise ConfigError("tiers.realtime: a default latency ('*') is required")
        if not 0.0 <= error_rate < 1.0:
            raise ConfigError(f"tiers.realtime.faults.error_rate must be in [0, 1), got {error_rate}")
        self.env = env
        self.latency = dict(latency)
        self.limits = dict(limits)
        self.retry = retry
        self.error_rate = error_rate
        self.outages = list(outages)
        self.slots = simpy.Resource(env, max_concurrency) if max_concurrency > 0 else None
        self.seed = seed
        self.prompt_cache = dict(prompt_cache or {})
        self.prefix_ids = prefix_ids
        self._buckets: dict[str, tuple[_Bucket, _Bucket]] = {}
        self._in_flight = 0
        self.calls = 0
        self.rate_limited = 0
        self.errors = 0

    def _bucket(self, model: str) -> tuple[_Bucket, _Bucket]:
        b = self._buckets.get(model)
        if b is None:
            lim = self.limits.get(model, self.limits.get("*", RateLimit()))
            b = self._buckets[model] = (_Bucket(lim.rpm), _Bucket(lim.tpm))
        return b

    def _down(self, model: str, now: float) -> bool:
        if not self.outages:
            return False
        return any(o.start_s <= now < o.end_s and (not o.models or model in o.models) for o in self.outages)

    def submit(self, request: Request, model: str, attempt: int = 0) -> Waitable:
        """Call the API for ``model`` (with retries). A call that is let through at once and needs
        no concurrency slot is one timeout event carrying its result; any other runs as a process."""
        why = self._refused(request, model, attempt, 0)
        if why is None and self.slots is None:
            return self._served(request, model, attempt)
        return self.env.process(self._call(request, model, attempt, why))

    def _served(self, req: Request, model: str, attempt: int) -> Signal:
        """A call let through now without a slot to wait for: an event at its end whose value is
        its :class:`AttemptResult` (its prompt-cache use and in-flight count as in :meth:`_call`)."""
        now = self.env.now
        ttft, itl = self._draw(req, model, attempt)
        cached, written = self._cache(req, model, now, ttft)
        self._in_flight += 1
        duration = ttft + (req.output_tokens - 1) * itl
        res = AttemptResult("completed", now, now, now + ttft, now + duration, 0.0, 0, 0, cached, written)
        done = timeout(self.env, duration, res)
        done.add_callback(self._landed)  # before the caller's resumption: as the process did
        return done

    def _landed(self, _event: Signal) -> None:
        self._in_flight -= 1

    def _draw(self, req: Request, model: str, attempt: int) -> tuple[float, float]:
        """The call's TTFT and inter-token latency (s), keyed by request and attempt."""
        lat = self.latency.get(model, self.latency["*"])
        u_ttft, u_itl = luck.uniform_pair(self.seed, _P_TTFT, _P_ITL, req.request_id, attempt)
        return lat.draw(u_ttft, u_itl, req.prompt_tokens)

    def _u(self, purpose: int, req: Request, attempt: int, draw: int = 0) -> float:
        return luck.uniform(self.seed, purpose, req.request_id, attempt, draw)

    def _refused(self, req: Request, model: str, attempt: int, retry: int) -> str | None:
        """Why call ``retry`` of this attempt fails now (``"429"``, ``"error"``) or None."""
        now = self.env.now
        self.calls += 1
        rpm, tpm = self._bucket(model)
        if not (rpm.take(1.0, now) and tpm.take(float(req.prompt_tokens + req.output_tokens), now)):
            self.rate_limited += 1
            return "429"
        if self._down(model, now) or (
            self.error_rate > 0 and self._u(_P_ERROR, req, attempt, retry) < self.error_rate
        ):
            self.errors += 1
            return "error"
        return None

    def _call(
        self, req: Request, model: str, attempt: int, why: str | None
    ) -> Generator[simpy.Event, Any, AttemptResult]:
        """A call whose first try was refused for ``why`` (or that waits for a slot): backoff and
        retries, then the slot, then the call."""
        env = self.env
        submit = env.now
        deadline = req.arrival_s + req.deadline_s
        retries = limited = 0
        while why is not None:
            limited += why == "429"
            now = env.now
            wait = min(self.retry.backoff_base_s * 2.0**retries, self.retry.backoff_max_s)
            wait *= 1.0 + self.retry.jitter * self._u(_P_JITTER, req, attempt, retries)
            if retries >= self.retry.max_retries or now + wait > deadline:
                return AttemptResult("error", submit, now, now, now, 0.0, retries, limited)
            retries += 1
            yield env.timeout(wait)
            why = self._refused(req, model, attempt, retries)
        ttft, itl = self._draw(req, model, attempt)
        if self.slots is None:
            start = env.now
            cached, written = self._cache(req, model, start, ttft)
            self._in_flight += 1
            yield env.timeout(ttft + (req.output_tokens - 1) * itl)
            self._in_flight -= 1
        else:
            with self.slots.request() as slot:
                yield slot
                start = env.now
                cached, written = self._cache(req, model, start, ttft)
                yield env.timeout(ttft + (req.output_tokens - 1) * itl)
        return AttemptResult(
            "completed", submit, start, start + ttft, env.now, 0.0, retries, limited, cached, written
        )

    def check_latency_s(
        self, model: str, req: Request, attempt: int, output_tokens: int, rubric_tokens: int = 0
    ) -> float:
        """Seconds one judge call of ``model`` takes to write ``output_tokens`` (a verifier's check
        of attempt ``attempt``; keyed luck of its own; not rate-limited, never failing, outside the
        concurrency cap). The judge reads the prompt, the answer and its rubric: ``prompt_tokens +
        output_tokens + rubric_tokens`` (for token-dependent fits)."""
        lat = self.latency.get(model, self.latency["*"])
        judge_prompt = req.prompt_tokens + req.output_tokens + rubric_tokens
        u_ttft, u_itl = luck.uniform_pair(self.seed, _P_JUDGE_TTFT, _P_JUDGE_ITL, req.request_id, attempt)
        ttft, itl = lat.draw(u_ttft, u_itl, judge_prompt)
        return ttft + (output_tokens - 1) * itl

    def _cache(self, req: Request, model: str, start: float, ttft: float) -> tuple[int, int]:
        """Prompt-cache tokens (read, written) of a call starting at ``start`` whose prefill ends
        after ``ttft`` seconds (its writes are readable from then on)."""
        pc = self.prompt_cache.get(model)
        if pc is None or self.prefix_ids is None:
            return 0, 0
        return pc.use_row(self.prefix_ids, req.idx, req.prompt_tokens, start, start + ttft)

    def state(self) -> TierState:
        """Calls waiting for a concurrency slot and in flight."""
        if self.slots is None:
            return TierState(0, self._in_flight, 0)
        return TierState(len(self.slots.queue), self.slots.count, int(self.slots.capacity))
