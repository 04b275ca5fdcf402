"""What the README says about the bundled data (``traces/``), computed from the files themselves.

- ``claude_code``: sessions, calls, sub-agent calls, recorded zero-token outputs, mean calls per
  session, the spacing of the sessions' first calls, and how many calls each rule of
  ``conf/labels/claude_code.yaml`` labels (as ``simroute run experiment=claude_code`` labels them);
- ``mooncake``: requests and the share that repeat an earlier prompt exactly (identical block hashes);
- ``llmperf``: rows, successful requests and the log-normal fit report per ``provider/size``
  profile (:func:`simroute.tiers.latency_fit.fit_report`: KS distances of the TTFT and ITL fits);
- ``vidur``: the held-out-row interpolation error of each bundled Vidur profile.

Writes ``OUT/bundled_data.json``. Deterministic. Usage: ``python experiments/bundled_data.py [--out paper]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import polars as pl

from simroute.config import TRACES_DIR, compose
from simroute.engine.profiles import holdout_mape, read_vidur_mlp
from simroute.sim.build import setup
from simroute.tiers.latency_fit import fit_report
from simroute.workload.loaders import load_raw

VIDUR = {
    "h100_llama2_7b": "vidur_h100_llama2_7b_mlp.csv.gz",
    "a100_llama3_8b": "vidur_a100_llama3_8b_mlp.csv.gz",
}


def claude_code() -> dict[str, Any]:
    """Counts of the recorded Claude Code sessions and of the calls each labelling rule assigns."""
    df = pl.read_parquet(TRACES_DIR / "claude_code_2025.parquet")
    starts = df.group_by("session_id").agg(pl.col("recorded_arrival_s").min()).sort("recorded_arrival_s")
    counts = setup(compose(["experiment=claude_code"]), 0).table.label_counts
    labels = {}
    for key, n in counts.items():
        if key.startswith("rule "):
            labels["rule_" + key.split(":")[0].split()[1]] = n
        elif key.startswith("default"):
            labels["default"] = n
    sessions = df["session_id"].n_unique()
    return {
        "sessions": sessions,
        "calls": df.height,
        "subagent_calls": int((df["agent"] == "subagent").sum()),
        "zero_output_calls": int((df["recorded_output_tokens"] == 0).sum()),
        "mean_calls_per_session": df.height / sessions,
        "session_spacing_s": float(starts["recorded_arrival_s"].diff().median()),  # type: ignore[arg-type]
        "labels": labels,
    }


def mooncake() -> dict[str, Any]:
    """Requests of the Mooncake conversation trace and the share repeating an earlier one exactly."""
    df = load_raw(TRACES_DIR / "mooncake_conversation.jsonl.gz").df
    repeats = int((~df["content_id"].is_first_distinct()).sum())
    return {"requests": df.height, "exact_repeats": repeats, "exact_repeat_share": repeats / df.height}


def llmperf() -> dict[str, Any]:
    """Rows and successful requests of the LLMPerf file, and the fit report per profile."""
    path = TRACES_DIR / "llmperf_2023_individual.csv.gz"
    rep = fit_report(path)
    return {
        "rows": pl.read_csv(path, infer_schema_length=10_000).height,
        "requests": int(rep["n"].sum()),
        "profiles": {r.pop("profile"): r for r in rep.to_dicts()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("paper"))
    a = ap.parse_args()
    stored = {
        "command": "python experiments/bundled_data.py",
        "claude_code": claude_code(),
        "mooncake": mooncake(),
        "llmperf": llmperf(),
        "vidur_holdout_mape": {k: holdout_mape(*read_vidur_mlp(TRACES_DIR / f, 1)) for k, f in VIDUR.items()},
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bundled_data.json").write_text(json.dumps(stored, indent=1) + "\n")
    print(json.dumps(stored["claude_code"], indent=1))


if __name__ == "__main__":
    main()
