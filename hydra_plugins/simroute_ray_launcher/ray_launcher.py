"""The Hydra ``Launcher`` that runs each sweep job as one Ray task on an existing cluster."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SimrouteRayLauncher(Launcher):
    """Launch a sweep's jobs as Ray tasks (``ray.remote``) and wait for all of them.

    Each job runs exactly as under the basic or joblib launcher (``hydra.core.utils.run_job``) and
    writes into ``hydra.sweep.dir``, made absolute here: the cluster's nodes must see that path
    (shared file system) and have simroute installed (or get it from ``remote.runtime_env``).
    """

    def __init__(self, init: dict[str, Any] | None = None, remote: dict[str, Any] | None = None) -> None:
        self.init = dict(init or {})
        self.remote = dict(remote or {})
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import configure_log, filter_overrides, setup_globals
        from omegaconf import open_dict

        from ._core import connect, submit

        assert self.config is not None
        assert self.hydra_context is not None
        assert self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        started = connect(_plain(self.init))
        log.info(f"Ray launcher: {len(job_overrides)} jobs, sweep output dir {sweep_dir}")
        jobs = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.sweep.dir = str(sweep_dir)
                sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
                sweep_config.hydra.job.num = idx
            jobs.append((self.hydra_context, sweep_config, self.task_function, Singleton.get_state()))
        try:
            return submit(jobs, _plain(self.remote))
        finally:
            if started:
                import ray

                ray.shutdown()


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` (a Hydra config node or a dict) as plain, resolved Python values."""
    from omegaconf import OmegaConf

    out = OmegaConf.to_container(OmegaConf.create(dict(options)), resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}
