"""Plots (PNG) with intervals over seeds. TOFU: forget quality (log) against model utility, each
method's mean per-epoch trajectory and its reported point with 95% intervals on both axes. TDEC:
epochs to forget per method with intervals: bars when the runs have one rank, lines against rank
otherwise (full fine-tuning as reference lines)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import stats
from bench.tables import row_labels

FLOOR = 1e-30  # forget quality of exactly 0 drawn here on the log axis


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _err(s: stats.Summary | None) -> list[list[float]]:
    """Matplotlib's asymmetric error bar for one summary (0 where there is no interval)."""
    if s is None or not s.has_interval:
        return [[0.0], [0.0]]
    return [[max(s.mean - s.lo, 0.0)], [max(s.hi - s.mean, 0.0)]]


def mean_trajectory(group: pd.DataFrame) -> list[tuple[int, float, float]]:
    """(epoch, mean MU, geometric-mean FQ) over the runs of a method, epoch by epoch."""
    by_epoch: dict[int, list[dict]] = {}
    for traj in group["trajectory"]:
        for epoch, metrics in traj:
            by_epoch.setdefault(epoch, []).append(metrics)
    out = []
    for epoch in sorted(by_epoch):
        mu = stats.summarize([m.get("model_utility") for m in by_epoch[epoch]])
        fq = stats.summarize([m.get("forget_quality") for m in by_epoch[epoch]], log_scale=True)
        if mu and fq:
            out.append((epoch, mu.mean, max(fq.mean, FLOOR)))
    return out


def tofu_tradeoff(runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path, metrics=()) -> list[Path]:
    plt = _pyplot()
    metric_of = {m.name: m for m in metrics}
    paths = []
    finished = runs[runs["status"] == "finished"]
    finished = finished.assign(method=row_labels(finished, ["method"]))  # other configs are other lines
    for split in sorted(finished["split"].unique()):
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        for method, group in finished[finished["split"] == split].groupby("method", sort=True):
            traj = mean_trajectory(group)
            line, = ax.plot([t[1] for t in traj], [t[2] for t in traj], marker=".", alpha=0.6, label=method)
            mu = stats.summarize_metric(group["model_utility"], metric_of.get("model_utility"))
            fq = stats.summarize(group["forget_quality"], log_scale=True, bounds=(0.0, 1.0))
            if mu and fq:
                ax.errorbar([mu.mean], [max(fq.mean, FLOOR)], xerr=_err(mu), yerr=_err(fq), fmt="o",
                            color=line.get_color(), markersize=8, markeredgecolor="black", capsize=3, zorder=3)
        for role, marker in (("(target)", "X"), ("(retain)", "*")):
            ref = refs[(refs["method"] == role) & (refs["split"] == split)] if not refs.empty else refs
            if not ref.empty:
                ax.scatter(ref["model_utility"], ref["forget_quality"].clip(lower=FLOOR), marker=marker, s=160,
                           color="black", label=role.strip("()"), zorder=4)
        ax.set_yscale("log")
        ax.set_xlabel("model utility")
        ax.set_ylabel("forget quality (KS p-value, log)")
        ax.set_title(f"TOFU {split}: mean per-epoch trajectories;\nlast epoch with 95% intervals over "
                     f"{int(finished.groupby('method').size().min())}+ seeds", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out_dir / f"tradeoff_{split}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def tdec_epochs(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Epochs to forget per method; runs that did not forget count at their cap + 1 (a lower bound)."""
    plt = _pyplot()
    finished = runs[runs["status"] == "finished"].copy()
    if finished.empty or "epochs_to_forget_or_cap" not in finished:
        return []
    finished["method"] = row_labels(finished, ["model", "method"])  # other configs are other bars
    finished["epochs"] = pd.to_numeric(finished["epochs_to_forget_or_cap"], errors="coerce")
    ranks = sorted(set(finished.loc[finished["adapter"] != "full", "rank"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    if len(ranks) <= 1:  # one rank: a point per method would stack on one x value; bars read better
        groups = list(finished.groupby("method", sort=True))
        summaries = [stats.summarize(g["epochs"]) for _, g in groups]
        xs = range(len(groups))
        ax.bar(xs, [s.mean for s in summaries], color=["C0" if "+fila" in m else "C1" if "+lora" in m else "C2"
                                                        for m, _ in groups])
        for x, s in zip(xs, summaries):
            ax.errorbar([x], [s.mean], yerr=_err(s), color="black", capsize=3)
        ax.set_xticks(list(xs), [m for m, _ in groups], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("epochs to forget (cap + 1 where not forgotten)")
    else:
        if "settings" not in finished:
            finished["settings"] = ""
        # one line per method and setting: runs with another lr or epochs cap never share a point
        for (objective, adapter, setting), group in finished[finished["adapter"] != "full"].groupby(
                ["objective", "adapter", "settings"]):
            points = [(r, stats.summarize(g["epochs"])) for r, g in group.groupby("rank")]
            ax.errorbar([r for r, _ in points], [s.mean for _, s in points],
                        yerr=[[e for _, s in points for e in _err(s)[0]], [e for _, s in points for e in _err(s)[1]]],
                        marker="o" if adapter == "fila" else "s", linestyle="-" if adapter == "fila" else "--",
                        capsize=3, label=f"{objective}+{adapter}" + (f" [{setting}]" if setting else ""))
        for (objective, setting), group in finished[finished["adapter"] == "full"].groupby(["objective", "settings"]):
            ax.axhline(group["epochs"].mean(), linestyle=":", color="gray")
            ax.annotate(f"{objective} full" + (f" [{setting}]" if setting else ""), (ranks[0], group["epochs"].mean()),
                        fontsize=7, color="gray")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("rank")
        ax.set_ylabel("epochs to forget (cap + 1 where not forgotten)")
        ax.legend(fontsize=7)
    ax.set_title("TDEC: epochs to reach the unseen-data thresholds (mean, 95% interval over runs)", fontsize=10)
    fig.tight_layout()
    path = out_dir / "epochs_to_forget.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def robustness(runs: pd.DataFrame, out_dir: Path, metric: str, metrics=()) -> list[Path]:
    """`metric` per method after the last epoch and after each attack (grouped bars, 95% intervals); the
    target under the same quantisation as dotted lines."""
    from bench.tables import ROBUSTNESS_VARIANTS

    plt = _pyplot()
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
                ax.errorbar([s.mean], [y], xerr=_err(s), color="black", capsize=2, linewidth=0.8)
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
    fig.tight_layout()
    path = out_dir / f"robustness_{metric}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
