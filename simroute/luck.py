"""Keyed luck: a uniform for every (seed, purpose, request, attempt, draw) — the same in every arm.

A stream consumed in event order gives two policies different luck whenever their events
interleave differently (one more retry in arm A shifts every later draw). Here each draw is a
pure function of its key, a counter-based generator in the style of SplitMix64 (Steele et al.,
"Fast splittable pseudorandom number generators", OOPSLA 2014): the same request's same attempt
gets the same TTFT, jitter, error and verifier luck in every policy, whatever else happened.
"""

from __future__ import annotations

import zlib
from statistics import NormalDist

import numba
import numpy as np

_MASK = (1 << 64) - 1
_STD_NORMAL = NormalDist()


def purpose_key(purpose: str) -> int:
    """A stable 32-bit id of a draw's purpose (e.g. ``"realtime.ttft"``)."""
    return zlib.crc32(purpose.encode("utf-8"))


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform_reference(seed: int, purpose: int, request: int, attempt: int = 0, draw: int = 0) -> float:
    """:func:`uniform` in plain Python integers (the definition; tests compare the kernel with it)."""
    x = _mix(seed & _MASK)
    for part in (purpose, request, attempt, draw):
        x = _mix(x ^ (part & _MASK))
    return ((x >> 11) + 0.5) * 2.0**-53


@numba.njit(cache=True)
def _mix_u64(x: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True)
def _uniform_kernel(
    seed: int, purpose: int, request: int, attempt: int, draw: int
) -> float:  # pragma: no cover
    x = _mix_u64(np.uint64(seed))
    x = _mix_u64(x ^ np.uint64(purpose))
    x = _mix_u64(x ^ np.uint64(request))
    x = _mix_u64(x ^ np.uint64(attempt))
    x = _mix_u64(x ^ np.uint64(draw))
    return (float(x >> np.uint64(11)) + 0.5) * 2.0**-53


@numba.njit(cache=True)
def _uniform_pair_kernel(
    seed: int, purpose_a: int, purpose_b: int, request: int, attempt: int, draw: int
) -> tuple[float, float]:  # pragma: no cover
    return (
        _uniform_kernel(seed, purpose_a, request, attempt, draw),
        _uniform_kernel(seed, purpose_b, request, attempt, draw),
    )


def uniform_pair(
    seed: int, purpose_a: int, purpose_b: int, request: int, attempt: int = 0, draw: int = 0
) -> tuple[float, float]:
    """:func:`uniform` for two purposes of the same request, attempt and draw, in one call."""
    a, b = _uniform_pair_kernel(seed, purpose_a, purpose_b, request, attempt, draw)
    return float(a), float(b)


def uniform(seed: int, purpose: int, request: int, attempt: int = 0, draw: int = 0) -> float:
    """A Uniform(0, 1) number (never 0 or 1) fixed by its key. ``purpose`` from :func:`purpose_key`;
    ``request`` the request id; ``attempt`` the attempt number; ``draw`` a counter within it (e.g.
    the retry of an API call). Keys are non-negative integers below 2**63 (compiled; equal to
    :func:`uniform_reference`)."""
    return float(_uniform_kernel(seed, purpose, request, attempt, draw))


def normal(seed: int, purpose: int, request: int, attempt: int = 0, draw: int = 0) -> float:
    """A standard normal number fixed by its key (inverse CDF of :func:`uniform`)."""
    return _STD_NORMAL.inv_cdf(uniform(seed, purpose, request, attempt, draw))


def uniforms(seed: int, purpose: int, requests: np.ndarray, attempt: int = 0, draw: int = 0) -> np.ndarray:
    """Vectorised :func:`uniform` over request ids (same values, element by element)."""
    with np.errstate(over="ignore"):
        x = np.full(len(requests), _mix(seed & _MASK), dtype=np.uint64)
        for part in (
            np.uint64(purpose & _MASK),
            requests.astype(np.uint64),
            np.uint64(attempt),
            np.uint64(draw),
        ):
            x = _mix_array(x ^ part)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _mix_array(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> np.uint64(31)))
