"""Paper-style tables: the cells every suite's table is made of, and the robustness table. Every cell is the
mean over seeds (and forget sets) with its 95% interval; every method whose interval overlaps the best one's
is marked best with it (ties), never a single bolded number; the cost of each method (wall time, trainable
parameters, peak memory) sits beside its quality. A suite's own layout lives beside it (suites/tofu_report.py:
TOFU's forget-quality / model-utility grid; suites/tdec_report.py: Cha et al.'s TDEC table) and reaches the
report through `Suite.paper_table`, which returns a `PaperTable`."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.store import UNKNOWN_SETTINGS

# peak MB is the process's high-water RSS on CPU (in-process grids: the maximum so far), GPU memory on CUDA
COST = {"wall_s": ("wall s", False), "trainable_params": ("trainable", False), "peak_mem_mb": ("peak MB", False)}


@dataclass
class PaperTable:
    """A suite's paper-style table as bench/report.py writes it (paper_table.md / .tex and the HTML page):
    `rows` and `columns` as `cells` takes them, `keys` = the row's identifying columns shown first, and the
    Markdown `caption` that says what the cells are."""

    rows: list[dict]
    columns: dict[str, tuple[str, bool]]
    keys: list[str]
    caption: str


def left_out_note(columns: dict, shown: tuple[str, ...], runs: pd.DataFrame | None = None) -> str:
    """The caption's sentence naming the `columns` a suite's table could show but leaves out (its `paper_columns`
    choice), among those the `runs` measured, or "" when it leaves none out."""
    measured = lambda c: runs is None or (c in runs and pd.to_numeric(runs[c], errors="coerce").notna().any())
    left_out = [c for c in columns if c not in shown and measured(c)]
    return (f" Measured but left out of this suite's table (the suite's choice, made where the between-method "
            f"spread was not above the replicate spread: docs/suites.md; this set's spread: signal.md; every value: "
            f"leaderboard.csv): {', '.join(left_out)}." if left_out else "")


def cells(rows: list[dict], columns: dict[str, tuple[str, bool]], keys: list[str], tex: bool = False) -> list[dict]:
    """rows: {key..., col: Summary | None, 'reference': bool, 'ineligible': set of cols, 'status': `row_status`,
    'ranked': {col: Summary} for a column of a metric with an ideal (`column_ranked`)}; columns: name -> (header,
    higher_is_better). Formatted cells, best and tied-best in bold: by `higher_is_better`, or where a competing row
    gives its `ranked` summary, by nearness to the ideal (the lowest distance and every distance interval
    overlapping it; a row without one then does not compete). Reference rows, rows with runs that did not finish
    (their summaries speak for the runs that did) and ineligible cells never compete."""
    marked: dict[str, set[int]] = {}
    competing = [not r.get("reference") and r.get("status", "ok") == "ok" for r in rows]
    for col, (_, higher) in columns.items():
        eligible = [ok and col not in r.get("ineligible", ()) for r, ok in zip(rows, competing)]
        by_distance = any(ok and col in r.get("ranked", {}) for r, ok in zip(rows, eligible))
        candidates = [(r.get("ranked", {}).get(col) if by_distance else r.get(col)) if ok else None
                      for r, ok in zip(rows, eligible)]
        marked[col] = stats.best_and_tied(candidates, higher and not by_distance)
    table = []
    for i, r in enumerate(rows):
        line = {k: r[k] for k in keys}
        for col, (header, _) in columns.items():
            text = stats.fmt_summary(r.get(col))
            if i in marked[col]:
                text = rf"\textbf{{{text}}}" if tex else f"**{text}**"
            line[header] = text
        table.append(line)
    return table


def render(rows: list[dict], columns: dict[str, tuple[str, bool]], keys: list[str], tex: bool) -> str:
    """`cells` as one GitHub-Markdown table (tex=False) or LaTeX tabular (tex=True)."""
    return tabulate(cells(rows, columns, keys, tex), headers="keys", tablefmt="latex_raw" if tex else "github",
                    showindex=False)


# a run repeats another when both are of one model and forget set and every epoch's metrics are equal (bench.runs'
# `replicate` key: the seed changed nothing); never across forget sets, which are other data
REPEAT_SCOPE = ("model", "split")


def distinct_runs(done: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The finished runs `done` of one row without bit-identical replicates (REPEAT_SCOPE and the `replicate`
    key), so that they count once, never as a zero-width interval; and what the `runs` column adds then:
    ` (k distinct)`, else ""."""
    key = [c for c in (*REPEAT_SCOPE, "replicate") if c in done]
    if "replicate" in key and done.duplicated(key).any():
        kept = done.drop_duplicates(key)
        return kept, f" ({len(kept)} distinct)"
    return done, ""


def without_repeats(finished: pd.DataFrame) -> pd.DataFrame:
    """`finished` runs with each method's bit-identical replicates kept once (`distinct_runs`), for summaries
    that pool runs before grouping them (signal.md, agreement.md)."""
    if "replicate" not in finished or finished.empty:
        return finished
    row = [c for c in ("method", "settings") if c in finished]  # runs of other settings are other rows, never copies
    return pd.concat([distinct_runs(g)[0] for _, g in finished.groupby(row, sort=False, dropna=False)])


def row_status(group: pd.DataFrame) -> str:
    """`ok`, or what else the runs of a row are: `1 failed, 1 running`."""
    other = group[group["status"] != "finished"]["status"].value_counts()
    return ", ".join(f"{n} {status}" for status, n in sorted(other.items())) or "ok"


def row_labels(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The method label, with its settings appended (bench.runs.run_settings: `ga [lr=0.001 epochs=2]`)
    where one row name would cover runs of several settings: such runs are never averaged together.
    Forget sets, splits and seeds of one setting pool into one row."""
    if runs.empty:
        return runs["method"] if "method" in runs else pd.Series(dtype=object)
    by = "settings" if "settings" in runs else "config"
    distinct = runs.groupby(keys)[by].transform("nunique")
    tag = runs[by].astype(str).replace("", "defaults")
    # runs whose settings no readable record gives (UNKNOWN_SETTINGS) always say so
    return runs["method"].where((distinct <= 1) & (runs[by] != UNKNOWN_SETTINGS), runs["method"] + " [" + tag + "]")


def epoch_cap(runs: pd.DataFrame) -> float | None:
    """The largest epoch cap among `runs` (bench.runs.load_runs' max_epochs), bounding an epoch count's
    interval (Metric.cap_offset); None when the frame has none."""
    caps = pd.to_numeric(runs["max_epochs"], errors="coerce") if "max_epochs" in runs else pd.Series(dtype=float)
    return None if caps.isna().all() else float(caps.max())


def column_summary(frame: pd.DataFrame, col: str, metrics: dict | None = None):
    """Summary of column `col` with the scale and range of its metric. Cost: wall time with its interval;
    trainable parameters and peak memory, which do not vary with the seed, as plain means."""
    if col not in frame:
        return None
    values = pd.to_numeric(frame[col], errors="coerce")
    metric = (metrics or {}).get(col)
    if metric:
        return metric.summarize(values, epoch_cap(frame))
    s = stats.summarize(values, bounds=(0.0, float("inf")))
    return s if s is None or col == "wall_s" else stats.Summary(s.mean, None, None, s.n, s.missing)


def column_ranked(frame: pd.DataFrame, col: str, metrics: dict | None = None):
    """What `cells` ranks column `col` by where its metric has an ideal (privleak 0, an attack AUC 0.5): the
    distance summary `Metric.ranked` gives (against each run's calibrating value `<col>_ref` where the runs record
    one); None for any other column."""
    metric = (metrics or {}).get(col)
    if col not in frame or metric is None or metric.ideal is None:
        return None
    refs = pd.to_numeric(frame[col + "_ref"], errors="coerce") if col + "_ref" in frame else None
    return metric.ranked(pd.to_numeric(frame[col], errors="coerce"), refs, epoch_cap(frame))


def forgot_share(done: pd.DataFrame) -> str:
    """`k/n`: how many of the runs `done` set their `forgotten` flag (the suite's forgetting rule), "–" when none
    records it."""
    flags = done["forgotten"].dropna().astype(bool) if "forgotten" in done else pd.Series(dtype=bool)
    return f"{int(flags.sum())}/{len(flags)}" if len(flags) else "–"


ROBUSTNESS_VARIANTS = {"relearn_forget": "relearn (forget)", "relearn_retain": "relearn (retain)", "quant8": "8-bit",
                       "quant4": "4-bit", "paraphrase": "paraphrase"}
ROBUSTNESS_CAPTION = (
    "Does the forgetting survive? Each forgetting metric after the last epoch, then after each attack on the "
    "(merged) unlearned model: relearning on part of the forget set or on retain data only, 8- and 4-bit "
    "weights, the paraphrase probe; recovery = share of what unlearning removed that relearning brings back "
    "on forget items it did not train on (0 none, 1 all). The (target) row is the model before unlearning "
    "under the same quantisation and probe. Mean over seeds and forget sets, 95% Student-t interval; bold: "
    "best and tied-best per column.")


def robustness_rows(runs: pd.DataFrame, refs: pd.DataFrame, metrics=(), shown: tuple[str, ...] = ()
                    ) -> tuple[list[dict], dict]:
    """Rows: the target under quantisation and the probe, then each method; per metric in `shown` its value
    after the last epoch and after every attack present, then the relearning recoveries."""
    metric_of = {m.name: m for m in metrics}
    present = [c for c in runs.columns if "/" in c]
    columns: dict[str, tuple[str, bool]] = {}
    for name in shown:
        higher = metric_of[name].higher_is_better if name in metric_of else True
        for variant, label in {"": "last", **ROBUSTNESS_VARIANTS}.items():
            col = f"{variant}/{name}" if variant else name
            if not variant or col in present:
                columns[col] = (f"{name} {label}", higher)
    for variant in ("relearn_forget", "relearn_retain"):
        if f"{variant}/recovery" in present:
            columns[f"{variant}/recovery"] = (f"recovery {ROBUSTNESS_VARIANTS[variant]}", False)
    finished = runs[runs["status"] == "finished"]
    finished = finished.assign(method=row_labels(finished, ["method"]))
    if "forgotten" in finished:  # TDEC's flag: the share of runs that met the rule
        finished = finished.assign(forgotten=finished["forgotten"].map(lambda v: None if v is None else float(v)))
    target = {"method": "(target)", "runs": "", "reference": True}
    for col in columns:
        variant, _, name = col.rpartition("/")
        if not variant and not refs.empty and name in refs:  # TOFU: the target's own evaluation
            target[col] = column_summary(refs[refs["method"] == "(target)"], name, metric_of)
        elif variant in ("quant8", "quant4", "paraphrase"):
            target[col] = column_summary(finished, f"target_{col}", metric_of)
    rows = [target]
    for method, done in finished.groupby("method", sort=True):
        row = {"method": method, "runs": f"{len(done)}"}
        row.update({col: column_summary(done, col, metric_of) for col in columns})
        rows.append(row)
    return rows, columns
