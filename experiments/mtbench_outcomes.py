"""Turn RouteLLM's MT-Bench GPT-4-judge scores into a per-prompt outcome table for `simroute calibrate`.

Each (question, turn) becomes a prompt; a model "succeeds" when the judge's score (1-10) reaches
``--threshold`` (default 8). The skill column is the MT-Bench category, from the benchmark's fixed
layout of question ids (81-90 writing, 91-100 roleplay, 101-110 reasoning, 111-120 math, 121-130
coding, 131-140 extraction, 141-150 stem, 151-160 humanities). Usage:

    python experiments/mtbench_outcomes.py --out /tmp/mtbench.csv [--threshold 8]
    simroute calibrate /tmp/mtbench.csv --models mistralai/Mixtral-8x7B-Instruct-v0.1 \\
        gpt-4-1106-preview --skill-column category --json /tmp/mtbench_cal.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "traces" / "quality" / "routellm_mt_bench_judgements.jsonl.gz"
CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float, default=8.0)
    a = ap.parse_args()
    scores: dict[tuple[int, int], dict[str, float]] = {}
    for line in gzip.decompress(SRC.read_bytes()).decode().splitlines():
        r = json.loads(line)
        scores.setdefault((int(r["question_id"]), int(r["turn"])), {})[r["model"]] = float(r["score"])
    models = sorted({m for v in scores.values() for m in v})
    a.out.parent.mkdir(parents=True, exist_ok=True)  # e.g. outputs/ in a fresh clone
    with a.out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "category", *models])
        for (q, t), s in sorted(scores.items()):
            if all(m in s for m in models):
                w.writerow([f"q{q}-t{t}", CATEGORIES[(q - 81) // 10], *[s[m] >= a.threshold for m in models]])
    print(f"{len(scores)} prompts, models {models} -> {a.out}")


if __name__ == "__main__":
    main()
