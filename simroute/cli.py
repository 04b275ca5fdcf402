"""Command line: ``simroute run [hydra overrides...]`` (Hydra; configs in ``conf/``).

Examples::

    simroute run                                   # default synthetic agent fleet, router-first
    simroute run workload=azure_conv policy=router_first seed=3
    simroute run workload.n_requests=200000
    simroute run workload=trace workload.path=my.csv.gz [workload.format=azure]
    simroute run -m seed=0,1,2 hydra/launcher=joblib

A user error (bad input file, bad config value) prints one line ``simroute: error: ...`` and exits
with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from simroute.config import CONF_DIR, TRACES_DIR, check_targets
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
  export RUN_DIR --out FILE [--format json|litellm]
         the run's policy as a versioned, hashed artifact (or a LiteLLM Router config)
  aggregate SWEEP_DIR    one Parquet table (aggregate.parquet) of a multirun, plus replications.parquet
  plot SWEEP_DIR         cost vs quality (Pareto, AIQ), latency CDFs, tier share over time, cost breakdown
"""


def _fail(err: BaseException) -> NoReturn:
    print(f"simroute: error: {err}", file=sys.stderr)
    sys.exit(2)


def objective(summary: dict[str, Any], spec: dict[str, Any]) -> float:
    """Cost per successful task (USD) plus a penalty for missing the quality floor or the p95
    interactive deadline constraint: what a sweeper (Optuna) minimises."""
    cost = summary.get("cost_per_successful_task_usd") or float("inf")
    floor = float(spec.get("quality_floor", 0.0))
    shortfall = max(floor - float(summary["success_rate"]), 0.0)
    ratio = float(summary.get("interactive_p95_deadline_ratio") or 0.0)
    excess = max(ratio - float(spec.get("p95_deadline_ratio_max", float("inf"))), 0.0)
    return float(cost + float(spec.get("penalty_usd", 1.0)) * (shortfall + excess))


def _task(cfg: Any) -> float:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from simroute.runner.experiment import execute

    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        _fail(SimrouteError(f"config: {e}"))
    if not isinstance(container, dict):
        _fail(SimrouteError("config: expected a mapping at the top level"))
    run_cfg: dict[str, Any] = {str(k): v for k, v in container.items()}
    try:
        check_targets(run_cfg)
        out = Path(HydraConfig.get().runtime.output_dir)
        if run_cfg.get("multiday"):
            from simroute.runner.multiday import execute_multiday

            md = execute_multiday(run_cfg, out, progress=bool(run_cfg.get("progress", True)))
            first, last = md["first_day"]["share_local"], md["last_day"]["share_local"]
            print(
                f"{md['policy']}: {md['days']} days, {md['requests']:,} requests, "
                f"cost ${md['total_cost_usd']:.2f}, success {md['success_rate']:.1%}, "
                f"local share day 1 {first:.1%} -> day {md['days']} {last:.1%}"
            )
            print(f"outputs: {out}")
            return float(md["total_cost_usd"])
        summary = execute(run_cfg, out, progress=bool(run_cfg.get("progress", True)))
    except SimrouteError as e:
        _fail(e)
    base = summary.get("baseline")
    value = objective(summary, run_cfg.get("objective") or {})
    line = (
        f"{summary['policy']}: {summary['n_requests']:,} requests, "
        f"success {summary['success_rate']:.1%}, cost ${summary['cost_total_usd']:.2f}"
    )
    if base:
        line += (
            f" | {summary['baseline_policy']}: success {base['success_rate']:.1%}, "
            f"cost ${base['cost_total_usd']:.2f} | cost reduction {base['cost_reduction']:.1%}"
        )
    print(line)
    print(f"outputs: {out}")
    return value


def _run(argv: list[str]) -> None:
    import hydra
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("sr_traces"):
        OmegaConf.register_new_resolver("sr_traces", lambda: str(TRACES_DIR))
    sys.argv = ["simroute run", *argv]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    app()


def _cost(argv: list[str]) -> None:
    import argparse
    import json

    from simroute.economics.costs import request_cost
    from simroute.economics.prices import load_litellm

    ap = argparse.ArgumentParser(prog="simroute cost", description="USD cost of one request (JSON).")
    ap.add_argument("model", help="LiteLLM model id, e.g. gpt-4.1, claude-sonnet-4-5")
    ap.add_argument("--input-tokens", type=int, required=True)
    ap.add_argument("--output-tokens", type=int, required=True)
    ap.add_argument("--cached-tokens", type=int, default=0, help="prompt tokens read from the prompt cache")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--batch", action="store_true", help="async batch API prices")
    mode.add_argument("--priority", action="store_true", help="priority-tier prices")
    ap.add_argument(
        "--prices",
        default=str(TRACES_DIR / "litellm_prices_1.110.2.json.gz"),
        help="LiteLLM cost map (default: the bundled 1.110.2 table)",
    )
    a = ap.parse_args(argv)
    m = "batch" if a.batch else "priority" if a.priority else "standard"
    try:
        price = load_litellm(a.prices).get(a.model)
        if min(a.input_tokens, a.output_tokens, a.cached_tokens) < 0 or a.cached_tokens > a.input_tokens:
            raise SimrouteError("need token counts >= 0 and --cached-tokens <= --input-tokens")
        c = request_cost(price, a.input_tokens, a.output_tokens, a.cached_tokens, m)
    except SimrouteError as e:
        _fail(e)
    rates = price.rates(m)
    print(
        json.dumps(
            {
                "model": price.model,
                "provider": price.provider,
                "mode": m,
                "input_tokens": c.input_tokens,
                "cached_tokens": c.cached_tokens,
                "output_tokens": c.output_tokens,
                "input_usd": c.input_usd,
                "cached_input_usd": c.cached_input_usd,
                "output_usd": c.output_usd,
                "total_usd": c.total_usd,
                "standard_total_usd": c.standard_total_usd,
                "discount_vs_standard_usd": c.discount_usd,
                "long_context_rates": c.long_context_rates,
                "published_batch_prices": price.has_batch,
                "usd_per_million_tokens": {
                    "input": rates.input * 1e6,
                    "cached_input": rates.cached_input * 1e6,
                    "output": rates.output * 1e6,
                },
            },
            indent=2,
        )
    )


def _eval_router(argv: list[str]) -> None:
    import argparse
    import json

    from simroute.analysis import router_eval

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
        _fail(e)
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    if a.plot:
        router_eval.plot(res, Path(a.plot))
    print(
        f"split: {res['split']['train']} train / {res['split']['eval']} eval prompts; "
        f"weak {res['weak_quality']:.3f}, strong {res['strong_quality']:.3f}"
    )
    for name, r in sorted(res["routers"].items(), key=lambda kv: -kv[1]["apgr"]):
        print(f"  {name:9s} APGR {r['apgr']:.3f}  CPT(50%) {r['cpt50']:.1%}  CPT(80%) {r['cpt80']:.1%}")


def _eval_classifier(argv: list[str]) -> None:
    import argparse
    import json

    from omegaconf import OmegaConf

    from simroute.analysis import classifier_eval
    from simroute.policy.text import EmbeddingClassifier, KeywordClassifier, load_labelled

    ap = argparse.ArgumentParser(
        prog="simroute eval-classifier", description=classifier_eval.__doc__.split("\n\n")[0]
    )
    ap.add_argument("data", help="labelled prompts: CSV, JSONL or Parquet (optionally .gz)")
    ap.add_argument("--classifier", choices=["keyword", "embedding"], required=True)
    ap.add_argument("--json", required=True, help="output JSON")
    ap.add_argument("--text", default="prompt", help="text column (default: prompt)")
    ap.add_argument("--label", default="label", help="label column (default: label)")
    ap.add_argument("--where", action="append", default=[], help="keep rows with COL=VALUE (repeatable)")
    ap.add_argument("--group", default=None, help="column grouping rows that must share a fold")
    ap.add_argument(
        "--keywords", default=None, help="keyword YAML (default, keywords) for --classifier keyword"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--k", type=int, default=5, help="neighbours of the embedding classifier")
    ap.add_argument("--backend", default="static", help="embedding backend: static (default) or minilm")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    a = ap.parse_args(argv)
    try:
        where = {}
        for w in a.where:
            if "=" not in w:
                raise SimrouteError(f"--where expects COL=VALUE, got {w!r}")
            k, v = w.split("=", 1)
            where[k] = v
        texts, labels = load_labelled(a.data, a.text, a.label, where)
        groups = load_labelled(a.data, a.group, a.label, where)[0] if a.group else None
        classes = sorted(set(labels))
        if a.classifier == "keyword":
            if not a.keywords:
                raise SimrouteError("--classifier keyword needs --keywords YAML (see conf/keywords/)")
            try:
                kw = OmegaConf.to_container(OmegaConf.load(a.keywords), resolve=True)
            except FileNotFoundError:
                raise SimrouteError(f"{a.keywords}: file not found") from None
            except Exception as e:  # YAML syntax errors come in several types
                raise SimrouteError(f"{a.keywords}: not valid YAML ({str(e).splitlines()[0]})") from None
            if not isinstance(kw, dict) or "keywords" not in kw or "default" not in kw:
                raise SimrouteError(f"{a.keywords}: expected a mapping with 'default' and 'keywords'")
            kc = KeywordClassifier(
                sorted(set(classes) | set(kw["keywords"]) | {kw["default"]}), kw["keywords"], kw["default"]
            )
            res = classifier_eval.evaluate(texts, labels, None, rule=kc.predict)
        else:
            from simroute.policy.text import EMBEDDERS

            if a.backend not in EMBEDDERS:
                raise SimrouteError(f"--backend: expected one of {sorted(EMBEDDERS)}, got {a.backend!r}")
            embed = EMBEDDERS[a.backend]()
            res = classifier_eval.evaluate(
                texts,
                labels,
                lambda ex: EmbeddingClassifier(classes, ex, k=a.k, embedder=embed).predict,
                folds=a.folds,
                groups=groups,
                seed=a.seed,
            )
    except SimrouteError as e:
        _fail(e)
    res["classifier"] = a.classifier if a.classifier == "keyword" else f"embedding/{a.backend} k={a.k}"
    res["data"] = {"path": a.data, "where": where, "rows": len(texts)}
    res["confusion_rates"] = classifier_eval.row_normalised(res["confusion"])
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(
        f"{a.classifier}: {res['n']} prompts, accuracy {res['accuracy']:.3f}, "
        f"macro-F1 {res['macro_f1']:.3f}, {res['latency_ms_per_prompt']:.3f} ms/prompt "
        f"({res['split']['method']})"
    )


def _calibrate(argv: list[str]) -> None:
    import argparse
    import json

    import numpy as np

    from simroute.analysis.router_eval import load_table
    from simroute.economics.calibrate import fit_irt, heldout_report

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
        _fail(e)
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


def _export(argv: list[str]) -> None:
    import argparse
    import json

    from simroute.export import artifact
    from simroute.export.litellm import litellm_config

    ap = argparse.ArgumentParser(prog="simroute export", description="Export a run's policy for production.")
    ap.add_argument("run_dir", help="a simroute run output folder (holds policy_snapshot.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=("json", "litellm"), default="json")
    a = ap.parse_args(argv)
    snap = Path(a.run_dir) / "policy_snapshot.json"
    try:
        try:
            body = json.loads(snap.read_text())
        except FileNotFoundError:
            raise SimrouteError(f"{snap}: not found (is {a.run_dir} a simroute run folder?)") from None
        except ValueError as e:
            raise SimrouteError(f"{snap}: not JSON ({e})") from None
        doc = artifact.validate(
            artifact.seal(
                {
                    "source_run": str(Path(a.run_dir).name),
                    "skills": body["skills"],
                    "policy": body["policy"],
                    "models": body["models"],
                    "router_state": body.get("router_state"),
                }
            ),
            str(snap),
        )
    except (KeyError, TypeError) as e:
        _fail(SimrouteError(f"{snap}: missing or malformed field {e}"))
    except SimrouteError as e:
        _fail(e)
    out = doc if a.format == "json" else litellm_config(doc)
    Path(a.out).write_text(json.dumps(out, indent=1, sort_keys=a.format == "json") + "\n")
    print(f"wrote {a.out} ({a.format}; sha256 {doc['sha256'][:16]}...)")


def _sweep(cmd: str, argv: list[str]) -> None:
    import argparse

    import polars as pl

    from simroute.analysis import plots
    from simroute.analysis.metrics import aiq, pareto_frontier
    from simroute.analysis.sweep import aggregate, replications

    ap = argparse.ArgumentParser(prog=f"simroute {cmd}")
    ap.add_argument("sweep_dir", help="a multirun folder (hydra.sweep.dir)")
    a = ap.parse_args(argv)
    d = Path(a.sweep_dir)
    try:
        table = aggregate(d)
    except SimrouteError as e:
        _fail(e)
    ov = [c for c in table.columns if c.startswith("override.") and table[c].n_unique() > 1]
    names = [", ".join(f"{c[9:]}={row[c]}" for c in ov) or row["run"] for row in table.iter_rows(named=True)]
    table = table.with_columns(pl.Series("name", names))
    table.write_parquet(d / "aggregate.parquet")
    replications(table).write_parquet(d / "replications.parquet")
    cost = table["cost_per_request_usd"].to_numpy() * 1000
    qual = table["success_rate"].to_numpy()
    front = pareto_frontier(cost, qual)
    if cmd == "aggregate":
        print(
            f"{table.height} runs -> {d / 'aggregate.parquet'} (and replications.parquet); "
            f"Pareto frontier: {len(front)} runs, AIQ {aiq(cost, qual):.4f}"
        )
        return
    figs = d / "figures"
    figs.mkdir(exist_ok=True)
    plots.pareto_plot(names, cost, qual, figs / "cost_vs_quality.png", f"{d.name}: {table.height} runs")
    plots.cost_breakdown(table, figs / "cost_breakdown.png", f"{d.name}: cost per 1,000 requests")
    pick = [int(i) for i in front[:6]]
    frames = {names[i]: pl.read_parquet(d / table["run"][i] / "requests.parquet") for i in pick}
    plots.latency_cdf_by(
        frames, "final_tier", figs / "latency_cdf_by_tier.png", "Pareto runs: latency by tier"
    )
    plots.latency_cdf_by(
        frames, "urgency", figs / "latency_cdf_by_urgency.png", "Pareto runs: latency by urgency"
    )
    plots.tier_share_over_time(
        frames, figs / "tier_share_over_time.png", "Pareto runs: routed tier over time"
    )
    print(f"figures -> {figs} (PNG and SVG)")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``simroute`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return
    cmd, rest = args[0], args[1:]
    if cmd == "run":
        _run(rest)
        return
    if cmd == "cost":
        _cost(rest)
        return
    if cmd == "eval-router":
        _eval_router(rest)
        return
    if cmd == "eval-classifier":
        _eval_classifier(rest)
        return
    if cmd == "calibrate":
        _calibrate(rest)
        return
    if cmd == "export":
        _export(rest)
        return
    if cmd in ("aggregate", "plot"):
        _sweep(cmd, rest)
        return
    print(USAGE, end="", file=sys.stderr)
    _fail(
        SimrouteError(
            f"unknown command {cmd!r}; valid: run, cost, eval-router, eval-classifier, calibrate, export"
        )
    )


if __name__ == "__main__":
    main()
