"""Plots (PNG) with intervals over seeds: the helpers every suite's plots use (`pyplot`, `error_bar`) and the
robustness plot every suite with robustness stages gets. A suite's own plots live beside it
(suites/tofu_report.py: forget quality against model utility; suites/tdec_report.py: epochs to forget)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import stats
from bench.tables import ROBUSTNESS_VARIANTS, row_labels


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed). Imported here, not at module top:
    matplotlib takes about a second to load, and `bench report` without plots never needs it."""
    # matplotlib loads when this runs, not on import of bench.plots
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_bar(s: stats.Summary | None) -> list[list[float]]:
    """Matplotlib's asymmetric error bar for one summary (0 where there is no interval)."""
    if s is None or not s.has_interval:
        return [[0.0], [0.0]]
    return [[max(s.mean - s.lo, 0.0)], [max(s.hi - s.mean, 0.0)]]


def save(plt, fig, path: Path) -> Path:
    """Write `fig` to `path` (PNG, 120 dpi) laid out tight, and close it (pyplot keeps every open figure)."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def mean_trajectory(group: pd.DataFrame, x: str, y: str, log_y: bool = False) -> list[tuple[int, float, float]]:
    """(epoch, mean of metric `x`, mean of metric `y`; geometric where `log_y`) over the runs of one method,
    epoch by epoch, from each run's `trajectory` [(epoch, {metric: value})]; an epoch without both is left out."""
    by_epoch: dict[int, list[dict]] = {}
    for traj in group["trajectory"]:
        for epoch, metrics in traj:
            by_epoch.setdefault(epoch, []).append(metrics)
    out = []
    for epoch in sorted(by_epoch):
        mx = stats.summarize([m.get(x) for m in by_epoch[epoch]])
        my = stats.summarize([m.get(y) for m in by_epoch[epoch]], log_scale=log_y)
        if mx and my:
            out.append((epoch, mx.mean, my.mean))
    return out


def robustness(runs: pd.DataFrame, out_dir: Path, metric: str, metrics=()) -> list[Path]:
    """`metric` per method after the last epoch and after each attack (grouped bars, 95% intervals); the
    target under the same quantisation as dotted lines."""
    plt = pyplot()
    metric_of = {m.name: m for m in metrics}
    finished = runs[runs["status"] == "finished"]
    finished = finished.assign(method=row_labels(finished, ["method"]))
    variants = [""] + [v for v in ROBUSTNESS_VARIANTS if f"{v}/{metric}" in finished]
    if len(variants) < 2:
        return []
    groups = list(finished.groupby("method", sort=True))[::-1]  # first method on top
    height = 0.8 / len(variants)
    # methods down the page, so that dozens of them stay legible
    fig, ax = plt.subplots(figsize=(9, max(4.0, 0.55 * len(groups) + 1.5)))
    for k, variant in enumerate(variants[::-1]):
        col = f"{variant}/{metric}" if variant else metric
        summaries = [stats.summarize_metric(pd.to_numeric(g[col], errors="coerce"), metric_of.get(metric))
                     for _, g in groups]
        ys = [i + (k - (len(variants) - 1) / 2) * height for i in range(len(groups))]
        ax.barh(ys, [s.mean if s else 0.0 for s in summaries], height, color=f"C{len(variants) - 1 - k}",
                label=ROBUSTNESS_VARIANTS.get(variant, "last epoch"))
        for y, s in zip(ys, summaries):
            if s is not None:
                ax.errorbar([s.mean], [y], xerr=error_bar(s), color="black", capsize=2, linewidth=0.8)
    for variant in ("quant8", "quant4"):
        target = pd.to_numeric(finished.get(f"target_{variant}/{metric}", pd.Series(dtype=float)), errors="coerce")
        if target.notna().any():
            ax.axvline(target.mean(), linestyle=":", color=f"C{variants.index(variant)}" if variant in variants else "gray",
                       label=f"target {ROBUSTNESS_VARIANTS[variant]}")
    if metric_of.get(metric) is not None and metric_of[metric].log_scale:
        ax.set_xscale("log")
    ax.set_yticks(range(len(groups)), [m for m, _ in groups], fontsize=8)
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} after the last epoch and after each attack\n(mean, 95% interval over runs)", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], fontsize=7, loc="lower right")
    return [save(plt, fig, out_dir / f"robustness_{metric}.png")]
