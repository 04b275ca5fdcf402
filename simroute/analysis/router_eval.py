"""Evaluate weak/strong routers directly on a per-prompt outcome table (no simulation).

The table (CSV, plain or gzip) has a ``prompt`` column and one True/False column per model, as in
RouteLLM's ``gsm8k_responses.csv``. A router scores every prompt (higher = more in need of the
strong model); sending the top ``s`` share of prompts to the strong model and the rest to the weak
one gives one point of its quality-vs-strong-call-share curve. Routers:

* ``random`` — the expected curve of random routing (the straight line from weak to strong);
* ``oracle`` — the perfect router: strong calls go first to prompts only the strong model solves;
* ``length`` — longer prompts first (no training);
* ``numbers`` — prompts with more numbers first (no training; a math-specific heuristic);
* ``logistic`` — logistic regression of "weak fails and strong succeeds" on cheap text features
  (length, numbers, sentences, question words), trained on a seeded split of the table that is
  reported and disjoint from the evaluation split.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simroute import rng as rng_mod
from simroute.analysis.metrics import apgr, cpt
from simroute.errors import InputError

ROUTERS: tuple[str, ...] = ("random", "oracle", "length", "numbers", "logistic")


@dataclass(frozen=True)
class Outcomes:
    """Per-prompt correctness of a weak and a strong model (``matrix``: every listed model, rows)."""

    prompts: list[str]
    weak: np.ndarray
    strong: np.ndarray
    source: str
    matrix: np.ndarray
    skills: list[str] | None = None


def load_table(
    path: str | Path, models: list[str], skill_column: str | None = None
) -> tuple[np.ndarray, list[str] | None, list[str]]:
    """Outcome matrix (models × prompts, 0/1), optional skill per prompt, and the prompts."""
    out = load_outcomes(path, models[0], models[-1], extra=models[1:-1], skill_column=skill_column)
    return out.matrix, out.skills, out.prompts


def load_outcomes(
    path: str | Path, weak: str, strong: str, extra: list[str] | None = None, skill_column: str | None = None
) -> Outcomes:
    """Read the table; check the columns and that they hold booleans."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        df = pl.read_csv(io.BytesIO(raw), infer_schema=False)
    except FileNotFoundError:
        raise InputError(str(p), "file not found") from None
    except Exception as e:
        raise InputError(str(p), f"not a readable CSV ({type(e).__name__}: {e})") from None
    names = [weak, *(extra or []), strong]
    for c in ["prompt", *names, *([skill_column] if skill_column else [])]:
        if c not in df.columns:
            raise InputError(str(p), f"missing column {c!r}; columns are {df.columns[:8]}")
    cols = {}
    for c in names:
        v = df[c].str.to_lowercase()
        ok = v.is_in(["true", "false", "1", "0"])
        if not ok.all():
            i = int((~ok).arg_true()[0])
            raise InputError(str(p), f"expected True/False, got {df[c][i]!r}", row=i + 1, column=c)
        cols[c] = v.is_in(["true", "1"]).to_numpy()
    return Outcomes(
        df["prompt"].to_list(),
        cols[weak],
        cols[strong],
        str(p),
        np.vstack([cols[c] for c in names]).astype(float),
        df[skill_column].to_list() if skill_column else None,
    )


_NUM = re.compile(r"\d+(?:\.\d+)?")


def features(prompts: list[str]) -> np.ndarray:
    """Cheap text features: log length, numbers, sentences, question words, percent/fraction signs."""
    rows = []
    for t in prompts:
        low = t.lower()
        rows.append(
            [
                np.log1p(len(t)),
                len(_NUM.findall(t)),
                t.count(".") + t.count("?"),
                sum(low.count(w) for w in ("how many", "how much", "what", "each", "per", "total")),
                t.count("%") + t.count("/") + low.count("percent") + low.count("half") + low.count("twice"),
            ]
        )
    return np.array(rows, dtype=np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 500) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns weights (bias last)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    w = np.zeros(z.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-z @ w))
        g = z.T @ (p - y) + l2 * np.r_[w[:-1], 0]
        h = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(w))
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return np.asarray(np.r_[w[:-1] / sd, w[-1] - (w[:-1] * mu / sd).sum()])


def curve(
    score: np.ndarray, weak: np.ndarray, strong: np.ndarray, points: int = 101
) -> tuple[np.ndarray, np.ndarray]:
    """Quality at strong-call shares 0, 1/(points-1), ..., 1 when the top-scored go strong."""
    n = len(score)
    order = np.argsort(-score, kind="stable")
    gain = strong[order].astype(float) - weak[order].astype(float)
    cum = np.r_[0.0, np.cumsum(gain)]
    share = np.linspace(0, 1, points)
    k = np.rint(share * n).astype(int)
    return share, (weak.sum() + cum[k]) / n


def evaluate(out: Outcomes, seed: int = 0, train_fraction: float = 0.5) -> dict[str, Any]:
    """Curves and APGR/CPT of every router on the evaluation split."""
    g = rng_mod.stream(seed, "router_eval.split")
    n = len(out.prompts)
    perm = g.permutation(n)
    n_train = round(train_fraction * n)
    tr, ev = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    x = features(out.prompts)
    y = (~out.weak & out.strong).astype(float)
    w = fit_logistic(x[tr], y[tr])
    weak, strong = out.weak[ev], out.strong[ev]
    qw, qs = float(weak.mean()), float(strong.mean())
    scorers: dict[str, Callable[[], np.ndarray]] = {
        "oracle": lambda: (strong.astype(float) - weak.astype(float)) + 1e-9 * np.arange(len(ev))[::-1],
        "length": lambda: x[ev, 0],
        "numbers": lambda: x[ev, 1] + 1e-3 * x[ev, 0],
        "logistic": lambda: np.column_stack([x[ev], np.ones(len(ev))]) @ w,
    }
    result: dict[str, Any] = {
        "source": out.source,
        "n_prompts": n,
        "seed": seed,
        "split": {"train": len(tr), "eval": len(ev), "train_fraction": train_fraction},
        "weak_quality": qw,
        "strong_quality": qs,
        "routers": {},
    }
    share = np.linspace(0, 1, 101)
    curves = {"random": (share, qw + share * (qs - qw))}
    for name, f in scorers.items():
        curves[name] = curve(f(), weak, strong)
    for name, (s, q) in curves.items():
        result["routers"][name] = {
            "apgr": apgr(s, q, qw, qs),
            "cpt50": cpt(s, q, qw, qs, 0.5),
            "cpt80": cpt(s, q, qw, qs, 0.8),
            "curve": {"strong_share": s.tolist(), "quality": q.tolist()},
        }
    result["routers"]["logistic"]["weights"] = w.tolist()
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    """RouteLLM-style plot: quality (share of held-out prompts answered correctly, 0..1) against the
    share of calls sent to the strong model (%), one curve per router, with the weak and the strong
    model alone as reference lines. One train/eval split (``result["seed"]``): no error bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simroute.analysis.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, r in result["routers"].items():
        c = r["curve"]
        ax.plot(
            np.array(c["strong_share"]) * 100,
            c["quality"],
            label=f"{name} (APGR {r['apgr']:.3f})",
            ls="--" if name in ("random", "oracle") else "-",
        )
    ax.axhline(result["weak_quality"], color="grey", lw=0.8, ls=":", label="weak model alone")
    ax.axhline(result["strong_quality"], color="grey", lw=0.8, label="strong model alone")
    ax.set_xlabel("calls to the strong model (% of prompts)")
    ax.set_ylabel("quality (share of prompts answered correctly)")
    ax.set_title(
        f"{Path(result['source']).name}: routers on {result['split']['eval']} held-out prompts\n"
        f"(one train/eval split, seed {result.get('seed', 0)}: no error bands)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, svg=False)
