"""Local GPU tier: replica pools of self-hosted models, each replica a vLLM V1 engine model.

Every replica is an :class:`~simroute.engine.replica.Replica` (iteration-level vLLM V1 scheduling,
KV blocks, preemption, prefix caching; step times from the first-principles GPU model, a profile or a
recorded run). Every step runs at the simulated time it starts, as if the engines were stepped one
step at a time: a request submitted at time ``t`` joins the first step that starts at or after
``t``, and what the tier reports at ``t`` (its queues, a replica's load) counts the steps started
before ``t``. SimPy only schedules each engine's wake-ups: at the start of its next step, or at the
end of the pure-decode stretch it is in (no request finishes or is admitted in one, so its counts
hold until then; the stretch is taken in one jump). A wake-up is processed after every other event
due at the same time (so requests submitted then join the step). A request submitted inside a
stretch is pending: the engine's next wake-up is planned afresh, and the stretch stops at the
request's arrival, so it joins the first step that starts at or after it.
A request joins the replica of its model's pool with the fewest requests; it is rejected when
that replica already has ``max_queue`` requests beyond its free seats, or when it can never fit
(longer than ``max_model_len`` or than the whole KV cache).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simpy
from simpy.events import EventPriority

from simroute.config import CONF_DIR, TRACES_DIR
from simroute.engine import kernel as K
from simroute.engine.config import EngineConfig
from simroute.engine.gpu_hardware import gpu_by_name
from simroute.engine.gpu_model import gpu_step_time, load_coefficients
from simroute.engine.model_arch import load_arch
from simroute.engine.profiles import profile_step_time
from simroute.engine.replica import Replica
from simroute.engine.steptime import LinearStepTime, StepTimeModel, fit_run
from simroute.errors import ConfigError, InputError
from simroute.policy.types import TierState
from simroute.signals import Signal, pending, timeout
from simroute.tiers.base import AttemptResult, delay_until
from simroute.workload.prefix_runs import PrefixRuns
from simroute.workload.request import Request

GPU_MODEL_KEYS = ("model_config", "gpu", "coefficients")
"""Keys of a ``kind: gpu_model`` step time."""


def gpu_model_step_time(
    args: Mapping[str, Any], max_tokens: int, tensor_parallel: int, where: str
) -> StepTimeModel:
    """``kind: gpu_model``: the first-principles GPU step time (:func:`gpu_step_time`) of the model
    whose Hugging Face ``config.json`` is in ``model_config`` (a folder; relative paths resolve
    against ``conf/model_configs``) on ``gpu`` (``H100``, ``H200`` or ``A100``; default ``H100``)
    with tensor parallelism ``tensor_parallel`` (the pool's GPUs per replica); coefficients from
    ``coefficients`` (default ``conf/gpu_model.json``, the fit to real vLLM runs)."""
    unknown = sorted(set(args) - set(GPU_MODEL_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for kind gpu_model; valid: {list(GPU_MODEL_KEYS)}"
        )
    if "model_config" not in args:
        raise ConfigError(f"{where}.model_config: missing (a folder holding a Hugging Face config.json)")
    cfg_dir = Path(str(args["model_config"]))
    cfg_dir = cfg_dir if cfg_dir.is_absolute() else CONF_DIR / "model_configs" / cfg_dir
    coef_path = Path(str(args.get("coefficients", "gpu_model.json")))
    coef_path = coef_path if coef_path.is_absolute() else CONF_DIR / coef_path
    try:
        gpu = gpu_by_name(str(args.get("gpu", "H100")))
    except InputError as e:
        raise ConfigError(f"{where}.gpu: {e.message}") from None
    return gpu_step_time(load_arch(cfg_dir), gpu, tensor_parallel, load_coefficients(coef_path), max_tokens)


def step_time_from_config(
    cfg: Mapping[str, Any], max_tokens: int, where: str, tensor_parallel: int = 1
) -> StepTimeModel:
    """``kind: gpu_model`` (first-principles GPU model, :func:`gpu_model_step_time`), ``profile``
    (Vidur GPU profile + KV-read attention), ``linear`` (coefficients) or ``run`` (fit to a recorded
    vLLM run folder). ``tensor_parallel`` (GPUs per replica) is used by ``gpu_model``."""
    kind = cfg.get("kind", "profile")
    args = {k: v for k, v in cfg.items() if k != "kind"}
    try:
        if kind == "gpu_model":
            return gpu_model_step_time(args, max_tokens, tensor_parallel, where)
        if kind == "profile":
            prof = Path(str(args.pop("profile")))
            prof = prof if prof.is_absolute() else TRACES_DIR / prof
            return profile_step_time(prof, max_tokens=max_tokens, **args)
        if kind == "linear":
            return LinearStepTime(**{k: float(v) for k, v in args.items()})
        if kind == "run":
            return fit_run(Path(str(args["path"])))
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None
    raise ConfigError(f"{where}.kind: expected gpu_model, profile, linear or run, got {kind!r}")


@dataclass(frozen=True)
class PoolSpec:
    """One self-hosted model's replica pool."""

    model: str
    replicas: int
    gpus_per_replica: int
    max_queue: int
    engine: EngineConfig
    step_time: StepTimeModel

    @staticmethod
    def from_config(cfg: Mapping[str, Any]) -> PoolSpec:
        """Parse and check one ``tiers.local.pools`` entry."""
        where = f"tiers.local.pools[{cfg.get('model')}]"
        try:
            engine = EngineConfig(**dict(cfg["engine"]))
            spec = PoolSpec(
                str(cfg["model"]),
                int(cfg["replicas"]),
                int(cfg["gpus_per_replica"]),
                int(cfg["max_queue"]),
                engine,
                step_time_from_config(
                    cfg["step_time"],
                    engine.max_num_batched_tokens,
                    f"{where}.step_time",
                    int(cfg["gpus_per_replica"]),
                ),
            )
        except KeyError as e:
            raise ConfigError(f"{where}: missing key {e}") from None
        except TypeError as e:
            raise ConfigError(f"{where}.engine: {e}") from None
        if min(spec.replicas, spec.gpus_per_replica) < 1 or spec.max_queue < 0:
            raise ConfigError(f"{where}: replicas and gpus_per_replica must be >= 1, max_queue >= 0")
        return spec


LATE = EventPriority(2)
"""SimPy priority of the engines' wake-ups: after the normal events (priority 1) due at the same
time, including those they trigger then, so every request submitted at a step's start joins it."""


class _Engine:
    """One replica: its engine and in-flight requests, when it must next run (s, ``inf`` when
    idle) and the number of its current wake-up (an earlier one that fires is stale)."""

    def __init__(self, spec: PoolSpec, stepwise: bool) -> None:
        self.spec = spec
        self.rep = Replica(
            spec.engine, spec.step_time, mode="time", capacity=256, compact=True, fast_forward=not stepwise
        )
        self.inflight: dict[int, tuple[Signal, float, Request]] = {}
        self.wake_s = math.inf
        self.wake_no = 0

    @property
    def load(self) -> int:
        return self.rep.num_running + self.rep.num_waiting + self.rep.num_pending


class LocalTier:
    """Self-hosted models on provisioned GPUs, each replica a vLLM V1 engine.

    Args:
        env: the SimPy environment.
        pools: one :class:`PoolSpec` per local model.
        gpu_hour_usd: provisioned cost per GPU-hour (USD).
        prefix_hashes: the requests' prefix-block hash ids (blocks of ``block_tokens``), by request
            index.
        block_tokens: tokens per block of ``prefix_hashes``.

    Replica choice is join-shortest-queue. With :attr:`affinity` on (session stickiness), a session
    goes back to the replica that served its previous step — where its prefix is cached — unless
    that replica holds more than :attr:`affinity_slack` requests beyond the least-loaded one
    (affinity with bounded load).
    """

    name = "local"
    affinity: bool = False
    affinity_slack: int = 8
    stepwise: bool = False
    """Run every step on its own wake-up, without jumping over decode stretches: the reference
    that the default is tested against (the same results, byte for byte), far slower."""

    def __init__(
        self,
        env: simpy.Environment,
        pools: list[PoolSpec],
        gpu_hour_usd: float,
        prefix_hashes: PrefixRuns | None = None,
        block_tokens: int = 0,
    ) -> None:
        self.env = env
        self.specs = {p.model: p for p in pools}
        self.engines = {p.model: [_Engine(p, self.stepwise) for _ in range(p.replicas)] for p in pools}
        self.gpu_hour_usd = gpu_hour_usd
        self.prefix_hashes = prefix_hashes
        self.block_tokens = block_tokens
        self._session_replica: dict[tuple[str, int], _Engine] = {}
        self._state: TierState | None = None  # the engines' counts, until an engine changes

    @property
    def n_gpus(self) -> int:
        """GPUs provisioned across all pools."""
        return sum(p.replicas * p.gpus_per_replica for p in self.specs.values())

    def _keys(self, req: Request, bs: int) -> np.ndarray | None:
        """The request's prefix-block ids (None if it has none or the blocks do not nest)."""
        if self.prefix_hashes is None or self.block_tokens % bs:
            return None
        ids = self.prefix_hashes.ids(req.idx)
        return ids if len(ids) else None

    def submit(self, request: Request, model: str, attempt: int = 0) -> Signal:
        """Queue the request on the least-loaded replica of ``model``'s pool."""
        if model not in self.engines:
            raise ConfigError(f"local tier has no pool for model {model!r}")
        now = self.env.now
        ev = pending(self.env)
        eng = min(self.engines[model], key=lambda e: e.load)
        if self.affinity:
            key = (model, request.session_id)
            prev = self._session_replica.get(key)
            if prev is not None and prev.load <= eng.load + self.affinity_slack:
                eng = prev
            self._session_replica[key] = eng
        cfg = eng.spec.engine
        total = request.prompt_tokens + request.output_tokens
        fits = total <= cfg.max_model_len and -(-total // cfg.block_size) <= cfg.num_gpu_blocks - 1
        rep = eng.rep
        queued = rep.num_waiting + rep.num_pending - (cfg.max_num_seqs - rep.num_running)
        if not fits or queued >= eng.spec.max_queue:
            ev.succeed(AttemptResult("rejected", now, now, now, now))
            return ev
        i = eng.rep.add(
            request.prompt_tokens,
            request.output_tokens,
            arrival_s=now,
            prefix_keys=self._keys(request, cfg.block_size),
            blocks_per_key=max(self.block_tokens // cfg.block_size, 1),
        )
        eng.inflight[i] = (ev, now, request)
        self._state = None
        self._plan(eng)
        return ev

    def _plan(self, e: _Engine) -> None:
        """Schedule engine ``e``'s next wake-up (none when idle; kept when its time is unchanged)."""
        t = e.rep.next_wake_s() if not self.stepwise or e.rep.idle else max(e.rep.clock_s, self.env.now)
        if t == e.wake_s:
            return
        e.wake_s = t
        e.wake_no += 1
        if t < math.inf:
            no = e.wake_no
            # processed after the normal events due then (LATE)
            wake = timeout(self.env, delay_until(self.env.now, t), None, LATE)
            wake.add_callback(lambda _ev: self._woken(e, no))

    def _woken(self, e: _Engine, no: int) -> None:
        """Wake-up ``no`` of engine ``e`` (ignored if stale): run its steps that start by now (its
        stretch and the step due now), then plan the next. (A request added inside a stretch is
        pending until then: the stretch stops at its arrival, and it joins the step after.)"""
        if no != e.wake_no:
            return
        run = e.rep.run_before(math.nextafter(self.env.now, math.inf))
        for i in run.done:
            self._complete(e, i)
        self._state = None
        if run.steps == 0 and not run.idle:
            raise RuntimeError(f"local replica of {e.spec.model} cannot schedule its queue")
        e.wake_s = math.inf  # planned afresh
        self._plan(e)

    def _complete(self, e: _Engine, i: int) -> None:
        ev, submit, _req = e.inflight.pop(i)
        rf = e.rep.time_fields(i)
        busy = float(rf[K.BUSY]) * e.spec.gpus_per_replica  # GPU-seconds: its share of each step
        res = AttemptResult(
            "completed",
            submit,
            float(rf[K.SCHEDT]),
            float(rf[K.FIRSTT]),
            float(rf[K.DONET]),
            busy,
            cached_tokens=max(int(e.rep.int_fields(i)[K.NCACHED]), 0),  # prefix-cache hits (tokens)
        )

        def fire(_t: Signal) -> None:
            ev.succeed(res)

        timeout(self.env, delay_until(self.env.now, res.end_s)).add_callback(fire)

    def state(self) -> TierState:
        """Waiting and running requests over all replicas (counted again only after a request was
        queued or an engine ran)."""
        if self._state is not None:
            return self._state
        q = s = c = 0
        for engines in self.engines.values():
            for e in engines:
                q += e.rep.num_waiting + e.rep.num_pending
                s += e.rep.num_running
                c += e.spec.engine.max_num_seqs
        self._state = TierState(q, s, c)
        return self._state
