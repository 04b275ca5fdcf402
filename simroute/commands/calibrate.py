"""``simroute calibrate``: fit quality-model abilities (IRT) to per-prompt outcomes, with a held-out
report; optionally estimate the attempt correlation ``models.attempt_correlation`` of a model pair."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from simroute.analysis.router_eval import load_table
from simroute.commands import fail
from simroute.economics.calibrate import fit_attempt_correlation, fit_irt, heldout_report
from simroute.errors import ConfigError, SimrouteError

EPILOG = """\
attempt correlation (--attempt-correlation WEAK STRONG):
  In the simulator an attempt of model m on a request of difficulty d succeeds iff u < sigmoid(a_m - d),
  and a later attempt (on another model) reuses the first attempt's uniform u with probability rho
  (models.attempt_correlation). From the 2x2 table of paired outcomes of WEAK and STRONG this fits
  a_weak, a_strong and rho by maximum likelihood, integrating d ~ N(0, sd^2) by Gauss-Hermite
  quadrature with sd FIXED to --difficulty-sd (the spread the simulation draws: the skill profiles'
  difficulty_sd, 1.0 logit in conf/skills/agent_ops.yaml). Two models cannot separate shared difficulty
  from shared luck, so rho is the extra shared luck between attempts on different models beyond what
  the simulated difficulty spread explains (a larger sd leaves a smaller rho). rho is kept in [0, 1];
  the interval is the profile-likelihood interval; 'estimate_unconstrained' is the value that fits the
  table exactly (negative: the models agree less than the difficulty spread alone implies) and
  'deviance' the misfit of the constrained fit. The JSON gets an 'attempt_correlation' entry with the
  estimate, interval, counts and observed vs fitted conditional success rates.
"""


def main(argv: list[str]) -> None:
    """Run ``simroute calibrate`` with the arguments after the command name."""
    ap = argparse.ArgumentParser(
        prog="simroute calibrate",
        description="Fit IRT abilities to outcomes (and optionally the attempt correlation of a model pair).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("outcomes", help="CSV (or .csv.gz): a prompt column and a True/False column per model")
    ap.add_argument("--models", nargs="+", required=True, help="the model columns")
    ap.add_argument("--skill-column", default=None, help="optional column naming each prompt's skill")
    ap.add_argument("--json", required=True)
    ap.add_argument("--holdout", type=float, default=0.2, help="share of cells held out for the report")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--attempt-correlation",
        nargs=2,
        metavar=("WEAK", "STRONG"),
        default=None,
        help="estimate models.attempt_correlation from these two model columns (both in --models)",
    )
    ap.add_argument(
        "--difficulty-sd",
        type=float,
        default=1.0,
        help="difficulty spread (logits) the attempt-correlation fit conditions on (default 1.0)",
    )
    ap.add_argument("--level", type=float, default=0.95, help="coverage of the attempt-correlation interval")
    a = ap.parse_args(argv)
    try:
        y, skills, _ = load_table(a.outcomes, a.models, a.skill_column)
        pair = _attempt_correlation(y, a) if a.attempt_correlation else None
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
    if pair is not None:
        out["attempt_correlation"] = pair
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    for m in a.models:
        print(f"  {m:45s} ability {out['ability'][m]}  accuracy {out['accuracy'][m]:.3f}")
    print(
        f"  difficulty sd {fit.sd_difficulty:.3f}; held-out log-loss {rep['logloss']:.4f} "
        f"(per-model-accuracy baseline {rep['logloss_baseline']:.4f}), "
        f"ECE {rep['expected_calibration_error']:.3f}"
    )
    if pair is not None:
        lo, hi = pair["interval"]
        print(
            f"  attempt correlation {pair['estimate']:.3f} ({100 * a.level:g} % interval {lo:.3f}-{hi:.3f}; "
            f"unconstrained {pair['estimate_unconstrained']:.3f}) at difficulty sd {a.difficulty_sd:g}"
        )


def _attempt_correlation(y: np.ndarray, a: argparse.Namespace) -> dict[str, Any]:
    """The ``attempt_correlation`` JSON entry for the pair named by ``--attempt-correlation``."""
    weak, strong = a.attempt_correlation
    missing = [m for m in (weak, strong) if m not in a.models]
    if missing or weak == strong:
        raise ConfigError(
            f"--attempt-correlation needs two different columns listed in --models, got {weak!r} {strong!r}"
        )
    f = fit_attempt_correlation(
        y[a.models.index(weak)], y[a.models.index(strong)], difficulty_sd=a.difficulty_sd, level=a.level
    )
    c = f.counts
    return {
        "weak": weak,
        "strong": strong,
        "estimator": "maximum likelihood, difficulty ~ N(0, sd^2) with sd fixed; profile-likelihood interval",
        "difficulty_sd": f.difficulty_sd,
        "estimate": f.rho,
        "interval": [f.interval[0], f.interval[1]],
        "level": f.level,
        "estimate_unconstrained": f.rho_unconstrained,
        "deviance": f.deviance,
        "ability": {"weak": f.ability_weak, "strong": f.ability_strong},
        "n_items": int(c.sum()),
        "counts": {
            "both_fail": int(c[0, 0]),
            "strong_only": int(c[0, 1]),
            "weak_only": int(c[1, 0]),
            "both_ok": int(c[1, 1]),
        },
        "conditional_rates": f.conditional_rates(),
    }
