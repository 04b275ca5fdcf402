"""Where configs and bundled data live, and config composition exactly as ``simroute run`` does it.

What protects a user: configs never name code. Hydra's ``_target_`` is never instantiated by
simroute (no config value is ever imported or called); policies are chosen by ``name`` from the
registry's allow-list (:data:`simroute.policy.registry.REGISTRY`), and every other value is data
(numbers, strings, file paths that loaders parse, never unpickle or eval).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simroute.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"
TRACES_DIR = REPO_ROOT / "traces"


def register_resolvers() -> None:
    """Register the ``${sr_traces:}`` resolver (the bundled data folder) once per process."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("sr_traces"):
        OmegaConf.register_new_resolver("sr_traces", lambda: str(TRACES_DIR))


def compose(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved run config for Hydra ``overrides`` (e.g. ``["policy=cascade", "seed=3"]``),
    exactly as ``simroute run`` composes it, as plain dicts and lists."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}


def config_count(value: Any, key: str) -> int:
    """Config value ``key`` as a whole number >= 1 (a count of requests, say), or a ConfigError
    naming ``key``. A whole float (``1e6`` parses as one) or a NumPy integer counts; a bool, a
    fraction, a word or a number below 1 is refused, never truncated."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        count = operator.index(value) if not isinstance(value, bool) else 0
    except TypeError:
        count = 0
    if count < 1:
        raise ConfigError(f"{key}: expected a whole number >= 1, got {value!r}")
    return count
