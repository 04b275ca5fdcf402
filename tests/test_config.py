"""Every config group option composes and builds; every experiment file smoke-runs (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import compose_cfg, run_cli
from simroute.config import CONF_DIR
from simroute.errors import ConfigError
from simroute.policy import registry
from simroute.policy.registry import PolicyContext
from simroute.sim.build import build_catalog, build_policies, build_quality
from simroute.workload.skills import catalog_from_config

GROUPS = {
    g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in ("workload", "policy", "experiment")
}


@pytest.mark.parametrize("workload", GROUPS["workload"])
def test_every_workload_composes(workload: str) -> None:
    over = [f"workload={workload}"]
    if workload == "trace":
        over.append("workload.path=/some/file.csv")
    cfg = compose_cfg(over)
    assert cfg["workload"]["kind"] in ("synthetic", "trace")
    if cfg["workload"]["kind"] == "trace":
        assert cfg["workload"]["labels"]["default"]
        if workload != "trace":
            assert Path(cfg["workload"]["path"]).is_file()


@pytest.mark.parametrize("policy", GROUPS["policy"])
def test_every_policy_builds(policy: str, prices) -> None:
    cfg = compose_cfg([f"policy={policy}"])
    skills = catalog_from_config(cfg["skills"])
    quality = build_quality(cfg["models"], skills)
    catalog = build_catalog(cfg["models"], prices, quality, skills)
    pol = build_policies(cfg["policy"], PolicyContext(skills.names, catalog))
    assert pol.router is not None and pol.selector is not None


OPTIONAL_PLUGINS = {"optuna_thresholds": "hydra_plugins.hydra_optuna_sweeper"}


@pytest.mark.parametrize("experiment", GROUPS["experiment"])
def test_every_experiment_composes(experiment: str) -> None:
    if experiment in OPTIONAL_PLUGINS:
        pytest.importorskip(OPTIONAL_PLUGINS[experiment])
    cfg = compose_cfg([f"experiment={experiment}"])
    assert cfg["workload"]["kind"] == ("trace" if experiment.startswith("claude_code") else "synthetic")


@pytest.mark.slow
@pytest.mark.parametrize("experiment", [e for e in GROUPS["experiment"] if e not in OPTIONAL_PLUGINS])
def test_every_experiment_smoke_runs(experiment: str, tmp_path: Path) -> None:
    proc = run_cli(
        ["run", f"experiment={experiment}", "workload.n_requests=3000", f"hydra.run.dir={tmp_path}"]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "summary.json").exists()


def test_configs_cannot_name_code(ctx: PolicyContext) -> None:
    """What protects a user: a policy is chosen by name from the registry's allow-list; an import
    path or a Hydra ``_target_`` in a policy config is refused, never imported or called."""
    with pytest.raises(ConfigError, match=r"unknown router 'subprocess\.run'"):
        registry.build("router", {"name": "subprocess.run"}, ctx)
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['_target_'\]"):
        registry.build("router", {"name": "rules", "_target_": "subprocess.run"}, ctx)


def test_a_count_setting_takes_whole_numbers_of_any_spelling_and_refuses_the_rest() -> None:
    """``1e6`` (YAML and Hydra parse it as a float) and NumPy integers count; fractions, words,
    bools and numbers below 1 are a ConfigError naming the key, never truncated."""
    import numpy as np

    from simroute.config import config_count
    from simroute.errors import ConfigError

    assert (
        config_count(1e6, "k") == 1_000_000
        and config_count(np.int64(7), "k") == 7
        and config_count(3, "k") == 3
    )
    for bad in (1.5, 0, -2, 0.0, "ten", True, None, float("nan")):
        with pytest.raises(ConfigError, match=r"^k: expected a whole number >= 1"):
            config_count(bad, "k")
