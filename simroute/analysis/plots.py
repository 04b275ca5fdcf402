"""PNG figures of a run: tier shares, latency CDF per tier, cost vs success against the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from simroute.policy.types import TIERS
from simroute.sim.run import SimResult

_COLORS = {"local": "#2a9d8f", "batch": "#e9c46a", "realtime": "#e76f51"}
_META = {"Software": None}


def tier_share(res: SimResult, path: Path, title: str) -> None:
    """Stacked bars: share of requests routed to (first attempt) and served by (last) each tier."""
    r = res.requests
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, col in enumerate(("first_tier", "final_tier")):
        left = 0.0
        for t in TIERS:
            share = float(np.mean((r[col] == t).to_numpy()))
            ax.barh(j, share, left=left, color=_COLORS[t], label=t if j == 0 else None)
            if share > 0.04:
                ax.text(left + share / 2, j, f"{share:.0%}", ha="center", va="center", fontsize=9)
            left += share
    ax.set_yticks([0, 1], ["routed\n(1st attempt)", "served\n(final)"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of requests")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata=_META)
    plt.close(fig)


def latency_cdf(res: SimResult, path: Path, title: str) -> None:
    """Empirical CDF of end-to-end latency (s, log scale) per final tier."""
    r = res.requests
    fig, ax = plt.subplots(figsize=(6, 4))
    for t in TIERS:
        x = np.sort(r.filter(r["final_tier"] == t)["e2e_s"].to_numpy())
        x = x[np.isfinite(x) & (x > 0)]
        if len(x):
            ax.step(
                x,
                np.arange(1, len(x) + 1) / len(x),
                where="post",
                color=_COLORS[t],
                label=f"{t} (n={len(x):,})",
            )
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata=_META)
    plt.close(fig)


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
    fig.savefig(path, dpi=120, metadata=_META)
    plt.close(fig)


def pareto_plot(names: list[str], cost: np.ndarray, quality: np.ndarray, path: Path, title: str) -> None:
    """Cost vs quality of many runs with the Pareto frontier and its AIQ (PNG, and SVG beside it)."""
    from simroute.analysis.metrics import aiq, pareto_frontier

    f = pareto_frontier(cost, quality)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    on = np.zeros(len(cost), dtype=bool)
    on[f] = True
    ax.scatter(cost[~on], quality[~on], s=40, color="#adb5bd", zorder=2, label="dominated")
    ax.scatter(cost[on], quality[on], s=55, color="#e76f51", zorder=3, label="Pareto frontier")
    ax.step(cost[f], quality[f], where="post", color="#e76f51", lw=1.2, zorder=1)
    for i, n in enumerate(names):
        ax.annotate(n, (cost[i], quality[i]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xlabel("cost (USD per 1,000 requests)")
    ax.set_ylabel("success rate")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title}\nAIQ of the frontier {aiq(cost, quality):.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata=_META)
    fig.savefig(path.with_suffix(".svg"), metadata={"Date": None})
    plt.close(fig)
