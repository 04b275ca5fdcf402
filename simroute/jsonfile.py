"""Reading a JSON file the project ships or a user points at: one clean error, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simroute.errors import InputError


def read_json(path: str | Path, missing: str) -> Any:
    """The parsed JSON document at ``path``; :class:`InputError` naming the file when it is absent
    (``missing`` says what it should be and how to make it) or not valid UTF-8 JSON."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(p), missing) from None
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(str(p), f"invalid JSON ({e})") from None
