"""Simulate a GPU validation experiment: the inference-perf workload through the step-exact vLLM V1
scheduler kernel (:class:`~simroute.engine.replica.Replica`) with GPU step times from
:mod:`simroute.engine.gpu_model`, then per-stage latency statistics as the client measured them.

Client-side TTFT = first token's step end − send time + ``front_end_s`` + the admission lag of
asynchronous scheduling (``admission_lag_steps`` of the request's own mean decode step); E2E
likewise with the last token. ``itl_mean_ms`` = (E2E − TTFT) / (output tokens − 1), engine tokens
(the measured ITLs are computed differently by the tools that recorded them; E2E and TTFT are the
targets).

Overload: a stage whose requests take so long that the engine serves less than
:data:`OVERLOAD_SHARE` of the offered rate (stage requests / time from the stage's start to its last
completion) is overloaded; an experiment with any overloaded stage is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simroute.engine import kernel as K
from simroute.engine.gpu_experiments import GpuExperiment, Stats
from simroute.engine.gpu_model import GpuCoefficients, gpu_step_time
from simroute.engine.replica import Replica
from simroute.workload.inference_perf import STAGE_GAP_S, InferencePerfWorkload

OVERLOAD_SHARE = 0.9
"""A stage served below this share of its offered rate is overloaded."""
_GROUP_KEY = 1 << 20
_PROMPT_KEY = 1 << 30


@dataclass(frozen=True)
class SimulatedRequests:
    """Per request (in send order): stage, send time (s), client TTFT and E2E (s), output tokens."""

    stage: np.ndarray
    sent_s: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    output_tokens: np.ndarray
    stage_served_share: tuple[float, ...]

    @property
    def overloaded(self) -> bool:
        """Any stage served below :data:`OVERLOAD_SHARE` of its offered rate."""
        return any(s < OVERLOAD_SHARE for s in self.stage_served_share)


def _prefix_keys(group: int, prompt: int, shared_tokens: int, prompt_tokens: int, block: int) -> np.ndarray:
    """Hash ids of a prompt's full blocks: the system prompt's (shared by its group) then its own."""
    n_shared = shared_tokens // block
    n_full = prompt_tokens // block
    j = np.arange(n_full, dtype=np.int64)
    return np.where(j < n_shared, group * _GROUP_KEY + j, (prompt + 1) * _PROMPT_KEY + j)


def simulate(exp: GpuExperiment, coef: GpuCoefficients, seed: int = 0) -> SimulatedRequests:
    """Run ``exp``'s workload stage by stage through one replica (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    wl: InferencePerfWorkload = exp.workload
    prompts = wl.prompts(rng)
    bs = exp.engine.block_size
    keys = [
        _prefix_keys(
            int(prompts.group[i]), i, int(prompts.shared_tokens[i]), int(prompts.prompt_tokens[i]), bs
        )
        for i in range(len(prompts.group))
    ]
    step = gpu_step_time(exp.arch, exp.gpu, exp.tp, coef, exp.engine.max_num_batched_tokens)
    total = sum(s.num_requests for s in wl.stages)
    rep = Replica(exp.engine, step, mode="time", capacity=max(total, 16))
    stage_of: list[int] = []
    sent: list[float] = []
    shares: list[float] = []
    start = STAGE_GAP_S
    out_len = min(wl.data.output_len, exp.engine.max_model_len - int(prompts.prompt_tokens.max()))
    for si, st in enumerate(wl.stages):
        offsets = start + wl.arrival_offsets(st, rng)
        first_idx = len(sent)
        for n, t in enumerate(offsets):
            p = n % len(prompts.group)
            rep.add(int(prompts.prompt_tokens[p]), max(out_len, 1), arrival_s=float(t), prefix_keys=keys[p])
        sent.extend(offsets.tolist())
        stage_of.extend([si] * len(offsets))
        rep.run_until()
        stage_done = rep.request_time(K.DONET)[first_idx:]
        span = float(np.max(stage_done)) - start if len(stage_done) else st.duration
        shares.append(min(1.0, st.duration / span) if span > 0 else 1.0)
        start = rep.clock_s + STAGE_GAP_S
    sent_a = np.asarray(sent)
    first, done, nout = rep.request_time(K.FIRSTT), rep.request_time(K.DONET), rep.request_field(K.NOUT)
    lag = coef.admission_lag_steps * (done - first) / np.maximum(nout - 1, 1)
    return SimulatedRequests(
        stage=np.asarray(stage_of, dtype=np.int64),
        sent_s=sent_a,
        ttft_s=first - sent_a + lag + coef.front_end_s,
        e2e_s=done - sent_a + lag + coef.front_end_s,
        output_tokens=nout,
        stage_served_share=tuple(shares),
    )


def _summary(ttft: np.ndarray, e2e: np.ndarray, nout: np.ndarray) -> dict[str, float]:
    itl = (e2e - ttft) / np.maximum(nout - 1, 1)
    return {
        "e2e_mean_ms": 1e3 * float(np.mean(e2e)),
        "e2e_p90_ms": 1e3 * float(np.percentile(e2e, 90)),
        "e2e_p99_ms": 1e3 * float(np.percentile(e2e, 99)),
        "ttft_mean_ms": 1e3 * float(np.mean(ttft)),
        "ttft_p90_ms": 1e3 * float(np.percentile(ttft, 90)),
        "ttft_p99_ms": 1e3 * float(np.percentile(ttft, 99)),
        "itl_mean_ms": 1e3 * float(np.mean(itl)),
    }


def stage_stats(sim: SimulatedRequests) -> Stats:
    """Per-stage statistics (ms) keyed like ``measured``: "-1" the whole run, "0", "1", ... stages."""
    out: Stats = {"-1": _summary(sim.ttft_s, sim.e2e_s, sim.output_tokens)}
    for s in range(int(sim.stage.max()) + 1 if len(sim.stage) else 0):
        m = sim.stage == s
        if m.any():
            out[str(s)] = _summary(sim.ttft_s[m], sim.e2e_s[m], sim.output_tokens[m])
    return out


def relative_error(pred: Stats, meas: Stats | None, metric: str, stage: str = "-1") -> float | None:
    """``pred / measured − 1`` of one metric of one stage, or None when not measured."""
    if not meas or stage not in meas or metric not in meas[stage] or stage not in pred:
        return None
    m = meas[stage][metric]
    return pred[stage][metric] / m - 1.0 if m > 0 else None
