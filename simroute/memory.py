"""Give freed memory back to the operating system between the phases of a large run."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def _malloc_trim() -> Callable[[int], Any] | None:
    """glibc's ``malloc_trim`` (None where the C library has none, e.g. macOS or musl)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], Any] = ctypes.CDLL(name).malloc_trim
        return trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Collect cyclic garbage and return the C heap's free pages to the system: after building a
    large workload (its temporaries freed) the process's resident size falls back towards what it
    still holds (about 170 MiB less after a 300k-request workload). Changes no result."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number for the mmap threshold."""

MMAP_THRESHOLD_BYTES = 128 * 1024
"""Blocks at least this large (NumPy arrays of 16,384 or more numbers) are served by ``mmap``."""


def fix_mmap_threshold() -> None:
    """Keep glibc serving large blocks by ``mmap`` (returned to the system when freed). By default
    glibc raises its threshold, up to 32 MiB, each time such a block is freed, and later arrays up
    to that size then come from the heap, whose freed pages stay resident between live blocks: a
    million-request run's tables held about 110 MiB more so. It holds for the rest of the
    process's life (``execute`` sets it in the process that calls it, e.g. a sweep worker). A
    no-op where the C library has no ``mallopt``; changes no result."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


LARGE_RUN_REQUESTS = 100_000
"""Runs of at least this many requests give memory back between their phases: a collection costs
about 0.1-0.3 s however small the run (it walks every live object), and below this size it frees
little (tens of MiB)."""


SIMULATION_GC_THRESHOLDS = (50_000, 20, 50)
"""The cyclic collector's thresholds while a simulation runs (Python's default: 700, 10, 10). A
simulation allocates a SimPy event or a record per step of every request; at the default the
collector walked the whole heap seven times in a 100,000-request policy arm, at these twice, and
the arm took 4-6 % less time (two interleaved runs each)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block with :data:`SIMULATION_GC_THRESHOLDS`, then restore the thresholds it found.
    Garbage without cycles is still freed at once; cycles wait longer (at most 50,000 allocations
    more before a young collection). Changes no result."""
    before = gc.get_threshold()
    gc.set_threshold(*SIMULATION_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
