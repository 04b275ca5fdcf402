"""The ``simroute`` subcommands, one module each, every one with ``main(argv: list[str]) -> None``."""

from __future__ import annotations

import sys
from typing import NoReturn


def fail(err: BaseException) -> NoReturn:
    """Report a user error as one line, ``simroute: error: ...`` on stderr, and exit with status 2."""
    print(f"simroute: error: {err}", file=sys.stderr)
    sys.exit(2)
