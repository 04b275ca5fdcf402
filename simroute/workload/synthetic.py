"""Synthetic agent-fleet workload: sessions of skills arriving by a chosen process.

A *session* is one agent task: it has one skill, ``1 + Geometric`` steps (mean ``steps_mean``), and each
step after the first waits for the previous one: ``after_ids`` names the previous step and ``think_s``
its drawn gap (exponential, mean ``think_s``), so a closed-loop run issues it that long after the
previous step's answer is back. ``arrival_s`` is the open-loop schedule (the gaps summed from the
session start), used by ``workload.replay=open_loop`` and kept as ``recorded_arrival_s``. Step 0's
prompt is the skill's system prompt plus a fresh prompt; later steps carry ``context_growth`` of the
previous step's context and output as a *prefix* plus fresh tokens, so prompts grow along a session as
agent contexts do. ``prefix_hashes`` encodes that sharing at block granularity: the skill's system-
prompt blocks are shared by all its requests, the carried context blocks by consecutive steps of a
session.

*Urgency* is a property of the session, not of a step: it is drawn once per session from its skill's
``urgency`` mix (its own seeded stream, ``workload.session_urgency``), and every step carries it and
its deadline class (an interactive session has no background steps). Difficulty and risk features
are drawn per step.

*Repeats* give the workload its duplicate structure: with the skill's ``repeat.exact`` probability a
session's first request is word for word the first request of an earlier session of the same skill
(started at most ``repeat_window_s`` before; chosen uniformly among them, so popular requests get
repeated more — a preferential-attachment, Zipf-like popularity); with ``repeat.near`` it asks the
same thing in other words. Exact repeats share ``content_id``, both kinds share ``intent_id``, and
both inherit the original's difficulty and risk features (the same task is as hard the second time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import polars as pl

from simroute import rng as rng_mod
from simroute.config import config_count
from simroute.errors import ConfigError
from simroute.workload import arrivals
from simroute.workload.prefix_blocks import list_column, prefix_block_runs, session_blocks
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.schema import RequestTable, empty_prefix_column, words_column
from simroute.workload.skills import (
    RISK_FEATURES,
    URGENCIES,
    SkillCatalog,
    draw_urgency,
    sample_attributes,
    word_codes,
)


def generate(cfg: Mapping[str, Any], catalog: SkillCatalog, seed: int) -> RequestTable:
    """Generate ``cfg["n_requests"]`` requests (the earliest arrivals of the generated sessions).

    Config keys: ``n_requests``, ``think_s`` (mean seconds between a session's steps),
    ``block_tokens`` (prefix block size, tokens), ``arrival`` (see :mod:`arrivals`; its rate is in
    *sessions* per second), ``repeat_window_s`` (how far back a repeat may reach, seconds; default
    one day).
    """
    n = config_count(cfg["n_requests"], "workload.n_requests")
    block = int(cfg["block_tokens"])
    rng = rng_mod.stream(seed, "workload.synthetic")
    profiles = list(catalog.profiles)
    starts, skill, steps = _draw_sessions(cfg, catalog, n, rng)
    total = int(steps.sum())
    sess = np.repeat(np.arange(len(starts), dtype=np.int64), steps)
    step = np.arange(total) - np.repeat(np.cumsum(steps) - steps, steps)
    gaps = np.where(step == 0, 0.0, rng.exponential(float(cfg["think_s"]), total))
    arrival = np.repeat(starts, steps) + _segmented_cumsum(gaps, step)
    sk = skill[sess]
    fresh = np.empty(total, dtype=np.int64)
    out = np.empty(total, dtype=np.int64)
    for k, p in enumerate(profiles):
        m = sk == k
        fresh[m] = p.prompt.sample(rng, int(m.sum()))
        out[m] = p.output.sample(rng, int(m.sum()))
    src_sess, exact = _session_repeats(
        skill, starts, profiles, float(cfg.get("repeat_window_s", 86_400.0)), seed
    )
    rep = _repeat_rows(steps, src_sess, exact)
    rows = rep.copy[rep.exact[rep.copy]]  # in row order, so a repeat of a repeat copies the root's draws
    _copy_in_order(fresh, rows, rep.src[rows])
    _copy_in_order(out, rows, rep.src[rows])
    sys_tokens = np.array([p.system_prompt_tokens for p in profiles], dtype=np.int64)
    walk = session_blocks(
        sk,
        step,
        fresh,
        out,
        sys_tokens,
        np.array([p.context_growth for p in profiles], dtype=np.float64),
        np.array([p.prompt.hi for p in profiles], dtype=np.int64),
        block,
        np.where(rep.exact, rep.src, -1),
    )
    content, intent = _duplicate_ids(rep, total)
    order = np.lexsort((step, sess, arrival))[:n]
    prefixes = PrefixRuns(*prefix_block_runs(order, sk, sys_tokens, block, walk))  # never flat
    urgency = draw_urgency(profiles, skill, rng_mod.stream(seed, "workload.session_urgency"))[sess[order]]
    attrs = sample_attributes(profiles, sk[order], catalog.deadlines_s, rng, urgency=urgency)
    _inherit_attributes(attrs, rep, order, total)
    attr_cols: dict[str, Any] = dict(attrs)  # urgency as its String column, in its place
    attr_cols["urgency"] = words_column("urgency", URGENCIES, word_codes(attrs["urgency"], URGENCIES))
    df = pl.DataFrame(
        {
            "request_id": np.arange(n, dtype=np.int64),
            "session_id": sess[order],
            "step": step[order].astype(np.int32),
            "arrival_s": arrival[order],
            "skill": words_column("skill", catalog.names, sk[order]),
            "prompt_tokens": walk.prompt[order],
            "output_tokens": out[order],
            **attr_cols,
            "prefix_hashes": empty_prefix_column(n),  # the ids are held as runs (``prefixes``)
            "content_id": content[order],
            "intent_id": intent[order],
            "think_s": gaps[order],
            "after_ids": _previous_step(order, step, total),
        }
    )
    return RequestTable(
        df,
        f"synthetic:{cfg.get('name', 'agent_fleet')}",
        block,
        catalog.names,
        {"synthetic (labels drawn from skill profiles)": n},
        prefixes=prefixes,
    )


def _draw_sessions(
    cfg: Mapping[str, Any], catalog: SkillCatalog, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Session start times (s), skill indices and step counts, enough sessions for ``n`` steps."""
    profiles = list(catalog.profiles)
    weights = np.array([p.weight for p in profiles], dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ConfigError("skills.profiles.*.weight must be >= 0 with a positive sum")
    mean_steps = float(np.dot(weights / weights.sum(), [p.steps_mean for p in profiles]))
    n_sessions = int(np.ceil(n / mean_steps * 1.15)) + 8
    while True:
        starts = arrivals.sample(cfg["arrival"], n_sessions, rng)
        skill = _draw_skills(cfg.get("drift"), catalog, weights, starts, rng)
        steps = rng.geometric(1.0 / np.array([max(p.steps_mean, 1.0) for p in profiles])[skill])
        if steps.sum() >= n:
            return starts, skill, steps
        n_sessions *= 2


@dataclass(frozen=True)
class _Repeats:
    """Rows that repeat an earlier session's first request: ``src[i]`` is the row repeated by row
    ``i`` (-1: none), ``exact[i]`` whether word for word, ``copy`` the repeating rows in order."""

    src: np.ndarray
    exact: np.ndarray
    copy: np.ndarray


def _repeat_rows(steps: np.ndarray, src_sess: np.ndarray, exact: np.ndarray) -> _Repeats:
    """Map session-level repeats (``src_sess``: repeated session, -1: none) to rows."""
    total = int(steps.sum())
    first_row = np.cumsum(steps) - steps
    src_row = np.full(total, -1, dtype=np.int64)
    has_src = src_sess >= 0
    src_row[first_row[has_src]] = first_row[src_sess[has_src]]
    exact_row = np.zeros(total, dtype=bool)
    exact_row[first_row[has_src & exact]] = True
    return _Repeats(src_row, exact_row, np.flatnonzero(src_row >= 0))


@numba.njit(cache=True)
def _copy_in_order(values, dst, src):  # type: ignore[no-untyped-def]
    """``values[dst[j]] = values[src[j]]`` for j = 0, 1, ... in turn (in place): a row copied from
    a row that was itself copied earlier gets the earlier row's source value."""
    for j in range(len(dst)):
        values[dst[j]] = values[src[j]]


def _duplicate_ids(rep: _Repeats, total: int) -> tuple[np.ndarray, np.ndarray]:
    """``content_id`` (equal for exact repeats) and ``intent_id`` (equal for any repeat) per row."""
    content = np.arange(total, dtype=np.int64)
    intent = np.arange(total, dtype=np.int64)
    _copy_in_order(intent, rep.copy, rep.src[rep.copy])
    exact = rep.copy[rep.exact[rep.copy]]
    _copy_in_order(content, exact, rep.src[exact])
    return content, intent


def _inherit_attributes(attrs: dict[str, Any], rep: _Repeats, order: np.ndarray, total: int) -> None:
    """A repeat is the same task: it gets its source's difficulty and risk features (in place)."""
    n = len(order)
    pos = np.full(total, -1, dtype=np.int64)
    pos[order] = np.arange(n)
    dst = pos[rep.copy]
    src = pos[rep.src[rep.copy]]
    ok = (dst >= 0) & (src >= 0)
    for c in ("difficulty", *RISK_FEATURES):  # the same task is as hard (and as risky) again
        _copy_in_order(attrs[c], dst[ok], src[ok])  # row order: repeats of repeats see the root


def _draw_skills(
    drift: Any, catalog: SkillCatalog, weights: np.ndarray, starts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Skill of each session; with ``drift: {to: {skill: weight}, over_s: S}`` the mix moves
    linearly from the profiles' weights to ``to`` over ``S`` seconds (then stays)."""
    w0 = weights / weights.sum()
    u = rng.random(len(starts))
    if not drift:
        return np.minimum(np.searchsorted(np.cumsum(w0), u, side="right"), len(w0) - 1)
    to = dict(drift["to"])
    unknown = set(to) - set(catalog.names)
    if unknown:
        raise ConfigError(f"workload.drift.to: unknown skill(s) {sorted(unknown)}")
    w1 = np.array([float(to.get(s, 0.0)) for s in catalog.names])
    if (w1 < 0).any() or w1.sum() <= 0:
        raise ConfigError("workload.drift.to: weights must be >= 0 with a positive sum")
    w1 = w1 / w1.sum()
    f = np.clip(starts / float(drift["over_s"]), 0.0, 1.0)[:, None]
    cum = np.cumsum((1 - f) * w0[None, :] + f * w1[None, :], axis=1)
    return np.asarray(np.minimum((cum < u[:, None]).sum(axis=1), len(w0) - 1))


def _session_repeats(
    skill: np.ndarray, starts: np.ndarray, profiles: list[Any], window_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per session: the earlier session it repeats (-1: none) and whether word for word.

    Draws come from their own stream, so repeat rates of zero leave the rest of the workload as it
    was. ``starts`` must be non-decreasing (sessions in start order)."""
    if window_s <= 0:
        raise ConfigError(f"workload.repeat_window_s must be > 0, got {window_s}")
    p_exact = np.array([p.repeat_exact for p in profiles])
    p_near = np.array([p.repeat_near for p in profiles])
    n = len(skill)
    src = np.full(n, -1, dtype=np.int64)
    exact = np.zeros(n, dtype=bool)
    if not (p_exact > 0).any() and not (p_near > 0).any():
        return src, exact
    r = rng_mod.stream(seed, "workload.repeats")
    u, v = r.random(n), r.random(n)
    pe, pn = p_exact[skill], p_near[skill]
    for k in range(len(profiles)):
        idx = np.flatnonzero(skill == k)
        if len(idx) < 2:
            continue
        t = starts[idx]
        lo = np.searchsorted(t, t - window_s, side="left")
        pos = np.arange(len(idx))
        can = (pos > lo) & (u[idx] < pe[idx] + pn[idx])
        pick = lo + np.floor(v[idx] * (pos - lo)).astype(np.int64)
        src[idx[can]] = idx[pick[can]]
        exact[idx[can]] = u[idx[can]] < pe[idx[can]]
    return src, exact


def _previous_step(order: np.ndarray, step: np.ndarray, total: int) -> pl.Series:
    """Per kept row (``order``: generated rows in request-id order): ``[request id of the session's
    previous step]``, empty for a first step. Rows of a session are consecutive in generation order
    and arrive in step order, so the previous step is always kept when a later one is."""
    pos = np.full(total, -1, dtype=np.int64)
    pos[order] = np.arange(len(order))
    has_prev = step[order] > 0
    offsets = np.concatenate([[0], np.cumsum(has_prev)]).astype(np.int64)
    return list_column("after_ids", offsets, pos[order[has_prev] - 1])


def _segmented_cumsum(x: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` restarting wherever ``step == 0``."""
    c = np.cumsum(x)
    start = np.maximum.accumulate(np.where(step == 0, np.arange(len(x)), 0))
    return np.asarray(c - c[start] + x[start])


def _session_prompts(
    sk: np.ndarray,
    step: np.ndarray,
    fresh: np.ndarray,
    out: np.ndarray,
    profiles: list[Any],
    block: int,
    copy_row: np.ndarray,
) -> tuple[np.ndarray, list[list[int]]]:
    """Prompt lengths (tokens) and prefix-block ids of every request, walking each session.

    A first step with ``copy_row >= 0`` repeats that earlier row word for word (same blocks)."""
    total = len(sk)
    prompt = np.empty(total, dtype=np.int64)
    hashes: list[list[int]] = [[] for _ in range(total)]
    sys_blocks = [
        list(range(k * 10_000, k * 10_000 + p.system_prompt_tokens // block)) for k, p in enumerate(profiles)
    ]
    next_id = len(profiles) * 10_000
    ctx_ids: list[int] = []
    ctx_tokens = 0
    first_ctx: dict[int, tuple[list[int], int]] = {}
    for i in range(total):
        p = profiles[sk[i]]
        if copy_row[i] >= 0:
            j = int(copy_row[i])
            prompt[i], hashes[i] = prompt[j], hashes[j]
            ctx_ids, ctx_tokens = first_ctx[j]
            first_ctx[i] = first_ctx[j]
            continue
        carried = 0 if step[i] == 0 else int(p.context_growth * (ctx_tokens + out[i - 1]))
        ctx = min(carried + int(fresh[i]), p.prompt.hi)
        carried = min(carried, ctx, ctx_tokens)
        keep = carried // block
        n_blocks = ctx // block
        ids = ctx_ids[:keep] + list(range(next_id, next_id + n_blocks - keep))
        next_id += max(n_blocks - keep, 0)
        prompt[i] = p.system_prompt_tokens + ctx
        hashes[i] = sys_blocks[sk[i]] + ids if p.system_prompt_tokens % block == 0 else (sys_blocks[sk[i]])
        ctx_ids, ctx_tokens = ids, ctx
        if step[i] == 0:
            first_ctx[i] = (ids, ctx)
    return prompt, hashes
