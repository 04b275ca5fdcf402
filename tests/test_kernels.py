"""Each Numba kernel agrees with its plain-NumPy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simroute.economics.costs import allocate_fixed, attempt_costs_kernel, attempt_costs_reference
from simroute.economics.quality import p_success_kernel, p_success_reference


@settings(max_examples=50, deadline=None)
@given(n_req=st.integers(1, 50), n_att=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_cost_kernel_matches_reference(n_req: int, n_att: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    req = g.integers(0, n_req, n_att)
    p = g.integers(1, 200_000, n_att).astype(np.float64)
    o = g.integers(1, 8_000, n_att).astype(np.float64)
    pin = g.choice([0.0, 1.5e-7, 2e-6, 3e-6], n_att)
    pout = g.choice([0.0, 6e-7, 8e-6, 1.5e-5], n_att)
    a = attempt_costs_kernel(req, p, o, pin, pout, n_req)
    b = attempt_costs_reference(req, p, o, pin, pout, n_req)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)


def test_cost_kernel_hand_computed() -> None:
    # gpt-4.1: $2/M input, $8/M output; 1,000 in + 500 out = 0.002 + 0.004 USD; two attempts on request 0
    req = np.array([0, 0, 1])
    cin, cout = attempt_costs_kernel(
        req,
        np.array([1000.0, 1000.0, 10.0]),
        np.array([500.0, 500.0, 1.0]),
        np.array([2e-6, 2e-6, 0.0]),
        np.array([8e-6, 8e-6, 0.0]),
        2,
    )
    np.testing.assert_allclose(cin, [0.004, 0.0])
    np.testing.assert_allclose(cout, [0.008, 0.0])


def test_allocate_fixed_conserves_the_total() -> None:
    out = allocate_fixed(10.0, np.array([0, 2, 2]), np.array([1.0, 1.0, 2.0]), 4)
    np.testing.assert_allclose(out, [2.5, 0.0, 7.5, 0.0])
    assert allocate_fixed(10.0, np.array([], dtype=np.int64), np.array([]), 3).sum() == 0.0
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
