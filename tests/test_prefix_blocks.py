"""The flat prefix-block kernel equals the straightforward per-row walk it replaced (the reference
path, kept in :mod:`simroute.workload.synthetic`), and the list column round-trips flat arrays."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simroute.workload.prefix_blocks import list_column, prefix_blocks, session_blocks
from simroute.workload.synthetic import _session_prompts


def _case(seed: int, block: int) -> dict:
    """Random sessions of three skills (one whose system prompt is not whole blocks), with
    word-for-word repeats of earlier first steps (and repeats of repeats)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 6, 60)
    total = int(steps.sum())
    skill_of_session = rng.integers(0, 3, len(steps))
    sk = np.repeat(skill_of_session, steps)
    step = np.arange(total) - np.repeat(np.cumsum(steps) - steps, steps)
    first = np.cumsum(steps) - steps
    copy = np.full(total, -1, dtype=np.int64)
    for s in range(5, len(steps)):
        if rng.random() < 0.3:
            same = [t for t in range(s) if skill_of_session[t] == skill_of_session[s]]
            if same:
                copy[first[s]] = first[rng.choice(same)]
    shapes = [(2 * block, 0.8, 40 * block), (block + 3, 0.5, 9 * block), (0, 1.0, 25 * block)]
    profiles = [
        SimpleNamespace(system_prompt_tokens=s, context_growth=g, prompt=SimpleNamespace(hi=h))
        for s, g, h in shapes
    ]
    return {
        "sk": sk,
        "step": step,
        "fresh": rng.integers(0, 6 * block, total),
        "out": rng.integers(1, 3 * block, total),
        "profiles": profiles,
        "copy": copy,
    }


@pytest.mark.parametrize("seed", range(6))
def test_kernel_equals_the_reference_walk(seed: int) -> None:
    block = 16
    c = _case(seed, block)
    sk, profiles = c["sk"], c["profiles"]
    ref_prompt, ref_hashes = _session_prompts(sk, c["step"], c["fresh"], c["out"], profiles, block, c["copy"])
    assert any(c["copy"] >= 0)
    sys_tokens = np.array([p.system_prompt_tokens for p in profiles])
    walk = session_blocks(
        sk,
        c["step"],
        c["fresh"],
        c["out"],
        sys_tokens,
        np.array([p.context_growth for p in profiles]),
        np.array([p.prompt.hi for p in profiles]),
        block,
        c["copy"],
    )
    assert walk.prompt.tolist() == ref_prompt.tolist()
    order = np.random.default_rng(seed).permutation(len(sk))
    off, vals = prefix_blocks(order, sk, sys_tokens, block, walk)
    got = [vals[off[p] : off[p + 1]].tolist() for p in range(len(order))]
    assert got == [list(ref_hashes[i]) for i in order]


def test_list_column_round_trips_flat_arrays_with_empty_rows() -> None:
    lens = np.array([3, 0, 1, 0, 0, 5, 2])
    off = np.concatenate([[0], np.cumsum(lens)])
    vals = np.arange(off[-1], dtype=np.int64) * 7
    col = list_column("h", off, vals, chunk_rows=3)
    assert col.name == "h"
    assert col.to_list() == [vals[off[i] : off[i + 1]].tolist() for i in range(len(lens))]
    assert list_column("h", np.zeros(1, dtype=np.int64), vals[:0]).to_list() == []
