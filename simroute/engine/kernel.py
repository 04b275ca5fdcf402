"""The compiled vLLM V1 scheduling loop (Numba). Pure array code: no SimPy, no Python objects.

Matched against vLLM 0.32.0 (``vllm/v1/core/sched/scheduler.py::Scheduler.schedule``,
``vllm/v1/core/kv_cache_manager.py::KVCacheManager.allocate_slots``/``get_computed_blocks``,
``vllm/v1/core/block_pool.py``) for decoder-only, full-attention models without speculative
decoding, KV connectors, LoRA or multimodal inputs, under FCFS scheduling with synchronous steps:

* running requests first, in order: each gets ``num_tokens - num_computed_tokens`` tokens (1 for a
  decode), capped by ``long_prefill_token_threshold`` (only when >1 request is eligible), the
  remaining token budget and ``max_model_len``; KV blocks are allocated for the new tokens; when
  they do not fit, the *last* running request is preempted (blocks freed, ``num_computed_tokens``
  reset to 0, put at the *front* of the waiting queue) until they fit or the request preempted
  itself, which ends the running pass;
* waiting requests are admitted only if nothing was preempted this step, while budget and seats
  remain: prefix-cache hit = leading full blocks whose hash is cached, at most ``num_tokens - 1``
  tokens; with ``scheduler_reserve_full_isl`` the whole sequence's blocks must be free; blocks
  whose hash is cached but whose ref count is 0 count as needing allocation; a request that does
  not fit ends the waiting pass (no skipping);
* blocks are cached (hash registered) for every full block up to the tokens scheduled, at
  allocation time — a later request of the same step can already hit them;
* freed blocks go to the tail of the free queue in reverse block order; new blocks come from its
  head, evicting any cached hash (LRU);
* after the step every scheduled request advances ``num_computed_tokens``; a request whose
  computed tokens reach its known tokens emits one token; it finishes at ``max_tokens`` outputs
  or ``max_model_len`` tokens.

Prefix-cache lookups of a waiting request that cannot be admitted are remembered (``hits``, its
length, the request and the first key that missed) and kept equal to what a fresh lookup would
give as the cache changes: when the chain head of a remembered hit is evicted (its block carries
the lookup's stamp in ``bp[:, MEMO]`` and its first position in ``bp[:, MEMOPOS]``), a fresh
lookup would stop there, so the hit is cut there (or, if another block of that hash remains, the
memo is dropped); when the key that missed is registered, the lookup goes on from there at its
next use instead of starting over. A saturated engine retries its queue's head at every step;
without the memo each retry walks the head's whole cached prefix through the hash map (about 170
lookups a step in the agent fleet), and dropping the memo at every such change still left a fresh
walk in a third of the agent fleet's steps. The result is the same lookup (tested against fresh
lookups step by step), so every step is unchanged.

Block hashes: the request's shared prefix is given as ``klen[r]`` ids (>= 0) of coarse blocks of
``kper[r]`` engine blocks each (``keys[kstart[r]:]``); engine block ``j`` inside it has key
``id[j // kper] * kper + j % kper`` (equal across requests with identical prefixes), any later
block a private key unique to (r, j).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

_NO_NRT: dict[str, Any] = {"_nrt": False}


def _kernel(fn: Callable[..., Any]) -> Any:
    """Compile a kernel function without Numba's reference-counted runtime (NRT). With NRT, every call
    of a helper increfs and decrefs each array argument (atomic operations), and helpers run per KV
    block: replaying the 100k-request agent fleet's busiest replica took 1.70 s with NRT, 0.83 s
    without (same end state). Nothing here allocates an array (the scratch ``run`` needs comes from
    the caller) or keeps one past the call, so nothing needs counting."""
    return numba.njit(cache=True, **_NO_NRT)(fn)


def compiled_entry(kernel: Callable[..., Any], args: tuple[Any, ...]) -> Callable[..., Any]:
    """What to call ``kernel`` with for arguments of the types of ``args`` (compiled for them if
    not yet): the compiled function's own entry point, without Numba's per-call matching of the
    argument types (about 0.5 us of a call of ``run``'s 27 arguments). A caller whose argument
    types never change can keep it. ``kernel`` itself when it is not a Numba dispatcher (a
    profiler's wrapper, or Numba's JIT disabled)."""
    overloads = getattr(kernel, "overloads", None)
    if overloads is None:
        return kernel
    sig = tuple(numba.typeof(a) for a in args)  # type: ignore[no-untyped-call]
    if sig not in overloads:
        kernel.compile(sig)  # type: ignore[attr-defined]
    entry: Callable[..., Any] = overloads[sig].entry_point
    return entry


# request int fields (rq[:, X])
(
    PROMPT,
    MAXOUT,
    COMP,
    NOUT,
    STATUS,
    NBLK,
    SLOT,
    FSTEP,
    DSTEP,
    NPRE,
    NCACHED,
    KSTART,
    KLEN,
    ARRSTEP,
    NEW,
    CCNT,
    KPER,
    RID,
) = range(18)
N_RQ = 18  # RID: the request's index for good (its row moves when a replica drops finished rows)
# request float fields (rf[:, X])
ARRT, ADDT, FIRSTT, DONET, SCHEDT, BUSY = range(6)
N_RF = 6  # BUSY: engine seconds attributed to the request (its share of each step's tokens)
# status
ST_PENDING, ST_WAITING, ST_RUNNING, ST_DONE = 0, 1, 2, 3
# block pool fields (bp[:, X])
PREV, NEXT, REF, HASH, INDICT, CHPREV, CHNEXT, MEMO, MEMOPOS = range(9)
N_BP = 9  # MEMO: stamp of the remembered lookup that returned this block; MEMOPOS: its first position there
NOHASH = -(2**62)
# scalars (sc[X])
S_HEAD, S_TAIL, S_NFREE, S_NRUN, S_WHEAD, S_WLEN, S_STEP, S_PNEXT, S_NREQ, S_NSLOT, S_NDONE, S_SHIFT = range(
    12
)
# the remembered prefix lookup: valid (0/1), its request, token count, hit blocks, missed key, stamp
S_MOK, S_MREQ, S_MTOK, S_MHIT, S_MMISS, S_MSTAMP = range(12, 18)
MEMO_VALID, MEMO_RESUME = 1, 2  # sc[S_MOK]: 0 none; the remembered lookup holds; its missed key is in
N_SC = 18
# settings (cfg[X]) — see EngineConfig.as_array
C_BUDGET, C_MAXSEQS, C_BS, C_NB, C_PREFIX, C_LPT, C_MAXLEN, C_RESERVE, C_WM, C_CHUNKED = range(10)
# step log columns
L_T0, L_T1, L_TOK, L_PRE, L_DEC, L_RUN, L_WAIT, L_KV = range(8)
N_LOG = 8
# arrival modes
MODE_STEP, MODE_TIME = 1, 2


@_kernel
def add_request(rq, rf, order, sc, prompt, maxout, arrival_step, arrival_s, kstart, klen, kper, rid):
    """Register a request in row ``sc[S_NREQ]`` (pending; ``prompt`` tokens, ``maxout`` outputs,
    arriving at ``arrival_s`` s or step ``arrival_step``; its shared prefix ids ``keys[kstart:
    kstart + klen]``, ``kper`` blocks each; ``rid`` its index for good) and count it in."""
    n = sc[S_NREQ]
    for f in range(rq.shape[1]):
        rq[n, f] = 0
    rq[n, PROMPT] = prompt
    rq[n, MAXOUT] = maxout
    rq[n, SLOT] = -1
    rq[n, FSTEP] = -1
    rq[n, DSTEP] = -1
    rq[n, NCACHED] = -1
    rq[n, ARRSTEP] = arrival_step
    rq[n, KSTART] = kstart
    rq[n, KPER] = kper
    rq[n, RID] = rid
    rq[n, KLEN] = klen
    rf[n, ARRT] = arrival_s
    rf[n, ADDT] = np.nan
    rf[n, FIRSTT] = np.nan
    rf[n, DONET] = np.nan
    rf[n, SCHEDT] = np.nan
    rf[n, BUSY] = 0.0
    order[n] = n
    sc[S_NREQ] = n + 1


@_kernel
def init_pool(bp: np.ndarray, sc: np.ndarray) -> None:
    """Free queue = blocks 1..NB-1 in id order; block 0 is vLLM's null block (never allocated)."""
    nb = bp.shape[0]
    for b in range(nb):
        bp[b, PREV] = b - 1
        bp[b, NEXT] = b + 1 if b + 1 < nb else -1
        bp[b, REF] = 0
        bp[b, HASH] = NOHASH
        bp[b, INDICT] = 0
        bp[b, CHPREV] = -1
        bp[b, CHNEXT] = -1
    bp[0, REF] = 1
    bp[0, NEXT] = -1
    if nb > 1:
        bp[1, PREV] = -1
    sc[S_MMISS] = NOHASH
    sc[S_HEAD] = 1 if nb > 1 else -1
    sc[S_TAIL] = nb - 1 if nb > 1 else -1
    sc[S_NFREE] = nb - 1


@_kernel
def _unlink(bp: np.ndarray, sc: np.ndarray, b: int) -> None:
    p, n = bp[b, PREV], bp[b, NEXT]
    if p >= 0:
        bp[p, NEXT] = n
    else:
        sc[S_HEAD] = n
    if n >= 0:
        bp[n, PREV] = p
    else:
        sc[S_TAIL] = p
    bp[b, PREV] = -1
    bp[b, NEXT] = -1
    sc[S_NFREE] -= 1


@_kernel
def _append_free(bp: np.ndarray, sc: np.ndarray, b: int) -> None:
    t = sc[S_TAIL]
    bp[b, PREV] = t
    bp[b, NEXT] = -1
    if t >= 0:
        bp[t, NEXT] = b
    else:
        sc[S_HEAD] = b
    sc[S_TAIL] = b
    sc[S_NFREE] += 1


@_kernel
def _push_front(bp: np.ndarray, sc: np.ndarray, b: int) -> None:
    h = sc[S_HEAD]
    bp[b, PREV] = -1
    bp[b, NEXT] = h
    if h >= 0:
        bp[h, PREV] = b
    else:
        sc[S_TAIL] = b
    sc[S_HEAD] = b
    sc[S_NFREE] += 1


@_kernel
def _shared_key(keys: np.ndarray, kstart: int, per: int, q: int, m: int) -> int:
    """Hash of block ``m`` of the ``q``-th shared prefix id (ids from ``keys[kstart]``, ``per``
    blocks each)."""
    return keys[kstart + q] * per + m


@_kernel
def _private_key(rq: np.ndarray, r: int, j: int) -> int:
    """Hash of request ``r``'s private block ``j``: keyed by the request for good, not its row."""
    return -(((rq[r, RID] + 1) << 21) + j) - 1


@_kernel
def _key(rq: np.ndarray, keys: np.ndarray, r: int, j: int) -> int:
    """Hash of request ``r``'s block ``j`` (see the module notes)."""
    per = rq[r, KPER]
    q = j // per
    if q < rq[r, KLEN]:
        return _shared_key(keys, rq[r, KSTART], per, q, j % per)
    return _private_key(rq, r, j)


# ---- the prefix-cache hash map: open addressing over a (slots, 2) array of [hash, block] ----------
# Entries are registered hashes (at most one per KV block), so a table of 2 x blocks slots, rounded
# up to a power of two, never fills past half; linear probing, backward-shift deletion.
HT_EMPTY = np.iinfo(np.int64).min  # a free slot's key: a block hash of this one value is never cached
_HT_MUL = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: 2**64 / golden ratio


def new_hash_map(num_blocks: int) -> np.ndarray:
    """An empty prefix-cache map for an engine of ``num_blocks`` KV blocks."""
    slots = 1 << max(int(2 * num_blocks - 1).bit_length(), 4)
    table = np.zeros((slots, 2), dtype=np.int64)
    table[:, 0] = HT_EMPTY
    return table


@_kernel
def _ht_home(k, mask):
    """The first slot probed for hash ``k`` (``mask`` = slots - 1): Fibonacci hashing of the hash
    but for its lowest 2 bits picks a group of 4 adjacent slots, those bits the slot in it. A
    request's consecutive blocks have consecutive hashes (registered, and later evicted, one after
    another), so they land side by side: a cache line holds four entries, not one."""
    h = np.uint64(k >> 2) * _HT_MUL
    g = np.int64((h ^ (h >> np.uint64(32))) & np.uint64(mask >> 2))
    return ((g << 2) | (k & 3)) & mask


@_kernel
def _ht_slot(cache, k):
    """The slot holding hash ``k``, or the free slot where it would go."""
    mask = cache.shape[0] - 1
    i = _ht_home(k, mask)
    while cache[i, 0] != k and cache[i, 0] != HT_EMPTY:
        i = (i + 1) & mask
    return i


@_kernel
def _ht_get(cache, k):
    """The block registered first under hash ``k``, or -1."""
    i = _ht_slot(cache, k)
    return cache[i, 1] if cache[i, 0] == k and k != HT_EMPTY else -1


@_kernel
def _ht_delete(cache, k):
    """Remove hash ``k`` (present), shifting later entries of its probe run back into the gap."""
    mask = cache.shape[0] - 1
    i = _ht_slot(cache, k)
    j = i
    while True:
        j = (j + 1) & mask
        kj = cache[j, 0]
        if kj == HT_EMPTY:
            break
        if ((j - _ht_home(kj, mask)) & mask) >= ((j - i) & mask):  # its probe run passes the gap
            cache[i, 0] = kj
            cache[i, 1] = cache[j, 1]
            i = j
    cache[i, 0] = HT_EMPTY


@_kernel
def _chain_add(bp, sc, cache, k, b):
    """Register block ``b`` under hash ``k``. Like vLLM's hash -> {block_id: block} map, several
    blocks may share a hash (computed concurrently); a lookup returns the earliest registered.
    The one hash equal to ``HT_EMPTY`` (a shared id's key that wrapped to it) is not registered."""
    if k == HT_EMPTY:
        return
    bp[b, CHNEXT] = -1
    bp[b, INDICT] = 1
    i = _ht_slot(cache, k)
    if cache[i, 0] != k:
        if k == sc[S_MMISS] and sc[S_MOK] == MEMO_VALID:  # the remembered lookup would now hit further
            sc[S_MOK] = MEMO_RESUME
        cache[i, 0] = k
        cache[i, 1] = b
        bp[b, CHPREV] = -1
        return
    last = cache[i, 1]
    while bp[last, CHNEXT] >= 0:
        last = bp[last, CHNEXT]
    bp[last, CHNEXT] = b
    bp[b, CHPREV] = last


@_kernel
def _chain_remove(bp, sc, cache, b):
    """Drop block ``b`` from its hash's entry (eviction)."""
    p, n = bp[b, CHPREV], bp[b, CHNEXT]
    if p < 0 and bp[b, MEMO] == sc[S_MSTAMP] and sc[S_MOK] != 0 and bp[b, MEMOPOS] < sc[S_MHIT]:
        # a remembered hit: a lookup of its hash now finds the chain's next block, or misses there
        if n >= 0:
            sc[S_MOK] = 0
        else:
            sc[S_MHIT] = bp[b, MEMOPOS]
            sc[S_MMISS] = bp[b, HASH]
            sc[S_MOK] = MEMO_VALID
    bp[b, MEMO] = 0  # out of the cache: no longer a remembered hit
    if p >= 0:
        bp[p, CHNEXT] = n
    elif n >= 0:
        cache[_ht_slot(cache, bp[b, HASH]), 1] = n
    else:
        _ht_delete(cache, bp[b, HASH])
    if n >= 0:
        bp[n, CHPREV] = p
    bp[b, CHPREV] = -1
    bp[b, CHNEXT] = -1
    bp[b, INDICT] = 0


@_kernel
def _publish_private(rq, bp, sc, slots, cache, r):
    """Make a preempted request's own cached blocks findable for its resume.

    Private blocks (negative keys) can only ever be hit by their own request, and only after a
    preemption, so they enter the hash map then rather than at every block boundary.
    """
    s = rq[r, SLOT]
    for j in range(rq[r, CCNT]):
        b = slots[s, j]
        h = bp[b, HASH]
        if h < 0 and h != NOHASH and bp[b, INDICT] == 0:
            _chain_add(bp, sc, cache, h, b)


@_kernel
def _free_blocks(rq, bp, sc, slots, slotfree, r, caching):
    """Release a request's blocks (vLLM ``BlockPool.free_blocks`` over the reversed block list):
    blocks that reach ref count 0 and carry a hash join the *tail* of the free queue (LRU, last
    block first); blocks without a hash, or all blocks when caching is off, go to its *front*
    in that same order, to be reused first."""
    s = rq[r, SLOT]
    n = rq[r, NBLK]
    for j in range(n):
        bp[slots[s, j], REF] -= 1
    for j in range(n):  # forward pushes to the front leave the last block at the head
        b = slots[s, j]
        if bp[b, REF] == 0 and (caching == 0 or bp[b, HASH] == NOHASH):
            _push_front(bp, sc, b)
    if caching != 0:
        for j in range(n - 1, -1, -1):
            b = slots[s, j]
            if bp[b, REF] == 0 and bp[b, HASH] != NOHASH:
                _append_free(bp, sc, b)
    rq[r, NBLK] = 0
    rq[r, CCNT] = 0
    slotfree[sc[S_NSLOT]] = s
    sc[S_NSLOT] += 1
    rq[r, SLOT] = -1


@_kernel
def _new_blocks(rq, bp, sc, slots, cache, r, n):
    """Give request ``r`` ``n`` blocks from the head of the free queue (evicting their cached
    hashes), appended to its block table."""
    s = rq[r, SLOT]
    nblk = rq[r, NBLK]
    for _ in range(n):
        b = sc[S_HEAD]
        _unlink(bp, sc, b)
        if bp[b, INDICT] != 0:
            _chain_remove(bp, sc, cache, b)
        bp[b, HASH] = NOHASH
        bp[b, REF] = 1
        slots[s, nblk] = b
        nblk += 1
    rq[r, NBLK] = nblk


@_kernel
def _cache_blocks(rq, bp, sc, slots, keys, cache, cfg, r, ntokens):
    """Register (hash) request ``r``'s full blocks up to ``ntokens`` tokens not yet cached: keys
    as :func:`_key` gives them, counted up block by block instead of divided out for each."""
    if cfg[C_PREFIX] == 0:
        return
    full = ntokens // cfg[C_BS]
    first = rq[r, CCNT]
    if first >= full:
        return
    s = rq[r, SLOT]
    per = rq[r, KPER]
    shared = rq[r, KLEN] * per  # blocks covered by shared prefix ids
    kstart = rq[r, KSTART]
    q, m = first // per, first % per
    for j in range(first, full):
        b = slots[s, j]
        if j < shared:
            k = _shared_key(keys, kstart, per, q, m)
            bp[b, HASH] = k
            if k >= 0:  # a shared id whose key wrapped below 0 is not registered (as a private key)
                _chain_add(bp, sc, cache, k, b)
            m += 1
            if m == per:
                m = 0
                q += 1
        else:
            bp[b, HASH] = _private_key(rq, r, j)
    rq[r, CCNT] = full


@_kernel
def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@_kernel
def _step_time(ttab, coef, pre, dec, nsched, ctx, pattn, nfirst):
    """Seconds of one step (the one formula both the stepping and the fast-forward paths use).

    Features: ``pre`` prefill tokens, ``dec`` decode requests, ``nsched`` scheduled requests,
    ``ctx`` context tokens, ``pattn`` prefill attention pairs (Σ over prefill chunks of
    ``n · (c + n/2)``, ``n`` chunk tokens over ``c`` tokens computed before it), ``nfirst``
    requests scheduled for the first time (a resume after preemption does not count)."""
    dt = ttab[min(pre + dec, ttab.shape[0] - 1)] + coef[0] + coef[1] * pre + coef[2] * dec
    dt += coef[3] * nsched + coef[4] * pre * pre + coef[5] * ctx
    dt += coef[6] * pattn + coef[7] * nfirst
    return max(dt, 0.0)


@_kernel
def _held(rq, run_q, nrun):
    """KV blocks (count) held by the first ``nrun`` running requests."""
    h = 0
    for i in range(nrun):
        h += rq[run_q[i], NBLK]
    return h


# ---- fast-forward over pure-decode stretches -------------------------------------------------


@_kernel
def _decode_horizon(rq, run_q, nrun, cfg, max_k):
    """Longest pure-decode stretch (steps) the running batch could take before a request finishes.

    Returns ``(k, c0)``: ``k`` steps (at most ``max_k``; 0 when some running request is not
    decoding, i.e. still has uncomputed prompt or output tokens) and ``c0``, the context tokens
    of the batch's first decode step (sum of each request's tokens including the new one).
    A stretch stops one step before any request would reach ``max_tokens`` or ``max_model_len``.
    """
    maxlen = cfg[C_MAXLEN]
    k = max_k
    c0 = 0
    for i in range(nrun):
        r = run_q[i]
        ntok = rq[r, PROMPT] + rq[r, NOUT]
        if rq[r, NOUT] == 0 or rq[r, COMP] != ntok - 1:
            return 0, 0
        k = min(k, rq[r, MAXOUT] - rq[r, NOUT] - 1, maxlen - ntok - 1)
        c0 += rq[r, COMP] + 1
    return k, c0


@_kernel
def _fit_blocks(rq, sc, run_q, nrun, bs, k):
    """Halve a stretch of ``k`` decode steps until the KV blocks it needs (block size ``bs``
    tokens) fit in the free pool, so that no preemption can occur inside it. Returns the steps
    (< 2 = no stretch worth taking)."""
    while k >= 2:
        need = 0
        for i in range(nrun):
            r = run_q[i]
            need += max(_cdiv(rq[r, COMP] + k, bs) - rq[r, NBLK], 0)
        if need <= sc[S_NFREE]:
            break
        k = k // 2
    return k


@_kernel
def _next_arrival(rq, rf, sc, order, mode):
    """When the next pending request joins: ``(time_s, step)``; the unused one (by ``mode``),
    or both when nothing is pending, is ``inf`` / ``2**62``."""
    next_t = np.inf
    next_step = 2**62
    if sc[S_PNEXT] < sc[S_NREQ]:
        rn = order[sc[S_PNEXT]]
        if mode == MODE_STEP:
            next_step = rq[rn, ARRSTEP] + sc[S_SHIFT]
        else:
            next_t = rf[rn, ARRT]
    return next_t, next_step


@_kernel
def _log_decode_step(rq, bp, sc, run_q, nrun, bs, log, j, t, dt):
    """Write the step log row of the ``j``-th step (0-based) of a decode stretch that starts at
    step ``sc[S_STEP]``: it runs from ``t`` to ``t + dt`` seconds with ``nrun`` decodes; the KV
    blocks in use are those held now plus the ones the stretch has added by then."""
    s = sc[S_STEP] + j
    log[s, L_T0] = t
    log[s, L_T1] = t + dt
    log[s, L_TOK] = nrun
    log[s, L_PRE] = 0
    log[s, L_DEC] = nrun
    log[s, L_RUN] = nrun
    log[s, L_WAIT] = sc[S_WLEN]
    kv = 0
    for i in range(nrun):
        r = run_q[i]
        kv += max(_cdiv(rq[r, COMP] + j + 1, bs), rq[r, NBLK])
    log[s, L_KV] = bp.shape[0] - 1 - sc[S_NFREE] + kv - _held(rq, run_q, nrun)


@_kernel
def _time_stretch(
    rq, rf, bp, sc, sf, run_q, nrun, cfg, coef, ttab, order, mode, limit_time, first, k, c0, log, log_on
):
    """Clock the first steps of a ``k``-step decode stretch (``c0`` context tokens in its first
    step), logging each; stop before a step that would start at/after the next arrival or (unless
    it is the call's first step, ``first == 0``) at/after ``limit_time`` seconds.

    Returns ``(taken, t)``: the steps that fit and the clock (s) after them.
    """
    next_t, next_step = _next_arrival(rq, rf, sc, order, mode)
    t = sf[0]
    taken = 0
    for j in range(k):
        if mode == MODE_STEP and sc[S_STEP] + j >= next_step:
            break
        if t >= next_t or ((first == 0 or j > 0) and t >= limit_time):
            break
        dt = _step_time(ttab, coef, 0, nrun, nrun, c0 + j * nrun, 0.0, 0)
        if log_on and sc[S_STEP] + j < log.shape[0]:
            _log_decode_step(rq, bp, sc, run_q, nrun, cfg[C_BS], log, j, t, dt)
        t += dt
        taken += 1
    return taken, t


@_kernel
def _apply_decodes(rq, bp, sc, slots, keys, cache, cfg, run_q, nrun, taken):
    """Advance every running request by ``taken`` decoded tokens at once: allocate the KV blocks
    they fill, then cache (hash) the blocks that became full — as the steps one by one would."""
    bs = cfg[C_BS]
    for i in range(nrun):
        r = run_q[i]
        need = max(_cdiv(rq[r, COMP] + taken, bs) - rq[r, NBLK], 0)
        _new_blocks(rq, bp, sc, slots, cache, r, need)
        rq[r, COMP] += taken
        rq[r, NOUT] += taken
        _cache_blocks(rq, bp, sc, slots, keys, cache, cfg, r, rq[r, COMP])


@_kernel
def _registers_shared(rq, run_q, nrun, cfg):
    """Whether decoding could register a shared prefix block: prefix caching is on and some running
    request's shared prefix ids reach past the blocks it has cached (ids that cover its output
    tokens too). Stepping registers such blocks in time order, a jump in request order, so a jump
    could change which block a later lookup finds."""
    if cfg[C_PREFIX] == 0:
        return False
    for i in range(nrun):
        r = run_q[i]
        if rq[r, KLEN] * rq[r, KPER] > rq[r, CCNT]:
            return True
    return False


@_kernel
def _head_stays_out(rq, bp, sc, wq, keys, cache, cfg, hits, nrun):
    """Whether the waiting queue's head can be admitted at no step of a pure-decode stretch of
    the ``nrun`` running requests (True when nothing waits).

    In such a stretch nothing is freed (no request finishes), so the free pool only shrinks, and no
    shared prefix block is registered (:func:`_registers_shared` is False), so the head's prefix
    hit can only shrink, by evictions. Its token budget
    (``max_num_batched_tokens - nrun``), seats and the long-prefill cap stay as they are. The new
    blocks it needs and the blocks its whole sequence needs beyond its hit never fall as its hit
    shrinks, so if they do not fit in the free pool now, with no eviction counted, they fit at no
    step of the stretch, and each of its steps is the plain decode step that jumping assumes.
    """
    if sc[S_WLEN] == 0:
        return True
    budget = cfg[C_BUDGET] - nrun
    if budget <= 0 or nrun >= cfg[C_MAXSEQS]:
        return True
    bs = cfg[C_BS]
    maxlen = cfg[C_MAXLEN]
    r = wq[sc[S_WHEAD]]
    ntok = rq[r, PROMPT] + rq[r, NOUT]
    lpt = cfg[C_LPT] if nrun + sc[S_WLEN] > 1 else 0
    nhit, nnew = _first_chunk(rq, bp, sc, keys, cache, cfg, r, lpt, budget, hits)
    if nnew < 0:
        return True
    comp = nhit * bs
    wm = cfg[C_WM]
    if cfg[C_RESERVE] != 0 and max(_cdiv(min(ntok, maxlen), bs) - nhit, 0) + wm > sc[S_NFREE]:
        return True
    return max(_cdiv(min(comp + nnew, maxlen), bs) - nhit, 0) + wm > sc[S_NFREE]


@_kernel
def _busy_by_step(rf, run_q, nrun, coef, ttab, c0, taken):
    """Add each running request's share of each of ``taken`` decode steps to ``rf[:, BUSY]`` one
    step at a time, exactly as stepping them one by one adds it (same rounding)."""
    for j in range(taken):
        share = _step_time(ttab, coef, 0, nrun, nrun, c0 + j * nrun, 0.0, 0) * 1 / nrun
        for i in range(nrun):
            rf[run_q[i], BUSY] += share


@_kernel
def _stretch(rq, bp, sc, run_q, wq, keys, cache, cfg, hits, max_k):
    """The pure-decode stretch the engine could take from its current state: ``(k, c0)``, ``k``
    steps (< 2: none worth taking) with ``c0`` context tokens in the first (see
    :func:`_decode_jump` for when one applies). Changes no state but the remembered prefix lookup."""
    nrun = sc[S_NRUN]
    if nrun == 0 or nrun > cfg[C_BUDGET] or _registers_shared(rq, run_q, nrun, cfg):
        return 0, 0
    k, c0 = _decode_horizon(rq, run_q, nrun, cfg, max_k)
    k = _fit_blocks(rq, sc, run_q, nrun, cfg[C_BS], k)
    if k < 2:
        return 0, 0
    if sc[S_WLEN] != 0 and not _head_stays_out(rq, bp, sc, wq, keys, cache, cfg, hits, nrun):
        return 0, 0
    return k, c0


@_kernel
def _next_wake(rq, rf, bp, sc, sf, run_q, wq, keys, cache, cfg, coef, ttab, order, mode, hits, log):
    """When (s) the engine next needs running if no request is added before: the start of its next
    step that is not part of a pure-decode stretch (the clock when its next step is not; when it
    is, the clock after the stretch, which :func:`run` then takes in one jump); ``inf`` when it is
    idle with nothing pending. In a stretch no request finishes or is admitted, so until then its
    counts (running, waiting, pending) stay as they are. Changes no state but the remembered prefix
    lookup."""
    t = sf[0]
    next_t, _ = _next_arrival(rq, rf, sc, order, mode)
    if mode == MODE_STEP:
        return t  # step-mode replays are run to their end, not woken
    if sc[S_NRUN] == 0 and sc[S_WLEN] == 0:
        return max(t, next_t)
    if next_t <= t:
        return t  # a pending request joins at the next step
    k, c0 = _stretch(rq, bp, sc, run_q, wq, keys, cache, cfg, hits, 2**62)
    if k < 2:
        return t
    _, t = _time_stretch(  # clocked as run will clock it (nothing logged: log_on False)
        rq, rf, bp, sc, sf, run_q, sc[S_NRUN], cfg, coef, ttab, order, mode, np.inf, 1, k, c0, log, False
    )
    return t


next_wake = _next_wake
"""The public name of :func:`_next_wake` (``run`` calls it by its own name: a caller that swaps
this one, e.g. a profiler timing the calls, never changes what ``run`` compiles)."""


@_kernel
def _decode_jump(
    rq,
    rf,
    bp,
    sc,
    sf,
    run_q,
    wq,
    slots,
    keys,
    cache,
    cfg,
    coef,
    ttab,
    order,
    mode,
    limit_time,
    first,
    max_k,
    log,
    log_on,
    hits,
):
    """Fast-forward a stretch of pure-decode steps in one go; returns the steps taken (0 = none).

    Applies only when every running request is decoding, none can register a shared prefix block
    (:func:`_registers_shared`), and nothing waits or the waiting queue's head can be admitted at
    no step of the stretch (:func:`_head_stays_out`). The stretch stops
    before the step in which a request would finish, before any arrival joins, at the time
    limit (``limit_time`` s, not before the call's first step: ``first`` = steps run so far),
    after ``max_k`` steps, and while the blocks the stretch needs fit in the free pool (so no
    preemption can occur in it). The steps, their times, every prefix-cache lookup and the busy
    time (added step by step, in the same rounding) are those of running the steps one by one.
    """
    nrun = sc[S_NRUN]
    k, c0 = _stretch(rq, bp, sc, run_q, wq, keys, cache, cfg, hits, max_k)
    if k < 2:
        return 0
    taken, t = _time_stretch(
        rq, rf, bp, sc, sf, run_q, nrun, cfg, coef, ttab, order, mode, limit_time, first, k, c0, log, log_on
    )
    if taken < 1:
        return 0
    _apply_decodes(rq, bp, sc, slots, keys, cache, cfg, run_q, nrun, taken)
    _busy_by_step(rf, run_q, nrun, coef, ttab, c0, taken)  # however the steps are grouped into calls
    sf[0] = t
    sc[S_STEP] += taken
    return taken


# ---- one engine step: arrivals, scheduling, execution ----------------------------------------


@_kernel
def _admit_arrivals(rq, rf, sc, sf, wq, order, mode):
    """Move pending requests whose arrival has come (step ``rq[:, ARRSTEP]`` + shift in step mode,
    ``rf[:, ARRT]`` <= clock in seconds in time mode) to the tail of the waiting queue."""
    wcap = wq.shape[0]
    while sc[S_PNEXT] < sc[S_NREQ]:
        r = order[sc[S_PNEXT]]
        if mode == MODE_STEP:
            if rq[r, ARRSTEP] + sc[S_SHIFT] > sc[S_STEP]:
                break
        elif rf[r, ARRT] > sf[0]:
            break
        rq[r, STATUS] = ST_WAITING
        rf[r, ADDT] = sf[0]
        rq[r, ARRSTEP] = rq[r, ARRSTEP] + sc[S_SHIFT] if mode == MODE_STEP else sc[S_STEP]
        wq[(sc[S_WHEAD] + sc[S_WLEN]) % wcap] = r
        sc[S_WLEN] += 1
        sc[S_PNEXT] += 1


@_kernel
def _skip_idle(rq, rf, sc, sf, order, mode, limit_time, steps):
    """The engine is empty: move to the next pending arrival — shift arrival steps so it arrives
    now (step mode) or advance the clock to its arrival time (s, time mode). Returns False (stop
    running) when nothing is pending, or when it arrives at/after ``limit_time`` s after at least
    one step of this call (``steps`` > 0)."""
    if sc[S_PNEXT] >= sc[S_NREQ]:
        return False
    r = order[sc[S_PNEXT]]
    if mode == MODE_STEP:
        sc[S_SHIFT] = sc[S_STEP] - rq[r, ARRSTEP]
    else:
        if steps > 0 and rf[r, ARRT] >= limit_time:
            return False
        sf[0] = max(sf[0], rf[r, ARRT])
    return True


@_kernel
def _preempt_last(rq, bp, sc, run_q, wq, slots, slotfree, cache, cfg):
    """Preempt the *last* running request: publish its private cached blocks (prefix caching),
    free its blocks, reset its computed tokens to 0 and put it at the *front* of the waiting
    queue. Returns its index."""
    wcap = wq.shape[0]
    v = run_q[sc[S_NRUN] - 1]
    sc[S_NRUN] -= 1
    if cfg[C_PREFIX] != 0:
        _publish_private(rq, bp, sc, slots, cache, v)
    _free_blocks(rq, bp, sc, slots, slotfree, v, cfg[C_PREFIX])
    rq[v, COMP] = 0
    rq[v, STATUS] = ST_WAITING
    rq[v, NPRE] += 1
    sc[S_WHEAD] = (sc[S_WHEAD] - 1) % wcap
    wq[sc[S_WHEAD]] = v
    sc[S_WLEN] += 1
    return v


@_kernel
def _room_for(rq, bp, sc, run_q, wq, slots, slotfree, cache, cfg, r, nnew):
    """KV blocks (count) running request ``r`` needs for ``nnew`` more tokens, preempting from the
    back of the running queue until they fit. Returns ``(need, preempted)``; ``need`` is -1 when
    ``r`` had to preempt itself."""
    bs = cfg[C_BS]
    maxlen = cfg[C_MAXLEN]
    preempted = False
    while True:
        need = max(_cdiv(min(rq[r, COMP] + nnew, maxlen), bs) - rq[r, NBLK], 0)
        if need <= sc[S_NFREE]:
            return need, preempted
        v = _preempt_last(rq, bp, sc, run_q, wq, slots, slotfree, cache, cfg)
        preempted = True
        if v == r:
            return -1, preempted


@_kernel
def _add_scheduled(rq, sched, ctxb, nsched, r, nnew):
    """Append request ``r`` with ``nnew`` tokens to this step's batch (``ctxb`` keeps its computed
    tokens before the step); returns the new batch size."""
    ctxb[nsched] = rq[r, COMP]
    sched[nsched] = r
    rq[r, NEW] = nnew
    return nsched + 1


@_kernel
def _schedule_running(rq, bp, sc, run_q, wq, slots, slotfree, keys, cache, cfg, lpt, sched, ctxb):
    """Schedule the running requests in order: each gets its remaining tokens (1 for a decode),
    capped by ``lpt`` (long-prefill threshold, 0 = none), the token budget and ``max_model_len``,
    with KV blocks allocated (preempting the last running requests when they do not fit).

    Returns ``(budget, nsched, preempted)``: tokens left, requests in the batch, whether any
    request was preempted (which ends the pass and bars admitting waiting requests this step).
    """
    maxlen = cfg[C_MAXLEN]
    budget = cfg[C_BUDGET]
    preempted = False
    nsched = 0
    i = 0
    while i < sc[S_NRUN] and budget > 0:
        r = run_q[i]
        ntok = rq[r, PROMPT] + rq[r, NOUT]
        nnew = ntok - rq[r, COMP]
        if 0 < lpt < nnew:
            nnew = lpt
        nnew = min(nnew, budget, maxlen - rq[r, COMP] - 1)
        if nnew <= 0:
            i += 1
            continue
        need, pre = _room_for(rq, bp, sc, run_q, wq, slots, slotfree, cache, cfg, r, nnew)
        preempted = preempted or pre
        if need < 0:
            break
        _new_blocks(rq, bp, sc, slots, cache, r, need)
        _cache_blocks(rq, bp, sc, slots, keys, cache, cfg, r, min(rq[r, COMP] + nnew, ntok))
        nsched = _add_scheduled(rq, sched, ctxb, nsched, r, nnew)
        budget -= nnew
        i += 1
    return budget, nsched, preempted


@_kernel
def _prefix_hits(rq, bp, sc, keys, cache, cfg, r, ntok, hits):
    """Prefix-cache hit of waiting request ``r`` (``ntok`` tokens): its leading full blocks whose
    hash is cached, at most ``ntok - 1`` tokens, written to ``hits``; returns their count. The
    lookup is remembered, and reused while it would answer the same (see the module notes)."""
    if cfg[C_PREFIX] == 0:
        return 0
    same = sc[S_MREQ] == r and sc[S_MTOK] == ntok
    if sc[S_MOK] == MEMO_VALID and same:
        return sc[S_MHIT]
    stamp = sc[S_MSTAMP] + 1
    nhit = 0
    if sc[S_MOK] == MEMO_RESUME and same:  # its missed key was registered: go on from there
        stamp = sc[S_MSTAMP]
        nhit = sc[S_MHIT]
    miss = NOHASH  # no key missed: every block in range hit
    for j in range(nhit, (ntok - 1) // cfg[C_BS]):
        k = _key(rq, keys, r, j)
        b = _ht_get(cache, k)
        if b < 0:
            miss = k
            break
        hits[nhit] = b
        if bp[b, MEMO] != stamp:  # its first position in this lookup
            bp[b, MEMO] = stamp
            bp[b, MEMOPOS] = nhit
        nhit += 1
    sc[S_MSTAMP] = stamp
    sc[S_MOK] = MEMO_VALID
    sc[S_MREQ] = r
    sc[S_MTOK] = ntok
    sc[S_MHIT] = nhit
    sc[S_MMISS] = miss
    return nhit


@_kernel
def _first_chunk(rq, bp, sc, keys, cache, cfg, r, lpt, budget, hits):
    """Waiting request ``r``'s prefix hit (its blocks written to ``hits``) and the tokens it would
    compute in this step: its remaining prompt, capped by ``lpt`` (long-prefill threshold, 0 =
    none) and ``budget`` — or -1 when, without chunked prefill, it does not fit the budget whole.
    Returns ``(hit blocks, tokens)``; the tokens are at least 1 when it fits."""
    ntok = rq[r, PROMPT] + rq[r, NOUT]
    nhit = _prefix_hits(rq, bp, sc, keys, cache, cfg, r, ntok, hits)
    nnew = ntok - nhit * cfg[C_BS]
    if 0 < lpt < nnew:
        nnew = lpt
    if cfg[C_CHUNKED] == 0 and nnew > budget:
        return nhit, -1
    return nhit, min(nnew, budget)


@_kernel
def _admit_blocks(bp, sc, cfg, hits, nhit, ntok, upto):
    """New KV blocks (count) a waiting request with ``nhit`` cache-hit blocks needs to compute up
    to token ``upto`` of its ``ntok``; -1 when they do not fit. Hit blocks with ref count 0 must
    be taken from the free queue too; the watermark applies only with requests running; with
    ``reserve_full_isl`` the whole sequence's blocks must be free."""
    bs = cfg[C_BS]
    maxlen = cfg[C_MAXLEN]
    wm = cfg[C_WM] if sc[S_NRUN] > 0 else 0
    evict = 0
    for j in range(nhit):
        if bp[hits[j], REF] == 0:
            evict += 1
    if cfg[C_RESERVE] != 0:
        full = max(_cdiv(min(ntok, maxlen), bs) - nhit, 0) + evict
        if full + wm > sc[S_NFREE]:
            return -1
    need = max(_cdiv(min(upto, maxlen), bs) - nhit, 0)
    if need + evict + wm > sc[S_NFREE]:
        return -1
    return need


@_kernel
def _claim_hits(bp, sc, slots, slotfree, rq, hits, r, nhit):
    """Give waiting request ``r`` a block-table slot holding its ``nhit`` cache-hit blocks (taken
    off the free queue if unreferenced; ref counts +1)."""
    sc[S_NSLOT] -= 1
    s = slotfree[sc[S_NSLOT]]
    rq[r, SLOT] = s
    for j in range(nhit):
        b = hits[j]
        if bp[b, REF] == 0:
            _unlink(bp, sc, b)
        bp[b, REF] += 1
        slots[s, j] = b
    rq[r, NBLK] = nhit
    rq[r, CCNT] = nhit


@_kernel
def _start_request(rq, rf, sc, sf, run_q, wq, r, comp):
    """Move the waiting queue's head ``r`` to the running queue with ``comp`` tokens computed
    (its prefix hit); the first time, record its hit tokens and schedule time (s). Returns 1 the
    first time, 0 when it resumes after a preemption."""
    sc[S_WHEAD] = (sc[S_WHEAD] + 1) % wq.shape[0]
    sc[S_WLEN] -= 1
    run_q[sc[S_NRUN]] = r
    sc[S_NRUN] += 1
    rq[r, STATUS] = ST_RUNNING
    first = 0
    if rq[r, NCACHED] < 0:
        rq[r, NCACHED] = comp
        rf[r, SCHEDT] = sf[0]
        first = 1
    rq[r, COMP] = comp
    return first


@_kernel
def _schedule_waiting(
    rq, rf, bp, sc, sf, run_q, wq, slots, slotfree, keys, cache, cfg, lpt, budget, nsched, sched, ctxb, hits
):
    """Admit waiting requests in queue order while ``budget`` tokens and seats remain: each starts
    from its prefix-cache hit and gets its remaining prompt (capped by ``lpt`` and the budget; whole
    or not at all without chunked prefill). The first request that does not fit ends the pass.
    Returns ``(batch size, requests scheduled for the first time)``."""
    bs = cfg[C_BS]
    nfirst = 0
    while budget > 0 and sc[S_WLEN] > 0 and sc[S_NRUN] < cfg[C_MAXSEQS]:
        r = wq[sc[S_WHEAD]]
        ntok = rq[r, PROMPT] + rq[r, NOUT]
        nhit, nnew = _first_chunk(rq, bp, sc, keys, cache, cfg, r, lpt, budget, hits)
        if nnew < 0:
            break
        comp = nhit * bs
        need = _admit_blocks(bp, sc, cfg, hits, nhit, ntok, comp + nnew)
        if need < 0:
            break
        _claim_hits(bp, sc, slots, slotfree, rq, hits, r, nhit)
        _new_blocks(rq, bp, sc, slots, cache, r, need)
        _cache_blocks(rq, bp, sc, slots, keys, cache, cfg, r, min(comp + nnew, ntok))
        nfirst += _start_request(rq, rf, sc, sf, run_q, wq, r, comp)
        nsched = _add_scheduled(rq, sched, ctxb, nsched, r, nnew)
        budget -= nnew
    return nsched, nfirst


@_kernel
def _schedule(rq, rf, bp, sc, sf, run_q, wq, slots, slotfree, keys, cache, cfg, sched, ctxb, hits):
    """Build one step's batch (``sched[:n]`` with new tokens in ``rq[:, NEW]``): running requests
    first, then — only if nothing was preempted — waiting ones. Returns ``(n, first)``: the batch
    size and how many of its requests are scheduled for the first time (not resumed)."""
    lpt = cfg[C_LPT] if sc[S_NRUN] + sc[S_WLEN] > 1 else 0
    budget, nsched, preempted = _schedule_running(
        rq, bp, sc, run_q, wq, slots, slotfree, keys, cache, cfg, lpt, sched, ctxb
    )
    nfirst = 0
    if not preempted:
        nsched, nfirst = _schedule_waiting(
            rq,
            rf,
            bp,
            sc,
            sf,
            run_q,
            wq,
            slots,
            slotfree,
            keys,
            cache,
            cfg,
            lpt,
            budget,
            nsched,
            sched,
            ctxb,
            hits,
        )
    return nsched, nfirst


@_kernel
def _batch_shape(rq, sched, ctxb, nsched):
    """Step-time features of the batch: ``(prefill tokens, decode requests, context tokens,
    prefill attention pairs)``. A decode is one new token for a request whose other tokens are all
    computed; any other entry is a prefill chunk of ``n`` tokens after ``c`` computed ones, adding
    ``n · (c + n/2)`` (query, key) pairs."""
    pre = 0
    dec = 0
    ctx = 0
    pattn = 0.0
    for k in range(nsched):
        r = sched[k]
        n = rq[r, NEW]
        if n == 1 and rq[r, NOUT] > 0 and ctxb[k] == rq[r, PROMPT] + rq[r, NOUT] - 1:
            dec += 1
        else:
            pre += n
            pattn += n * (ctxb[k] + 0.5 * n)
        ctx += ctxb[k] + n
    return pre, dec, ctx, pattn


@_kernel
def _complete(rq, rf, bp, sc, run_q, slots, slotfree, cfg, sched, nsched, step, t1, done_buf, ndone):
    """After step ``step`` (ending at ``t1`` s): advance each scheduled request's computed tokens;
    one whose computed tokens reach its known tokens emits a token, finishing at ``max_tokens``
    outputs or ``max_model_len`` tokens (blocks freed, appended to ``done_buf`` after ``ndone``
    entries, dropped from the running queue). Returns the new ``ndone``."""
    maxlen = cfg[C_MAXLEN]
    nfin = 0
    for k in range(nsched):
        r = sched[k]
        rq[r, COMP] += rq[r, NEW]
        if rq[r, COMP] >= rq[r, PROMPT] + rq[r, NOUT]:
            rq[r, NOUT] += 1
            if rq[r, NOUT] == 1:
                rq[r, FSTEP] = step
                rf[r, FIRSTT] = t1
            if rq[r, NOUT] >= rq[r, MAXOUT] or rq[r, PROMPT] + rq[r, NOUT] >= maxlen:
                rq[r, STATUS] = ST_DONE
                rq[r, DSTEP] = step
                rf[r, DONET] = t1
                _free_blocks(rq, bp, sc, slots, slotfree, r, cfg[C_PREFIX])
                done_buf[ndone + nfin] = r
                nfin += 1
    if nfin:
        w = 0
        for k in range(sc[S_NRUN]):
            r = run_q[k]
            if rq[r, STATUS] == ST_RUNNING:
                run_q[w] = r
                w += 1
        sc[S_NRUN] = w
    sc[S_NDONE] += nfin
    return ndone + nfin


@_kernel
def _log_step(log, sc, bp, step, t0, t1, pre, dec, nsched):
    """Write step ``step``'s log row: start/end (s), tokens, batch and queue sizes, KV blocks used."""
    log[step, L_T0] = t0
    log[step, L_T1] = t1
    log[step, L_TOK] = pre + dec
    log[step, L_PRE] = pre
    log[step, L_DEC] = dec
    log[step, L_RUN] = nsched
    log[step, L_WAIT] = sc[S_WLEN]
    log[step, L_KV] = bp.shape[0] - 1 - sc[S_NFREE]


@_kernel
def _attribute(rq, rf, sched, nsched, tokens, dt):
    """Add each scheduled request's share of the step's ``dt`` seconds to ``rf[:, BUSY]``, in
    proportion to the tokens it computes in the step (``tokens`` in all)."""
    if tokens <= 0:
        return
    for k in range(nsched):
        r = sched[k]
        rf[r, BUSY] += dt * rq[r, NEW] / tokens


@_kernel
def _execute(
    rq,
    rf,
    bp,
    sc,
    sf,
    run_q,
    slots,
    slotfree,
    cfg,
    coef,
    ttab,
    sched,
    ctxb,
    nsched,
    nfirst,
    done_buf,
    ndone,
    log,
    log_on,
):
    """Run the scheduled batch (``nfirst`` of its ``nsched`` requests scheduled for the first
    time) as one step: clock it with the step-time model (s), advance and finish requests, log it.
    Returns the new count of entries in ``done_buf``."""
    pre, dec, ctx, pattn = _batch_shape(rq, sched, ctxb, nsched)
    t0 = sf[0]
    dt = _step_time(ttab, coef, pre, dec, nsched, ctx, pattn, nfirst)
    t1 = t0 + dt
    _attribute(rq, rf, sched, nsched, pre + dec, dt)
    sf[0] = t1
    step = sc[S_STEP]
    ndone = _complete(rq, rf, bp, sc, run_q, slots, slotfree, cfg, sched, nsched, step, t1, done_buf, ndone)
    if log_on and step < log.shape[0]:
        _log_step(log, sc, bp, step, t0, t1, pre, dec, nsched)
    sc[S_STEP] += 1
    return ndone


@_kernel
def run(
    rq,
    rf,
    bp,
    sc,
    sf,
    run_q,
    wq,
    slots,
    slotfree,
    keys,
    cache,
    cfg,
    coef,
    ttab,
    order,
    mode,
    limit_time,
    max_steps,
    done_buf,
    log,
    log_on,
    fast,
    hits,
    strict,
    sched,
    ctxb,
    want_wake,
):
    """Run engine steps until idle with nothing pending, ``max_steps`` steps, or (after at least
    one step; with ``strict`` at once) the clock reaches ``limit_time``: with ``strict`` no step
    starts at or after ``limit_time``. Returns (steps run, requests finished, whether the engine is
    now idle with nothing pending, its clock in s, and with ``want_wake`` what :func:`next_wake`
    called just after would return, made here, else ``inf``).

    A step's time (s) is ``_step_time``'s. ``mode`` says how pending requests
    (``order[sc[S_PNEXT]:sc[S_NREQ]]``) arrive: MODE_STEP by
    ``rq[:, ARRSTEP]`` (shifted forward when the engine runs empty first), MODE_TIME by
    ``rf[:, ARRT]`` seconds (joining at the first step boundary at or after it).

    Each step: arrivals join the waiting queue; an empty engine skips to the next arrival; a
    stretch of pure-decode steps is fast-forwarded when ``fast``; otherwise one step is scheduled
    (running, then waiting requests) and executed. ``hits`` (``max_model_len / block_size + 1``
    entries, kept by the caller between calls) holds the remembered prefix lookup. ``sched`` and
    ``ctxb`` (``max_num_seqs`` entries each) are scratch: a step's batch (request rows) and their
    computed tokens before it.
    """
    steps = 0
    ndone = 0
    while steps < max_steps:
        _admit_arrivals(rq, rf, sc, sf, wq, order, mode)
        if sc[S_NRUN] == 0 and sc[S_WLEN] == 0:
            if not _skip_idle(rq, rf, sc, sf, order, mode, limit_time, steps + strict):
                break
            continue
        if (steps > 0 or strict) and sf[0] >= limit_time:
            break
        if fast:
            taken = _decode_jump(
                rq, rf, bp, sc, sf, run_q, wq, slots, keys, cache, cfg, coef, ttab, order, mode,
                limit_time, steps + strict, max_steps - steps, log, log_on, hits,
            )  # fmt: skip
            if taken:
                steps += taken
                continue
        nsched, nfirst = _schedule(
            rq, rf, bp, sc, sf, run_q, wq, slots, slotfree, keys, cache, cfg, sched, ctxb, hits
        )
        if nsched == 0:  # nothing fits (cannot happen with a sane config): avoid spinning
            break
        ndone = _execute(
            rq, rf, bp, sc, sf, run_q, slots, slotfree, cfg, coef, ttab, sched, ctxb, nsched, nfirst,
            done_buf, ndone, log, log_on,
        )  # fmt: skip
        steps += 1
    idle = sc[S_NRUN] == 0 and sc[S_WLEN] == 0 and sc[S_NREQ] == sc[S_PNEXT]
    plan = np.inf  # planned only when asked: planning updates the remembered lookup
    if want_wake:
        plan = _next_wake(rq, rf, bp, sc, sf, run_q, wq, keys, cache, cfg, coef, ttab, order, mode, hits, log)
    return steps, ndone, idle, sf[0], plan
