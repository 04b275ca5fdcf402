"""The Ray side of the launcher (imports Ray; loaded only when a sweep is launched)."""

from __future__ import annotations

from typing import Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

Job = tuple[HydraContext, DictConfig, TaskFunction, dict[Any, Any]]


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "hydra/launcher=ray_cluster needs Ray: pip install 'simroute[ray]' (or make test-cluster)"
        ) from e
    return ray


def connect(init: dict[str, Any]) -> bool:
    """Connect this process to the Ray cluster named by ``init`` (``ray.init`` keyword arguments);
    True when this call did it (so the launcher disconnects afterwards)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    ray.init(**init)
    return True


def run_one(
    hydra_context: HydraContext,
    sweep_config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """One sweep job, on a Ray worker: restore Hydra's state, then run it as Hydra's launchers do."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job, setup_globals

    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    try:
        return run_job(
            hydra_context=hydra_context,
            task_function=task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    except SystemExit as e:  # a task that ends the process (a user error) must fail the job, not the worker
        raise RuntimeError(f"job {sweep_config.hydra.job.num} exited with status {e.code}") from None


def submit(jobs: list[Job], remote: dict[str, Any]) -> list[JobReturn]:
    """Run ``jobs`` as Ray tasks with the task options ``remote``; their results, in order."""
    ray = _ray()
    task = ray.remote(run_one).options(**remote) if remote else ray.remote(run_one)
    refs = [task.remote(*job) for job in jobs]
    return list(ray.get(refs))
