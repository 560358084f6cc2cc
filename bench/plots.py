"""Trade-off plots (PNG): TOFU forget quality (log scale) against model utility with each method's
per-epoch trajectory; TDEC epochs-to-forget against LoRA / FILA rank per objective."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tofu_tradeoff(runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    paths = []
    finished = runs[runs["status"] == "finished"]
    for split in sorted(finished["split"].unique()):
        fig, ax = plt.subplots(figsize=(7, 5))
        for method, group in finished[finished["split"] == split].groupby("method", sort=True):
            traj = group.iloc[0]["trajectory"]  # the first seed's path; the marker is the reported epoch
            xs = [m.get("model_utility") for _, m in traj]
            ys = [max(m.get("forget_quality", 0), 1e-30) for _, m in traj]
            line, = ax.plot(xs, ys, marker=".", alpha=0.7, label=method)
            ax.scatter(group["model_utility"], group["forget_quality"].clip(lower=1e-30), color=line.get_color(),
                       s=60, edgecolor="black", zorder=3)
        for role, marker in (("(target)", "X"), ("(retain)", "*")):
            ref = refs[(refs["method"] == role) & (refs["split"] == split)] if not refs.empty else refs
            if not ref.empty:
                ax.scatter(ref["model_utility"], ref["forget_quality"].clip(lower=1e-30), marker=marker, s=160,
                           color="black", label=role.strip("()"), zorder=4)
        ax.set_yscale("log")
        ax.set_xlabel("model utility")
        ax.set_ylabel("forget quality (KS p-value, log)")
        ax.set_title(f"TOFU {split}: per-epoch trajectories (large dots: reported epoch)")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out_dir / f"tradeoff_{split}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def tdec_epochs_vs_rank(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Not-forgotten runs are drawn at their epoch cap with an open marker."""
    plt = _pyplot()
    finished = runs[runs["status"] == "finished"].copy()
    if finished.empty:
        return []
    finished["epochs"] = finished["epochs_to_forget"].astype(float).fillna(finished["max_epochs"].astype(float))
    fig, ax = plt.subplots(figsize=(7, 5))
    for (objective, adapter), group in finished[finished["adapter"] != "full"].groupby(["objective", "adapter"]):
        by_rank = group.groupby("rank")["epochs"].mean()
        ax.plot(by_rank.index, by_rank.values, marker="o" if adapter == "fila" else "s",
                linestyle="-" if adapter == "fila" else "--", label=f"{objective}+{adapter}")
    for objective, group in finished[finished["adapter"] == "full"].groupby("objective"):
        ax.axhline(group["epochs"].mean(), linestyle=":", color="gray")
        ax.annotate(f"{objective} full", (ax.get_xlim()[0], group["epochs"].mean()), fontsize=7, color="gray")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rank")
    ax.set_ylabel("epochs to forget (cap where not forgotten)")
    ax.set_title("TDEC: epochs to reach the unseen-data thresholds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "epochs_vs_rank.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
