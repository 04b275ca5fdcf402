"""Each Numba kernel agrees with its plain-NumPy reference; costs match hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simroute.economics.costs import (
    allocate_fixed,
    attempt_costs_kernel,
    attempt_costs_reference,
    per_request,
)
from simroute.economics.quality import p_success_kernel, p_success_reference


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_cost_kernel_matches_reference(n: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    inp = g.integers(1, 400_000, n).astype(np.float64)
    cached = np.floor(inp * g.random(n))
    written = np.floor((inp - cached) * g.random(n))
    out = g.integers(1, 8_000, n).astype(np.float64)
    rates = g.choice([0.0, 1.5e-7, 2e-6, 3e-6, 1.5e-5], (n, 8))
    rates[:, 7] = g.choice([200_000.0, np.inf], n)
    a = attempt_costs_kernel(inp, cached, written, out, rates)
    b = attempt_costs_reference(inp, cached, written, out, rates)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


def test_cost_kernel_hand_computed() -> None:
    # gpt-4.1 standard: $2/M in, $0.5/M cached, $8/M out. 10,000 in of which 4,000 cached, 500 out.
    gpt41 = [2e-6, 5e-7, 2e-6, 8e-6, 2e-6, 5e-7, 8e-6, np.inf]
    # claude-sonnet-4-5: writes at $3.75/M; 3,000 fresh + 2,000 written + 1,000 cached, 100 out
    sonnet = [3e-6, 3e-7, 3.75e-6, 1.5e-5, 3e-6, 3e-7, 1.5e-5, np.inf]
    # gemini-2.5-pro above 200k input: $2.5/M in, $15/M out for the whole request
    gemini = [1.25e-6, 1.25e-7, 1.25e-6, 1e-5, 2.5e-6, 2.5e-7, 1.5e-5, 200_000.0]
    cin, ccached, cout = attempt_costs_kernel(
        np.array([10_000.0, 6_000.0, 250_000.0]),
        np.array([4_000.0, 1_000.0, 0.0]),
        np.array([0.0, 2_000.0, 0.0]),
        np.array([500.0, 100.0, 1_000.0]),
        np.array([gpt41, sonnet, gemini]),
    )
    np.testing.assert_allclose(cin, [0.012, 3_000 * 3e-6 + 2_000 * 3.75e-6, 0.625])
    np.testing.assert_allclose(ccached, [0.002, 0.0003, 0.0])
    np.testing.assert_allclose(cout, [0.004, 0.0015, 0.015])


def test_per_request_and_allocate_fixed() -> None:
    np.testing.assert_allclose(
        per_request(np.array([0, 0, 2]), np.array([1.0, 2.0, 5.0]), 3), [3.0, 0.0, 5.0]
    )
    out = allocate_fixed(10.0, np.array([0, 2, 2]), np.array([1.0, 1.0, 2.0]), 4)
    np.testing.assert_allclose(out, [2.5, 0.0, 7.5, 0.0])
    # provisioned but unused GPUs are still paid for: spread evenly over every request
    np.testing.assert_allclose(allocate_fixed(10.0, np.array([], dtype=np.int64), np.array([]), 4), [2.5] * 4)
    np.testing.assert_allclose(allocate_fixed(10.0, np.array([1, 1]), np.zeros(2), 3), [0.0, 10.0, 0.0])


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_quality_kernel_matches_reference(n: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    ability = g.normal(1.0, 1.5, (4, 6))
    m, s, d = g.integers(0, 4, n), g.integers(0, 6, n), g.normal(0, 2, n)
    np.testing.assert_allclose(
        p_success_kernel(ability, m, s, d), p_success_reference(ability, m, s, d), rtol=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.lists(st.integers(0, 12), min_size=0, max_size=8),
            st.floats(0, 50),
            st.floats(0, 5),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_prompt_cache_kernel_matches_reference(calls: list[tuple[list[int], float, float]]) -> None:
    """The Numba prompt-cache kernel and its plain-Python reference agree call by call."""
    from simroute.economics.prompt_cache import PromptCache
    from simroute.economics.prompt_cache_table import use_reference

    pc = PromptCache(ttl_s=10.0, min_tokens=0, block_tokens=1)
    exp: dict[int, float] = {}
    ready: dict[int, float] = {}
    now = 0.0
    for ids, dt, prefill in sorted(calls, key=lambda c: c[1]):
        now = max(now, dt)
        arr = np.array(ids, dtype=np.int64)
        hit = use_reference(exp, ready, arr, now, now + prefill, now + 10.0)
        cached, _ = pc.use(arr, len(ids) + 1, now, now + prefill)
        assert cached == hit
    assert pc._table.entries() == (exp, ready)


def test_prompt_cache_table_grows_and_purges_like_dicts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through many table growths and purges (from a 16-slot table, 0.5 s entries), the
    open-addressing table answers call by call as the dict reference does, and holds the same live
    entries."""
    from simroute.economics import prompt_cache_table
    from simroute.economics.prompt_cache import PromptCache
    from simroute.economics.prompt_cache_table import use_reference

    monkeypatch.setattr(prompt_cache_table, "MIN_BITS", 4)
    g = np.random.default_rng(11)
    pc = PromptCache(ttl_s=0.5, min_tokens=0, block_tokens=1)
    exp: dict[int, float] = {}
    ready: dict[int, float] = {}
    now, grown, purged = 0.0, 0, 0
    for _ in range(3000):
        now += float(g.exponential(0.05))
        start = int(g.integers(-(2**62), 2**62)) if g.random() < 0.3 else int(g.integers(0, 4000))
        ids = start + np.arange(int(g.integers(0, 40)), dtype=np.int64)
        prefill = float(g.exponential(0.2))
        cap, size = len(pc._table.keys), pc._table.size
        cached, _ = pc.use(ids, len(ids) + 1, now, now + prefill)
        grown += len(pc._table.keys) > cap
        purged += pc._table.size < size
        assert cached == use_reference(exp, ready, ids, now, now + prefill, now + 0.5)
    got_exp, got_ready = pc._table.entries()
    live = {k for k, v in exp.items() if v > now}
    assert {k for k, v in got_exp.items() if v > now} == live
    assert all(got_exp[k] == exp[k] and got_ready[k] == ready[k] for k in live)
    assert grown >= 2 and purged >= 50


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.tuples(st.integers(0, 30), st.integers(0, 6)), min_size=0, max_size=4),
        min_size=1,
        max_size=25,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_prompt_cache_reads_a_row_as_runs_as_its_flat_ids(
    rows: list[list[tuple[int, int]]], seed: int
) -> None:
    """A call's ids read as runs of a :class:`PrefixRuns` (empty runs, runs that repeat or overlap
    ids, empty rows) answer call by call as the dict reference over the flat ids does, and leave
    the same live entries."""
    from simroute.economics.prompt_cache import PromptCache
    from simroute.economics.prompt_cache_table import use_reference
    from simroute.workload.prefix_runs import PrefixRuns

    row_runs = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    flat = [run for r in rows for run in r]
    starts = np.array([s for s, _ in flat], dtype=np.int64)
    runs = PrefixRuns(row_runs, starts, np.array([n for _, n in flat], dtype=np.int64))
    g = np.random.default_rng(seed)
    pc = PromptCache(ttl_s=1.0, min_tokens=0, block_tokens=1)
    exp: dict[int, float] = {}
    ready: dict[int, float] = {}
    now = 0.0
    for row in g.permutation(len(rows)).tolist() * 2:
        now += float(g.exponential(0.3))
        prefill = float(g.exponential(0.3))
        ids = np.array([s + j for s, n in rows[row] for j in range(n)], dtype=np.int64)
        hit = use_reference(exp, ready, ids, now, now + prefill, now + 1.0)
        cached, written = pc.use_row(runs, row, len(ids) + 1, now, now + prefill)
        assert (cached, written) == (hit, len(ids) - hit)
    got_exp, got_ready = pc._table.entries()
    live = {k for k, v in exp.items() if v > now}
    assert {k for k, v in got_exp.items() if v > now} == live
    assert all(got_exp[k] == exp[k] and got_ready[k] == ready[k] for k in live)


def test_prompt_cache_refuses_a_use_earlier_than_the_last() -> None:
    """Purges drop the entries expired by a use's time, which is only right if no later use comes
    earlier: one that does is refused, not answered from a purged table."""
    from simroute.economics.prompt_cache import PromptCache

    pc = PromptCache(ttl_s=5.0, min_tokens=0, block_tokens=1)
    ids = np.arange(4, dtype=np.int64)
    pc.use(ids, 5, 10.0)
    assert pc.use(ids, 5, 10.0) == (4, 0)  # the same time again is fine
    with pytest.raises(ValueError, match=r"used at 9\.5 s after a use at 10\.0 s"):
        pc.use(ids, 5, 9.5)


def test_keyed_uniform_kernel_equals_its_python_definition() -> None:
    """The compiled keyed uniform (and the pair of them) is the SplitMix64 chain of
    :func:`luck.uniform_reference`, bit for bit, over random keys (large request ids and purposes
    included)."""
    from simroute import luck

    rng = np.random.default_rng(5)
    for _ in range(3000):
        key = (
            int(rng.integers(0, 2**31)),
            int(rng.integers(0, 2**32)),
            int(rng.integers(0, 2**62)),
            int(rng.integers(0, 12)),
            int(rng.integers(0, 12)),
        )
        assert luck.uniform(*key) == luck.uniform_reference(*key)
        seed, purpose, request, attempt, draw = key
        other = (purpose + 1) % 2**32
        assert luck.uniform_pair(seed, purpose, other, request, attempt, draw) == (
            luck.uniform_reference(*key),
            luck.uniform_reference(seed, other, request, attempt, draw),
        )


def test_engine_kernel_functions_are_compiled_without_reference_counting() -> None:
    """Every compiled function of the engine kernel runs without Numba's NRT (no atomic incref and
    decref of each array argument at every helper call: about half of the engine's time when on),
    so none may allocate an array: the scratch ``run`` needs is the caller's."""
    import numba

    from simroute.engine import kernel as K

    compiled = [v for v in vars(K).values() if isinstance(v, numba.core.registry.CPUDispatcher)]
    assert len(compiled) > 40
    assert all(f.targetoptions.get("_nrt") is False for f in compiled)


def test_a_kernels_compiled_entry_gives_what_the_kernel_gives() -> None:
    """``compiled_entry`` (what replicas call, skipping Numba's per-call type matching) returns
    the kernel's own result for the same arguments, and a plain function (a profiler's wrapper)
    unchanged."""
    from simroute.engine import kernel as K

    bp = np.zeros((64, K.N_BP), dtype=np.int64)
    sc = np.zeros(K.N_SC, dtype=np.int64)
    K.init_pool(bp, sc)
    entry = K.compiled_entry(K._cdiv, (5, 3))
    assert entry is not K._cdiv and entry(5, 3) == K._cdiv(5, 3) == 2 and entry(-7, 2) == K._cdiv(-7, 2)
    bp2, sc2 = np.zeros_like(bp), np.zeros_like(sc)
    K.compiled_entry(K.init_pool, (bp2, sc2))(bp2, sc2)
    assert np.array_equal(bp2, bp) and np.array_equal(sc2, sc)

    def wrapper(a: int, b: int) -> int:
        return int(K._cdiv(a, b))

    assert K.compiled_entry(wrapper, (5, 3)) is wrapper
