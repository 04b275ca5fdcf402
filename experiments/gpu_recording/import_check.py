"""Static check that the carried wheels plus the device image cover what vLLM's engine imports.

    python experiments/gpu_recording/import_check.py .wheels/whl

Reads vLLM's Python sources from its wheel (no import, no GPU), follows the module-level imports
that are not inside ``try``/``if``/``with`` from the modules an offline ``LLMEngine`` run of a Llama
model on CUDA loads (engine core, GPU worker and model runner, Llama, FlashAttention backend, CUDA
platform, sampler, dummy loader, torch.compile and CUDA-graph wrappers), and lists every third-party
top-level module they need with where it comes from: a carried wheel (``carry`` rows of wheels.lock)
or the device image (``device_packages.txt``). Exit status 1 when one comes from neither. Imports
inside functions, and imports vLLM makes by name at run time, are not seen: only a GPU run settles
those.
"""

from __future__ import annotations

import ast
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENTRIES = (
    "vllm",
    "vllm.engine.arg_utils",
    "vllm.v1.engine.llm_engine",
    "vllm.v1.engine.core",
    "vllm.v1.executor.uniproc_executor",
    "vllm.v1.worker.gpu_worker",
    "vllm.v1.worker.gpu_model_runner",
    "vllm.model_executor.models.llama",
    "vllm.model_executor.model_loader.dummy_loader",
    "vllm.v1.attention.backends.flash_attn",
    "vllm.platforms.cuda",
    "vllm.v1.sample.sampler",
    "vllm.v1.core.sched.scheduler",
    "vllm.vllm_flash_attn",
    "vllm.compilation.backends",
    "vllm.compilation.decorators",
    "vllm.compilation.wrapper",
    "vllm.compilation.piecewise_backend",
    "vllm.compilation.cuda_graph",
    "vllm.compilation.compiler_interface",
)
# device packages whose import name differs from the package name
MODULE_OF = {"pillow": "PIL", "pyyaml": "yaml", "py-cpuinfo": "cpuinfo", "opencv-python-headless": "cv2"}
MODULE_OF |= {"scikit-learn": "sklearn", "protobuf": "google", "pyzmq": "zmq", "python-dateutil": "dateutil"}


def sources(wheel: Path) -> dict[str, str]:
    """Module name -> source text of every ``vllm/**.py`` in the wheel."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.startswith("vllm/") and n.endswith(".py"):
                mod = n[:-3].replace("/", ".").removesuffix(".__init__")
                out[mod] = z.read(n).decode()
    return out


def hard_imports(src: str, mod: str, is_pkg: bool) -> list[str]:
    """Absolute names imported at module level outside try/if/with (TYPE_CHECKING blocks skipped)."""
    names: list[str] = []
    for node in ast.parse(src).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            if node.level:
                base = base[: len(base) - node.level + 1]
                m = ".".join([*base, *([node.module] if node.module else [])])
            else:
                m = node.module or ""
            names += [m, *(f"{m}.{a.name}" for a in node.names)]
    return names


def third_party(wheel: Path) -> dict[str, str]:
    """Top-level third-party module -> one vllm module that needs it (hard imports only)."""
    src = sources(wheel)
    pkgs = {m for m in src if f"{m}.__init__" in src or any(k.startswith(m + ".") for k in src)}
    seen: set[str] = set()
    need: dict[str, str] = {}
    stack = list(ENTRIES)
    while stack:
        m = stack.pop()
        if m in seen or m not in src:
            continue
        seen.add(m)
        parts = m.split(".")
        stack += [".".join(parts[:i]) for i in range(1, len(parts))]
        for name in hard_imports(src[m], m, m in pkgs):
            top = name.split(".")[0]
            if top == "vllm":
                stack.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                need.setdefault(top, m)
    return need


def providers(wheel_dir: Path) -> dict[str, str]:
    """Top-level module -> 'carried <wheel>' or 'device <package>'."""
    out = {}
    for line in (HERE / "device_packages.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pkg = re.sub(r"[-_.]+", "-", line.split("==")[0].strip()).lower()
            out[MODULE_OF.get(pkg, pkg.replace("-", "_"))] = f"device {pkg}"
    for whl in sorted(wheel_dir.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            tops = {n.split("/")[0].removesuffix(".py") for n in z.namelist() if ".dist-info/" not in n}
        for t in tops:
            out[t] = f"carried {whl.name.split('-')[0]}"
    return out


def main(argv: list[str]) -> int:
    wheel_dir = Path(argv[0]) if argv else HERE.parents[1] / ".wheels" / "whl"
    wheel = next(wheel_dir.glob("vllm-*.whl"), None)
    if wheel is None:
        print(f"import_check.py: no vllm wheel in {wheel_dir} (run fetch_wheels.sh)", file=sys.stderr)
        return 2
    have = providers(wheel_dir)
    missing = 0
    for top, where in sorted(third_party(wheel).items()):
        src = have.get(top)
        missing += src is None
        print(f"{top:22s} {src or 'MISSING'}   (e.g. {where})")
    print(f"{missing} module(s) provided by neither the carried wheels nor the device image")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
