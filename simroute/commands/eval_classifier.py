"""``simroute eval-classifier``: accuracy, macro-F1, confusion and latency of a text skill
classifier on labelled prompts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omegaconf import OmegaConf

from simroute.analysis import classifier_eval
from simroute.commands import fail
from simroute.errors import SimrouteError
from simroute.policy.text import EMBEDDERS, EmbeddingClassifier, KeywordClassifier, load_labelled


def main(argv: list[str]) -> None:
    """Run ``simroute eval-classifier`` with the arguments after the command name."""
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
        fail(e)
    res["classifier"] = a.classifier if a.classifier == "keyword" else f"embedding/{a.backend} k={a.k}"
    res["data"] = {"path": a.data, "where": where, "rows": len(texts)}
    res["confusion_rates"] = classifier_eval.row_normalised(res["confusion"])
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(
        f"{a.classifier}: {res['n']} prompts, accuracy {res['accuracy']:.3f}, "
        f"macro-F1 {res['macro_f1']:.3f}, {res['latency_ms_per_prompt']:.3f} ms/prompt "
        f"({res['split']['method']})"
    )
