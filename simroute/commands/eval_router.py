"""``simroute eval-router``: APGR / CPT of routers on a per-prompt outcome table (no simulation)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simroute.analysis import router_eval
from simroute.commands import fail
from simroute.errors import SimrouteError


def main(argv: list[str]) -> None:
    """Run ``simroute eval-router`` with the arguments after the command name."""
    ap = argparse.ArgumentParser(
        prog="simroute eval-router", description=router_eval.__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "outcomes", help="CSV (or .csv.gz) with a prompt column and a True/False column per model"
    )
    ap.add_argument("--weak", required=True, help="column of the weak model")
    ap.add_argument("--strong", required=True, help="column of the strong model")
    ap.add_argument("--json", required=True, help="output JSON")
    ap.add_argument("--plot", default=None, help="output PNG")
    ap.add_argument("--seed", type=int, default=0, help="seed of the train/eval split")
    a = ap.parse_args(argv)
    try:
        res = router_eval.evaluate(router_eval.load_outcomes(a.outcomes, a.weak, a.strong), seed=a.seed)
    except SimrouteError as e:
        fail(e)
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    if a.plot:
        router_eval.plot(res, Path(a.plot))
    print(
        f"split: {res['split']['train']} train / {res['split']['eval']} eval prompts; "
        f"weak {res['weak_quality']:.3f}, strong {res['strong_quality']:.3f}"
    )
    for name, r in sorted(res["routers"].items(), key=lambda kv: -kv[1]["apgr"]):
        print(f"  {name:9s} APGR {r['apgr']:.3f}  CPT(50%) {r['cpt50']:.1%}  CPT(80%) {r['cpt80']:.1%}")
