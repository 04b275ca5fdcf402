"""Convert a directory of Claude Code session files into the compact bundled Parquet table.

``python -m simroute.workload.bundle_claude_code SRC_DIR OUT.parquet`` reads every session with
:func:`~simroute.workload.claude_code.read_sessions` and writes all of its columns, with the prefix
block ids run-length encoded (:mod:`~simroute.workload.hash_runs`, column ``prefix_runs``) and the
block size in the file's metadata (``simroute.block_tokens``). The Parquet loader decodes it back to
exactly the table the directory gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simroute.workload import hash_runs
from simroute.workload.claude_code import read_sessions

PREFIX_RUNS = "prefix_runs"
"""Column holding run-length encoded ``prefix_hashes`` in a bundled table."""


def bundle(src: Path, out: Path) -> int:
    """Write the bundled table of the sessions at ``src`` to ``out``; return its number of rows."""
    df, block = read_sessions(src)
    runs = hash_runs.encode(df["prefix_hashes"]).alias(PREFIX_RUNS)
    table = df.drop("prefix_hashes", "_row").with_columns(runs)
    table.write_parquet(
        out,
        compression="zstd",
        compression_level=19,
        statistics=False,
        metadata={"simroute.block_tokens": str(block), "simroute.prefix_encoding": "runs"},
    )
    return table.height


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``SRC_DIR OUT.parquet``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m simroute.workload.bundle_claude_code SRC_DIR OUT.parquet", file=sys.stderr)
        return 2
    n = bundle(Path(args[0]), Path(args[1]))
    print(f"{n} calls -> {args[1]} ({Path(args[1]).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
