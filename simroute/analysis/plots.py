"""PNG figures of a run: tier shares, latency CDF per tier, cost vs success against the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from simroute.outcomes import TIERS
from simroute.records import SimResult

_COLORS = {
    "local": "#2a9d8f",
    "batch": "#e9c46a",
    "realtime": "#e76f51",
    "cache": "#8d99ae",
    "none": "#d9d9d9",
}
_SERVED = (*TIERS, "cache", "none")  # a response-cache hit is served by no tier; none: cancelled
_PNG_META = {"Software": None}  # the matplotlib version; Agg writes no date
_SVG_META = {"Date": None, "Creator": None}  # the save time; the matplotlib version
_SVG_SALT = "simroute"  # fixed seed of the SVG element ids (clip paths, markers, glyphs)


def save_figure(fig: Any, path: Path, dpi: int = 120, svg: bool = True) -> None:
    """Write ``fig`` as a PNG at ``path`` (``dpi`` dots per inch) and, if ``svg``, as an SVG beside it
    (``path`` with the suffix ``.svg``), then close it.

    Both files are byte-deterministic: the same figure drawn twice gives the same bytes. The PNG
    carries no software version (Agg writes no timestamp); the SVG carries no date or creator, and
    its element ids are hashed with a fixed salt (``svg.hashsalt``, set only during the save)
    instead of a random UUID per save.
    """
    try:
        fig.savefig(path, dpi=dpi, metadata=_PNG_META)
        if svg:
            with matplotlib.rc_context({"svg.hashsalt": _SVG_SALT}):
                fig.savefig(path.with_suffix(".svg"), metadata=_SVG_META)
    finally:
        plt.close(fig)


def tier_share(res: SimResult, path: Path, title: str) -> None:
    """Stacked bars: share of requests routed to (first attempt) and served by (last) each tier."""
    r = res.requests
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, col in enumerate(("first_tier", "final_tier")):
        left = 0.0
        for t in _SERVED:
            share = float(np.mean((r[col] == t).to_numpy()))
            ax.barh(j, share, left=left, color=_COLORS[t], label=t if j == 0 else None)
            if share > 0.04:
                ax.text(left + share / 2, j, f"{share:.0%}", ha="center", va="center", fontsize=9)
            left += share
    ax.set_yticks([0, 1], ["routed\n(1st attempt)", "served\n(final)"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of requests")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, frameon=False)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, svg=False)


def latency_cdf(res: SimResult, path: Path, title: str) -> None:
    """Empirical CDF of end-to-end latency (s, log scale) per final tier."""
    r = res.requests
    fig, ax = plt.subplots(figsize=(6, 4))
    for t in _SERVED:
        _ecdf(ax, r.filter(r["final_tier"] == t)["e2e_s"].to_numpy(), _COLORS[t], t, "")
    _finish_cdf(fig, ax, "end-to-end latency (s)", "fraction of requests", title, path)


def _ecdf(ax: Any, values: np.ndarray, color: str, name: str, unit: str) -> None:
    """Draw the empirical CDF of the finite, positive ``values`` (a step line labelled with n)."""
    x = np.sort(values)
    x = x[np.isfinite(x) & (x > 0)]
    if len(x):
        label = f"{name} (n={len(x):,}{unit})"
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", color=color, label=label)


def _finish_cdf(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """Log x axis, labels, grid, legend and title; save (PNG, fixed metadata) and close."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, svg=False)


def session_makespan_cdf(frames: dict[str, Any], path: Path, title: str) -> None:
    """Empirical CDF of session makespan (s, log scale), one line per arm (``frames``: arm name ->
    its ``sessions`` table, see :func:`simroute.analysis.sessions.session_table`)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, s) in enumerate(frames.items()):
        color = ("#264653", "#e76f51", "#2a9d8f", "#e9c46a")[k % 4]
        _ecdf(ax, s["makespan_s"].to_numpy(), color, name, " sessions")
    xlabel = "session makespan: first issue to last answer (s)"
    _finish_cdf(fig, ax, xlabel, "fraction of sessions", title, path)


def cost_vs_success(points: list[dict[str, Any]], path: Path, title: str) -> None:
    """Cost per request (USD) against success rate, one labelled point per architecture."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, p in enumerate(points):
        ax.scatter(
            p["cost_per_request_usd"] * 1000,
            p["success_rate"],
            s=60,
            zorder=3,
            color=("#264653", "#e76f51", "#2a9d8f", "#e9c46a")[k % 4],
        )
        ax.annotate(
            p["name"],
            (p["cost_per_request_usd"] * 1000, p["success_rate"]),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=9,
        )
    ax.set_xlabel("cost (USD per 1,000 requests)")
    ax.margins(x=0.25, y=0.25)
    ax.set_ylabel("success rate")
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, svg=False)


_MAX_NAMED = 16  # more points than this are numbered, with a key beside the axes
_KEY_ROWS = 36  # rows per column of that key


def pareto_plot(
    names: list[str],
    cost: np.ndarray,
    quality: np.ndarray,
    path: Path,
    title: str,
    cost_err: np.ndarray | None = None,
    quality_err: np.ndarray | None = None,
) -> None:
    """Cost (USD per 1,000 requests) against success rate (share 0..1, drawn in %) of many runs, with
    the Pareto frontier and its AIQ; PNG at ``path`` and SVG beside it.

    Up to 16 points are labelled with their names, placed so that no label overlaps another or a
    point (leader lines where a label had to move); more are numbered, with a key of the numbers
    beside the axes. ``cost_err`` and ``quality_err`` (same units as ``cost`` and ``quality``, e.g.
    95 % CI half-widths over seeds) draw error bars; without them each point is one run (one seed)
    and the title should say so.
    """
    from simroute.analysis.labels import place_labels
    from simroute.analysis.metrics import aiq, pareto_frontier

    f = pareto_frontier(cost, quality)
    on = np.zeros(len(cost), dtype=bool)
    on[f] = True
    pct = quality * 100
    numbered = len(names) > _MAX_NAMED
    key_cols = -(-len(names) // _KEY_ROWS) if numbered else 0
    fig, ax = plt.subplots(figsize=(8 + 3.4 * key_cols, 5.5 + 0.8 * bool(key_cols)))
    if cost_err is not None or quality_err is not None:
        q_err = None if quality_err is None else quality_err * 100
        ax.errorbar(cost, pct, yerr=q_err, xerr=cost_err, fmt="none", ecolor="0.6", lw=0.8, zorder=1)
    ax.scatter(cost[~on], pct[~on], s=36, color="#adb5bd", zorder=2, label="dominated")
    ax.scatter(cost[on], pct[on], s=50, color="#e76f51", zorder=3, label="Pareto frontier")
    ax.step(cost[f], pct[f], where="post", color="#e76f51", lw=1.2, zorder=1)
    ax.set_xlabel("cost (USD per 1,000 requests)")
    ax.set_ylabel("success rate (% of requests)")
    ax.grid(alpha=0.3)
    ax.margins(x=0.22, y=0.12)
    leg = ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title}\nAIQ of the frontier {aiq(cost, quality):.3f}", fontsize=10)
    right = 8 / (8 + 3.4 * key_cols)
    fig.tight_layout(rect=(0.0, 0.0, right, 1.0))
    labels = [str(i + 1) for i in range(len(names))] if numbered else names
    place_labels(ax, cost, pct, labels, avoid=[leg])
    per_col = -(-len(names) // key_cols) if key_cols else 0  # balanced columns
    for c in range(key_cols):
        rows = range(c * per_col, min((c + 1) * per_col, len(names)))
        key = "\n".join(f"{i + 1:>3}  {names[i]}" for i in rows)
        fig.text(right + c * (1 - right) / key_cols, 0.95, key, va="top", fontsize=6.5, family="monospace")
    save_figure(fig, path, dpi=120)


def latency_cdf_by(frames: dict[str, Any], column: str, path: Path, title: str) -> None:
    """End-to-end latency CDFs (s, log scale) of several runs, one panel per value of ``column``."""
    values = sorted({v for r in frames.values() for v in r[column].unique().to_list()})
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values), 3.8), squeeze=False, sharey=True)
    for ax, v in zip(axes[0], values, strict=True):
        for name, r in frames.items():
            x = np.sort(r.filter(r[column] == v)["e2e_s"].to_numpy())
            x = x[np.isfinite(x) & (x > 0)]
            if len(x):
                ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=name, lw=1)
        ax.set_xscale("log")
        ax.set_title(f"{column} = {v}", fontsize=9)
        ax.set_xlabel("end-to-end latency (s)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of requests")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def tier_share_over_time(frames: dict[str, Any], path: Path, title: str, bins: int = 24) -> None:
    """Share of requests routed to each tier per time bin (first attempt), one panel per run."""
    span = max(float(r["arrival_s"].max() or 0.0) for r in frames.values())
    bin_s = max(span / bins, 1.0)
    fig, axes = plt.subplots(len(frames), 1, figsize=(7, 1.9 * len(frames) + 0.6), squeeze=False, sharex=True)
    for ax, (name, r) in zip(axes[:, 0], frames.items(), strict=True):
        b = (r["arrival_s"].to_numpy() // bin_s).astype(int)
        nb = int(b.max()) + 1 if len(b) else 1
        bottom = np.zeros(nb)
        total = np.maximum(np.bincount(b, minlength=nb), 1)
        for t in _SERVED:
            share = np.bincount(b[(r["first_tier"] == t).to_numpy()], minlength=nb) / total
            ax.bar(
                np.arange(nb) * bin_s / 3600,
                share,
                width=bin_s / 3600,
                bottom=bottom,
                color=_COLORS[t],
                label=t,
                align="edge",
            )
            bottom += share
        ax.set_title(name, fontsize=8, loc="left")
        ax.set_ylabel("share")
        ax.set_ylim(0, 1)
    axes[0, 0].legend(ncol=3, fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time (h)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def cost_breakdown(table: Any, path: Path, title: str) -> None:
    """Stacked cost per 1,000 requests of each run: input, cached input, output, local GPUs."""
    parts = [
        ("cost_input_usd", "input (incl. cache writes)", "#e76f51"),
        ("cost_cached_input_usd", "cached input", "#f4a261"),
        ("cost_output_usd", "output", "#e9c46a"),
        ("cost_local_usd", "local GPUs", "#2a9d8f"),
    ]
    names = table["name"].to_list()
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4.2))
    bottom = np.zeros(len(names))
    for col, label, color in parts:
        v = table[col].to_numpy() * 1000 / table["n_requests"].to_numpy()
        ax.bar(np.arange(len(names)), v, bottom=bottom, label=label, color=color)
        bottom += v
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("USD per 1,000 requests")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def daily_figure(runs: dict[str, Any], path: Path, title: str) -> None:
    """Per day: local share, cost vs tokens, success rate — one line per run (variant)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, d in runs.items():
        day = d["day"].to_numpy()
        axes[0].plot(day, d["share_local"].to_numpy() * 100, marker=".", label=name)
        axes[1].plot(day, d["cost_with_feedback_usd"].to_numpy(), marker=".", label=f"{name}: cost")
        axes[2].plot(day, d["success_rate"].to_numpy() * 100, marker=".", label=name)
    tokens = next(iter(runs.values()))
    ax2 = axes[1].twinx()
    ax2.plot(
        tokens["day"].to_numpy(),
        (tokens["prompt_tokens"] + tokens["output_tokens"]).to_numpy() / 1e6,
        color="grey",
        ls="--",
        label="tokens (M)",
    )
    ax2.set_ylabel("tokens per day (millions, dashed)")
    axes[0].set_ylabel("served locally (% of requests)")
    axes[1].set_ylabel("cost per day (USD, incl. evaluator and distillation)")
    axes[2].set_ylabel("success rate (%)")
    for ax in axes:
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
