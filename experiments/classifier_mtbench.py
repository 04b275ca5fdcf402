"""The text skill classifiers on MT-Bench's real prompts and categories (the README's table).

Runs ``simroute eval-classifier`` on ``traces/quality/labelled_prompts.csv.gz`` for the keyword
rules (``conf/keywords/mt_bench.yaml``) and the static-embedding kNN classifier (k = 5, grouped
5-fold cross-validation: both turns of a question stay in one fold), on all 160 MT-Bench turns and
on the 80 first turns, and stores the results in ``OUT/classifier_mtbench.json`` without the
per-prompt latency (a measurement of the machine, printed by the command but not stored, so the
file is deterministic). The MiniLM backend needs torch and is not run here.

Usage: ``python experiments/classifier_mtbench.py [--out paper]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from simroute.commands import eval_classifier

DATA = "traces/quality/labelled_prompts.csv.gz"
KEYWORDS = "conf/keywords/mt_bench.yaml"
CASES: dict[str, list[str]] = {
    "keyword_all_turns": ["--classifier", "keyword", "--keywords", KEYWORDS, "--where", "source=mt_bench"],
    "static_all_turns": ["--classifier", "embedding", "--where", "source=mt_bench", "--group", "item"],
    "keyword_first_turns": [
        *("--classifier", "keyword", "--keywords", KEYWORDS),
        *("--where", "source=mt_bench", "--where", "turn=1"),
    ],
    "static_first_turns": [
        *("--classifier", "embedding", "--where", "source=mt_bench", "--where", "turn=1"),
        *("--group", "item"),
    ],
}
"""Stored name -> ``simroute eval-classifier`` arguments after the data file."""


def evaluate(args: list[str]) -> dict[str, Any]:
    """One ``simroute eval-classifier`` run's JSON, less its latency."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        with contextlib.redirect_stdout(io.StringIO()):
            eval_classifier.main([DATA, *args, "--json", str(out)])
        res: dict[str, Any] = json.loads(out.read_text())
    res.pop("latency_ms_per_prompt")
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("paper"))
    a = ap.parse_args()
    results = {name: evaluate(args) for name, args in CASES.items()}
    stored = {"command": "python experiments/classifier_mtbench.py", "results": results}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "classifier_mtbench.json").write_text(json.dumps(stored, indent=1) + "\n")
    for name, r in results.items():
        print(f"{name:20s} {r['n']:4d} prompts  accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}")


if __name__ == "__main__":
    main()
