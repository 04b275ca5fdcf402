"""Write ``wheels.lock``: the wheels a CUDA vLLM install needs on the nvidia-h200 device.

    python experiments/gpu_recording/make_lock.py resolve /tmp/report.json
    python experiments/gpu_recording/make_lock.py lock /tmp/report.json WHEEL_DIR \\
        > experiments/gpu_recording/wheels.lock

``resolve`` asks pip for vLLM's whole dependency closure as the device would see it (CPython 3.12,
manylinux x86_64), with torch, torchvision, torchaudio, triton and numba stood in by empty stub
wheels at the device's versions, so that torch's CUDA libraries (already on the device) drop out.
``lock`` sorts the closure into ``carry`` (travels), ``skip`` (not needed for an offline bf16
Llama engine on Hopper; reason given) and ``device`` (on the image, see ``device_packages.txt``),
with size and sha256 of each downloaded wheel (``WHEEL_DIR`` holds the closure's wheels, e.g. from
``fetch_wheels.sh --all``; the sha256 is checked against pip's report). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VLLM = "vllm==0.26.0"
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (5, 12, 17, 24, 26, 27, 28, 31, 34, 35)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
]
STUBS = {"torch": "2.11.0+cu130", "torchvision": "0.26.0+cu130", "torchaudio": "2.11.0+cu130"}
STUBS |= {"triton": "3.6.0+device", "numba": "0.65.0+device"}
PINS = ["transformers==5.17.0", "tokenizers==0.23.2", "safetensors==0.8.0", "tiktoken==0.14.0"]
PINS += ["sentencepiece==0.2.2", "huggingface_hub==1.33.0"]

_K = "GPU kernels vLLM loads only for other models, quantisations or Blackwell"
SKIP = {
    "tokenspeed-triton": "MLA attention (DeepSeek-style models)",
    "tokenspeed-mla": "MLA attention (DeepSeek-style models)",
    **dict.fromkeys(
        (
            "nvidia-cutlass-dsl",
            "nvidia-cutlass-dsl-libs-base",
            "nvidia-cutlass-dsl-libs-core",
            "nvidia-cutlass-dsl-libs-cu12",
            "nvidia-cutlass-dsl-libs-cu13",
            "quack-kernels",
        ),
        "CuTe-DSL kernels (FA4 on Blackwell, quack); Hopper uses FA3",
    ),
    "humming-kernels": _K,
    "tilelang": _K,
    "z3-solver": "tilelang's dependency",
    "cuda-tile": _K,
    **dict.fromkeys(
        ("nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt", "nvidia-cuda-cccl", "nvidia-cuda-nvdisasm"),
        "CUDA toolchain for humming-kernels' JIT (the device image has nvcc)",
    ),
    "cuda-python": "meta-package; the image has cuda-bindings and cuda-core",
    "flashinfer-python": "FlashInfer backend/sampler (JIT-compiles kernels); Hopper bf16 uses FA3",
    "apache-tvm-ffi": "FlashInfer's dependency",
    "torch-c-dlpack-ext": "FlashInfer's dependency",
    "nvidia-cudnn-frontend": "cuDNN attention paths, unused here",
    "fastsafetensors": "alternative weight loader; weights here are vLLM's dummy weights",
    "pynvvideocodec": "video decoding (multimodal inputs)",
    "torchcodec": "video/audio decoding (multimodal inputs)",
    "mistral-common": "Mistral tokenizer and image inputs; the engine runs with skip_tokenizer_init",
    "pycountry": "mistral-common's dependency",
    "pydantic-extra-types": "mistral-common's dependency",
}


HEADER = """\
# vllm 0.26.0, the CUDA 13 build on the package index (it pins torch==2.11.0, torchvision==0.26.0,
# torchaudio==2.11.0), for the nvidia-h200 device: CPython 3.12, torch 2.11.0+cu130 on the image.
# Written by make_lock.py; fetch_wheels.sh downloads the carry rows and checks size and sha256.
# status: carry = travels and is installed with pip --no-deps into a folder on PYTHONPATH;
#   skip = in vLLM's closure, not needed by an offline bf16 Llama engine on Hopper (note says why);
#   device = already on the image (version = what the resolver picked; the image's may differ).
# Deliberately not honoured: numba==0.65.0 and mistral-common want numpy<2.5 / <2.4; the image has
#   numpy 2.5.2 and its own numba, both kept (vLLM imports numba only for n-gram speculation).
#   On Python 3.12 vLLM also asks for setuptools<81 and six, both taken from the image as they are.
# columns (tab-separated): status name version bytes sha256 file note
"""


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def make_stub(out: Path, name: str, version: str) -> None:
    """An empty wheel that only declares ``name==version`` (no files, no requirements)."""
    di = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(out / f"{name}-{version}-py3-none-any.whl", "w") as z:
        z.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(
            f"{di}/WHEEL", "Wheel-Version: 1.0\nGenerator: stub\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{di}/RECORD", "")


def resolve(report: Path) -> int:
    """Run pip's resolver for the device's interpreter and platform; write its JSON report."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name, ver in STUBS.items():
            make_stub(t, name, ver)
        (t / "c.txt").write_text("\n".join([*(f"{n}=={v}" for n, v in STUBS.items()), *PINS]) + "\n")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
        cmd += ["--report", str(report), "--only-binary=:all:", "--python-version", "3.12"]
        cmd += ["--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none"]
        cmd += [a for p in PLATFORMS for a in ("--platform", p)]
        cmd += ["--target", str(t / "target"), "--find-links", str(t), "-c", str(t / "c.txt"), VLLM]
        return subprocess.call(cmd)


def device_packages() -> dict[str, str]:
    """name -> version ('' when not known) of the device image's Python packages."""
    out = {}
    for line in (HERE / "device_packages.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, ver = line.strip().partition("==")
            out[norm(name)] = ver
    return out


def lock_lines(report: Path, wheel_dir: Path) -> list[str]:
    """The lock's rows: status, name, version, bytes, sha256, file, note (tab-separated)."""
    dev = device_packages()
    rows = []
    for item in json.loads(report.read_text())["install"]:
        meta, info = item["metadata"], item["download_info"]
        name, ver = norm(meta["name"]), meta["version"]
        fname = info["url"].rsplit("/", 1)[-1].replace("%2B", "+")
        if name in dev:
            note = f"on the image ({dev[name] or 'version not listed'}); not carried"
            rows.append(("device", name, ver, "-", "-", "-", note))
            continue
        sha = info["archive_info"]["hashes"]["sha256"]
        data = (wheel_dir / fname).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise SystemExit(f"{fname}: sha256 differs from pip's report")
        status, note = ("skip", SKIP[name]) if name in SKIP else ("carry", "")
        rows.append((status, name, ver, str(len(data)), sha, fname, note))
    order = {"carry": 0, "skip": 1, "device": 2}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    return ["\t".join(r).rstrip("\t") for r in rows]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "resolve":
        return resolve(Path(argv[1]))
    if len(argv) == 3 and argv[0] == "lock":
        print(HEADER + "\n".join(lock_lines(Path(argv[1]), Path(argv[2]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
