"""Paper-style tables: the layout of Cha et al.'s TDEC table and TOFU's forget-quality / model-utility
grid, mean ± standard deviation over forget sets or seeds, the best value of each column marked, and
the cost of each method (wall time, trainable parameters, peak memory) beside its quality."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

# peak MB is the process's high-water RSS on CPU (in-process grids: the maximum so far), GPU memory on CUDA
COST = {"wall_s": ("wall s", False), "trainable_params": ("trainable", False), "peak_mem_mb": ("peak MB", False)}


def _mean_std(values: pd.Series) -> tuple[float | None, float | None]:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) >= 100:
        return f"{int(x):,}"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"
    return f"{x:.2e}"


def _cell(mean, std, bold: bool, tex: bool) -> str:
    if mean is None:
        return "–"
    text = _fmt(mean) + (f" ± {_fmt(std)}" if std is not None else "")
    if tex:
        text = text.replace("±", r"$\pm$")
        return rf"\textbf{{{text}}}" if bold else text
    return f"**{text}**" if bold else text


def render(rows: list[dict], columns: dict[str, tuple[str, bool]], keys: list[str], tex: bool) -> str:
    """rows: {key..., col: (mean, std)}; columns: name -> (header, higher_is_better). Best mean of each
    column marked, reference rows (key 'reference' true) never compete."""
    best = {}
    for col, (_, higher) in columns.items():
        means = [r[col][0] for r in rows if not r.get("reference") and r.get(col) and r[col][0] is not None]
        if means:
            best[col] = max(means) if higher else min(means)
    table = []
    for r in rows:
        line = {k: r[k] for k in keys}
        for col, (header, _) in columns.items():
            mean, std = r.get(col) or (None, None)
            line[header] = _cell(mean, std, bold=mean is not None and not r.get("reference") and
                                 best.get(col) is not None and math.isclose(mean, best[col]), tex=tex)
        table.append(line)
    return tabulate(table, headers="keys", tablefmt="latex_raw" if tex else "github", showindex=False)


def _status(group: pd.DataFrame) -> str:
    """`ok`, or what else the runs of a row are: `1 failed, 1 running`."""
    other = group[group["status"] != "finished"]["status"].value_counts()
    return ", ".join(f"{n} {status}" for status, n in sorted(other.items())) or "ok"


def _labels(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The method label, with the config key appended where one row name would cover several configs
    (other hyperparameters or options): such runs are never averaged together."""
    configs = runs.groupby(keys)["config"].transform("nunique")
    return runs["method"].where(configs <= 1, runs["method"] + " [" + runs["config"].astype(str) + "]")


def tofu_rows(runs: pd.DataFrame, refs: pd.DataFrame) -> tuple[list[dict], dict]:
    """Rows: target, retain, then each method; columns: <split> FQ / MU, mean ± std over seeds."""
    splits = sorted(runs["split"].dropna().unique()) if not runs.empty else []
    columns = {}
    for split in splits:
        columns[f"{split}:forget_quality"] = (f"{split} FQ", True)
        columns[f"{split}:model_utility"] = (f"{split} MU", True)
    columns.update(COST)
    rows = []
    for role in ("(target)", "(retain)"):
        row = {"method": role, "runs": "", "status": "reference", "reference": True}
        for split in splits:
            ref = refs[(refs["method"] == role) & (refs["split"] == split)] if not refs.empty else refs
            for metric in ("forget_quality", "model_utility"):
                row[f"{split}:{metric}"] = _mean_std(ref[metric]) if not ref.empty else (None, None)
        rows.append(row)
    runs = runs.assign(method=_labels(runs, ["method"]))
    finished = runs[runs["status"] == "finished"]
    for method, group in runs.groupby("method", sort=True):
        done = finished[finished["method"] == method]
        row = {"method": method, "runs": f"{len(done)}/{len(group)}", "status": _status(group)}
        for split in splits:
            for metric in ("forget_quality", "model_utility"):
                row[f"{split}:{metric}"] = _mean_std(done[done["split"] == split][metric]) if metric in done else (None, None)
        for col in COST:
            row[col] = _mean_std(done[col]) if col in done else (None, None)
        rows.append(row)
    return rows, columns


def tdec_rows(runs: pd.DataFrame) -> tuple[list[dict], dict]:
    """Rows: model x method (objective + adapter/rank); mean ± std over forget sets and seeds."""
    columns = {"epochs_to_forget": ("epochs to forget", False), "reasoning_acc": ("reasoning acc", True),
               "dialogue_f1": ("dialogue F1", True), "ppl_pile": ("Pile PPL", False),
               "ppl_heldout": ("held-out PPL", False), **COST}
    runs = runs.assign(method=_labels(runs, ["model", "method"]))
    finished = runs[runs["status"] == "finished"]
    rows = []
    for (model, method), group in runs.groupby(["model", "method"], sort=True):
        done = finished[(finished["model"] == model) & (finished["method"] == method)]
        forgot = done["forgotten"].fillna(False).astype(bool) if "forgotten" in done else pd.Series(dtype=bool)
        row = {"model": model, "method": method, "runs": f"{len(done)}/{len(group)}", "status": _status(group),
               "forgotten": f"{int(forgot.sum())}/{len(done)}"}
        for col in columns:
            row[col] = _mean_std(done[col]) if col in done else (None, None)
        rows.append(row)
    return rows, columns
