"""Command line: ``simroute run [hydra overrides...]`` (Hydra; configs in ``conf/``).

Examples::

    simroute run                                   # default synthetic agent fleet, router-first
    simroute run workload=azure_conv policy=router_first seed=3
    simroute run workload.n_requests=200000
    simroute run workload=trace workload.path=my.csv.gz [workload.format=azure]
    simroute run -m seed=0,1,2 hydra/launcher=joblib

A user error (bad input file, bad config value) prints one line ``simroute: error: ...`` and exits
with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from simroute.config import CONF_DIR, TRACES_DIR, check_targets
from simroute.errors import SimrouteError

USAGE = """usage: simroute run [HYDRA_OVERRIDES ...]

commands:
  run    simulate a workload through a routing policy and its baseline (Hydra app; see --help)
"""


def _fail(err: BaseException) -> NoReturn:
    print(f"simroute: error: {err}", file=sys.stderr)
    sys.exit(2)


def _task(cfg: Any) -> None:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from simroute.sim.experiment import execute

    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        _fail(SimrouteError(f"config: {e}"))
    if not isinstance(container, dict):
        _fail(SimrouteError("config: expected a mapping at the top level"))
    run_cfg: dict[str, Any] = {str(k): v for k, v in container.items()}
    try:
        check_targets(run_cfg)
        out = Path(HydraConfig.get().runtime.output_dir)
        summary = execute(run_cfg, out, progress=bool(run_cfg.get("progress", True)))
    except SimrouteError as e:
        _fail(e)
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


def _run(argv: list[str]) -> None:
    import hydra
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("sr_traces"):
        OmegaConf.register_new_resolver("sr_traces", lambda: str(TRACES_DIR))
    sys.argv = ["simroute run", *argv]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    app()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``simroute`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return
    cmd, rest = args[0], args[1:]
    if cmd == "run":
        _run(rest)
        return
    print(USAGE, end="", file=sys.stderr)
    _fail(SimrouteError(f"unknown command {cmd!r}; valid: run"))


if __name__ == "__main__":
    main()
