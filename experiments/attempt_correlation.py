"""Attempt correlation ``rho`` (``models.attempt_correlation``) from the bundled real outcomes.

Fits :func:`simroute.economics.calibrate.fit_attempt_correlation` (the estimator behind
``simroute calibrate --attempt-correlation``) to RouteLLM's GSM8K correctness table and to its
MT-Bench GPT-4-judge scores binarised at a threshold, across assumed difficulty spreads; then the
MT-Bench threshold sensitivity, a per-turn split (turn 2 of a question shares turn 1's context) and
a pooled profile (one ``rho``, abilities per dataset). ``--json PATH`` stores the fits at ``--sd``
and ``--threshold`` (GSM8K, MT-Bench, pooled: estimate, interval and its level). Usage::

    python experiments/attempt_correlation.py [--sd 1.0] [--threshold 8] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from simroute.analysis.router_eval import load_table
from simroute.economics.calibrate import fit_attempt_correlation, pair_profile_loglik

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT / "traces" / "quality" / "routellm_gsm8k_responses.csv.gz"
MT = ROOT / "traces" / "quality" / "routellm_mt_bench_judgements.jsonl.gz"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def mt_bench(threshold: float, turn: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Paired MT-Bench outcomes (judge score >= threshold) per (question, turn)."""
    scores: dict[tuple[int, int], dict[str, float]] = {}
    for line in gzip.decompress(MT.read_bytes()).decode().splitlines():
        r = json.loads(line)
        if turn is None or int(r["turn"]) == turn:
            scores.setdefault((int(r["question_id"]), int(r["turn"])), {})[r["model"]] = float(r["score"])
    keys = sorted(k for k, v in scores.items() if WEAK in v and STRONG in v)
    return (
        np.array([scores[k][WEAK] >= threshold for k in keys]),
        np.array([scores[k][STRONG] >= threshold for k in keys]),
    )


def line(name: str, w: np.ndarray, s: np.ndarray, sd: float) -> dict[str, Any]:
    """Print one fit; its estimate, interval and item count."""
    f = fit_attempt_correlation(w, s, difficulty_sd=sd)
    r = f.conditional_rates()
    o, p = r["observed"], r["fitted"]
    print(
        f"{name:28s} sd {sd:4.2f} n {len(w):5d}  rho {f.rho:.3f} [{f.interval[0]:.3f}, {f.interval[1]:.3f}]"
        f"  free {f.rho_unconstrained:+.3f}  P(S|W fails) {o['strong_ok_given_weak_fails']:.3f}/"
        f"{p['strong_ok_given_weak_fails']:.3f}  P(S|W ok) {o['strong_ok_given_weak_ok']:.3f}/"
        f"{p['strong_ok_given_weak_ok']:.3f}  (observed/fitted)"
    )
    return {
        "difficulty_sd": sd,
        "n_items": len(w),
        "estimate": f.rho,
        "interval": [f.interval[0], f.interval[1]],
        "level": f.level,
        "estimate_unconstrained": f.rho_unconstrained,
    }


def pooled(tables: list[np.ndarray], sd: float, level: float = 0.95) -> tuple[float, float, float, float]:
    """Pooled estimate and profile interval of one shared rho (grid of 1,001 points), and the
    likelihood-ratio statistic of "one rho for all tables" against one rho per table (df = tables − 1)."""
    grid = np.linspace(0.0, 1.0, 1001)
    each = np.array([[pair_profile_loglik(t, float(r), sd) for r in grid] for t in tables])
    ll = each.sum(0)
    inside = grid[ll >= ll.max() - 0.5 * NormalDist().inv_cdf(0.5 + 0.5 * level) ** 2]
    lr = 2.0 * float(each.max(1).sum() - ll.max())
    return float(grid[ll.argmax()]), float(inside.min()), float(inside.max()), lr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sd", type=float, default=1.0, help="difficulty spread (logits) of the main fits")
    ap.add_argument("--threshold", type=float, default=8.0, help="MT-Bench success: judge score >= this")
    ap.add_argument("--json", type=Path, default=None, help="store the fits at --sd and --threshold here")
    a = ap.parse_args()
    y, _, _ = load_table(GSM8K, [WEAK, STRONG])
    g_w, g_s = y[0].astype(bool), y[1].astype(bool)
    m_w, m_s = mt_bench(a.threshold)
    stored: dict[str, Any] = {"weak": WEAK, "strong": STRONG, "mt_bench_threshold": a.threshold}
    for sd in (0.5, a.sd, 1.5):
        fits = line("GSM8K", g_w, g_s, sd), line(f"MT-Bench (score>={a.threshold:g})", m_w, m_s, sd)
        if sd == a.sd:
            stored["gsm8k"], stored["mt_bench"] = fits
    for th in (6.0, 7.0, 8.0, 9.0, 10.0):
        line(f"MT-Bench (score>={th:g})", *mt_bench(th), a.sd)
    for t in (1, 2):
        line(f"MT-Bench turn {t}", *mt_bench(a.threshold, t), a.sd)

    def table(w: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.array([[np.sum(~w & ~s), np.sum(~w & s)], [np.sum(w & ~s), np.sum(w & s)]])

    est, lo, hi, lr = pooled([table(g_w, g_s), table(m_w, m_s)], a.sd)
    print(
        f"{'pooled (GSM8K + MT-Bench)':28s} sd {a.sd:4.2f}  rho {est:.3f} [{lo:.3f}, {hi:.3f}]"
        f"  one-rho-for-both LR {lr:.1f} (chi2_1; 3.84 = 5 %)"
    )
    stored["pooled"] = {"difficulty_sd": a.sd, "estimate": est, "interval": [lo, hi], "level": 0.95, "lr": lr}
    if a.json is not None:
        a.json.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
