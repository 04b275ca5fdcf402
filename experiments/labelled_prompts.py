"""Derive ``traces/quality/labelled_prompts.csv.gz``: real prompts with real category labels.

Sources (both bundled, see ``traces/SOURCES.md``):

* MT-Bench: the user turns of the 80 questions, recovered from the RouteLLM judge prompts in
  ``routellm_mt_bench_judgements.jsonl.gz`` (the text after ``### User:`` or ``[Question]``),
  labelled with MT-Bench's own category by question id (81-90 writing, 91-100 roleplay, 101-110
  reasoning, 111-120 math, 121-130 coding, 131-140 extraction, 141-150 stem, 151-160 humanities);
  turn 1 and turn 2 (the follow-up) of each question.
* GSM8K: the 1,319 test prompts of ``routellm_gsm8k_responses.csv.gz``, labelled ``math``.

Columns: ``source`` (mt_bench | gsm8k), ``item`` (question id or row), ``turn``, ``label``,
``prompt``. Deterministic (sorted; gzip without name or time).
Usage: ``python experiments/labelled_prompts.py``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from pathlib import Path

TRACES = Path(__file__).resolve().parents[1] / "traces" / "quality"
CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]


def _category(qid: int) -> str:
    return CATEGORIES[(qid - 81) // 10]


def _user_turns(judge_prompt: str) -> list[str]:
    """The user turns quoted in a judge prompt, in order."""
    turns = re.findall(r"### User:\n(.*?)\n\n### (?:Assistant A|Reference answer):", judge_prompt, re.S)
    if turns:  # a math judge quotes the turns twice (reference answer, then the assistant's)
        return list(dict.fromkeys(t.strip() for t in turns))[:2]
    q = re.search(r"\[Question\]\n(.*?)\n\n\[The Start of", judge_prompt, re.S)
    return [q.group(1).strip()] if q else []


def main() -> None:
    csv.field_size_limit(sys.maxsize)
    prompts: dict[tuple[int, int], str] = {}
    with gzip.open(TRACES / "routellm_mt_bench_judgements.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            for turn, text in enumerate(_user_turns(r["user_prompt"]), start=1):
                prompts.setdefault((int(r["question_id"]), turn), text)
    rows = [("mt_bench", q, t, _category(q), p) for (q, t), p in sorted(prompts.items())]
    missing = [(q, t) for q in range(81, 161) for t in (1, 2) if (q, t) not in prompts]
    if missing:
        raise SystemExit(f"MT-Bench turns not recovered: {missing}")
    with gzip.open(TRACES / "routellm_gsm8k_responses.csv.gz", "rt", encoding="utf-8", newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            rows.append(("gsm8k", i, 1, "math", r["prompt"].strip()))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "item", "turn", "label", "prompt"])
    w.writerows(rows)
    out = TRACES / "labelled_prompts.csv.gz"
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    print(f"{out}: {len(rows)} prompts ({len(prompts)} MT-Bench turns, {len(rows) - len(prompts)} GSM8K)")


if __name__ == "__main__":
    main()
