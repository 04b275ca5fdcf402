"""Sweeps on real cluster engines (``make test-cluster``; deselected from ``make test``).

One 8-point sweep (4 seeds x 2 policies, 300 requests each) runs through the local joblib launcher,
through simroute's Ray launcher against a real Ray cluster that this module starts on 127.0.0.1,
and through the submitit SLURM launcher against a real single-node SLURM (``slurm_up.sh``: Debian's
slurm-wlm and munge, on localhost). Every point's ``requests.parquet``, ``baseline_requests.parquet``
and ``summary.json`` must be byte-identical across the three.

A test skips only when its engine cannot be had here (Ray not installed: run ``make test-cluster``;
SLURM neither installed nor installable with apt).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simroute.config import REPO_ROOT

pytestmark = pytest.mark.cluster

HERE = Path(__file__).parent
SWEEP = [
    "-m",
    "seed=0,1,2,3",
    "policy=router_first,cascade",
    "workload.n_requests=300",
    "progress=false",
]
POINTS = 8
COMPARED = ("requests.parquet", "baseline_requests.parquet", "summary.json")
RAY_ENV = {
    # Keep every Ray address on loopback (otherwise Ray swaps 127.0.0.1 for the machine's own
    # interface address) and send no usage statistics.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Token authentication with this run's own token, for the head node and the sweep's driver
    # alike: a ~/.ray/auth_token left by any earlier `ray.init()` must not decide it.
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
}


def _free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now (all held open together while picked)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def _sweep(out: Path, launcher: list[str], env: dict[str, str], timeout: float = 900) -> str:
    """Run the 8-point sweep into ``out`` with the launcher overrides; its combined output."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "simroute.cli", "run", *SWEEP, *launcher, f"hydra.sweep.dir={out}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HYDRA_FULL_ERROR": "1", **env},
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    print(f"{launcher[0]}: {POINTS}-point sweep in {time.perf_counter() - t0:.1f} s")
    return log


def _points(sweep_dir: Path) -> dict[str, Path]:
    """The sweep's job folders, keyed by their overrides (so launchers' job numbers need not agree)."""
    points = {}
    for job in sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").exists()):
        key = (job / ".hydra" / "overrides.yaml").read_text()
        points[key] = job
    return points


def _assert_identical(sweep_dir: Path, reference: Path) -> None:
    got, ref = _points(sweep_dir), _points(reference)
    assert len(ref) == POINTS
    assert set(got) == set(ref)
    for key, job in ref.items():
        for name in COMPARED:
            a, b = (got[key] / name).read_bytes(), (job / name).read_bytes()
            assert a == b, f"{name} differs for {key!r}"


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("joblib") / "sweep"
    _sweep(out, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], {})
    return out


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A real Ray cluster (head node, 2 CPUs) on 127.0.0.1; its address. Stopped afterwards."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("Ray is not installed in this venv: run `make test-cluster` (installs simroute[ray])")
    port, client_port = _free_ports(2)
    temp = Path(tempfile.mkdtemp(prefix="sr-ray-", dir="/tmp"))  # short: Ray puts sockets under it
    log = temp / "ray_start.log"
    cmd = [
        str(ray_bin), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
        f"--ray-client-server-port={client_port}", "--num-cpus=2", "--num-gpus=0",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
    ]  # fmt: skip
    with log.open("w") as f:
        env = {**os.environ, **RAY_ENV}
        head = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None, f"ray start exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"Ray did not start: {log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        # SIGTERM to `ray start --block` drains the node and stops every process it started (~2 s);
        # then anything still in its session (only what it started) is killed.
        head.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=45)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real single-node SLURM on localhost (partition ``local``); the environment that points
    SLURM's commands at it. Stopped afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    ctld_port, slurmd_port = _free_ports(2)
    env = {**os.environ, "SIMROUTE_SLURMCTLD_PORT": str(ctld_port), "SIMROUTE_SLURMD_PORT": str(slurmd_port)}
    proc = subprocess.run(
        ["bash", str(HERE / "slurm_up.sh"), str(state)], capture_output=True, text=True, env=env,
        timeout=1200, check=False,
    )  # fmt: skip
    try:
        if proc.returncode == 3:
            pytest.skip(f"SLURM cannot be had here: {proc.stderr.strip()[-500:]}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield {"SLURM_CONF": str(state / "slurm.conf"), "PATH": f"/usr/sbin:{os.environ.get('PATH', '')}"}
    finally:
        subprocess.run(["bash", str(HERE / "slurm_down.sh"), str(state)], timeout=120, check=False)


def test_ray_sweep_matches_joblib(joblib_sweep: Path, ray_cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    launcher = ["hydra/launcher=ray_cluster", f"hydra.launcher.init.address={ray_cluster}"]
    log = _sweep(out, launcher, RAY_ENV)
    assert f"Connecting to existing Ray cluster at address: {ray_cluster}" in log
    assert "Ray launcher: 8 jobs" in log
    _assert_identical(out, joblib_sweep)


def test_slurm_sweep_matches_joblib(joblib_sweep: Path, slurm: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    launcher = [
        "hydra/launcher=slurm_cluster",
        "hydra.launcher.partition=local",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=10",
    ]
    log = _sweep(out, launcher, slurm)
    assert "Submitit 'slurm' sweep output dir" in log
    results = list((out / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == POINTS, sorted(p.name for p in results)  # each point ran as a SLURM job
    _assert_identical(out, joblib_sweep)
