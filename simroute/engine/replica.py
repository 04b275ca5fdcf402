"""One vLLM V1 replica as a plain object over NumPy arrays; the hot loop is :mod:`kernel`.

``add`` registers a request (arriving at a time, or before a step in step mode); ``run_until``
runs engine steps until the clock passes a limit or the engine is idle; finished requests are
reported with their step indices and times. No SimPy inside: the local tier drives this object.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np

from simroute.engine import kernel as K
from simroute.engine.config import EngineConfig
from simroute.engine.steptime import StepTimeModel

_STEP: Final = K.S_STEP
_NRUN: Final = K.S_NRUN
_WLEN: Final = K.S_WLEN
_NREQ: Final = K.S_NREQ
_PNEXT: Final = K.S_PNEXT


@dataclass(frozen=True)
class StepLog:
    """Per-step log columns (seconds, tokens, counts), one entry per step run."""

    t_start_s: np.ndarray
    t_end_s: np.ndarray
    num_scheduled_tokens: np.ndarray
    num_prefill_tokens: np.ndarray
    num_decode_tokens: np.ndarray
    num_running: np.ndarray
    num_waiting: np.ndarray
    kv_blocks_used: np.ndarray


class Advanced(NamedTuple):
    """What one :meth:`Replica.run_before` did: the indices of the requests it finished (Python
    ints), the steps it ran, and whether the engine is now idle with nothing pending (its clock is
    :attr:`Replica.clock_s`)."""

    done: list[int]
    steps: int
    idle: bool


class Replica:
    """A vLLM V1 engine replica.

    Args:
        config: scheduler and KV settings.
        step_time: step-time model (seconds per step from its batch composition).
        mode: ``"time"`` (requests join at the first step boundary at or after their arrival
            time) or ``"step"`` (before their arrival step; replay of step-mode runs).
        capacity: initial number of request slots (grows as needed).
        log_steps: keep a per-step log of up to this many steps (0 = none).
        fast_forward: jump over stretches of pure-decode steps in one go (the same steps, times,
            prefix-cache hits and busy time, bit for bit; off only to test that claim).
        compact: when the request rows fill and at least half of them are finished requests at
            the front, drop those rows instead of doubling (the replica then holds rows for the
            requests of the last while, not for every request it served: about 200 B each). A
            request keeps its index (:meth:`add` returns it; :meth:`run_until` reports it); read a
            finished request's fields with :meth:`int_fields` / :meth:`time_fields`, which may then
            no longer hold the dropped requests' rows (:meth:`request_field` covers the rows held).
    """

    def __init__(
        self,
        config: EngineConfig,
        step_time: StepTimeModel,
        mode: str = "time",
        capacity: int = 1024,
        log_steps: int = 0,
        fast_forward: bool = True,
        compact: bool = False,
    ) -> None:
        if mode not in ("time", "step"):
            raise ValueError(f"mode must be 'time' or 'step', got {mode!r}")
        self.config = config
        self.cfg = config.as_array()
        self.coef = step_time.coefficients()
        self.ttab = step_time.table()
        self.mode = K.MODE_TIME if mode == "time" else K.MODE_STEP
        cap = max(capacity, 16)
        self.rq = np.zeros((cap, K.N_RQ), dtype=np.int64)
        self.rf = np.zeros((cap, K.N_RF), dtype=np.float64)
        self.order = np.zeros(cap, dtype=np.int64)
        self.wq = np.zeros(cap, dtype=np.int64)
        self.done_buf = np.zeros(cap, dtype=np.int64)
        self.keys = np.zeros(64, dtype=np.int64)
        self.n_keys = 0
        self.bp = np.zeros((config.num_gpu_blocks, K.N_BP), dtype=np.int64)
        self.sc = np.zeros(K.N_SC, dtype=np.int64)
        self.sf = np.zeros(1, dtype=np.float64)
        self._sc = self.sc.data  # the kernel's scalars read as Python ints (never replaced)
        self._sf = self.sf.data
        K.init_pool(self.bp, self.sc)
        max_blocks = -(-config.max_model_len // config.block_size) + 1
        self.run_q = np.zeros(config.max_num_seqs, dtype=np.int64)
        self.slots = np.zeros((config.max_num_seqs, max_blocks), dtype=np.int64)
        self.slotfree = np.arange(config.max_num_seqs, dtype=np.int64)[::-1].copy()
        self.sc[K.S_NSLOT] = config.max_num_seqs
        self.cache = K.new_hash_map(config.num_gpu_blocks)  # prefix cache: block hash -> block
        self.hits = np.zeros(max_blocks, dtype=np.int64)  # the kernel's remembered prefix lookup
        self.sched = np.zeros(config.max_num_seqs, dtype=np.int64)  # scratch: a step's batch
        self.ctxb = np.zeros(config.max_num_seqs, dtype=np.int64)  # scratch: its computed tokens
        self.log = np.zeros((max(log_steps, 1), K.N_LOG), dtype=np.float64)
        self.log_on = log_steps > 0
        self.fast = fast_forward
        self.compact = compact
        self.base = 0  # the index of row 0 (rows of finished requests dropped before it)
        self._planned = False  # whether _wake holds the plan of the last run (nothing changed since)
        self._wake = math.inf
        self._entries: dict[Any, Callable[..., Any]] = {}  # kernel -> its entry for our arguments' types

    # ---- requests -------------------------------------------------------------------------
    def add(
        self,
        prompt_tokens: int,
        max_tokens: int,
        *,
        arrival_s: float = 0.0,
        arrival_step: int = 0,
        prefix_keys: np.ndarray | None = None,
        blocks_per_key: int = 1,
    ) -> int:
        """Register a request; returns its engine index.

        Args:
            prompt_tokens: prompt length (tokens, >= 1).
            max_tokens: tokens to generate (>= 1; EOS is ignored, as in the recorded runs).
            arrival_s: arrival time (s), time mode; must not precede an earlier ``add``.
            arrival_step: step before which it arrives, step mode.
            prefix_keys: hash ids (>= 0) of its leading prefix blocks that may be shared with
                other requests, each covering ``blocks_per_key`` KV blocks; later blocks are
                private.
            blocks_per_key: KV blocks per prefix id (e.g. 16 for 256-token ids, 16-token blocks).

        Raises:
            ValueError: the prompt is empty or longer than ``max_model_len`` (vLLM refuses such a
                prompt; the kernel would serve it one token), or ``max_tokens`` < 1.
        """
        if not 1 <= prompt_tokens <= self.config.max_model_len or max_tokens < 1:
            raise ValueError(
                f"a request needs 1 <= prompt_tokens <= max_model_len ({self.config.max_model_len}) "
                f"and max_tokens >= 1; got prompt_tokens={prompt_tokens}, max_tokens={max_tokens}"
            )
        self._planned = False  # a new request: the last run's plan no longer holds
        n = int(self.sc[K.S_NREQ])
        if n == self.rq.shape[0] and not (self.compact and self._drop_finished()):
            self._grow()
        n = int(self._sc[_NREQ])
        k = 0
        if prefix_keys is not None and len(prefix_keys):
            k = len(prefix_keys)
            if self.n_keys + k > len(self.keys):
                self._make_key_room(k, n)
            self.keys[self.n_keys : self.n_keys + k] = prefix_keys
        args = (
            self.rq, self.rf, self.order, self.sc, int(prompt_tokens), int(max_tokens), int(arrival_step),
            float(arrival_s), self.n_keys, k, int(blocks_per_key), self.base + n,
        )  # fmt: skip
        self._call(K.add_request, args)
        self.n_keys += k
        return self.base + n

    def _drop_finished(self) -> bool:
        """Drop the rows of the finished requests at the front if they are at least half the rows
        (else leave all as they are); whether it did. Every row number the kernel holds (its
        running batch, waiting queue, arrival order, remembered lookup) moves down with them; the
        keys of a preempted request's published private blocks use its index for good (``RID``),
        not its row, so no later request that takes its row number finds them."""
        n = int(self.sc[K.S_NREQ])
        live = np.flatnonzero(self.rq[:n, K.STATUS] != K.ST_DONE)
        d = int(live[0]) if len(live) else n  # pending and queued requests are not done
        if 2 * d < n:
            return False
        m = n - d
        self.rq[:m] = self.rq[d:n]
        self.rf[:m] = self.rf[d:n]
        self.order[:m] = self.order[d:n] - d
        sc = self.sc
        self.run_q[: sc[K.S_NRUN]] -= d
        self.wq[(sc[K.S_WHEAD] + np.arange(sc[K.S_WLEN])) % len(self.wq)] -= d
        sc[K.S_PNEXT] -= d
        sc[K.S_NREQ] = m
        sc[K.S_MREQ] -= d
        self.base += d
        return True

    def _make_key_room(self, k: int, n: int) -> None:
        """Room for ``k`` more prefix ids: the ids of the first ``n`` requests that are not done
        (the kernel never reads a finished request's ids) are packed to the front, in order, into
        an array at most half full afterwards (the same size, or doubled until so), so the ids held
        follow the requests in flight, not every request the replica has served."""
        rq = self.rq[:n]
        live = np.flatnonzero((rq[:, K.STATUS] != K.ST_DONE) & (rq[:, K.KLEN] > 0))
        lens = rq[live, K.KLEN]
        need = int(lens.sum()) + k
        size = len(self.keys)
        while 2 * need > size:
            size *= 2
        starts = np.zeros(len(live), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        src = np.repeat(rq[live, K.KSTART] - starts, lens) + np.arange(need - k)
        keys = np.zeros(size, dtype=np.int64)
        keys[: need - k] = self.keys[src]
        self.rq[live, K.KSTART] = starts
        self.keys = keys
        self.n_keys = need - k

    def _grow(self) -> None:
        cap = self.rq.shape[0] * 2
        self.rq = np.concatenate([self.rq, np.zeros_like(self.rq)])
        self.rf = np.concatenate([self.rf, np.zeros_like(self.rf)])
        self.order = np.concatenate([self.order, np.zeros_like(self.order)])
        self.done_buf = np.zeros(cap, dtype=np.int64)
        wq = np.zeros(cap, dtype=np.int64)
        head, n = int(self.sc[K.S_WHEAD]), int(self.sc[K.S_WLEN])
        old = self.wq.shape[0]
        wq[:n] = self.wq[(head + np.arange(n)) % old]
        self.wq = wq
        self.sc[K.S_WHEAD] = 0

    # ---- running --------------------------------------------------------------------------
    def run_until(self, limit_s: float = np.inf, max_steps: int = 2**62) -> np.ndarray:
        """Run steps (at least one if there is work) until the clock reaches ``limit_s``, the
        engine is idle with nothing pending, or ``max_steps``; return the indices finished."""
        _, nd, _, _ = self._run(limit_s, max_steps)
        return self.done_buf[:nd] + self.base

    def run_before(self, t: float) -> Advanced:
        """Run every step that starts before ``t`` (s) and no other (a request added now with
        ``arrival_s=t`` joins the first step at or after ``t``): what it did, read in one call.
        With fast-forward on, the kernel plans the next wake-up in the same call: the next
        :meth:`next_wake_s`, if nothing changes the engine first, returns that plan (a stepwise
        engine's driver wakes it at every step and asks only when it is idle)."""
        steps, nd, idle, _ = self._run(t, 2**62, strict=True, want_wake=self.fast)
        done = (self.done_buf[:nd] + self.base).tolist() if nd else []
        return Advanced(done, steps, idle)

    def next_wake_s(self) -> float:
        """When (s) the engine next needs running if no request is added before (``inf``: idle
        with nothing pending): its clock, or the end of the pure-decode stretch it is in, which
        finishes and admits no request, so its counts stay as they are until then. A driver that
        runs it then with :meth:`run_before` (just after that time), and asks again after every
        :meth:`add` (a request added inside a stretch stops it at its arrival), runs every step at
        the time a step-by-step simulation would; see :func:`kernel.next_wake`."""
        if self._planned:  # planned by the run just before, nothing changed since
            self._planned = False
            return self._wake
        args = (
            self.rq, self.rf, self.bp, self.sc, self.sf, self.run_q, self.wq, self.keys,
            self.cache, self.cfg, self.coef, self.ttab, self.order, self.mode, self.hits, self.log,
        )  # fmt: skip
        return float(self._call(K.next_wake, args))

    def _run(
        self, limit_s: float, max_steps: int, strict: bool = False, want_wake: bool = False
    ) -> tuple[int, int, bool, float]:
        """One kernel call: (steps run, requests finished into ``done_buf``, idle, clock s); with
        ``strict`` no step starts at or after ``limit_s``, else at least one runs if there is work;
        with ``want_wake`` the wake-up planned after it is kept for :meth:`next_wake_s`."""
        args = (
            self.rq,
            self.rf,
            self.bp,
            self.sc,
            self.sf,
            self.run_q,
            self.wq,
            self.slots,
            self.slotfree,
            self.keys,
            self.cache,
            self.cfg,
            self.coef,
            self.ttab,
            self.order,
            self.mode,
            float(limit_s),
            int(max_steps),
            self.done_buf,
            self.log,
            self.log_on,
            self.fast,
            self.hits,
            strict,
            self.sched,
            self.ctxb,
            want_wake,
        )
        steps, nd, idle, clock, wake = self._call(K.run, args)
        self._planned, self._wake = want_wake, float(wake)
        return int(steps), int(nd), bool(idle), float(clock)

    def _call(self, kernel: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``kernel(*args)`` through its compiled entry point (:func:`kernel.compiled_entry`), found
        at its first call: a replica's argument types never change."""
        entry = self._entries.get(kernel)
        if entry is None:
            entry = self._entries[kernel] = K.compiled_entry(kernel, args)
        return entry(*args)

    def int_fields(self, i: int) -> np.ndarray:
        """Request ``i``'s int fields (``kernel.NCACHED`` ...; a view: read it before the next
        :meth:`add`)."""
        return self.rq[self._row(i)]  # type: ignore[no-any-return]

    def time_fields(self, i: int) -> np.ndarray:
        """Request ``i``'s float fields (``kernel.DONET`` ...; a view: read it before the next
        :meth:`add`)."""
        return self.rf[self._row(i)]  # type: ignore[no-any-return]

    def _row(self, i: int) -> int:
        """The row of request ``i`` (IndexError if its row was dropped or it was never added)."""
        row = i - self.base
        if not 0 <= row < self.sc[K.S_NREQ]:
            raise IndexError(
                f"request {i} is not held (rows {self.base} to {self.base + self.sc[K.S_NREQ] - 1})"
            )
        return row

    @property
    def clock_s(self) -> float:
        """Engine time: the end of the last step run (s)."""
        return float(self._sf[0])

    @clock_s.setter
    def clock_s(self, t: float) -> None:
        self.sf[0] = t
        self._planned = False

    @property
    def steps(self) -> int:
        """Steps run so far."""
        return int(self._sc[_STEP])

    @property
    def num_waiting(self) -> int:
        """Requests queued (including preempted ones and arrived-but-unadmitted)."""
        return int(self._sc[_WLEN])

    @property
    def num_running(self) -> int:
        """Requests in the running batch."""
        return int(self._sc[_NRUN])

    @property
    def num_pending(self) -> int:
        """Registered requests that have not yet arrived at the engine."""
        sc = self._sc
        return int(sc[_NREQ]) - int(sc[_PNEXT])

    @property
    def idle(self) -> bool:
        """No running, waiting or pending request."""
        sc = self._sc  # read directly: the local tier asks this at every wake-up of its driver
        return bool(sc[_NRUN] == 0 and sc[_WLEN] == 0 and sc[_NREQ] == sc[_PNEXT])

    @property
    def kv_blocks_used(self) -> int:
        """KV blocks held by requests (excluding the null block and cache-only blocks)."""
        return int(self.bp.shape[0] - 1 - self.sc[K.S_NFREE])

    def request_field(self, field: int) -> np.ndarray:
        """A per-request int column (``kernel.FSTEP`` ...) of the registered requests (those from
        index :attr:`base` on)."""
        return self.rq[: self.sc[K.S_NREQ], field].copy()

    def request_time(self, field: int) -> np.ndarray:
        """A per-request float column (``kernel.ADDT`` ...) of the registered requests (those from
        index :attr:`base` on)."""
        return self.rf[: self.sc[K.S_NREQ], field].copy()

    def step_log(self) -> StepLog:
        """The per-step log (requires ``log_steps``)."""
        n = min(self.steps, self.log.shape[0]) if self.log_on else 0
        lg = self.log[:n]
        ints = [lg[:, c].astype(np.int64) for c in range(2, K.N_LOG)]
        return StepLog(lg[:, K.L_T0].copy(), lg[:, K.L_T1].copy(), *ints)
