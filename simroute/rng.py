"""Named random streams derived from one config seed.

Every random draw in simroute comes from a :class:`numpy.random.Generator` obtained here. A stream
is identified by its *name*, not by creation order, so adding a component never shifts the draws of
another (``SeedSequence(seed, spawn_key=(crc32(name),))``).
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """Return the independent generator for component ``name`` under run seed ``seed``."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))


MAX_ATTEMPTS_LUCK = 8
"""Quality uniforms carried per request (attempts beyond this reuse the last column)."""


def request_luck(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Common random numbers of ``n`` requests: classifier uniforms (n,) and quality uniforms
    (n, :data:`MAX_ATTEMPTS_LUCK`). They depend only on the seed and the request's position, so every
    policy simulated on the same workload sees the same luck (paired comparisons). This is the
    whole-array definition; a simulation reads the same values a block of rows at a time
    (:mod:`simroute.sim.luck_blocks`, tested equal to this)."""
    g = stream(seed, "request.luck")
    u = g.random((n, 1 + MAX_ATTEMPTS_LUCK))
    return u[:, 0].copy(), u[:, 1:].copy()
