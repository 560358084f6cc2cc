"""Paper-style tables: the layout of Cha et al.'s TDEC table and TOFU's forget-quality / model-utility
grid. Every cell is the mean over seeds (and forget sets) with its 95% interval; every method whose
interval overlaps the best one's is marked best with it (ties), never a single bolded number; the cost
of each method (wall time, trainable parameters, peak memory) sits beside its quality."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from bench import stats

# peak MB is the process's high-water RSS on CPU (in-process grids: the maximum so far), GPU memory on CUDA
COST = {"wall_s": ("wall s", False), "trainable_params": ("trainable", False), "peak_mem_mb": ("peak MB", False)}

TOFU_CAPTION = (
    "Cells: mean over seeds and its 95% Student-t interval [lo, hi] (forget quality: geometric mean, interval "
    "on log10). Bold: the best mean and every interval overlapping it (tied). Column rules: **FQ last** / "
    "**MU last** = forget quality / model utility after the last epoch; **FQ@MU** = utility-constrained forget "
    "quality, the best forget quality over epochs (epoch 0 = the target itself) whose model utility stays at or "
    "above 0.9 x the target's; **forgot** = runs whose forget ROUGE-L recall fell to the retain-only model's "
    "within the epochs; **MU@forgot** = model utility at that epoch (equal forgetting). Reference rows are "
    "single models and never compete.")
TDEC_CAPTION = (
    "Cells: mean over seeds and forget sets with its 95% Student-t interval [lo, hi]. Epochs to forget: over "
    "the runs that reached the unseen-data thresholds (`forgotten` counts them); a row competes for best "
    "only when all its runs forgot. Utility columns are measured after the last epoch (the stopping epoch). "
    "Bold: best mean and every interval overlapping it (tied). – = not measured.")


def cells(rows: list[dict], columns: dict[str, tuple[str, bool]], keys: list[str], tex: bool = False) -> list[dict]:
    """rows: {key..., col: Summary | None, 'reference': bool, 'ineligible': set of cols};
    columns: name -> (header, higher_is_better). Formatted cells, best and tied-best in bold; reference
    rows and ineligible cells never compete."""
    marked: dict[str, set[int]] = {}
    for col, (_, higher) in columns.items():
        candidates = [r.get(col) if not r.get("reference") and col not in r.get("ineligible", ()) else None
                      for r in rows]
        marked[col] = stats.best_and_tied(candidates, higher)
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
    return tabulate(cells(rows, columns, keys, tex), headers="keys", tablefmt="latex_raw" if tex else "github",
                    showindex=False)


def _status(group: pd.DataFrame) -> str:
    """`ok`, or what else the runs of a row are: `1 failed, 1 running`."""
    other = group[group["status"] != "finished"]["status"].value_counts()
    return ", ".join(f"{n} {status}" for status, n in sorted(other.items())) or "ok"


def row_labels(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The method label, with its settings appended (bench.report.run_settings: `ga [lr=0.001 epochs=2]`)
    where one row name would cover runs of several settings: such runs are never averaged together.
    Forget sets, splits and seeds of one setting pool into one row."""
    if runs.empty:
        return runs["method"] if "method" in runs else pd.Series(dtype=object)
    by = "settings" if "settings" in runs else "config"
    distinct = runs.groupby(keys)[by].transform("nunique")
    tag = runs[by].astype(str).replace("", "defaults")
    return runs["method"].where(distinct <= 1, runs["method"] + " [" + tag + "]")


def _summary(frame: pd.DataFrame, col: str, metrics: dict | None = None):
    """Summary of column `col` with the scale and range of its metric. Cost: wall time with its interval;
    trainable parameters and peak memory, which do not vary with the seed, as plain means."""
    if col not in frame:
        return None
    values = pd.to_numeric(frame[col], errors="coerce")
    metric = (metrics or {}).get(col)
    if metric:
        return metric.summarize(values)
    s = stats.summarize(values, bounds=(0.0, float("inf")))
    return s if s is None or col == "wall_s" else stats.Summary(s.mean, None, None, s.n)


def _forgot(done: pd.DataFrame) -> str:
    flags = done["forgotten"].dropna().astype(bool) if "forgotten" in done else pd.Series(dtype=bool)
    return f"{int(flags.sum())}/{len(flags)}" if len(flags) else "–"


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
                row[f"{split}:{metric}"] = _summary(ref, metric, metrics) if not ref.empty else None
        rows.append(row)
    runs = runs.assign(method=row_labels(runs, ["method"]))
    finished = runs[runs["status"] == "finished"]
    for method, group in runs.groupby("method", sort=True):
        done = finished[finished["method"] == method]
        row = {"method": method, "runs": f"{len(done)}/{len(group)}", "status": _status(group)}
        for split in splits:
            in_split = done[done["split"] == split]
            for metric in per_split:
                row[f"{split}:{metric}"] = _summary(in_split, metric, metrics)
        row["forgot"] = _forgot(done)
        for col in COST:
            row[col] = _summary(done, col)
        rows.append(row)
    return rows, columns


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
        forgot = done["forgotten"].fillna(False).astype(bool) if "forgotten" in done else pd.Series(dtype=bool)
        row = {"model": model, "method": method, "runs": f"{len(done)}/{len(group)}", "status": _status(group),
               "forgotten": f"{int(forgot.sum())}/{len(done)}",
               "ineligible": set() if len(done) and forgot.all() else {"epochs_to_forget"}}
        for col in columns:
            row[col] = _summary(done, col, metrics)
        rows.append(row)
    return rows, columns


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
            target[col] = _summary(refs[refs["method"] == "(target)"], name, metric_of)
        elif variant in ("quant8", "quant4", "paraphrase"):
            target[col] = _summary(finished, f"target_{col}", metric_of)
    rows = [target]
    for method, done in finished.groupby("method", sort=True):
        row = {"method": method, "runs": f"{len(done)}"}
        row.update({col: _summary(done, col, metric_of) for col in columns})
        rows.append(row)
    return rows, columns
