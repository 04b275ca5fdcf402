"""``simroute run [HYDRA_OVERRIDES ...]``: the Hydra app that simulates a policy and its baseline
(or a multi-day run) and writes the run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from simroute.commands import fail
from simroute.config import CONF_DIR, register_resolvers
from simroute.errors import SimrouteError


def objective(summary: dict[str, Any], spec: dict[str, Any]) -> float:
    """Cost per successful task (USD) plus a penalty for missing the quality floor or the p95
    interactive deadline constraint: what a sweeper (Optuna) minimises."""
    cost = summary.get("cost_per_successful_task_usd") or float("inf")
    floor = float(spec.get("quality_floor", 0.0))
    shortfall = max(floor - float(summary["success_rate"]), 0.0)
    ratio = float(summary.get("interactive_p95_deadline_ratio") or 0.0)
    excess = max(ratio - float(spec.get("p95_deadline_ratio_max", float("inf"))), 0.0)
    return float(cost + float(spec.get("penalty_usd", 1.0)) * (shortfall + excess))


def _resolved(cfg: Any) -> dict[str, Any]:
    """The composed Hydra config as plain dicts (a config error ends the run with one line)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        fail(SimrouteError(f"config: {e}"))
    if not isinstance(container, dict):
        fail(SimrouteError("config: expected a mapping at the top level"))
    return {str(k): v for k, v in container.items()}


def _multiday(run_cfg: dict[str, Any], out: Path) -> float:
    """A multi-day run; prints its headline and returns its total cost (USD)."""
    from simroute.runner.multiday import execute_multiday

    md = execute_multiday(run_cfg, out, progress=bool(run_cfg.get("progress", True)))
    first, last = md["first_day"]["share_local"], md["last_day"]["share_local"]
    print(
        f"{md['policy']}: {md['days']} days, {md['requests']:,} requests, "
        f"cost ${md['total_cost_usd']:.2f}, success {md['success_rate']:.1%}, "
        f"local share day 1 {first:.1%} -> day {md['days']} {last:.1%}"
    )
    print(f"outputs: {out}")
    return float(md["total_cost_usd"])


def _single(run_cfg: dict[str, Any], out: Path) -> float:
    """One run of the policy and its baseline; prints the headline and returns the objective."""
    from simroute.runner.experiment import execute

    summary = execute(run_cfg, out, progress=bool(run_cfg.get("progress", True)))
    base = summary.get("baseline")
    line = (
        f"{summary['policy']}: {summary['n_requests']:,} requests, "
        f"success {summary['success_rate']:.1%}, cost ${summary['cost_total_usd']:.2f}"
    )
    if base:
        line += (
            f" | {summary['baseline_policy']}: success {base['success_rate']:.1%}, "
            f"cost ${base['cost_total_usd']:.2f} | cost reduction {base['cost_reduction']:.1%}"
        )
    print(line)
    print(f"outputs: {out}")
    return objective(summary, run_cfg.get("objective") or {})


def _task(cfg: Any) -> float:
    """The Hydra task: run the composed config into Hydra's output folder; the value a sweeper
    minimises."""
    from hydra.core.hydra_config import HydraConfig

    register_resolvers()  # a launcher's worker process (joblib, Ray, SLURM) did not run main()
    run_cfg = _resolved(cfg)
    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        return _multiday(run_cfg, out) if run_cfg.get("multiday") else _single(run_cfg, out)
    except SimrouteError as e:
        fail(e)


def main(argv: list[str]) -> None:
    """Run ``simroute run`` (a Hydra app over ``conf/``) with the Hydra overrides ``argv``."""
    import hydra

    register_resolvers()
    sys.argv = ["simroute run", *argv]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    app()
