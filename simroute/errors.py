"""User-facing errors: one clear message, no traceback (the CLI prints ``str(err)`` and exits 2)."""

from __future__ import annotations


class SimrouteError(Exception):
    """Base class of every error simroute reports to a user as a single line."""


class ConfigError(SimrouteError):
    """An invalid configuration value (unknown policy name, bad parameter, missing file)."""


class InputError(SimrouteError):
    """Bad input data, located as precisely as possible.

    Args:
        path: the file the data came from (or a description such as ``"<request table>"``).
        message: what was wrong and what was expected.
        row: 1-based data row (header not counted), if known.
        column: column or field name, if known.
        line: 1-based physical line in the file, if it differs from the row.
    """

    def __init__(
        self,
        path: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        self.line = line
        self.message = message
        where = [path]
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(": ".join([", ".join(where), message]))

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled by its arguments (so it crosses from a worker process to the parent)."""
        kw = {"row": self.row, "column": self.column, "line": self.line}
        return (_input_error, (self.path, self.message, kw))


def _input_error(path: str, message: str, kw: dict[str, object]) -> InputError:
    """Rebuild a pickled :class:`InputError`."""
    return InputError(path, message, **kw)  # type: ignore[arg-type]
