"""``simroute calibrate``: fit quality-model abilities (IRT) to per-prompt outcomes, with a held-out
report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from simroute.analysis.router_eval import load_table
from simroute.commands import fail
from simroute.economics.calibrate import fit_irt, heldout_report
from simroute.errors import SimrouteError


def main(argv: list[str]) -> None:
    """Run ``simroute calibrate`` with the arguments after the command name."""
    ap = argparse.ArgumentParser(prog="simroute calibrate", description="Fit IRT abilities to outcomes.")
    ap.add_argument("outcomes", help="CSV (or .csv.gz): a prompt column and a True/False column per model")
    ap.add_argument("--models", nargs="+", required=True, help="the model columns")
    ap.add_argument("--skill-column", default=None, help="optional column naming each prompt's skill")
    ap.add_argument("--json", required=True)
    ap.add_argument("--holdout", type=float, default=0.2, help="share of cells held out for the report")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        y, skills, _ = load_table(a.outcomes, a.models, a.skill_column)
    except SimrouteError as e:
        fail(e)
    codes = np.unique(skills, return_inverse=True)[1] if skills is not None else None
    fit = fit_irt(y, np.ones_like(y, dtype=bool), codes)
    rep = heldout_report(y, codes, holdout=a.holdout, seed=a.seed)
    skill_names = sorted(set(skills)) if skills is not None else ["all"]
    out = {
        "source": a.outcomes,
        "models": a.models,
        "skills": skill_names,
        "ability": {
            m: dict(zip(skill_names, map(float, fit.ability[k]), strict=True)) for k, m in enumerate(a.models)
        },
        "difficulty_sd": fit.sd_difficulty,
        "accuracy": {m: float(y[k].mean()) for k, m in enumerate(a.models)},
        "heldout": rep,
    }
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    for m in a.models:
        print(f"  {m:45s} ability {out['ability'][m]}  accuracy {out['accuracy'][m]:.3f}")
    print(
        f"  difficulty sd {fit.sd_difficulty:.3f}; held-out log-loss {rep['logloss']:.4f} "
        f"(per-model-accuracy baseline {rep['logloss_baseline']:.4f}), "
        f"ECE {rep['expected_calibration_error']:.3f}"
    )
