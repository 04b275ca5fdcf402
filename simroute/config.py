"""Config safety and resolution: ``_target_`` only within ``simroute.*``; the bundled data path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simroute.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"
TRACES_DIR = REPO_ROOT / "traces"


def check_targets(node: Any, path: str = "") -> None:
    """Refuse any ``_target_`` outside the ``simroute.`` package, before anything is instantiated."""
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}" if path else str(k)
            if k == "_target_" and not (isinstance(v, str) and v.startswith("simroute.")):
                raise ConfigError(f"{here}: _target_ {v!r} refused; only simroute.* may be instantiated")
            check_targets(v, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_targets(v, f"{path}[{i}]")
