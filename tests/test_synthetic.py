"""Synthetic agent workload: size, order, sessions, skill profiles, arrival processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from simroute import rng as rng_mod
from simroute.workload import arrivals
from simroute.workload.synthetic import generate


def _wl(cfg: dict[str, Any], **kw: Any) -> dict[str, Any]:
    w = dict(cfg["workload"])
    w.update(kw)
    return w


def test_generates_exactly_n_sorted_valid_requests(cfg, skills) -> None:
    t = generate(_wl(cfg, n_requests=5000), skills, seed=1)
    assert len(t) == 5000
    assert t.df["arrival_s"].is_sorted()
    assert t.df["request_id"].to_list() == list(range(5000))


def test_same_seed_same_table_other_seed_differs(cfg, skills) -> None:
    a = generate(_wl(cfg, n_requests=2000), skills, seed=7).with_prefix_column().df
    b = generate(_wl(cfg, n_requests=2000), skills, seed=7).with_prefix_column().df
    c = generate(_wl(cfg, n_requests=2000), skills, seed=8).with_prefix_column().df
    assert a.equals(b)
    assert not a.equals(c)


def test_sessions_grow_context_and_share_prefixes(cfg, skills) -> None:
    df = generate(_wl(cfg, n_requests=20000), skills, seed=3).with_prefix_column().df
    multi = df.filter(pl.col("skill") == "code_change").sort(["session_id", "step"])
    s = multi.group_by("session_id").agg(
        pl.len().alias("n"), pl.col("prompt_tokens"), pl.col("prefix_hashes")
    )
    s = s.filter(pl.col("n") >= 3)
    assert s.height > 50
    grew = shared = 0
    for prompts, hashes in zip(s["prompt_tokens"].to_list(), s["prefix_hashes"].to_list(), strict=True):
        grew += prompts[1] >= prompts[0]
        shared += hashes[1][: len(hashes[0]) // 2] == hashes[0][: len(hashes[0]) // 2]
    assert grew / s.height > 0.9
    assert shared / s.height > 0.9
    # every request of a skill starts with that skill's system-prompt blocks
    sys_blocks = skills.profile("eval_traces").system_prompt_tokens // cfg["workload"]["block_tokens"]
    ev = df.filter(pl.col("skill") == "eval_traces")["prefix_hashes"].to_list()
    assert len({tuple(h[:sys_blocks]) for h in ev}) == 1


def test_skill_profiles_shape_the_requests(cfg, skills) -> None:
    df = generate(_wl(cfg, n_requests=30000), skills, seed=0).df
    by = {
        r["skill"]: r
        for r in df.group_by("skill")
        .agg(
            pl.col("output_tokens").median().alias("out"),
            (pl.col("urgency") == "batchable").mean().alias("batchable"),
            pl.col("risky_migration").mean().alias("migr"),
            pl.col("difficulty").mean().alias("diff"),
        )
        .to_dicts()
    }
    assert by["diligence_memo"]["out"] > 3 * by["draft_reply"]["out"]
    assert by["eval_traces"]["batchable"] > 0.9 > by["draft_reply"]["batchable"]
    assert by["db_migration"]["migr"] == pytest.approx(0.6, abs=0.05)
    assert by["draft_reply"]["migr"] == 0.0
    assert by["db_migration"]["diff"] > by["draft_reply"]["diff"]
    deadlines = dict(zip(df["urgency"].to_list(), df["deadline_s"].to_list(), strict=False))
    assert deadlines == {"interactive": 60.0, "soon": 3600.0, "batchable": 86400.0}


def test_poisson_rate() -> None:
    t = arrivals.poisson(2.0, 20000, rng_mod.stream(0, "t"))
    assert 20000 / t[-1] == pytest.approx(2.0, rel=0.03)


def _dispersion(t: np.ndarray, width: float) -> float:
    counts = np.bincount((t // width).astype(np.int64))
    return float(counts.var() / counts.mean())


def test_mmpp_is_bursty_with_the_same_mean_rate() -> None:
    g = rng_mod.stream(0, "t")
    t = arrivals.mmpp(2.0, 50000, g, burst_factor=8.0, burst_share=0.1, mean_burst_s=60.0)
    assert np.all(np.diff(t) >= 0)
    assert 50000 / t[-1] == pytest.approx(2.0, rel=0.15)
    assert _dispersion(t, 10.0) > 5.0  # Poisson would be ~1
    assert _dispersion(arrivals.poisson(2.0, 50000, g), 10.0) == pytest.approx(1.0, abs=0.2)


def test_diurnal_peaks_at_peak_time() -> None:
    t = arrivals.diurnal(1.0, 400000, rng_mod.stream(0, "t"), amplitude=0.6, period_s=86400, peak_s=50400)
    t = t[t < 4 * 86400]  # whole days only
    hour = ((t % 86400) // 3600).astype(int)
    per_hour = np.bincount(hour, minlength=24)
    assert per_hour.argmax() in (13, 14)
    assert per_hour.max() / per_hour.min() > 3.0


def test_urgency_is_a_property_of_the_session(cfg, skills) -> None:
    """Every session has one urgency and one deadline class; the mix per skill is still the profile's."""
    df = generate(_wl(cfg, n_requests=20000), skills, seed=5).df
    per = df.group_by("session_id").agg(
        pl.col("urgency").n_unique().alias("u"),
        pl.col("deadline_s").n_unique().alias("d"),
        pl.len().alias("n"),
    )
    assert per.filter(pl.col("n") >= 2).height > 500  # many multi-step sessions are checked
    assert per["u"].max() == 1 and per["d"].max() == 1
    first = df.filter(pl.col("step") == 0)
    for name in ("draft_reply", "eval_traces"):
        got = first.filter(pl.col("skill") == name)["urgency"]
        for u, p in skills.profile(name).urgency.items():
            assert float((got == u).mean()) == pytest.approx(p, abs=0.05), (name, u)


def test_string_columns_from_codes_equal_columns_from_strings() -> None:
    """``words_column``/``word_codes`` (the generator's fast path) give the column a NumPy str array
    gives; a value outside the vocabulary is refused, not coded as some other word."""
    from simroute.workload.schema import words_column
    from simroute.workload.skills import URGENCIES, word_codes

    rng = np.random.default_rng(0)
    values = np.asarray(URGENCIES)[rng.integers(0, len(URGENCIES), 1000)]
    col = words_column("urgency", URGENCIES, word_codes(values, URGENCIES))
    assert col.equals(pl.Series("urgency", values))
    with pytest.raises(ValueError, match="'later' is not one of"):
        word_codes(np.append(values, "later"), URGENCIES)


def test_deadlines_follow_the_urgency_class() -> None:
    from simroute.workload.skills import _deadlines

    urgency = np.asarray(["b", "a", "b", "c"])
    assert _deadlines(urgency, {"a": 1.5, "b": 60.0, "c": 3600.0}).tolist() == [60.0, 1.5, 60.0, 3600.0]
    with pytest.raises(ValueError, match="'c' is not one of"):
        _deadlines(urgency, {"a": 1.5, "b": 60.0})


def test_copies_in_order_follow_chains_of_repeats() -> None:
    """The kernel copies row by row in turn, as the plain loop does: a repeat of a repeat gets the
    root's value (checked against the loop on random chains)."""
    from simroute.workload.synthetic import _copy_in_order

    rng = np.random.default_rng(5)
    for dtype in (np.float64, np.int64, np.bool_):
        if dtype is np.float64:
            values = rng.random(500)
        else:
            values = rng.integers(0, 2 if dtype is np.bool_ else 10**6, 500).astype(dtype)
        dst = np.sort(rng.choice(np.arange(1, 500), 200, replace=False))
        src = np.array([rng.integers(0, d) for d in dst])
        want = values.copy()
        for d, s in zip(dst.tolist(), src.tolist(), strict=True):
            want[d] = want[s]
        got = values.copy()
        _copy_in_order(got, dst, src)
        assert np.array_equal(got, want)
