"""Per-request uniforms drawn a block of rows at a time equal the whole arrays, read in any order."""

from __future__ import annotations

import numpy as np
import pytest

from simroute import rng as rng_mod
from simroute.economics.quality import correlate_attempts
from simroute.sim import luck_blocks as lb


@pytest.mark.parametrize(("n", "rho"), [(10_000, 0.0), (9_000, 0.35), (5, 1.0)])
def test_blocks_equal_the_whole_arrays(n: int, rho: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lb, "BLOCK_ROWS", 1000)
    monkeypatch.setattr(lb, "KEEP_BLOCKS", 3)  # blocks are dropped and drawn again
    seed = 11
    u_cls, u_q = rng_mod.request_luck(seed, n)
    u_q = correlate_attempts(u_q, rho, rng_mod.stream(seed, "request.luck.shared"))
    u_verify = rng_mod.stream(seed, "request.verify").random(u_q.shape)
    u_cache = rng_mod.stream(seed, "request.cache").random((n, 2))
    streams = lb.LuckStreams(seed, n, rho)
    assert np.array_equal(streams.classify(), u_cls)
    q = lb.BlockedUniforms(streams.quality_block, n, u_q.shape[1])
    v = lb.BlockedUniforms(streams.verify_block, n, u_q.shape[1])
    c = lb.BlockedUniforms(streams.cache_block, n, 2)
    assert q.shape == u_q.shape
    order = np.random.default_rng(0).permutation(n)
    for i in order[: min(n, 4000)].tolist() + list(range(min(n, 50))):
        j = i % u_q.shape[1]
        assert q[i, j] == u_q[i, j] and v[i, j] == u_verify[i, j]
        assert np.array_equal(c[i], u_cache[i])
        got = (q.at(i, j), v.at(i, j), c.at(i, 0), c.at(i, 1))
        assert got == (u_q[i, j], u_verify[i, j], u_cache[i, 0], u_cache[i, 1])
        assert all(type(x) is float for x in got)
