"""TDEC's report sections: the paper table in the layout of Cha et al.'s TDEC table (epochs to forget, then
utility, then cost) and the epochs-to-forget plot, for every suite of the TDEC family (tdec, tdec-mini).
bench/report.py reaches them through `Tdec.paper_table` / `Tdec.plots`; it never names this module."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import stats
from bench.plots import error_bar, pyplot, save
from bench.tables import (COST, PaperTable, column_summary, distinct_runs, epoch_cap, left_out_note, row_labels,
                          row_status)


TDEC_CAPTION = (
    "Cells: mean over seeds and forget sets with its 95% Student-t interval [lo, hi]. Epochs to forget: over "
    "the runs that reached the unseen-data thresholds (`forgotten` counts them); a cell over fewer than all of "
    "its row's finished runs, and a row with runs that did not finish, never compete for best, so epochs to forget "
    "competes only when all forgot. Utility columns are measured after the last epoch (the stopping epoch); a "
    "row some of whose runs the epoch cap stopped competes on no column but trainable parameters and peak memory "
    "(it kept utility that forgetting would have cost, and its wall time is the cap's). Bold: best mean and every interval overlapping it (tied). – = not measured.")


TDEC_COLUMNS = {"epochs_to_forget": ("epochs to forget", False), "reasoning_acc": ("reasoning acc", True),
                "dialogue_f1": ("dialogue F1", True), "ppl_pile": ("Pile PPL", False),
                "ppl_heldout": ("held-out PPL", False)}


def tdec_rows(runs: pd.DataFrame, metrics=(), shown=tuple(TDEC_COLUMNS)) -> tuple[list[dict], dict]:
    """Rows: model x method (objective + adapter/rank); mean and interval over forget sets and seeds;
    quality columns `shown` (the suite's choice), then cost."""
    columns = {**{c: TDEC_COLUMNS[c] for c in shown}, **COST}
    metrics = {m.name: m for m in metrics}
    runs = runs.assign(method=row_labels(runs, ["model", "method"]))
    finished = runs[runs["status"] == "finished"]
    rows = []
    for (model, method), group in runs.groupby(["model", "method"], sort=True):
        done = finished[(finished["model"] == model) & (finished["method"] == method)]
        runs_shown = f"{len(done)}/{len(group)}"
        done, distinct = distinct_runs(done)
        forgot = done["forgotten"].fillna(False).astype(bool) if "forgotten" in done else pd.Series(dtype=bool)
        row = {"model": model, "method": method, "runs": runs_shown + distinct, "status": row_status(group),
               "forgotten": f"{int(forgot.sum())}/{len(done)}",
               # a run the cap stopped, not forgetting: its utility is what forgetting never cost and its wall time
               # the cap's, so such a row competes only on what does not depend on when a run stops
               "ineligible": set() if len(done) and forgot.all() else set(columns) - {"trainable_params",
                                                                                         "peak_mem_mb"}}
        for col in columns:
            row[col] = column_summary(done, col, metrics)
        rows.append(row)
    return rows, columns


def tdec_epochs(runs: pd.DataFrame, out_dir: Path, metric=None) -> list[Path]:
    """Epochs to forget per method; runs that did not forget count at their cap + 1 (a lower bound). `metric`:
    the suite's epochs_to_forget_or_cap, whose range clips the intervals."""
    plt = pyplot()
    finished = runs[runs["status"] == "finished"].copy()
    if finished.empty or "epochs_to_forget_or_cap" not in finished:
        return []
    finished["method"] = row_labels(finished, ["model", "method"])  # other configs are other bars
    finished["epochs"] = pd.to_numeric(finished["epochs_to_forget_or_cap"], errors="coerce")
    ranks = sorted(set(finished.loc[finished["adapter"] != "full", "rank"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    if len(ranks) <= 1:  # one rank: a point per method would stack on one x value; bars read better
        groups = list(finished.groupby("method", sort=True))
        summaries = [stats.summarize_metric(g["epochs"], metric, epoch_cap(g)) for _, g in groups]
        xs = range(len(groups))
        ax.bar(xs, [s.mean for s in summaries], color=["C0" if "+fila" in m else "C1" if "+lora" in m else "C2"
                                                        for m, _ in groups])
        for x, s in zip(xs, summaries):
            ax.errorbar([x], [s.mean], yerr=error_bar(s), color="black", capsize=3)
        ax.set_xticks(list(xs), [m for m, _ in groups], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("epochs to forget (cap + 1 where not forgotten)")
    else:
        if "settings" not in finished:
            finished["settings"] = ""
        # one line per method and setting: runs with another lr or epochs cap never share a point
        for (objective, adapter, setting), group in finished[finished["adapter"] != "full"].groupby(
                ["objective", "adapter", "settings"]):
            points = [(r, stats.summarize_metric(g["epochs"], metric, epoch_cap(g))) for r, g in group.groupby("rank")]
            ax.errorbar([r for r, _ in points], [s.mean for _, s in points],
                        yerr=[[e for _, s in points for e in error_bar(s)[0]], [e for _, s in points for e in error_bar(s)[1]]],
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
    return [save(plt, fig, out_dir / "epochs_to_forget.png")]


def paper_table(suite, runs: pd.DataFrame, refs: pd.DataFrame) -> PaperTable:
    """The table of `suite` (a Tdec): its `paper_columns`, the caption naming what it leaves out."""
    rows, columns = tdec_rows(runs, suite.metrics, suite.paper_columns)
    return PaperTable(rows, columns, ["model", "method", "runs", "status", "forgotten"],
                      TDEC_CAPTION + left_out_note(TDEC_COLUMNS, suite.paper_columns, runs))


def plots(suite, runs: pd.DataFrame, refs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Epochs to forget per method (epochs_to_forget.png in `out_dir`; none when no run records it)."""
    return tdec_epochs(runs, out_dir, next((m for m in suite.metrics if m.name == "epochs_to_forget_or_cap"), None))
