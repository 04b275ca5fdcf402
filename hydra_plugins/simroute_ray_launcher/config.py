"""The launcher's structured config, registered as ``hydra/launcher=simroute_ray``.

(No ``from __future__ import annotations``: Hydra's plugin scan runs this module before it is in
``sys.modules``, where a dataclass with string annotations cannot be built.)"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class SimrouteRayLauncherConf:
    """``init``: keyword arguments of ``ray.init`` (``address``: ``null`` = ``$RAY_ADDRESS`` if set,
    else a new single-machine instance; ``auto``; ``HOST:6379``; ``ray://HOST:10001``).
    ``remote``: options of each job's Ray task (``num_cpus``, ``memory``, ``resources``, ...)."""

    _target_: str = "hydra_plugins.simroute_ray_launcher.ray_launcher.SimrouteRayLauncher"
    init: dict[str, Any] = field(default_factory=lambda: {"address": None})
    remote: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1})


ConfigStore.instance().store(
    group="hydra/launcher", name="simroute_ray", node=SimrouteRayLauncherConf, provider="simroute"
)
