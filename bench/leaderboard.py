"""The leaderboard every suite gets: one row per (model, split, method, configuration) with, for every metric, the
mean over seeds and its 95% interval, how many runs finished, and which rows are best or tied with the best
(interval overlapping the best one's) within a model and split; the reference models' rows first."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.runs import load_runs, reference_rows
from bench.store import ResultStore
from bench.tables import distinct_runs, epoch_cap, row_labels
from suites import SUITES


COST = ("wall_s", "trainable_params", "peak_mem_mb")


GROUP = ["model", "split", "method", "lr", "config"]


def leaderboard_columns(suite_name: str, runs: pd.DataFrame) -> list[str]:
    """Headline metrics first, then the suite's other metrics that the runs have."""
    suite = SUITES[suite_name]
    names = list(suite.headline) + [m.name for m in suite.metrics if m.name not in suite.headline]
    return [n for n in names if n in runs.columns and pd.to_numeric(runs[n], errors="coerce").notna().any()]


def leaderboard(suite_name: str, store: ResultStore, epoch: str = "last", runs: pd.DataFrame | None = None,
                refs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (model, split, method, config): for every metric the mean over seeds and its 95%
    interval (`<m>`, `<m>_lo`, `<m>_hi`), `n` finished runs, and `<m>_best` = best or tied with it
    (interval overlaps the best one's) within the same model and split."""
    suite = SUITES[suite_name]
    runs = load_runs(suite_name, store, epoch) if runs is None else runs
    if runs.empty or "model" not in runs:
        return runs
    if "settings" in runs:  # rows that one method name would cover say which settings they differ in
        runs = runs.assign(method=row_labels(runs, ["model", "split", "method"]).fillna(runs["method"]))
    finished = runs[runs["status"] == "finished"]
    metric_cols = leaderboard_columns(suite_name, finished)
    metric_of = {m.name: m for m in suite.metrics}
    table, summaries, excluded = [], [], []
    for key, group in runs.groupby(GROUP, dropna=False, sort=True):
        done = finished.merge(group[["run_id"]], on="run_id")
        row = dict(zip(GROUP, key))
        row["runs"] = f"{len(done)}/{len(group)}"
        done, distinct = distinct_runs(done)  # bit-identical runs: one observation
        row["runs"] += distinct
        row["n"] = len(done)
        statuses = sorted(set(group["status"]) - {"finished"})
        row["status"] = "ok" if not statuses else ",".join(statuses)
        forgot = None  # how many runs reached the forgetting rule within the cap (None: the suite has no rule)
        if "forgotten" in done and len(done):
            forgot = int(done["forgotten"].fillna(False).astype(bool).sum())
            row["forgotten"] = f"{forgot}/{len(done)}"
        sums = {}
        for col in metric_cols + list(COST):
            s = stats.summarize_metric(pd.to_numeric(done[col], errors="coerce"), metric_of.get(col),
                                       epoch_cap(done)) if col in done else None
            sums[col] = s
            row[col] = s.mean if s else None
            if col in metric_cols:
                row[col + "_lo"], row[col + "_hi"] = (s.lo, s.hi) if s else (None, None)
            metric = metric_of.get(col)
            if s and metric is not None and metric.ideal is not None:  # ranked by nearness to the ideal
                ref = pd.to_numeric(done[col + "_ref"], errors="coerce") if col + "_ref" in done else None
                if metric.calibrated and ref is not None and ref.notna().any():  # its own calibrating model's value
                    row[col + "_ref"] = float(ref.mean())
                sums[col + "_rank"] = metric.ranked(pd.to_numeric(done[col], errors="coerce"), ref)
        table.append(row)
        summaries.append(sums)
        # where runs stop when they forget, a run the cap stopped shows the cap's epoch, not a stopping epoch:
        # its utility is what forgetting never cost, so such a row competes on no last-epoch column (a column
        # over the runs that forgot has missing runs there anyway, which best_and_tied leaves out)
        stopped_by_cap = (epoch == "last" and forgot is not None and forgot < len(done)
                          and bool(done.get("stops_at_forgetting", pd.Series(dtype=bool)).any()))
        # a row with failed or running runs speaks for the runs that finished: it competes on nothing
        excluded.append({"capped": forgot == 0 or bool(statuses), "other": stopped_by_cap or bool(statuses)})
    frame = pd.DataFrame(table)
    direction = {m.name: m.higher_is_better for m in suite.metrics}
    ideal = {m.name: m.ideal for m in suite.metrics}
    for col in metric_cols:
        frame[col + "_best"] = False
        for _, idx in frame.groupby(["model", "split"]).groups.items():
            idx = list(idx)
            capped = getattr(metric_of.get(col), "cap_offset", None) == 1
            # an epoch count with cap + 1 for a run that never forgot measures speed only when some run forgot
            out = [excluded[i]["capped"] if capped else excluded[i]["other"] for i in idx]
            ranks = [None if o else summaries[i].get(col + "_rank", summaries[i][col]) for i, o in zip(idx, out)]
            if any(col + "_ref" in table[i] for i in idx):  # calibrated: a row without its model's value is apart
                ranks = [r if col + "_ref" in table[i] else None for r, i in zip(ranks, idx)]
            # a metric with an ideal is ranked by distances (Metric.ranked), nearest best
            tied = stats.best_and_tied(ranks, direction[col] and ideal.get(col) is None)
            frame.loc[[idx[i] for i in tied], col + "_best"] = True
    refs = reference_rows(suite_name, store) if refs is None else refs
    if not refs.empty:  # one row per role, summarised like the methods when references vary by seed
        rows = []
        for (model, split, method), group in refs.groupby(["model", "split", "method"], sort=False):
            row = {"model": model, "split": split, "method": method, "status": "reference", "runs": f"{len(group)}"}
            for col in metric_cols:
                s = metric_of[col].summarize(pd.to_numeric(group[col], errors="coerce")) if col in group else None
                if s is not None:
                    row[col], row[col + "_lo"], row[col + "_hi"] = s.mean, s.lo, s.hi
            rows.append(row)
        frame = pd.concat([pd.DataFrame(rows), frame], ignore_index=True)
    return frame


def format_leaderboard(frame: pd.DataFrame, suite_name: str, tex: bool = False) -> pd.DataFrame:
    """Readable leaderboard: `mean [lo, hi]` per metric, best and tied-best in bold."""
    metrics = [c for c in leaderboard_columns(suite_name, frame) if c + "_lo" in frame]
    keep = ["model", "split", "method", "runs", "status"] + (["forgotten"] if "forgotten" in frame else [])
    out = pd.DataFrame({k: frame[k] for k in keep if k in frame}).astype(object).where(lambda d: d.notna(), "")
    for col in metrics:
        cells = []
        for _, r in frame.iterrows():
            s = None if pd.isna(r.get(col)) else stats.Summary(
                r[col], None if pd.isna(r.get(col + "_lo")) else r[col + "_lo"],
                None if pd.isna(r.get(col + "_hi")) else r[col + "_hi"], 0)
            text = stats.fmt_summary(s) if s else ""
            ref = r.get(col + "_ref")
            if text and ref is not None and not pd.isna(ref):
                text += f" (ref {stats.fmt(ref)})"
            if text and r.get(col + "_best") is True:
                text = rf"\textbf{{{text}}}" if tex else f"**{text}**"
            cells.append(text)
        out[col] = cells
    for col in COST:
        if col in frame:
            out[col] = frame[col].map(lambda v: "" if v is None or pd.isna(v) else stats.fmt(v))
    return out


def print_leaderboard(suite: str, store: ResultStore) -> None:
    """The formatted leaderboard of `suite` on stdout (GitHub Markdown), or a line saying there are no runs."""
    frame = leaderboard(suite, store)
    if frame.empty:
        print(f"no runs of suite {suite} in {store.root}")
        return
    print(tabulate(format_leaderboard(frame, suite), headers="keys", tablefmt="github", showindex=False))


def leaderboard_note(suite, stops_at_forgetting: bool = False) -> str:
    """The leaderboard's caption for `suite` (a Suite): how cells are summarised and what bold means, naming only
    the suite's own log-scale metrics. `stops_at_forgetting`: the runs stop when they forget (TDEC; the runs'
    `stops_at_forgetting` column), so the caption states the rule for runs the cap stopped."""
    logged = sorted({m.name.split("/")[-1] for m in suite.metrics if m.log_scale})
    scale = f"; {', '.join(logged)} on a log scale (geometric mean)" if logged else ""
    capped = [m.name for m in suite.metrics if m.cap_offset == 1]
    cap = (f"; on {', '.join(capped)} a row none of whose runs forgot is never bold (the cap + 1 it shows is the "
           "cap's, not a speed)" if capped else "")
    if stops_at_forgetting:
        cap += ("; runs stop when they forget, so the last epoch is the stopping epoch: a row some of whose runs "
                "the epoch cap stopped instead is bold on no column but the capped count (its utility is what "
                "forgetting never cost)")
    return (f"mean over seeds and its 95% Student-t interval [lo, hi]{scale}; bold = best mean or an interval "
            "overlapping the best one's (tied) within a model and split (privleak: nearest 0; membership-inference "
            "AUCs: nearest the AUC, on the same items, of a model never trained on the forget set, shown as (ref x), "
            f"else nearest 0.5); a row with runs that did not finish (`status`), and a cell that lacks some of its "
            f"row's finished runs (one over the runs that forgot, where not all did), are never bold{cap}; `runs` = "
            "finished / all")
