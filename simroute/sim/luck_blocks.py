"""A run's per-request uniforms drawn a block of rows at a time, exactly as whole arrays would be.

A run draws, per request, a classifier uniform and :data:`~simroute.rng.MAX_ATTEMPTS_LUCK` quality
uniforms (stream ``request.luck``, ``1 + MAX_ATTEMPTS_LUCK`` a row), the attempts' shared-luck flags
(``request.luck.shared``), verifier uniforms (``request.verify``) and two response-cache uniforms
(``request.cache``), each stream drawn row after row. Held whole that is about 150 MiB at a million
requests, of which a run reads a few values a request. Here a block of rows is drawn when first
read: its stream is advanced to the block's first draw (a PCG64 draw of a double is one 64-bit
step) and the block drawn as the whole array's rows would be; the most recently used blocks are
kept. Every value equals the whole array's (tested), so results do not change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from simroute import rng as rng_mod

BLOCK_ROWS = 4096
"""Rows drawn at a time."""

KEEP_BLOCKS = 64
"""Blocks kept (least recently used dropped first): requests in flight lie within a window of rows."""


def _rows(seed: int, name: str, first: int, rows: int, width: int) -> np.ndarray:
    """Rows ``first .. first + rows - 1`` of ``stream(seed, name).random((n, width))``."""
    g = rng_mod.stream(seed, name)
    bits = g.bit_generator
    assert isinstance(bits, np.random.PCG64)  # advance() counts 64-bit steps: one a double
    bits.advance(first * width)
    return g.random((rows, width))


@dataclass(frozen=True)
class LuckStreams:
    """The seed, the number of requests and the attempt correlation ``rho`` (see
    :func:`~simroute.economics.quality.correlate_attempts`) of a run's uniforms."""

    seed: int
    n: int
    rho: float

    def classify(self) -> np.ndarray:
        """Every request's classifier uniform (n,), drawn a block at a time."""
        out = np.empty(self.n)
        for a in range(0, self.n, BLOCK_ROWS):
            m = min(BLOCK_ROWS, self.n - a)
            out[a : a + m] = _rows(self.seed, "request.luck", a, m, 1 + rng_mod.MAX_ATTEMPTS_LUCK)[:, 0]
        return out

    def quality_block(self, first: int, rows: int) -> np.ndarray:
        """Quality uniforms of the rows, shared between attempts as ``correlate_attempts`` does."""
        u = _rows(self.seed, "request.luck", first, rows, 1 + rng_mod.MAX_ATTEMPTS_LUCK)[:, 1:]
        if self.rho == 0.0:
            return np.ascontiguousarray(u)
        shared = _rows(self.seed, "request.luck.shared", first, rows, rng_mod.MAX_ATTEMPTS_LUCK) < self.rho
        shared[:, 0] = False
        return np.where(shared, u[:, :1], u)

    def verify_block(self, first: int, rows: int) -> np.ndarray:
        """Verifier uniforms of the rows, one per attempt."""
        return _rows(self.seed, "request.verify", first, rows, rng_mod.MAX_ATTEMPTS_LUCK)

    def cache_block(self, first: int, rows: int) -> np.ndarray:
        """Response-cache uniforms of the rows (semantic-hit correctness, false match)."""
        return _rows(self.seed, "request.cache", first, rows, 2)


class Uniforms(Protocol):
    """Per-request uniforms as the lifecycle reads them: ``u.at(i, j)`` (a Python float) and
    ``u.shape``; also ``u[i]`` (a row) and ``u[i, j]``, as an (n, width) array reads."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def at(self, i: int, j: int) -> float: ...

    def __getitem__(self, key: Any) -> Any: ...


class BlockedUniforms:
    """Reads like an (n, width) array of uniforms (``u[i]``, ``u[i, j]``, ``u.shape``) whose rows
    are drawn by ``draw(first, rows)`` a block at a time and kept while recently used."""

    def __init__(self, draw: Callable[[int, int], np.ndarray], n: int, width: int) -> None:
        self._draw = draw
        self.shape = (n, width)
        self._width = width
        self._blocks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._last = -1  # the block read last (the most recently used: last in ``_blocks``)
        self._last_values: Sequence[float] = np.empty(0).data  # its values, row after row

    def _block(self, b: int) -> np.ndarray:
        blk = self._blocks.get(b)
        if blk is None:
            first = b * BLOCK_ROWS
            blk = self._draw(first, min(BLOCK_ROWS, self.shape[0] - first))
            self._blocks[b] = blk
            if len(self._blocks) > KEEP_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(b)
        return blk

    def at(self, i: int, j: int) -> float:
        """``self[i, j]`` as a Python float (the same double): the block read last is read again
        without a lookup (it is already the most recently used)."""
        b = i // BLOCK_ROWS
        if b != self._last:
            self._last_values = np.ascontiguousarray(self._block(b)).reshape(-1).data
            self._last = b
        value: float = self._last_values[(i % BLOCK_ROWS) * self._width + j]
        return value

    def __getitem__(self, key: int | tuple[int, int]) -> np.ndarray:
        if isinstance(key, tuple):
            i, j = key
            return self._block(i // BLOCK_ROWS)[i % BLOCK_ROWS, j]  # type: ignore[no-any-return]
        row: np.ndarray = self._block(key // BLOCK_ROWS)[key % BLOCK_ROWS]
        return row
