"""TOFU's report sections: the forget-quality / model-utility paper table (Maini et al. 2024, Table 1's layout
with utility-constrained columns) and the trade-off plot, for every suite of the TOFU family (tofu, tofu-mini).
bench/report.py reaches them through `Tofu.paper_table` / `Tofu.plots`; it never names this module."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import stats
from bench.plots import error_bar, mean_trajectory, pyplot, save
from bench.tables import (COST, PaperTable, column_summary, distinct_runs, forgot_share, left_out_note, row_labels,
                          row_status)

FLOOR = 1e-30  # forget quality of exactly 0 drawn here on the log axis


TOFU_CAPTION = (
    "Cells: mean over seeds and its 95% Student-t interval [lo, hi] (forget quality: geometric mean, interval "
    "on log10). Bold: the best mean and every interval overlapping it (tied). Column rules: **FQ last** / "
    "**MU last** = forget quality / model utility after the last epoch; **FQ@MU** = utility-constrained forget "
    "quality, the best forget quality over epochs (epoch 0 = the target itself) whose model utility stays at or "
    "above 0.9 x the target's; **forgot** = runs whose forget ROUGE-L recall fell to the retain-only model's "
    "within the epochs; **MU@forgot** = model utility at that epoch (equal forgetting), over the runs that forgot: "
    "a cell over fewer than all of its row's finished runs, and a row with runs that did not finish, never compete "
    "for best. Reference rows are single models and "
    "never compete.")


TOFU_COLUMNS = {"forget_quality": ("FQ last", True), "model_utility": ("MU last", True),
                "fq_constrained": ("FQ@MU", True), "mu_at_forget": ("MU@forgot", True)}


def tofu_rows(runs: pd.DataFrame, refs: pd.DataFrame, metrics=(), shown=tuple(TOFU_COLUMNS)) -> tuple[list[dict], dict]:
    """Rows: target, retain, then each method; per split the columns `shown` (the suite's choice of FQ and
    MU at the last epoch, FQ@MU, MU@forgot), how many runs forgot, then cost."""
    splits = sorted(runs["split"].dropna().unique()) if not runs.empty else []
    metrics = {m.name: m for m in metrics}
    per_split = {c: TOFU_COLUMNS[c] for c in shown}
    columns = {}
    for split in splits:
        for metric, (header, higher) in per_split.items():
            columns[f"{split}:{metric}"] = (f"{split} {header}", higher)
    columns.update(COST)
    rows = []
    for role in ("(target)", "(retain)"):
        row = {"method": role, "runs": "", "status": "reference", "forgot": "", "reference": True}
        for split in splits:
            ref = refs[(refs["method"] == role) & (refs["split"] == split)] if not refs.empty else refs
            for metric in ("forget_quality", "model_utility"):
                row[f"{split}:{metric}"] = column_summary(ref, metric, metrics) if not ref.empty else None
        rows.append(row)
    runs = runs.assign(method=row_labels(runs, ["method"]))
    finished = runs[runs["status"] == "finished"]
    for method, group in runs.groupby("method", sort=True):
        done = finished[finished["method"] == method]
        runs_shown = f"{len(done)}/{len(group)}"
        done, distinct = distinct_runs(done)  # bit-identical replicates count once
        row = {"method": method, "runs": runs_shown + distinct, "status": row_status(group)}
        for split in splits:
            in_split = done[done["split"] == split]
            for metric in per_split:
                row[f"{split}:{metric}"] = column_summary(in_split, metric, metrics)
        row["forgot"] = forgot_share(done)
        for col in COST:
            row[col] = column_summary(done, col)
        rows.append(row)
    return rows, columns


def tofu_tradeoff(runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path, metrics=()) -> list[Path]:
    """Per split, tradeoff_<split>.png: forget quality (log axis) against model utility, each method's mean
    per-epoch trajectory and its last epoch with 95% intervals on both axes; target and retain-only as marks."""
    plt = pyplot()
    metric_of = {m.name: m for m in metrics}
    paths = []
    finished = runs[runs["status"] == "finished"]
    finished = finished.assign(method=row_labels(finished, ["method"]))  # other configs are other lines
    for split in sorted(finished["split"].unique()):
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        for method, group in finished[finished["split"] == split].groupby("method", sort=True):
            traj = mean_trajectory(group, "model_utility", "forget_quality", log_y=True)
            line, = ax.plot([t[1] for t in traj], [max(t[2], FLOOR) for t in traj], marker=".", alpha=0.6, label=method)
            mu = stats.summarize_metric(group["model_utility"], metric_of.get("model_utility"))
            fq = stats.summarize(group["forget_quality"], log_scale=True, bounds=(0.0, 1.0))
            if mu and fq:
                ax.errorbar([mu.mean], [max(fq.mean, FLOOR)], xerr=error_bar(mu), yerr=error_bar(fq), fmt="o",
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
        paths.append(save(plt, fig, out_dir / f"tradeoff_{split}.png"))
    return paths


def paper_table(suite, runs: pd.DataFrame, refs: pd.DataFrame) -> PaperTable:
    """The table of `suite` (a Tofu): its `paper_columns` per split, the caption naming what it leaves out."""
    rows, columns = tofu_rows(runs, refs, suite.metrics, suite.paper_columns)
    return PaperTable(rows, columns, ["method", "runs", "status", "forgot"],
                      TOFU_CAPTION + left_out_note(TOFU_COLUMNS, suite.paper_columns, runs))


def plots(suite, runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The trade-off plot per split (tradeoff_<split>.png in `out_dir`)."""
    return tofu_tradeoff(runs, refs, out_dir, suite.metrics)
