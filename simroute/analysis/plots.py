"""PNG figures of a run: tier shares, latency CDF per tier, cost vs success against the baseline."""

from __future__ import annotations

from itertools import pairwise
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
    """Stacked bars: share of requests (0..1) routed to (first attempt) and served by (last) each
    tier. One run (one seed): no error bars."""
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
    """Empirical CDF of end-to-end latency (s, log scale) per final tier. One run (one seed): the
    CDF of its requests, no band."""
    r = res.requests
    fig, ax = plt.subplots(figsize=(6, 4))
    for t in _SERVED:
        _ecdf(ax, r.filter(r["final_tier"] == t)["e2e_s"].to_numpy(), _COLORS[t], t, "")
    _finish_cdf(fig, ax, "end-to-end latency (s)", "fraction of requests", title, path)


CDF_POINTS = 4096
"""Most vertices an empirical CDF line is drawn with (ranks evenly spaced, first and last kept):
a step of at most 1/4096 is far below a pixel of the figure, and a million-request run's curve
then draws in milliseconds, not seconds."""


def ecdf_points(x: np.ndarray, most: int = CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(x[i], (i + 1) / n)`` of the empirical CDF of the sorted ``x`` (``n`` values), at
    most ``most`` of them: every point when ``n <= most``, else those at ``most`` evenly spaced
    ranks from the first to the last. Each lies on the CDF."""
    n = len(x)
    idx = np.arange(n) if n <= most else np.unique(np.round(np.linspace(0, n - 1, most)).astype(np.int64))
    return x[idx], (idx + 1) / n


def _ecdf(ax: Any, values: np.ndarray, color: str, name: str, unit: str) -> None:
    """Draw the empirical CDF of the finite, positive ``values`` (a step line labelled with n)."""
    x = np.sort(values)
    x = x[np.isfinite(x) & (x > 0)]
    if len(x):
        label = f"{name} (n={len(x):,}{unit})"
        ax.step(*ecdf_points(x), where="post", color=color, label=label)


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
    its ``sessions`` table, see :func:`simroute.analysis.sessions.session_table`). One run per arm
    (one seed): no band."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, s) in enumerate(frames.items()):
        color = ("#264653", "#e76f51", "#2a9d8f", "#e9c46a")[k % 4]
        _ecdf(ax, s["makespan_s"].to_numpy(), color, name, " sessions")
    xlabel = "session makespan: first issue to last answer (s)"
    _finish_cdf(fig, ax, xlabel, "fraction of sessions", title, path)


def cost_vs_success(points: list[dict[str, Any]], path: Path, title: str) -> None:
    """Cost (USD per 1,000 requests) against success rate (share 0..1), one labelled point per
    architecture (``points``: ``name``, ``cost_per_request_usd``, ``success_rate``). One run per
    architecture (one seed): no error bars."""
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
    ax.set_ylabel("success rate (share of requests)")
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
    """End-to-end latency CDFs (s, log scale) of several runs, one panel per value of ``column``.
    Each line is one run (one seed): no band."""
    values = sorted({v for r in frames.values() for v in r[column].unique().to_list()})
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values), 3.8), squeeze=False, sharey=True)
    for ax, v in zip(axes[0], values, strict=True):
        for name, r in frames.items():
            x = np.sort(r.filter(r[column] == v)["e2e_s"].to_numpy())
            x = x[np.isfinite(x) & (x > 0)]
            if len(x):
                ax.step(*ecdf_points(x), where="post", label=name, lw=1)
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
    """Share of requests (0..1) routed to each tier per time bin of ``bins`` over the run (first
    attempt; x in hours), one panel per run. Each panel is one run (one seed): no band."""
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
        ax.set_ylabel("share of requests")
        ax.set_ylim(0, 1)
    axes[0, 0].legend(ncol=3, fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time (h)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def cost_breakdown(table: Any, path: Path, title: str, total_err: np.ndarray | None = None) -> None:
    """Stacked cost (USD per 1,000 requests) of each row of ``table`` (columns ``name``, the four
    parts in USD and ``n_requests``): input, cached input, output, local GPUs; PNG and SVG.

    ``total_err`` (USD per 1,000 requests, per row, e.g. the 95 % CI half-width of the total over
    seeds) draws an error bar on each stack; without it each bar is one run (one seed)."""
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
    if total_err is not None:
        ax.errorbar(np.arange(len(names)), bottom, yerr=total_err, fmt="none", ecolor="k", capsize=3, lw=1)
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("cost (USD per 1,000 requests)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


_RUN_COLORS = ("#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8d99ae", "#6a4c93")
_DAILY_PANELS: tuple[tuple[str, str], ...] = (
    ("share_local", "served locally (% of requests)"),
    ("usd_per_1k", "cost (USD per 1,000 requests,\nincl. evaluator and distillation)"),
    ("success_rate", "success rate (% of requests)"),
)
_JUMP = 0.05  # a day-over-day change of the local share (share) this large is annotated


def _daily_values(d: Any, metric: str) -> Any:
    """The panel's value per row of a daily table: % for shares, USD per 1,000 requests for cost."""
    import polars as pl

    if metric == "usd_per_1k":
        return d.select(pl.col("cost_with_feedback_usd") / pl.col("n_requests") * 1000).to_series()
    return d[metric] * 100


def _per_day(d: Any, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(days, mean, 95 % CI half-width or None) of a panel's metric over the seeds of a daily table
    (rows of several seeds when it has a ``seed`` column with more than one value)."""
    import polars as pl

    from simroute.analysis.sweep import t975

    g = (
        d.with_columns(_daily_values(d, metric).alias("v"))
        .group_by("day")
        .agg(pl.col("v").mean().alias("m"), pl.col("v").std().alias("sd"), pl.len().alias("n"))
        .sort("day")
    )
    n = int(g["n"].max() or 1)
    if n < 2:
        return g["day"].to_numpy(), g["m"].to_numpy(), None
    half = np.array([t975(int(k)) for k in g["n"]]) * g["sd"].to_numpy() / np.sqrt(g["n"].to_numpy())
    return g["day"].to_numpy(), g["m"].to_numpy(), half


def _local_change(prev: dict[str, Any], cur: dict[str, Any], before: set[str]) -> str:
    """What the router changed between two days of a daily table: the skills it added to the local
    tier ("again" if in ``before``, the skills sent local on an earlier day; with the distilled
    examples so far) or removed from it (``local_skills``); "" when the table does not say (no
    ``local_skills``) or the skills did not change. ``local_skills`` changes only when the nightly
    evaluator moves an estimate across the router's ``local_min_quality``."""
    if prev.get("local_skills") is None or cur.get("local_skills") is None:
        return ""
    was, now = set(prev["local_skills"].split(";")), set(cur["local_skills"].split(";"))
    parts = []
    if now - was:
        again = " again" if now - was <= before else ""
        ex = prev.get("examples_total")
        after = f"\n after {ex:,.0f} distilled examples)" if ex else ")"
        parts.append(
            f"{', '.join(sorted(now - was))} sent local{again}\n"
            f"(evaluator's estimate ≥ router's local_min_quality{after}"
        )
    if was - now:
        parts.append(
            f"{', '.join(sorted(was - now))} no longer sent local\n"
            "(evaluator's estimate < router's local_min_quality)"
        )
    return "\n".join(parts)


def _pct_range(v: list[float]) -> str:
    """'18%' or '18–19%' (shares 0..1 as whole percent)."""
    lo, hi = f"{min(v):.0%}", f"{max(v):.0%}"
    return hi if lo == hi else f"{lo[:-1]}–{hi}"


def _local_events(runs: dict[str, Any]) -> list[tuple[int, float, bool, str]]:
    """Days on which a run's local share moved by at least ``_JUMP`` (single-seed runs only):
    (day, highest local share after, whether it rose, text). Runs with the same change on the same
    day share one text, e.g. "day 2, c and d: ..." (variant names up to their first space); the text
    says what the router changed (:func:`_local_change`) and the local share before and after."""
    found: dict[tuple[int, bool, str], list[tuple[str, float, float]]] = {}
    for name, d in runs.items():
        if "seed" in d.columns and d["seed"].n_unique() > 1:
            continue
        before: set[str] = set()  # skills sent local on some earlier day
        for prev, cur in pairwise(d.sort("day").to_dicts()):
            before |= set((prev.get("local_skills") or "").split(";"))
            p0, p1 = prev["share_local"], cur["share_local"]
            if abs(p1 - p0) >= _JUMP:
                key = (int(cur["day"]), p1 > p0, _local_change(prev, cur, before))
                found.setdefault(key, []).append((name.split(" ")[0], p0, p1))
    out = []
    for (day, rise, change), v in found.items():
        names = " and ".join(n for n, _, _ in v)
        share = f"local share {_pct_range([x for _, x, _ in v])} → {_pct_range([y for _, _, y in v])}"
        text = f"day {day}, {names}: " + (f"{change}\n{share}" if change else share)
        out.append((day, max(y for _, _, y in v), rise, text))
    return out


def daily_figure(runs: dict[str, Any], path: Path, title: str) -> None:
    """Per day, one line per run (variant): local share (%), cost (USD per 1,000 requests, incl. the
    evaluator and distillation) and success rate (%); PNG at ``path`` and SVG beside it.

    ``runs``: variant name -> its daily table (``daily.parquet`` rows; several seeds when it has a
    ``seed`` column with more than one value: then the line is the mean and the band its 95 % CI;
    with one seed there is no band and the title should say so). Days on which the local share
    jumps are marked on every panel and explained on the first (from ``local_skills``).
    """
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8))
    for k, (name, d) in enumerate(runs.items()):
        color = _RUN_COLORS[k % len(_RUN_COLORS)]
        for ax, (metric, _) in zip(axes, _DAILY_PANELS, strict=True):
            day, mean, half = _per_day(d, metric)
            ax.plot(day, mean, marker=".", color=color, label=name)
            if half is not None:
                ax.fill_between(day, mean - half, mean + half, color=color, alpha=0.2, lw=0)
    days = sorted({int(x) for d in runs.values() for x in d["day"].to_list()})
    for ax, (_, ylabel) in zip(axes, _DAILY_PANELS, strict=True):
        ax.set_ylabel(ylabel)
        ax.set_xlabel("day of the run")
        ax.set_xticks(days)
        ax.grid(alpha=0.3)
    events = _local_events(runs)
    for ax, loc in zip(axes, ("lower right", "upper right", "lower right"), strict=True):
        _legend_room(ax, loc)
    if events:  # room above the lines for the texts; the share axis keeps ticks in 0..100 % only
        lo, hi = axes[0].get_ylim()
        axes[0].set_ylim(lo, hi + 0.42 * len(events) * (hi - lo))
        axes[0].set_yticks([t for t in axes[0].get_yticks() if 0 <= t <= 100])
    _mark_events(axes, events)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _legend_room(ax: Any, loc: str, room: float = 0.6) -> None:
    """Widen the y range by ``room`` of itself on the legend's side (``loc`` "upper ..." or
    "lower ...") and put the legend there, clear of the lines."""
    lo, hi = ax.get_ylim()
    if loc.startswith("upper"):
        ax.set_ylim(lo, hi + room * (hi - lo))
    else:
        ax.set_ylim(lo - room * (hi - lo), hi)
    ax.legend(fontsize=7.5, loc=loc)


def _mark_events(axes: Any, events: list[tuple[int, float, bool, str]]) -> None:
    """A dotted line on every panel the night before each event; on the first panel its text, stacked
    top right in the room above the lines, with an arrow to the new local share."""
    for k, (day, share, _, text) in enumerate(sorted(events)):
        for ax in axes:
            ax.axvline(day - 0.5, color="0.4", ls=":", lw=1, zorder=0)
        ann = axes[0].annotate(
            text,
            (day, share * 100),
            xytext=(0.985, 0.975 - 0.16 * k),
            textcoords="axes fraction",
            va="top",
            ha="right",
            fontsize=7,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.7", "lw": 0.6},
            arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8, "shrinkB": 3},
            zorder=5,
        )
        ann.set_in_layout(False)  # inside the axes: tight_layout must not shrink them for it
