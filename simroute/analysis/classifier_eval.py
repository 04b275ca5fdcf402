"""Evaluate a text skill classifier on labelled prompts: accuracy, macro-F1, confusion, latency.

Classifiers that learn from examples (``embedding``) are scored by grouped k-fold cross-validation:
items of one group (e.g. both turns of one MT-Bench question) fall in the same fold, so nothing
about a test prompt's own question is seen in training; folds are assigned by a seeded permutation
of the groups. Rule classifiers (``keyword``) have nothing to train and are scored on every prompt.
The confusion matrix (row-normalised) can be handed to the simulator's ``noisy`` classifier as its
``confusion`` argument when the labels are the run's skills.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from simroute import rng as rng_mod
from simroute.errors import ConfigError

Predictor = Callable[[Sequence[str]], list[tuple[str, float]]]


def scores(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label precision/recall/F1/support and the confusion counts."""
    idx = {lab: i for i, lab in enumerate(labels)}
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(truth, pred, strict=True):
        cm[idx[t], idx[p]] += 1
    tp = np.diag(cm).astype(np.float64)
    prec = np.divide(tp, cm.sum(axis=0), out=np.zeros(k), where=cm.sum(axis=0) > 0)
    rec = np.divide(tp, cm.sum(axis=1), out=np.zeros(k), where=cm.sum(axis=1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=(prec + rec) > 0)
    present = cm.sum(axis=1) > 0
    return {
        "n": int(cm.sum()),
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_label": {
            lab: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(cm[i].sum()),
            }
            for i, lab in enumerate(labels)
        },
        "confusion": {lab: {p: int(cm[i, j]) for j, p in enumerate(labels)} for i, lab in enumerate(labels)},
    }


def evaluate(
    texts: Sequence[str],
    labels: Sequence[str],
    make: Callable[[list[tuple[str, str]]], Predictor] | None,
    rule: Predictor | None = None,
    folds: int = 5,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a trained classifier (``make(train_examples) -> predict``) by grouped k-fold, or a rule
    classifier (``rule``) on everything. Latency is wall time per prompt of the predictions."""
    if (make is None) == (rule is None):
        raise ConfigError("evaluate: give exactly one of make (trained) or rule")
    n = len(texts)
    classes = sorted(set(labels))
    pred: list[str] = [""] * n
    t_pred = 0.0
    split: dict[str, Any]
    if rule is not None:
        t0 = time.perf_counter()
        pred = [p for p, _ in rule(list(texts))]
        t_pred = time.perf_counter() - t0
        split = {"method": "none (rule classifier: nothing trained)"}
    else:
        assert make is not None
        if folds < 2:
            raise ConfigError(f"--folds must be >= 2, got {folds}")
        g = list(groups) if groups is not None else [str(i) for i in range(n)]
        uniq = sorted(set(g))
        if len(uniq) < folds:
            raise ConfigError(f"{len(uniq)} groups cannot make {folds} folds")
        perm = rng_mod.stream(seed, "eval_classifier.folds").permutation(len(uniq))
        fold_of = {u: int(perm[i] % folds) for i, u in enumerate(uniq)}
        fold = np.array([fold_of[x] for x in g])
        for f in range(folds):
            test = np.flatnonzero(fold == f).tolist()
            train = np.flatnonzero(fold != f).tolist()
            predict = make([(texts[i], labels[i]) for i in train])
            t0 = time.perf_counter()
            out = predict([texts[i] for i in test])
            t_pred += time.perf_counter() - t0
            for i, (p, _) in zip(test, out, strict=True):
                pred[i] = p
        split = {"method": f"grouped {folds}-fold cross-validation", "groups": len(uniq), "seed": seed}
    labs = sorted(set(classes) | set(pred))
    res = scores(labels, pred, labs)
    res["split"] = split
    res["latency_ms_per_prompt"] = 1000.0 * t_pred / max(n, 1)
    return res


def row_normalised(confusion: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Counts -> probabilities per true label (the ``noisy`` classifier's ``confusion`` format)."""
    out = {}
    for t, row in confusion.items():
        s = sum(row.values())
        if s:
            out[t] = {p: c / s for p, c in row.items()}
    return out
