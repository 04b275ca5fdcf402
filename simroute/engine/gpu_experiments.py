"""GPU validation experiments: what ran (model, GPU, TP, vLLM settings, workload) and what was measured.

Two sources:

* a specs JSON in the format of ``gpu_vllm/experiments.json``: ``{"hardware": ..., "experiments":
  [{id, model_config_dir, hardware, tp, max_num_seqs, max_num_batched_tokens, total_kv_blocks?,
  workload: {inference_perf: {shared_prefix, stages}}, measured?, other_simulators_predicted?}]}``;
  ``model_config_dir`` resolves against the folder holding the JSON;
* an inference-perf run folder (``exp-config.yaml`` + ``results/config.yaml``, measured values from
  ``results/*_lifecycle_metrics.json`` if present), or a folder of such run folders. The model's config
  is looked up as ``model_configs/hf-<name>`` or ``model_configs/<name lower-case>`` in the run folder's
  ancestors.

vLLM settings not given: block size 16, prefix caching and chunked prefill on, ``max_model_len`` 4096,
no watermark, admission by the blocks of the tokens scheduled (vLLM 0.15's V1 scheduler), and the KV
capacity from :func:`simroute.engine.gpu_memory.kv_blocks` when ``total_kv_blocks`` is absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from simroute.engine.config import EngineConfig
from simroute.engine.gpu_hardware import GpuSpec, gpu_by_name
from simroute.engine.gpu_memory import kv_blocks
from simroute.engine.model_arch import ModelArch, load_arch
from simroute.errors import InputError
from simroute.jsonfile import read_json
from simroute.workload.inference_perf import InferencePerfWorkload, parse_shared_prefix, parse_stages

METRICS: tuple[str, ...] = (
    "e2e_mean_ms",
    "e2e_p90_ms",
    "e2e_p99_ms",
    "ttft_mean_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "itl_mean_ms",
)
"""Metric keys of ``measured`` / predictions, per load stage ("-1" = the whole run)."""

Stats = dict[str, dict[str, float]]
"""Stage key ("-1", "0", ...) -> metric key -> value (ms)."""


@dataclass(frozen=True)
class GpuExperiment:
    """One experiment to simulate.

    Attributes:
        id: its identifier.
        source: the file or folder it came from (for messages).
        arch: the model's shape.
        gpu: the GPU.
        tp: tensor-parallel GPUs per replica.
        engine: vLLM scheduler/KV settings.
        kv_blocks_given: whether ``engine.num_gpu_blocks`` came from the spec (else computed).
        workload: the inference-perf workload.
        measured: measured stats (ms), if published.
        others: other simulators' predictions by name, if published.
    """

    id: str
    source: str
    arch: ModelArch
    gpu: GpuSpec
    tp: int
    engine: EngineConfig
    kv_blocks_given: bool
    workload: InferencePerfWorkload
    measured: Stats | None
    others: dict[str, Stats] | None


def _int_field(e: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    v = e.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InputError(where, f"expected a positive integer, got {v!r}", column=key)
    return v


def _engine(
    e: Mapping[str, Any], arch: ModelArch, gpu: GpuSpec, tp: int, where: str
) -> tuple[EngineConfig, bool]:
    blocks = e.get("total_kv_blocks")
    given = blocks is not None
    if given:
        n = _int_field(e, "total_kv_blocks", where)
    else:
        n = kv_blocks(arch, gpu, tp, block_size=_int_field(e, "block_size", where, 16))
    try:
        cfg = EngineConfig(
            max_num_batched_tokens=_int_field(e, "max_num_batched_tokens", where, 2048),
            max_num_seqs=_int_field(e, "max_num_seqs", where, 128),
            block_size=_int_field(e, "block_size", where, 16),
            num_gpu_blocks=n + 1,  # vLLM reports usable blocks; the kernel counts its null block too
            enable_prefix_caching=bool(e.get("enable_prefix_caching", True)),
            max_model_len=_int_field(e, "max_model_len", where, 4096),
            enable_chunked_prefill=bool(e.get("enable_chunked_prefill", True)),
            reserve_full_isl=False,
        )
    except Exception as err:  # ConfigError from EngineConfig
        raise InputError(where, str(err)) from None
    return cfg, given


def _stats(block: object, where: str, field: str) -> Stats | None:
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise InputError(where, "expected an object of stages", column=field)
    out: Stats = {}
    for stage, vals in block.items():
        if not isinstance(vals, Mapping):
            raise InputError(where, f"stage {stage!r} is not an object", column=field)
        out[str(stage)] = {k: float(v) for k, v in vals.items() if isinstance(v, int | float)}
    return out


def experiment_from_spec(e: object, base: Path, default_hw: str, where: str) -> GpuExperiment:
    """One entry of a specs JSON (``where`` names the file and experiment in errors)."""
    if not isinstance(e, Mapping):
        raise InputError(where, "experiment is not an object")
    where = f"{where} (experiment {e.get('id', '?')})"
    if "model_config_dir" not in e:
        raise InputError(where, "missing", column="model_config_dir")
    arch = load_arch(base / str(e["model_config_dir"]))
    gpu = gpu_by_name(str(e.get("hardware") or default_hw))
    tp = _int_field(e, "tp", where, 1)
    engine, given = _engine(e, arch, gpu, tp, where)
    wl = e.get("workload")
    ip = wl.get("inference_perf") if isinstance(wl, Mapping) else None
    if not isinstance(ip, Mapping):
        raise InputError(where, "expected workload.inference_perf {shared_prefix, stages}", column="workload")
    workload = InferencePerfWorkload(
        parse_shared_prefix(ip.get("shared_prefix"), where), parse_stages(ip.get("stages"), where)
    )
    others = e.get("other_simulators_predicted")
    return GpuExperiment(
        id=str(e.get("id", "?")),
        source=where,
        arch=arch,
        gpu=gpu,
        tp=tp,
        engine=engine,
        kv_blocks_given=given,
        workload=workload,
        measured=_stats(e.get("measured"), where, "measured"),
        others={str(k): s for k, v in others.items() if (s := _stats(v, where, str(k)))}
        if isinstance(others, Mapping)
        else None,
    )


def load_specs(path: str | Path) -> list[GpuExperiment]:
    """Experiments of a specs JSON, an inference-perf run folder, or a folder of run folders."""
    p = Path(path)
    if p.is_dir():
        if (p / "exp-config.yaml").exists():
            return [load_run(p)]
        runs = sorted(d for d in p.iterdir() if (d / "exp-config.yaml").exists())
        if not runs:
            raise InputError(str(p), "neither a run folder (exp-config.yaml) nor a folder of run folders")
        return [load_run(d) for d in runs]
    doc = read_json(p, "specs file not found")
    exps = doc.get("experiments") if isinstance(doc, Mapping) else None
    if not isinstance(exps, list):
        raise InputError(str(p), "expected an object with an 'experiments' list", column="experiments")
    hw = str(doc.get("hardware") or "H100")
    return [experiment_from_spec(e, p.parent, hw, str(p)) for e in exps]


def _yaml(path: Path) -> Mapping[str, Any]:
    try:
        d = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except FileNotFoundError:
        raise InputError(str(path), "not found") from None
    except Exception as e:  # OSError or any YAML parser error
        raise InputError(str(path), f"not readable YAML ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise InputError(str(path), "expected a mapping")
    return {str(k): v for k, v in d.items()}


def _find_model_config(run: Path, model: str) -> Path:
    name = model.rsplit("/", maxsplit=1)[-1]
    for anc in [run, *run.parents][:4]:
        for cand in (anc / "model_configs" / f"hf-{name}", anc / "model_configs" / name.lower()):
            if (cand / "config.json").exists():
                return cand
    raise InputError(
        str(run / "exp-config.yaml"), f"no model_configs/hf-{name} in the folders above", column="model"
    )


def load_run(run: Path) -> GpuExperiment:
    """An inference-perf run folder as an experiment (measured stats from its results, if any)."""
    exp = _yaml(run / "exp-config.yaml")
    where = str(run / "exp-config.yaml")
    res_where = str(run / "results" / "config.yaml")
    ran = _yaml(run / "results" / "config.yaml")
    if "model" not in exp:
        raise InputError(where, "missing", column="model")
    arch = load_arch(_find_model_config(run, str(exp["model"])))
    gpu = gpu_by_name(str(exp.get("hardware", "H100")))
    tp = _int_field(exp, "tensor_parallelism", where, 1)
    engine, given = _engine(exp, arch, gpu, tp, where)
    data, load = ran.get("data"), ran.get("load")
    if not isinstance(data, Mapping) or data.get("type") != "shared_prefix":
        raise InputError(res_where, "expected data.type shared_prefix", column="data")
    if not isinstance(load, Mapping) or load.get("type", "constant") != "constant":
        raise InputError(res_where, "expected load.type constant", column="load")
    workload = InferencePerfWorkload(
        parse_shared_prefix(data.get("shared_prefix"), res_where), parse_stages(load.get("stages"), res_where)
    )
    return GpuExperiment(
        id=run.name,
        source=str(run),
        arch=arch,
        gpu=gpu,
        tp=tp,
        engine=engine,
        kv_blocks_given=given,
        workload=workload,
        measured=_run_measured(run, len(workload.stages)),
        others=None,
    )


def _lifecycle(path: Path) -> dict[str, float] | None:
    try:
        d = json.loads(path.read_text())
        lat = d["successes"]["latency"]
        e2e, ttft, itl = lat["request_latency"], lat["time_to_first_token"], lat["inter_token_latency"]
        return {
            "e2e_mean_ms": 1e3 * e2e["mean"],
            "e2e_p90_ms": 1e3 * e2e["p90"],
            "e2e_p99_ms": 1e3 * e2e["p99"],
            "ttft_mean_ms": 1e3 * ttft["mean"],
            "ttft_p90_ms": 1e3 * ttft["p90"],
            "ttft_p99_ms": 1e3 * ttft["p99"],
            "itl_mean_ms": 1e3 * itl["mean"],
            "successes": float(d["successes"]["count"]),
            "failures": float(d.get("failures", {}).get("count") or 0),
        }
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(
            str(path), f"not an inference-perf lifecycle report ({type(e).__name__}: {e})"
        ) from None


def _run_measured(run: Path, n_stages: int) -> Stats | None:
    out: Stats = {}
    whole = _lifecycle(run / "results" / "summary_lifecycle_metrics.json")
    if whole:
        out["-1"] = whole
    for i in range(n_stages):
        s = _lifecycle(run / "results" / f"stage_{i}_lifecycle_metrics.json")
        if s:
            out[str(i)] = s
    return out or None
