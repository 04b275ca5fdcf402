"""Command line: ``simroute run [hydra overrides...]`` (Hydra; configs in ``conf/``).

Examples::

    simroute run                                   # default synthetic agent fleet, router-first
    simroute run workload=azure_conv policy=router_first seed=3
    simroute run workload.n_requests=200000
    simroute run workload=trace workload.path=my.csv.gz [workload.format=azure]
    simroute run -m seed=0,1,2 hydra/launcher=joblib

A user error (bad input file, bad config value) prints one line ``simroute: error: ...`` and exits
with status 2. Each command lives in its own module under :mod:`simroute.commands`.
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType

from simroute.commands import fail
from simroute.errors import SimrouteError

USAGE = """usage: simroute run [HYDRA_OVERRIDES ...]
       simroute cost MODEL --input-tokens N --output-tokens M [--cached-tokens K] [--batch | --priority]

commands:
  run    simulate a workload through a routing policy and its baseline (Hydra app; see --help)
  cost   USD cost of one request from the simulator's price table, as JSON
  eval-router OUTCOMES --weak COL --strong COL --json OUT.json [--plot OUT.png] [--seed S]
         APGR / CPT(50%) / CPT(80%) of routers on a per-prompt outcome table (no simulation)
  eval-classifier DATA --classifier keyword|embedding --json OUT.json [--keywords YAML]
         [--where COL=VALUE ...] [--group COL] [--folds K] [--k K] [--seed S]
         accuracy, macro-F1, confusion and latency of a text skill classifier on labelled prompts
  calibrate OUTCOMES --models COL [COL ...] [--skill-column COL] --json OUT.json
         fit quality-model abilities (IRT) to per-prompt outcomes, with a held-out report
  export RUN_DIR --out FILE [--format json|litellm] [--sign] [--key-file PATH]
         the run's policy as a versioned, hashed artifact, optionally HMAC-signed with the key in
         PATH or $SIMROUTE_POLICY_KEY (or a LiteLLM Router config)
  validate-gpu SPECS [SPECS ...] --json OUT.json [--plot OUT.png] [--coefficients FILE] [--seed S]
         predict real GPU vLLM runs (experiments JSON or inference-perf run folders): per-stage
         TTFT / E2E from the GPU step-time model and the step-exact scheduler
  aggregate SWEEP_DIR    one Parquet table (aggregate.parquet) of a multirun, plus replications.parquet
  plot SWEEP_DIR         cost vs quality (Pareto, AIQ), latency CDFs, tier share over time, cost breakdown
"""


COMMANDS: dict[str, str] = {
    "run": "run",
    "cost": "cost",
    "eval-router": "eval_router",
    "eval-classifier": "eval_classifier",
    "calibrate": "calibrate",
    "export": "export",
    "validate-gpu": "validate_gpu",
}
"""Command name -> module of :mod:`simroute.commands` whose ``main(argv)`` runs it."""

SWEEP_COMMANDS = ("aggregate", "plot")
"""Commands of :mod:`simroute.commands.sweep` (``main(command, argv)``)."""


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """End the process as an exception would (status 128 + signal), so that its clean-up runs: a
    run's second process (its baseline arm) is stopped and its handoff folders are removed."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``simroute`` console script: dispatch to the command's module. As the
    process's own command (``argv`` None) a SIGTERM (a scheduler's cancel or time limit, ``kill``)
    ends it through its clean-up instead of at once."""
    if argv is None:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return
    cmd, rest = args[0], args[1:]
    if cmd in SWEEP_COMMANDS:
        from simroute.commands import sweep

        sweep.main(cmd, rest)
        return
    if cmd in COMMANDS:
        importlib.import_module(f"simroute.commands.{COMMANDS[cmd]}").main(rest)
        return
    print(USAGE, end="", file=sys.stderr)
    fail(SimrouteError(f"unknown command {cmd!r}; valid: {', '.join([*COMMANDS, *SWEEP_COMMANDS])}"))


if __name__ == "__main__":
    main()
