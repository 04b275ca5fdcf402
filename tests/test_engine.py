"""Engine properties: fast-forward equals stepping, every request finishes, blocks are conserved."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simroute.config import TRACES_DIR
from simroute.engine import kernel as K
from simroute.engine.config import EngineConfig
from simroute.engine.profiles import (
    holdout_mape,
    kv_bytes_per_token,
    profile_step_time,
    read_vidur_mlp,
    tabulate,
)
from simroute.engine.replica import Replica
from simroute.engine.steptime import LinearStepTime

STEP = LinearStepTime(const_s=0.004, per_prefill_token_s=1e-4, per_decode_s=3e-4, per_context_token_s=1e-7)
FIELDS = (K.FSTEP, K.DSTEP, K.NPRE, K.NCACHED, K.ARRSTEP)
TIMES = (K.ADDT, K.FIRSTT, K.DONET, K.SCHEDT)


def _run(cfg: EngineConfig, reqs: list[tuple[float, int, int, int]], mode: str, fast: bool) -> Replica:
    rep = Replica(cfg, STEP, mode=mode, capacity=8, log_steps=100_000, fast_forward=fast)
    for t, p, o, g in reqs:
        keys = None if g < 0 else g * 1000 + np.arange(p // cfg.block_size // 2, dtype=np.int64)
        rep.add(p, o, arrival_s=t, arrival_step=int(t * 10), prefix_keys=keys)
    rep.run_until()
    return rep


def _assert_same_run(a: Replica, b: Replica) -> None:
    """The two replicas ran the same steps: request fields, times and busy time bit-identical, and
    the same step log, times included."""
    assert a.steps == b.steps
    for f in (*FIELDS, K.NOUT):
        assert a.request_field(f).tolist() == b.request_field(f).tolist()
    for f in TIMES:
        np.testing.assert_array_equal(a.request_time(f), b.request_time(f))  # bit-identical
    np.testing.assert_array_equal(a.request_time(K.BUSY), b.request_time(K.BUSY))
    la, lb = a.step_log(), b.step_log()
    for col in ("t_start_s", "t_end_s", "num_scheduled_tokens", "num_prefill_tokens", "num_decode_tokens"):
        assert getattr(la, col).tolist() == getattr(lb, col).tolist(), col
    for col in ("num_running", "num_waiting", "kv_blocks_used"):
        assert getattr(la, col).tolist() == getattr(lb, col).tolist(), col


workloads = st.lists(
    st.tuples(st.floats(0, 5), st.integers(1, 400), st.integers(1, 80), st.integers(-1, 2)),
    min_size=1,
    max_size=40,
).map(lambda xs: sorted(xs, key=lambda x: x[0]))


@settings(max_examples=60, deadline=None)
@given(
    reqs=workloads,
    blocks=st.integers(30, 200),
    budget=st.sampled_from([64, 256, 2048]),
    seqs=st.integers(1, 16),
    prefix=st.booleans(),
    mode=st.sampled_from(["time", "step"]),
    lpt=st.sampled_from([0, 48]),
    admission=st.sampled_from([(True, True, 0.0), (False, True, 0.0), (True, False, 0.0), (True, True, 0.1)]),
)
def test_fast_forward_is_identical_to_stepping(
    reqs, blocks, budget, seqs, prefix, mode, lpt, admission
) -> None:
    """Also while requests wait that cannot be admitted (a saturated engine), with and without
    chunked prefill, full-sequence reservation and a watermark."""
    chunked, reserve, watermark = admission
    cfg = EngineConfig(
        max_num_batched_tokens=budget,
        max_num_seqs=seqs,
        block_size=16,
        num_gpu_blocks=blocks,
        enable_prefix_caching=prefix,
        long_prefill_token_threshold=lpt,
        max_model_len=4096,
        enable_chunked_prefill=chunked,
        reserve_full_isl=reserve,
        watermark=watermark,
    )
    reqs = [r for r in reqs if -(-(r[1] + r[2]) // 16) <= blocks - 1]  # each must fit alone
    if not chunked:  # without chunked prefill a whole (resumed) sequence must fit the token budget
        reqs = [r for r in reqs if r[1] + r[2] <= budget]
    if not reqs:
        return
    a, b = _run(cfg, reqs, mode, True), _run(cfg, reqs, mode, False)
    _assert_same_run(a, b)
    # conservation: every request produced all its tokens and gave its blocks back
    assert (a.request_field(K.NOUT) == a.request_field(K.MAXOUT)).all()
    assert (a.request_field(K.STATUS) == K.ST_DONE).all()
    assert a.kv_blocks_used == 0
    assert a.idle


def _run_split(
    cfg: EngineConfig, reqs: list[tuple[float, int, int, int]], per_key: int, fast: bool, chunk: int
) -> tuple[Replica, list[list[int]]]:
    """Run ``reqs`` (arrival s, prompt, outputs, shared prefix ids: may reach past the prompt into
    the outputs) in calls of at most ``chunk`` steps, as the local tier's driver does."""
    rep = Replica(cfg, STEP, mode="time", capacity=8, log_steps=100_000, fast_forward=fast)
    for t, p, o, n_ids in reqs:
        keys = np.arange(n_ids, dtype=np.int64) if n_ids > 0 else None
        rep.add(p, o, arrival_s=t, prefix_keys=keys, blocks_per_key=per_key)
    finished = []
    while not rep.idle:
        finished.append(rep.run_until(max_steps=chunk).tolist())
    return rep, finished


@settings(max_examples=60, deadline=None)
@given(
    reqs=st.lists(
        st.tuples(st.floats(0, 3), st.integers(1, 200), st.integers(1, 60), st.integers(0, 12)),
        min_size=1,
        max_size=30,
    ).map(lambda xs: sorted(xs, key=lambda x: x[0])),
    blocks=st.integers(14, 120),
    budget=st.sampled_from([32, 64, 2048]),
    seqs=st.integers(1, 12),
    per_key=st.sampled_from([1, 2, 4]),
    maxlen=st.sampled_from([160, 320, 4096]),
    chunk=st.sampled_from([1, 3, 2**40]),
)
def test_fast_forward_is_identical_across_calls_and_long_prefix_ids(
    reqs, blocks, budget, seqs, per_key, maxlen, chunk
) -> None:
    """Fast-forward equals stepping when shared prefix ids reach into the outputs, ids cover several
    blocks, ``max_model_len`` cuts requests short, and the engine is run a few steps per call (the
    remembered prefix lookup carried between calls): the same steps, step log, request times,
    completions per call and busy time."""
    cfg = EngineConfig(
        max_num_batched_tokens=budget,
        max_num_seqs=seqs,
        block_size=16,
        num_gpu_blocks=blocks,
        max_model_len=maxlen,
    )
    reqs = [r for r in reqs if -(-min(r[1] + r[2], maxlen) // 16) <= blocks - 1 and r[1] < maxlen]
    if not reqs:
        return
    (a, fa), (b, fb) = (
        _run_split(cfg, reqs, per_key, True, chunk),
        _run_split(cfg, reqs, per_key, False, chunk),
    )
    _assert_same_run(a, b)
    assert fa == fb  # the same requests finish in the same call
    assert sorted(i for call in fa for i in call) == list(range(len(reqs)))


class _GrowingKeys(Replica):
    """A replica that only ever grows its prefix-id array (no packing): the reference."""

    def _make_key_room(self, k: int, n: int) -> None:
        while self.n_keys + k > len(self.keys):
            self.keys = np.concatenate([self.keys, np.zeros_like(self.keys)])


@pytest.mark.parametrize("blocks", [80, 400])
def test_packing_finished_requests_prefix_ids_changes_no_step(blocks: int) -> None:
    """Requests added while others run and finish, with shared and private prefix ids (and, with 80
    KV blocks, preemptions): packing the ids of requests in flight (dropping finished ones') gives
    the same steps, times, cache hits and completions per call as an array that only grows, and
    holds fewer ids."""
    cfg = EngineConfig(max_num_batched_tokens=512, max_num_seqs=8, block_size=16, num_gpu_blocks=blocks)
    g = np.random.default_rng(3)
    reps = (
        Replica(cfg, STEP, capacity=8, log_steps=100_000),
        _GrowingKeys(cfg, STEP, capacity=8, log_steps=100_000),
    )
    done: tuple[list[list[int]], list[list[int]]] = ([], [])
    t, pending = 0.0, 0
    for _ in range(200):
        for _ in range(int(g.integers(1, 4))):  # some arrive after this call's limit: still pending
            t += float(g.exponential(0.03))
            p, o = int(g.integers(16, 600)), int(g.integers(1, 40))
            nkeys = int(g.integers(0, 12))
            keys = int(g.integers(0, 5)) * 1000 + np.arange(nkeys, dtype=np.int64) if nkeys else None
            for rep in reps:
                rep.add(p, o, arrival_s=t, prefix_keys=keys, blocks_per_key=2)
        pending += reps[0].num_pending > 0
        for rep, fin in zip(reps, done, strict=True):
            fin.append(rep.run_until(t - 0.04).tolist())
    for rep, fin in zip(reps, done, strict=True):
        fin.append(rep.run_until().tolist())
    _assert_same_run(*reps)
    assert done[0] == done[1] and pending > 100
    assert np.count_nonzero(reps[0].cache[:, 0] != K.HT_EMPTY) <= blocks - 1  # one entry per block at most
    assert np.count_nonzero(reps[0].request_field(K.NCACHED) > 0) > 200
    assert np.count_nonzero(reps[0].request_field(K.NPRE)) > (10 if blocks == 80 else -1)
    assert 2 * len(reps[0].keys) <= len(reps[1].keys)


@pytest.mark.parametrize("blocks", [80, 400])
def test_dropping_finished_rows_changes_no_step(blocks: int) -> None:
    """A replica that drops the rows of finished requests when its rows fill (compact) runs the
    same steps as one that only grows: each request finishes in the same call with the same
    fields, read by its index when reported; requests are added while others run, wait, are
    preempted (80 KV blocks) or have not arrived yet; and it ends holding far fewer rows."""
    cfg = EngineConfig(max_num_batched_tokens=512, max_num_seqs=8, block_size=16, num_gpu_blocks=blocks)
    g = np.random.default_rng(5)
    reps = (
        Replica(cfg, STEP, capacity=16, log_steps=100_000, compact=True),
        Replica(cfg, STEP, capacity=16, log_steps=100_000),
    )
    seen: tuple[list[tuple[int, list[int], list[float]]], ...] = ([], [])
    t = 0.0
    for _ in range(600):
        for _ in range(int(g.integers(1, 3))):
            t += float(g.exponential(0.06))
            p, o = int(g.integers(16, 600)), int(g.integers(1, 40))
            nkeys = int(g.integers(0, 12))
            keys = int(g.integers(0, 5)) * 1000 + np.arange(nkeys, dtype=np.int64) if nkeys else None
            got = {rep.add(p, o, arrival_s=t, prefix_keys=keys, blocks_per_key=2) for rep in reps}
            assert len(got) == 1  # the same index from both
        for rep, log in zip(reps, seen, strict=True):
            for limit in (t - 0.04, t - 0.02):
                for i in rep.run_until(limit).tolist():
                    log.append((i, rep.int_fields(i).tolist(), rep.time_fields(i).tolist()))
    for rep, log in zip(reps, seen, strict=True):
        for i in rep.run_until().tolist():
            log.append((i, rep.int_fields(i).tolist(), rep.time_fields(i).tolist()))
    assert seen[0] == seen[1]
    assert sorted(i for i, _, _ in seen[0]) == list(range(reps[1].sc[K.S_NREQ]))  # each reported once
    a, b = (rep.step_log() for rep in reps)
    assert a.t_end_s.tolist() == b.t_end_s.tolist() and a.num_waiting.tolist() == b.num_waiting.tolist()
    assert reps[0].base > 300 and reps[0].rq.shape[0] * 8 <= reps[1].rq.shape[0]
    assert sum(np.count_nonzero(np.array(f)[[K.NPRE]]) for _, f, _ in seen[0]) > (10 if blocks == 80 else -1)


def test_dropping_rows_keeps_the_remembered_lookup_on_its_request() -> None:
    """The remembered prefix lookup names its request by row; when finished rows are dropped, it
    still names the same request (by its index), not whichever request now has that row (and
    names no row when its own request was dropped)."""
    cfg = EngineConfig(max_num_batched_tokens=256, max_num_seqs=4, block_size=16, num_gpu_blocks=60)
    rep = Replica(cfg, STEP, capacity=16, compact=True)
    g = np.random.default_rng(11)
    t, checked = 0.0, 0
    for _ in range(3000):
        t += float(g.exponential(0.05))
        memo = None
        if rep.sc[K.S_MOK] != 0 and 0 <= rep.sc[K.S_MREQ] < rep.sc[K.S_NREQ]:
            memo = int(rep.rq[rep.sc[K.S_MREQ], K.RID])
        base = rep.base
        rep.add(int(g.integers(40, 300)), int(g.integers(1, 30)), arrival_s=t, prefix_keys=np.arange(4) + 7)
        if memo is not None and rep.base != base:
            row = int(rep.sc[K.S_MREQ])
            if memo < rep.base:  # its request finished and was dropped: the memo names no row
                assert row < 0
            else:
                assert int(rep.rq[row, K.RID]) == memo
                checked += 1
        rep.run_until(t)
    assert checked >= 5


def _drive_exactly(
    cfg: EngineConfig, stepwise: bool, seed: int
) -> tuple[Replica, int, list[tuple[int, ...]]]:
    """Drive a replica as the local tier does: requests added at their arrival (usually inside a
    step or a stretch; an add at a wake-up's time goes first), the engine run at each wake-up up
    to and including the step that starts then. ``stepwise``: woken at every step's start, without
    fast-forward (the reference); else at :meth:`Replica.next_wake_s`. Returns the replica, its
    runs, and its counts (running, waiting, pending) as each request was about to be added."""
    g = np.random.default_rng(seed)
    n = 300
    arrivals = np.sort(g.uniform(0, 60, n))
    prompts, outputs = g.integers(16, 900, n), g.integers(1, 400, n)
    groups, lens = g.integers(0, 4, n), g.integers(0, 10, n)
    rep = Replica(cfg, STEP, capacity=16, log_steps=200_000, compact=True, fast_forward=not stepwise)
    wake, runs, seen, k = np.inf, 0, [], 0
    while k < n or wake < np.inf:
        if k < n and arrivals[k] <= wake:
            now = float(arrivals[k])
            seen.append((rep.num_running, rep.num_waiting, rep.num_pending))
            keys = int(groups[k]) * 1000 + np.arange(int(lens[k]), dtype=np.int64)
            rep.add(int(prompts[k]), int(outputs[k]), arrival_s=now, prefix_keys=keys)
            k += 1
        else:
            now = wake
            run = rep.run_before(np.nextafter(now, np.inf))
            assert run.steps > 0 and rep.clock_s > now and run.idle == rep.idle
            runs += 1
        wake = rep.next_wake_s() if not stepwise else np.inf if rep.idle else max(rep.clock_s, now)
    return rep, runs, seen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_waking_at_stretch_ends_equals_stepping(seed: int) -> None:
    """Woken only when :meth:`Replica.next_wake_s` says (the end of each pure-decode stretch, in one
    jump) and run with :meth:`Replica.run_before`, a replica under load (prefix sharing,
    preemption, a queue) runs the same steps at the same times, with the same hits, busy time and
    counts at every add, as one woken at every step and stepped, in far fewer runs."""
    cfg = EngineConfig(max_num_batched_tokens=512, max_num_seqs=16, block_size=16, num_gpu_blocks=160)
    (a, runs_a, seen_a), (b, runs_b, seen_b) = (_drive_exactly(cfg, ref, seed) for ref in (False, True))
    _assert_same_run(a, b)
    np.testing.assert_array_equal(a.request_time(K.BUSY), b.request_time(K.BUSY))
    assert seen_a == seen_b  # what the tier would report at each add
    assert runs_a < 0.5 * runs_b, (runs_a, runs_b)
    assert np.count_nonzero(b.step_log().num_waiting) > 0.3 * b.steps  # a saturated engine
    assert np.count_nonzero(a.request_field(K.NPRE)) > 0
    assert np.count_nonzero(a.request_field(K.NCACHED) > 0) > 20


@pytest.mark.parametrize("seed", [0, 3])
def test_the_wake_up_planned_in_the_run_is_the_one_asked_for_after_it(seed: int) -> None:
    """``run_before`` plans the next wake-up inside its kernel call; ``next_wake_s`` then returns
    that plan. Run without planning and asked afterwards (the order before the plan was kept), the
    kernel gives the same wake-ups and the engines run the same steps."""
    cfg = EngineConfig(max_num_batched_tokens=512, max_num_seqs=16, block_size=16, num_gpu_blocks=160)

    def drive(fresh: bool) -> tuple[Replica, list[float]]:
        g = np.random.default_rng(seed)
        n = 200
        arrivals = np.sort(g.uniform(0, 40, n))
        prompts, outputs = g.integers(16, 900, n), g.integers(1, 400, n)
        groups, lens = g.integers(0, 4, n), g.integers(0, 10, n)
        rep = Replica(cfg, STEP, capacity=16, log_steps=200_000, compact=True)
        wake, wakes, k = np.inf, [], 0
        while k < n or wake < np.inf:
            if k < n and arrivals[k] <= wake:
                keys = int(groups[k]) * 1000 + np.arange(int(lens[k]), dtype=np.int64)
                rep.add(int(prompts[k]), int(outputs[k]), arrival_s=float(arrivals[k]), prefix_keys=keys)
                k += 1
            elif fresh:  # as before the plan was kept: the run plans nothing, the kernel is asked after
                rep._run(np.nextafter(wake, np.inf), 2**62, strict=True, want_wake=False)
            else:
                rep.run_before(np.nextafter(wake, np.inf))
            wake = rep.next_wake_s()
            wakes.append(wake)
        return rep, wakes

    (a, wakes_a), (b, wakes_b) = drive(False), drive(True)
    assert wakes_a == wakes_b and len(wakes_a) > 250
    _assert_same_run(a, b)


def test_run_before_starts_no_step_at_or_after_its_time() -> None:
    """``run_before(t)`` runs exactly the steps that start before ``t``: none when the clock is at
    or past ``t`` (even with work), and afterwards the clock is at or past ``t`` unless it ran
    empty; requests added at ``t`` to an idle engine join the step that starts at ``t``."""
    cfg = EngineConfig(max_num_batched_tokens=512, max_num_seqs=8, block_size=16, num_gpu_blocks=80)
    g = np.random.default_rng(11)
    rep = Replica(cfg, STEP, capacity=16, compact=True, log_steps=100_000)
    t, empties = 0.0, 0
    for _ in range(300):
        for _ in range(int(g.integers(0, 3))):
            t += float(g.exponential(0.3))
            rep.add(int(g.integers(16, 600)), int(g.integers(1, 40)), arrival_s=t)
        before_steps, before_clock = rep.steps, rep.clock_s
        stop = t + float(g.uniform(-0.2, 0.5))
        run = rep.run_before(stop)
        starts = rep.step_log().t_start_s[before_steps : rep.steps]
        assert (starts < stop).all() and run.steps == rep.steps - before_steps
        if before_clock >= stop:
            assert run.steps == 0
        ran_empty = rep.num_running == rep.num_waiting == 0  # idle, or only later arrivals pending
        assert ran_empty or rep.clock_s >= stop
        empties += ran_empty
    assert empties > 5
    idle = Replica(cfg, STEP, log_steps=10)
    idle.add(100, 5, arrival_s=2.0)
    idle.add(100, 5, arrival_s=2.0)
    assert idle.run_before(2.0).steps == 0 and idle.next_wake_s() == 2.0
    idle.run_before(np.nextafter(2.0, np.inf))
    log = idle.step_log()
    assert log.t_start_s.tolist() == [2.0] and log.num_prefill_tokens.tolist() == [200]


def test_dropped_rows_leave_no_private_blocks_to_a_later_request() -> None:
    """Requests without prefix ids (every block private), preempted under KV pressure, publish
    their computed blocks under their own key; a replica that drops finished rows renumbers rows,
    and a later request that takes a preempted request's old row number must not find that
    request's blocks (a review found private keys made from the row number). Compared, completion
    by completion, with a replica that only grows, over several pools and seeds."""
    dropped = preempted = 0
    for blocks in (40, 70, 120):
        cfg = EngineConfig(max_num_batched_tokens=256, max_num_seqs=6, block_size=16, num_gpu_blocks=blocks)
        for seed in range(4):
            g = np.random.default_rng(seed)
            reps = (Replica(cfg, STEP, capacity=16, compact=True), Replica(cfg, STEP, capacity=16))
            seen: tuple[list[tuple[int, list[int]]], ...] = ([], [])
            t = 0.0
            for _ in range(150):
                t += float(g.exponential(0.5))  # light enough that finished rows are dropped
                p, o = int(g.integers(16, 300)), int(g.integers(20, 250))
                for rep in reps:
                    rep.add(min(p, 16 * (blocks - 2) - o), o, arrival_s=t)
                for rep, log in zip(reps, seen, strict=True):
                    log += [(i, rep.int_fields(i).tolist()) for i in rep.run_until(t).tolist()]
            for rep, log in zip(reps, seen, strict=True):
                log += [(i, rep.int_fields(i).tolist()) for i in rep.run_until().tolist()]
            assert seen[0] == seen[1], (blocks, seed)
            dropped += reps[0].base > 0
            preempted += int(np.count_nonzero([f[K.NPRE] for _, f in seen[0]]))
    assert dropped >= 6 and preempted > 50
    with pytest.raises(IndexError, match="is not held"):
        reps[0].int_fields(0)


def test_fast_forward_registers_shared_blocks_in_time_order() -> None:
    """Shared prefix ids that reach past the prompts: decoding registers those blocks, and a jump
    would register them request by request, not step by step, so a later request would find
    another block (a review found the KV-block count off by 2 from step 70). Fast-forward waits
    until they are registered."""
    cfg = EngineConfig(max_num_batched_tokens=2048, max_num_seqs=8, block_size=16, num_gpu_blocks=200)
    keys = np.arange(10, dtype=np.int64)  # 160 tokens of shared ids: beyond both prompts

    def go(fast: bool) -> Replica:
        rep = Replica(cfg, STEP, mode="step", log_steps=1000, fast_forward=fast)
        rep.add(100, 60, arrival_step=0, prefix_keys=keys)  # block 7 fills after 28 decodes
        rep.add(120, 200, arrival_step=0, prefix_keys=keys)  # block 7 fills after 8 decodes
        rep.add(150, 5, arrival_step=70, prefix_keys=keys)  # after the first finished
        rep.run_until()
        return rep

    a, b = go(True), go(False)
    assert a.steps == b.steps
    assert a.request_field(K.NCACHED).tolist() == b.request_field(K.NCACHED).tolist()
    assert a.step_log().kv_blocks_used.tolist() == b.step_log().kv_blocks_used.tolist()


def test_prefix_hash_map_matches_a_dict() -> None:
    """The kernel's open-addressing prefix map (linear probing, backward-shift deletion) holds what
    a dict holds through random inserts, updates and deletions, filled up to its ``blocks`` entries
    in small tables (so probe runs collide and wrap), keys spread over the int64 range too."""
    g = np.random.default_rng(1)
    for _ in range(200):
        blocks = int(g.integers(1, 13))
        table = K.new_hash_map(blocks)
        want: dict[int, int] = {}
        for _ in range(300):
            small = int(g.integers(-40, 41))
            key = small if small % 3 else (small * 0x2545F4914F6CDD1D + 2**63) % 2**64 - 2**63  # int64 wrap
            if g.random() < 0.6 and (key in want or len(want) < blocks):
                want[key] = int(g.integers(0, 100))
                table[K._ht_slot(table, key)] = key, want[key]
            elif key in want:
                K._ht_delete(table, key)
                del want[key]
            assert all(K._ht_get(table, k) == v for k, v in want.items())
            assert K._ht_get(table, key) == want.get(key, -1)
        held = table[:, 0] != K.HT_EMPTY
        assert dict(zip(table[held, 0].tolist(), table[held, 1].tolist(), strict=True)) == want


def test_identical_prompts_hit_the_prefix_cache() -> None:
    cfg = EngineConfig(
        max_num_batched_tokens=2048, max_num_seqs=8, block_size=16, num_gpu_blocks=200, max_model_len=4096
    )
    rep = Replica(cfg, STEP, mode="step")
    keys = np.arange(20, dtype=np.int64)  # 320 shared tokens
    rep.add(330, 5, arrival_step=0, prefix_keys=keys)
    rep.add(330, 5, arrival_step=0, prefix_keys=keys)  # same step: hits blocks cached at allocation
    rep.add(330, 5, arrival_step=0)  # no shared prefix
    rep.run_until()
    assert rep.request_field(K.NCACHED).tolist() == [0, 320, 0]


def test_full_hit_still_recomputes_the_last_token() -> None:
    cfg = EngineConfig(
        max_num_batched_tokens=2048, max_num_seqs=8, block_size=16, num_gpu_blocks=200, max_model_len=4096
    )
    rep = Replica(cfg, STEP, mode="step")
    keys = np.arange(20, dtype=np.int64)
    rep.add(320, 2, arrival_step=0, prefix_keys=keys)
    rep.add(320, 2, arrival_step=5, prefix_keys=keys)
    rep.run_until()
    assert rep.request_field(K.NCACHED).tolist() == [0, 304]  # at most num_tokens - 1, block-aligned


def test_step_mode_shifts_arrivals_when_the_engine_runs_empty() -> None:
    cfg = EngineConfig(max_num_batched_tokens=2048, max_num_seqs=8, block_size=16, num_gpu_blocks=200)
    rep = Replica(cfg, STEP, mode="step")
    rep.add(10, 2, arrival_step=0)
    rep.add(10, 2, arrival_step=50)  # the engine is empty after step 1
    rep.add(10, 2, arrival_step=52)
    rep.run_until()
    assert rep.request_field(K.ARRSTEP).tolist() == [0, 2, 4]
    assert rep.request_field(K.FSTEP).tolist() == [0, 2, 4]


def test_vidur_profile_table_and_holdout_error() -> None:
    tok, sec = read_vidur_mlp(TRACES_DIR / "vidur_h100_llama2_7b_mlp.csv.gz", 1)
    # SOURCES.md: Σ median non-attention ops × 32 layers, H100: 5.6 ms @1 token, 83 ms @4096
    assert sec[tok == 1][0] == pytest.approx(5.6e-3, rel=0.02)
    assert sec[tok == 4096][0] == pytest.approx(84e-3, rel=0.02)
    assert holdout_mape(tok, sec) < 0.05
    tok8, sec8 = read_vidur_mlp(TRACES_DIR / "vidur_a100_llama3_8b_mlp.csv.gz", 1)
    assert holdout_mape(tok8, sec8) < 0.05


def test_profile_table_grows_beyond_the_profiled_sizes() -> None:
    """The Vidur H100 profile ends at 4,096 tokens with a slightly falling last pair of rows: the
    table must keep growing with the profile's throughput (an 8,192-token step ~2x a 4,096 one),
    not extrapolate that noise into steps that get faster with more tokens."""
    tok, sec = read_vidur_mlp(TRACES_DIR / "vidur_h100_llama2_7b_mlp.csv.gz", 1)
    assert sec[-1] < sec[-2]  # the noisy pair
    t = tabulate(tok, sec, 8192)
    assert np.all(np.diff(t[4096:]) >= 0)
    assert t[8192] / t[4096] == pytest.approx(2.0, rel=0.1)
    flat = tabulate(np.array([1, 2]), np.array([1.0, 0.5]), 4)  # a falling profile stays flat
    assert flat[3:].tolist() == [0.5, 0.5]


def test_profile_step_time_in_the_engine() -> None:
    model = profile_step_time(
        TRACES_DIR / "vidur_h100_llama2_7b_mlp.csv.gz",
        max_tokens=4096,
        kv_bytes_per_context_token=kv_bytes_per_token(32, 32, 128),
        hbm_bytes_per_s=3.35e12,
    )
    cfg = EngineConfig(max_num_batched_tokens=4096, max_num_seqs=8, block_size=16, num_gpu_blocks=1000)
    rep = Replica(cfg, model, mode="step", log_steps=10)
    rep.add(2048, 2, arrival_step=0)
    rep.run_until()
    log = rep.step_log()
    # prefill of 2,048 tokens: ~41 ms non-attention + 1 ms overhead + attention over 2,048 tokens
    assert log.t_end_s[0] - log.t_start_s[0] == pytest.approx(
        0.041 + 0.001 + 1e-5 + 2048 * 524288 / 2.68e12, rel=0.03
    )


@pytest.mark.parametrize(("prompt", "out"), [(0, 5), (2049, 5), (5000, 5), (100, 0)])
def test_a_request_vllm_would_refuse_is_refused(prompt: int, out: int) -> None:
    """An empty prompt, one longer than ``max_model_len`` (2,048 here; vLLM refuses it) or no
    tokens to generate is refused with the numbers named, not served; a prompt of exactly
    ``max_model_len`` is served one token (as vLLM does, ending it by length)."""
    rep = Replica(EngineConfig(max_model_len=2048), STEP)
    with pytest.raises(ValueError, match=f"prompt_tokens={prompt}, max_tokens={out}"):
        rep.add(prompt, out)
    rep.add(2048, 5)
    rep.run_until()
    assert rep.int_fields(0)[K.NOUT] == 1 and rep.idle


def _fresh_lookup(rep: Replica, r: int, ntok: int) -> tuple[list[int], int]:
    """The prefix hit of row ``r`` (``ntok`` tokens) looked up afresh, on copies (no memo): its
    blocks and the key that missed."""
    sc, bp, hits = rep.sc.copy(), rep.bp.copy(), np.zeros_like(rep.hits)
    sc[K.S_MOK] = 0
    n = K._prefix_hits(rep.rq, bp, sc, rep.keys, rep.cache, rep.cfg, r, ntok, hits)
    return hits[:n].tolist(), int(sc[K.S_MMISS])


@pytest.mark.parametrize(("seed", "blocks"), [(5, 60), (6, 70), (7, 90)])
def test_the_remembered_lookup_equals_a_fresh_one_at_every_step(seed: int, blocks: int) -> None:
    """A saturated engine (a long waiting queue, few KV blocks: remembered hits evicted, and the
    key a lookup missed registered, at many steps), with session-like shared prefixes: after every
    step the remembered lookup of the queue's head is what a fresh lookup gives, and it was kept
    (cut short, or gone on from its missed key) rather than walked afresh at many of them."""
    cfg = EngineConfig(max_num_batched_tokens=256, max_num_seqs=6, block_size=16, num_gpu_blocks=blocks)
    rep = Replica(cfg, STEP, capacity=64, fast_forward=False)
    g = np.random.default_rng(seed)
    t, checked, cut, extended = 0.0, 0, 0, 0
    last: tuple[int, int, int] | None = None  # the memo's request, stamp and hit at the last check
    for _ in range(400):
        t += float(g.exponential(0.02))
        ids = int(g.integers(0, 6)) * 50 + np.arange(int(g.integers(1, 25)), dtype=np.int64)
        rep.add(int(g.integers(20, 700)), int(g.integers(1, 40)), arrival_s=t, prefix_keys=ids)
        while rep.clock_s < t and not rep.idle:
            steps = rep.steps
            rep.run_until(max_steps=1)
            assert rep.steps == steps + 1
            sc = rep.sc
            if sc[K.S_WLEN] == 0 or sc[K.S_MOK] == 0 or int(sc[K.S_MREQ]) != int(rep.wq[sc[K.S_WHEAD]]):
                continue
            r = int(sc[K.S_MREQ])
            ntok = int(rep.rq[r, K.PROMPT] + rep.rq[r, K.NOUT])
            want = _fresh_lookup(rep, r, ntok)
            n = K._prefix_hits(rep.rq, rep.bp, sc, rep.keys, rep.cache, rep.cfg, r, ntok, rep.hits)
            assert (rep.hits[:n].tolist(), int(sc[K.S_MMISS])) == want
            checked += 1
            now = (int(rep.rq[r, K.RID]), int(sc[K.S_MSTAMP]), n)
            if last is not None and last[:2] == now[:2]:  # the same lookup, kept
                cut += now[2] < last[2]
                extended += now[2] > last[2]
            last = now
    assert checked > 100 and cut + extended >= 2
