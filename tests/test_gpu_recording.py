"""The GPU recording kit (experiments/gpu_recording) without a GPU: the wheel lock, the split into
device-call parts and back, the device-side install script on a stand-in vllm wheel, record.py's
argument handling and case validation, and the replay of a GPU-marked run."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from simroute.config import REPO_ROOT
from simroute.engine import replay

KIT = REPO_ROOT / "experiments" / "gpu_recording"
CASES = REPO_ROOT / "experiments" / "vllm_validation" / "cases"
GPU_CASE = CASES / "gpu_h200_llama31_8b.json"
sys.path[:0] = [str(KIT), str(REPO_ROOT / "experiments" / "vllm_validation")]

import pack  # noqa: E402
import record  # noqa: E402


def _write(p: Path, data: bytes) -> tuple[str, int, str]:
    p.write_bytes(data)
    return p.name, len(data), hashlib.sha256(data).hexdigest()


def _wheels(d: Path, sizes: list[int]) -> list[tuple[str, int, str]]:
    d.mkdir(parents=True, exist_ok=True)
    return [_write(d / f"w{i}-1.0-py3-none-any.whl", os.urandom(n)) for i, n in enumerate(sizes)]


# ---- the lock ------------------------------------------------------------------------------------
def test_lock_rows_are_complete_and_name_the_cuda_vllm() -> None:
    rows = [r.split("\t") for r in (KIT / "wheels.lock").read_text().splitlines() if not r.startswith("#")]
    assert {r[0] for r in rows} == {"carry", "skip", "device"}
    carry = [r for r in rows if r[0] == "carry"]
    for r in rows:
        if r[0] != "device":
            assert len(r[4]) == 64 and int(r[3]) > 0 and r[5].endswith(".whl"), r
    assert ("vllm", "0.26.0") in {(r[1], r[2]) for r in carry}
    names = [r[1] for r in rows]
    assert len(names) == len(set(names)), "one version of each package"
    device = {r[1] for r in rows if r[0] == "device"}
    assert {"torch", "numpy", "transformers", "triton"} <= device  # never carried: on the image
    assert all(r[6] for r in rows if r[0] == "skip"), "every skipped wheel says why"
    assert pack.locked_wheels() == [(r[5], int(r[3]), r[4]) for r in carry]


def test_lock_fits_the_planned_calls() -> None:
    total = sum(b for _, b, _ in pack.locked_wheels())
    part = 54 * pack.MIB
    calls = math.ceil(total / part)
    assert calls == 6  # README's transfer plan
    tree = pack.tree_bytes()
    assert tree + part + 64 * 1024 < pack.CALL_LIMIT_MIB * pack.MIB, (
        f"the working tree ({tree / pack.MIB:.1f} MiB) no longer leaves room for a 54 MiB part: "
        "repack with a smaller --part-mib and update experiments/gpu_recording/README.md's plan"
    )


# ---- split and reassemble ------------------------------------------------------------------------
def test_pack_stash_unpack_round_trip(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path / "whl", [2500, 0, 999, 4001, 1])
    m = pack.pack(tmp_path / "whl", tmp_path / "parts", 1000, wheels)
    assert [p["bytes"] for p in m["parts"]] == [1000] * 7 + [501]
    assert m["total_bytes"] == 7501 and [w["offset"] for w in m["wheels"]] == [0, 2500, 2500, 3499, 7500]
    store = tmp_path / "store"
    for i, part in enumerate(m["parts"]):  # one part a call, each call its own folder
        call = tmp_path / f"call{i}"
        call.mkdir()
        shutil.copy(tmp_path / "parts" / "manifest.json", call)
        shutil.copy(tmp_path / "parts" / part["name"], call)
        have, missing = pack.stash(call, store)
        assert len(have) == i + 1 and len(missing) == len(m["parts"]) - i - 1
        if missing:
            with pytest.raises(pack.PackError, match=missing[0]):
                pack.unpack(store, tmp_path / "out")
    out = pack.unpack(store, tmp_path / "out")
    assert [p.name for p in out] == [w[0] for w in wheels]
    for p in out:
        assert p.read_bytes() == (tmp_path / "whl" / p.name).read_bytes()
    assert pack.stash(tmp_path / "call0", store)[1] == []  # a part arriving twice is fine


def test_corrupt_or_foreign_parts_are_refused(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path / "whl", [3000])
    pack.pack(tmp_path / "whl", tmp_path / "parts", 1024, wheels)
    p2 = tmp_path / "parts" / "part002"
    data = bytearray(p2.read_bytes())
    data[7] ^= 1
    p2.write_bytes(bytes(data))
    with pytest.raises(pack.PackError, match="part002"):
        pack.stash(tmp_path / "parts", tmp_path / "store")
    with pytest.raises(pack.PackError, match="part002"):
        pack.unpack(tmp_path / "parts", tmp_path / "out")
    # a store filled from another pack is emptied, not mixed
    pack.pack(tmp_path / "whl", tmp_path / "parts", 1024, wheels)
    pack.stash(tmp_path / "parts", tmp_path / "store")
    pack.pack(tmp_path / "whl", tmp_path / "parts2", 2048, wheels)
    (tmp_path / "new").mkdir()
    shutil.copy(tmp_path / "parts2" / "manifest.json", tmp_path / "new")
    assert pack.stash(tmp_path / "new", tmp_path / "store") == ([], ["part001", "part002"])


def test_pack_checks_wheels_against_the_lock(tmp_path: Path) -> None:
    (name, size, _sha), *_ = _wheels(tmp_path / "whl", [10])
    with pytest.raises(pack.PackError, match="differs from the lock"):
        pack.pack(tmp_path / "whl", tmp_path / "parts", 4, [(name, size, "0" * 64)])
    with pytest.raises(pack.PackError, match="missing"):
        pack.pack(tmp_path / "whl", tmp_path / "parts", 4, [("absent.whl", 1, "0" * 64)])


def test_plan_lists_one_part_per_call_within_the_limit(tmp_path: Path) -> None:
    pack.pack(tmp_path / "whl", tmp_path / "parts", 100, _wheels(tmp_path / "whl", [250]))
    lines = pack.plan(tmp_path / "parts", tree=7 * pack.MIB)
    assert len(lines) == 4 and "OVER" not in "".join(lines)
    assert "part003" in lines[3] and "manifest.json" in lines[3]
    assert "OVER" in pack.plan(tmp_path / "parts", tree=64 * pack.MIB)[1]


# ---- the device-side install, on a stand-in vllm wheel ---------------------------------------------
def _fake_wheel(d: Path, name: str, version: str, files: dict[str, str]) -> tuple[str, int, str]:
    di = f"{name}-{version}.dist-info"
    p = d / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(p, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        z.writestr(f"{di}/WHEEL", wheel)
        z.writestr(f"{di}/RECORD", "")
    return _write(p, p.read_bytes())


def test_unpack_sh_installs_once_all_parts_are_there(tmp_path: Path) -> None:
    whl = tmp_path / "whl"
    whl.mkdir()
    wheels = [
        _fake_wheel(whl, "vllm", "0.26.0", {"vllm/__init__.py": "__version__ = '0.26.0'\n" + "#" * 3000}),
        _fake_wheel(whl, "helper", "1.0", {"helper.py": "X = 1\n"}),
    ]
    pack.pack(whl, tmp_path / "parts", 900, wheels)
    env = {**os.environ, "GPUREC_DIR": str(tmp_path / "d"), "PYTHON": sys.executable, "PYTHONPATH": ""}

    def unpack_sh(parts: Path, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = ["bash", str(KIT / "unpack.sh"), *args]
        e = env | {"GPUREC_PARTS": str(parts)}
        return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=60, check=False)

    first = tmp_path / "call1"
    first.mkdir()
    shutil.copy(tmp_path / "parts" / "manifest.json", first)
    shutil.copy(tmp_path / "parts" / "part001", first)
    r = unpack_sh(first, "--stash")
    assert r.returncode == 0 and "missing: part002" in r.stdout, r.stderr
    r = unpack_sh(first)  # not all parts yet: refuses, says which
    assert r.returncode != 0 and "part002" in r.stderr
    r = unpack_sh(tmp_path / "parts")  # the last call brings the rest
    assert r.returncode == 0 and "vllm 0.26.0 installed" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "d" / "site" / "vllm" / "__init__.py").is_file()
    assert (tmp_path / "d" / "site" / "helper.py").is_file()
    r = unpack_sh(tmp_path / "parts")  # idempotent
    assert r.returncode == 0 and "nothing to do" in r.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shell_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in KIT.glob("*.sh"))
    r = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout


# ---- record.py without vLLM -------------------------------------------------------------------------
def test_record_arguments_keep_the_cpu_defaults(tmp_path: Path) -> None:
    a = record.parse_args(["c.json", "out"])
    assert (a.device, a.weights, a.enforce_eager, a.check) == ("cpu", "random", None, False)
    a = record.parse_args(["c.json", "out", "--device", "cuda"])
    assert (a.device, a.weights) == ("cuda", "dummy")
    a = record.parse_args(["c.json", "--check"])
    assert a.out_dir is None and a.check
    assert record.parse_args(["c.json", "o", "--device", "cuda", "--weights", "random"]).weights == "random"
    assert record.parse_args(["c.json", "o", "--enforce-eager"]).enforce_eager is True
    with pytest.raises(SystemExit):
        record.parse_args(["c.json"])  # OUT_DIR needed unless --check
    with pytest.raises(SystemExit):
        record.parse_args(["c.json", "o", "--device", "tpu"])


def _case(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CASES / name).read_text())
    return data


CPU_KEYS = {
    "model",
    "skip_tokenizer_init",
    "dtype",
    "max_num_batched_tokens",
    "max_num_seqs",
    "block_size",
    "num_gpu_blocks_override",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "long_prefill_token_threshold",
    "max_model_len",
    "enforce_eager",
    "disable_log_stats",
    "seed",
    "gpu_memory_utilization",
}


def test_engine_arguments_cpu_unchanged_cuda_extras(tmp_path: Path) -> None:
    for f in sorted(CASES.glob("*.json")):
        if f != GPU_CASE:  # every CPU case: exactly the original EngineArgs
            kw = record.engine_kwargs(_case(f.name), tmp_path)
            assert set(kw) == CPU_KEYS and kw["enforce_eager"] is True, f.name
            assert kw["gpu_memory_utilization"] == 0.3
    gpu = _case(GPU_CASE.name)
    kw = record.engine_kwargs(gpu, tmp_path, record.Options("cuda", "dummy"))
    assert set(kw) - CPU_KEYS == {"async_scheduling", "compilation_config", "load_format"}
    assert (kw["load_format"], kw["dtype"], kw["enforce_eager"], kw["async_scheduling"]) == (
        "dummy",
        "bfloat16",
        False,
        False,
    )
    kw = record.engine_kwargs(gpu, tmp_path, record.Options("cuda", "dummy", enforce_eager=True))
    assert kw["enforce_eager"] is True


def test_every_bundled_case_validates() -> None:
    for f in sorted(CASES.glob("*.json")):
        assert record.validate_case(_case(f.name)) == [], f.name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["engine"].pop("block_size"), "engine.block_size"),
        (lambda c: c["engine"].update(swap_space=4), "unknown key(s) ['swap_space']"),
        (lambda c: c["model"].update(num_hidden_layers=31), "differs from conf/model_configs"),
        (lambda c: c["workload"]["prompt_len"].update(dist="zipf"), "workload.prompt_len.dist"),
        (lambda c: c["workload"]["arrival"].update(rate=0), "workload.arrival.rate"),
        (lambda c: c["engine"].update(max_model_len=1024), "engine.max_model_len: 1024 < longest request"),
        (lambda c: c["engine"].update(gpu_memory_utilization=1.5), "engine.gpu_memory_utilization"),
        (lambda c: c.pop("workload"), "workload: missing"),
    ],
)
def test_invalid_cases_name_the_field(change: Any, message: str) -> None:
    case = _case(GPU_CASE.name)
    change(case)
    errs = record.validate_case(case)
    assert any(message in e for e in errs), errs


def test_gpu_case_is_llama31_8b_with_timed_poisson_and_shared_prefix(tmp_path: Path, capsys: Any) -> None:
    case = _case(GPU_CASE.name)
    assert record.main([str(GPU_CASE), "--check"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert 64 <= s["requests"] <= 128 and s["with_shared_prefix"] > 0 and s["arrival_span"].endswith(" s")
    cfg = json.loads((record.write_config(case["model"], tmp_path) / "config.json").read_text())
    hf = json.loads((REPO_ROOT / case["model"]["hf_config"]).read_text())
    assert cfg == hf | {"torch_dtype": "bfloat16"}  # the real config, as it is
    small = record.write_config(_case("smoke.json")["model"], tmp_path)
    cfg = json.loads((small / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["architectures"] == ["LlamaForCausalLM"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(case | {"engine": {}}))
    assert record.main([str(bad), "--check"]) == 2


# ---- replaying a GPU run ----------------------------------------------------------------------------
@pytest.fixture
def gpu_run(tmp_path: Path) -> Path:
    """A bundled CPU run marked as a GPU recording (the format record_on_gpu.sh writes)."""
    run = tmp_path / "gpu_run"
    shutil.copytree(REPO_ROOT / "traces" / "vllm_runs" / "v6_timed_gqa_code", run)
    rj = json.loads((run / "run.json").read_text())
    rj |= {"device": "cuda", "gpu_model": "NVIDIA H200", "vllm_version": "0.26.0", "enforce_eager": False}
    rj |= {"weights": "dummy (vLLM load_format='dummy': random values made by vLLM)"}
    (run / "run.json").write_text(json.dumps(rj, indent=2))
    return run


def test_replay_a_gpu_run_by_self_calibration_and_by_the_gpu_model(gpu_run: Path, capsys: Any) -> None:
    out = gpu_run.parent / "sim.parquet"
    assert replay.main([str(gpu_run), "--calibrate-from", str(gpu_run), "--out", str(out)]) == 0
    assert "mape_e2e" in capsys.readouterr().out
    assert replay.main([str(gpu_run), "--gpu", "H200", "--arrivals", "step", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "exact_both_steps             1.0000" in printed  # the scheduler is step-exact
    inp = replay.load_inputs(gpu_run)
    h200 = replay.simulate_run(inp, replay.gpu_model_for(inp, "H200"))
    h100 = replay.simulate_run(inp, replay.gpu_model_for(inp, "NVIDIA H100 80GB HBM3"))
    assert 0 < h200["e2e_s"].mean() <= h100["e2e_s"].mean()
    with pytest.raises(SystemExit):
        replay.main([str(gpu_run), "--gpu", "H200", "--calibrate-from", str(gpu_run), "--out", str(out)])
    assert replay.main([str(gpu_run), "--gpu", "B300", "--out", str(out)]) == 2
