"""Sweeps: aggregate and plot a multirun; cluster launcher configs compose."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest
from hydra import compose, initialize_config_dir

from conftest import run_cli
from simroute.config import CONF_DIR


def test_aggregate_and_plot_a_multirun(tmp_path: Path) -> None:
    d = tmp_path / "sweep"
    proc = run_cli(
        [
            "run",
            "-m",
            "workload.n_requests=800",
            "policy=router_first,cost_aware",
            "seed=0,1",
            f"hydra.sweep.dir={d}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert run_cli(["aggregate", str(d)]).returncode == 0
    table = pl.read_parquet(d / "aggregate.parquet")
    assert table.height == 4
    assert set(table["override.policy"]) == {"router_first", "cost_aware"}
    rep = pl.read_parquet(d / "replications.parquet")
    assert rep["replications"].to_list() == [2, 2]
    assert (rep["success_rate_ci95"] >= 0).all()
    proc = run_cli(["plot", str(d)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    for f in (
        "cost_vs_quality",
        "cost_breakdown",
        "latency_cdf_by_tier",
        "latency_cdf_by_urgency",
        "tier_share_over_time",
    ):
        assert (d / "figures" / f"{f}.png").stat().st_size > 5000
        assert (d / "figures" / f"{f}.svg").exists()


def test_aggregate_of_an_empty_folder(tmp_path: Path) -> None:
    proc = run_cli(["aggregate", str(tmp_path)])
    assert proc.returncode == 2 and "no runs" in proc.stderr


def test_slurm_launcher_config_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=["hydra/launcher=slurm_cluster"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.cpus_per_task == 2 and launcher.timeout_min == 60


def test_ray_launcher_plugin_is_found_and_composes() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    names = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Launcher)}
    assert "hydra_plugins.simroute_ray_launcher.ray_launcher.SimrouteRayLauncher" in names
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["hydra/launcher=ray_cluster", "hydra.launcher.init.address=10.0.0.1:6379"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SimrouteRayLauncher")
    assert launcher.init.address == "10.0.0.1:6379" and launcher.remote.num_cpus == 1


def test_ray_launcher_without_ray_says_how_to_install(tmp_path: Path) -> None:
    if importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed here")
    proc = run_cli(["run", "-m", "hydra/launcher=ray_cluster", "seed=0,1", f"hydra.sweep.dir={tmp_path}"])
    assert proc.returncode != 0
    assert "pip install 'simroute[ray]'" in proc.stderr
