"""MUSE's report sections: the paper table in the layout of Shi et al. 2024's Table 3 (VerbMem on D_f, KnowMem
on D_f, PrivLeak, KnowMem on D_r), at MUSE's checkpoint and after the last epoch, and the trade-off plot, for every
suite of the MUSE family (muse, muse-mini). bench/report.py reaches them through `Muse.paper_table` /
`Muse.plots`; it never names this module."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import stats
from bench.plots import error_bar, mean_trajectory, pyplot, save
from bench.tables import (COST, PaperTable, column_ranked, column_summary, distinct_runs, forgot_share, left_out_note,
                          row_labels, row_status)

MUSE_CAPTION = (
    "Cells: mean over seeds and its 95% Student-t interval [lo, hi]; VerbMem and KnowMem are ROUGE-L F1 in [0, 1] "
    "(the paper prints x 100), PrivLeak in %. Column rules: **@ckpt** = at MUSE's checkpoint, the first epoch "
    "whose KnowMem on D_f is at most the retrained model's (Shi et al. 2024, Section 4; a tie counts), averaged "
    "over the runs that reached it (**reached** counts them; a cell over fewer than all of its row's finished "
    "runs never competes for best, so a row competes there only when all reached it, and a row with runs that did "
    "not finish never does); "
    "**last** = after the last epoch. PrivLeak = (s - r) / r x 100 with s, r = 1 - Min-K% AUC (forget vs holdout "
    "text) of the model and of the retrained model: 0 is as private as retraining, -100 fully exposed, > 0 "
    "over-unlearned; nearest 0 is best: its columns bold the row whose distance to 0 is least and every row whose "
    "distance interval overlaps that one's. Bold: best mean and every interval overlapping it (tied). Reference "
    "rows are single models and never compete. – = not measured.")

MUSE_COLUMNS = {"verbmem_f": ("VerbMem D_f", False), "knowmem_f": ("KnowMem D_f", False),
                "privleak": ("PrivLeak", False), "knowmem_r": ("KnowMem D_r", True)}


def muse_rows(runs: pd.DataFrame, refs: pd.DataFrame, metrics=(), shown=tuple(MUSE_COLUMNS)) -> tuple[list[dict], dict]:
    """Rows: per split the target and retrained model, then each method; the columns `shown` at the checkpoint
    (`<metric>_at_forget`) and after the last epoch, the checkpoint epoch, then cost."""
    metrics = {m.name: m for m in metrics}
    columns = {"epochs_to_forget": ("ckpt epoch", False)}
    for when, suffix in (("@ckpt", "_at_forget"), ("last", "")):
        for metric in shown:
            header, higher = MUSE_COLUMNS[metric]
            columns[f"{metric}{suffix}"] = (f"{header} {when}", higher)
    columns.update(COST)
    rows = []
    splits = sorted(set(runs["split"].dropna())) if "split" in runs else []
    runs = runs.assign(method=row_labels(runs, ["split", "method"])) if not runs.empty else runs
    for split in splits:
        for role in ("(target)", "(retrained)"):
            ref = refs[(refs["method"] == role) & (refs["split"] == split)] if not refs.empty else refs
            if ref.empty:
                continue
            row = {"split": split, "method": role, "runs": "", "status": "reference", "reached": "", "reference": True}
            for metric in shown:  # a single model: its one value in both column groups
                row[metric] = row[f"{metric}_at_forget"] = column_summary(ref, metric, metrics)
            rows.append(row)
        in_split = runs[runs["split"] == split]
        finished = in_split[in_split["status"] == "finished"]
        for method, group in in_split.groupby("method", sort=True):
            done = finished[finished["method"] == method]
            runs_shown = f"{len(done)}/{len(group)}"
            done, distinct = distinct_runs(done)  # bit-identical replicates count once
            row = {"split": split, "method": method, "runs": runs_shown + distinct, "status": row_status(group),
                   "reached": forgot_share(done), "ranked": {}}
            for col in columns:
                row[col] = column_summary(done, col, metrics)
                if (ranked := column_ranked(done, col, metrics)) is not None:  # privleak: nearest 0 is best
                    row["ranked"][col] = ranked
            rows.append(row)
    return rows, columns


def muse_tradeoff(runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path, metrics=()) -> list[Path]:
    """Per split, muse_tradeoff_<split>.png: utility (KnowMem on D_r) against forgetting (KnowMem on D_f), each
    method's mean per-epoch trajectory, its checkpoint (filled) and last epoch (open) with 95% intervals on both
    axes; the target and the retrained model as marks, the retrained model's KnowMem on D_f (the checkpoint rule's
    bar) as a dashed line."""
    plt = pyplot()
    metric_of = {m.name: m for m in metrics}
    finished = runs[runs["status"] == "finished"] if "status" in runs else runs
    if finished.empty or "knowmem_f" not in finished:
        return []
    finished = finished.assign(method=row_labels(finished, ["split", "method"]))
    paths = []
    for split in sorted(finished["split"].unique()):
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        for method, group in finished[finished["split"] == split].groupby("method", sort=True):
            traj = mean_trajectory(group, "knowmem_f", "knowmem_r")
            line, = ax.plot([t[1] for t in traj], [t[2] for t in traj], marker=".", alpha=0.6, label=method)
            for suffix, face in (("_at_forget", line.get_color()), ("", "white")):
                x = stats.summarize_metric(group.get(f"knowmem_f{suffix}", pd.Series(dtype=float)).dropna(),
                                           metric_of.get("knowmem_f"))
                y = stats.summarize_metric(group.get(f"knowmem_r{suffix}", pd.Series(dtype=float)).dropna(),
                                           metric_of.get("knowmem_r"))
                if x and y:
                    ax.errorbar([x.mean], [y.mean], xerr=error_bar(x), yerr=error_bar(y), fmt="o", color=line.get_color(),
                                markerfacecolor=face, markersize=8, markeredgecolor="black", capsize=3, zorder=3)
        for role, marker in (("(target)", "X"), ("(retrained)", "*")):
            ref = refs[(refs["method"] == role) & (refs["split"] == split)] if not refs.empty else refs
            if not ref.empty and "knowmem_f" in ref:
                ax.scatter(ref["knowmem_f"], ref["knowmem_r"], marker=marker, s=160, color="black",
                           label=role.strip("()"), zorder=4)
                if role == "(retrained)":
                    ax.axvline(float(ref["knowmem_f"].mean()), linestyle="--", color="gray", linewidth=1)
        ax.set_xlabel("KnowMem on D_f (ROUGE-L F1; lower = forgotten)")
        ax.set_ylabel("KnowMem on D_r (utility preservation)")
        ax.set_title(f"MUSE {split}: per-epoch trajectories; checkpoint (filled) and last epoch (open),\n"
                     f"95% intervals over seeds; dashed: the retrained model's KnowMem on D_f", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        paths.append(save(plt, fig, out_dir / f"muse_tradeoff_{split}.png"))
    return paths


def paper_table(suite, runs: pd.DataFrame, refs: pd.DataFrame) -> PaperTable:
    """The table of `suite` (a Muse): its `paper_columns` at the checkpoint and after the last epoch, the caption
    stating the checkpoint rule and naming what it leaves out."""
    rows, columns = muse_rows(runs, refs, suite.metrics, suite.paper_columns)
    return PaperTable(rows, columns, ["split", "method", "runs", "status", "reached"],
                      MUSE_CAPTION + left_out_note(MUSE_COLUMNS, suite.paper_columns, runs))


def plots(suite, runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The utility / forgetting trade-off per split (muse_tradeoff_<split>.png in `out_dir`)."""
    return muse_tradeoff(runs, refs, out_dir, suite.metrics)
