"""The report section of a suite's grid axes (suites/base.py `Axis`, `bench run --axis NAME`): each metric of the
axis against its points, per method, as a table (`axis_<name>.md`) and a plot (`axis_<name>_<metric>.png`).

A `sizes` axis (MUSE's scalability) puts forget sets of growing size side by side, each unlearned from the start
model: its plot's x is the forget set's size in tokens (run.json `forget_size`). A `requests` axis (MUSE's
sustainability) puts successive requests side by side, request k unlearned from request k-1's model: its x is the
request number. A run counts at point k only when its whole chain of requests is the axis's first k points (a run
of the same split from the start model is no point of a `requests` axis). Every cell is the mean over seeds with
its 95% interval (bit-identical replicates count once, as in the leaderboard); the `(before)` row is the model
each point starts from where that is one model for every method: the start model, at every point of a `sizes`
axis and at the first point of a `requests` axis. This module names no suite.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import plots, stats, tables

CAPTION = {
    "sizes": "Each point is a forget set of its own size, unlearned from the start model.",
    "requests": "Request k unlearns its forget set starting from the model request k-1 left (request 1 from the "
                "start model).",
}
NOTE = ("Mean over seeds and its 95% Student-t interval (bit-identical replicates count once); bold: best and "
        "tied-best per column. (before): the model a point starts from, where that is the same for every method.")


def points(runs: pd.DataFrame, axis) -> pd.DataFrame:
    """The finished runs of `runs` (bench.runs.load_runs) that are points of `axis`, with columns `base` (the
    base split), `point` (1, 2, ...) and `label` (the point's split); empty when there are none."""
    if runs.empty or "chain" not in runs:
        return pd.DataFrame()
    done = runs[runs["status"] == "finished"]
    at: dict[tuple, tuple[str, int]] = {}
    for base, splits in axis.points.items():
        for k, split in enumerate(splits, start=1):
            chain = tuple(splits[:k]) if axis.kind == "requests" else (split,)
            at[chain] = (base, k)
    hits = [at.get(tuple(c)) for c in done["chain"]]
    keep = [h is not None for h in hits]
    chosen = done[keep]
    if chosen.empty:
        return pd.DataFrame()
    found = [h for h in hits if h is not None]
    return chosen.assign(base=[b for b, _ in found], point=[k for _, k in found],
                         label=[axis.points[b][k - 1] for b, k in found],
                         method=tables.row_labels(chosen, ["method"]))


def _summary(frame: pd.DataFrame, metric: str, metric_of: dict, how=tables.column_summary) -> stats.Summary | None:
    """`how` (tables.column_summary, or column_ranked) of `metric` over `frame`'s runs, bit-identical replicates
    once."""
    if frame.empty or metric not in frame:
        return None
    if "replicate" in frame:
        frame = frame.drop_duplicates("replicate")
    return how(frame, metric, metric_of)


def _before(frame: pd.DataFrame, metric: str, metric_of: dict) -> stats.Summary | None:
    """The epoch-0 value (the model before this point's unlearning) of `metric` over `frame`'s runs: equal values
    count once."""
    values = [dict(t).get(0, {}).get(metric) for t in frame.get("trajectory", pd.Series(dtype=object))]
    # one start model evaluated by every run of the point: equal values are one observation (as bit-identical
    # replicates are), so the row shows the model's value, not an interval of width 0 over copies of it
    values = list(dict.fromkeys(v for v in values if isinstance(v, (int, float))))
    if not values:
        return None
    return stats.summarize_metric(values, metric_of.get(metric))


def headers(on_axis: pd.DataFrame, axis, base: str) -> dict[int, str]:
    """Column header per point: its split, and for a `sizes` axis its forget set's size in tokens."""
    out = {}
    for k, split in enumerate(axis.points[base], start=1):
        at = on_axis[on_axis["point"] == k]
        tokens = pd.to_numeric(at.get("forget_tokens", pd.Series(dtype=float)), errors="coerce").dropna()
        size = f" ({int(round(tokens.mean())):,} tokens)" if axis.kind == "sizes" and len(tokens) else ""
        out[k] = f"{k}: {split}{size}"
    return out


def table(on_axis: pd.DataFrame, axis, base: str, metric: str, metric_of: dict) -> tuple[list[dict], dict, list[str]]:
    """(rows, columns, keys) for bench.tables.render: one row per (model, method), one column per point of
    `base`, each cell `metric`'s summary; the `(before)` row first."""
    higher = metric_of[metric].higher_is_better if metric in metric_of else True
    names = headers(on_axis, axis, base)
    columns = {f"p{k}": (names[k], higher) for k in names}
    mine = on_axis[on_axis["base"] == base]
    rows = []
    for model, of_model in mine.groupby("model", sort=True):
        before = {"model": model, "method": "(before)", "runs": "", "reference": True}
        for k in names:
            if axis.kind == "sizes" or k == 1:
                before[f"p{k}"] = _before(of_model[of_model["point"] == k], metric, metric_of)
        rows.append(before)
        for method, group in of_model.groupby("method", sort=True):
            counts = [str(len(group[group["point"] == k])) for k in names]
            row = {"model": model, "method": method, "runs": "/".join(counts)}
            row.update({f"p{k}": _summary(group[group["point"] == k], metric, metric_of) for k in names})
            ranked = {f"p{k}": _summary(group[group["point"] == k], metric, metric_of, tables.column_ranked)
                      for k in names}  # a metric with an ideal (privleak 0): best is nearest it
            row["ranked"] = {col: s for col, s in ranked.items() if s is not None}
            rows.append(row)
    return rows, columns, ["model", "method", "runs"]


def plot(on_axis: pd.DataFrame, axis, name: str, base: str, metric: str, metric_of: dict, out_dir: Path) -> Path:
    """`metric` against the axis's points of `base`, one line per (model, method) with 95% interval bars."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    mine = on_axis[on_axis["base"] == base]
    names = headers(mine, axis, base)
    for i, ((model, method), group) in enumerate(mine.groupby(["model", "method"], sort=True)):
        xs, ys, bars = [], [], [[], []]
        for k in names:
            s = _summary(group[group["point"] == k], metric, metric_of)
            if s is None:
                continue
            if axis.kind == "sizes":
                tokens = pd.to_numeric(group[group["point"] == k].get("forget_tokens"), errors="coerce").dropna()
                xs.append(tokens.mean() if len(tokens) else k)
            else:
                xs.append(k)
            ys.append(s.mean)
            low, high = plots.error_bar(s)
            bars[0] += low
            bars[1] += high
        label = method if mine["model"].nunique() == 1 else f"{method} ({model})"
        ax.errorbar(xs, ys, yerr=bars, marker="o", capsize=3, color=f"C{i % 10}", label=label)
    if axis.kind == "requests":
        start = _before(mine[mine["point"] == 1], metric, metric_of)
        if start is not None:
            ax.axhline(start.mean, linestyle=":", color="gray", label="before request 1")
        ax.set_xticks(list(names), [str(k) for k in names])
        ax.set_xlabel("unlearning request")
    else:
        ax.set_xlabel("forget set size (tokens)")
    if metric_of.get(metric) is not None and metric_of[metric].log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(metric)
    ax.set_title(f"{axis.title} ({base})\n{metric}: mean and 95% interval over seeds", fontsize=10)
    ax.legend(fontsize=7)
    return plots.save(plt, fig, out_dir / f"axis_{name}_{base}_{metric}.png")


def write(suite, runs: pd.DataFrame, out_dir: Path) -> tuple[list[Path], list[Path], list[tuple]]:
    """Every declared axis of `suite` (a Suite) that has finished runs beyond its first point: `axis_<name>.md` and
    one plot per base and metric under `out_dir`. Returns (markdown paths, plot paths, HTML sections as (title, caption, (rows, columns,
    keys))). An axis without runs writes nothing, and an earlier report's file for it is removed."""
    metric_of = {m.name: m for m in suite.metrics}
    written, figures, sections = [], [], []
    for name, axis in suite.axes.items():
        path = out_dir / f"axis_{name}.md"
        for old in out_dir.glob(f"axis_{name}_*.png"):  # an earlier report's plots must not stand in
            old.unlink()
        on_axis = points(runs, axis)
        if on_axis.empty or on_axis["point"].max() < 2:  # point 1 alone is the suite's ordinary run: no axis ran
            path.unlink(missing_ok=True)
            continue
        metrics = [m for m in (axis.metrics or suite.headline) if m in on_axis]
        caption = f"{axis.title}. {CAPTION[axis.kind]} {NOTE}" + (f" Protocol: {axis.source}." if axis.source else "")
        text = [f"# {suite.name}: {axis.title} (`--axis {name}`)\n", caption + "\n"]
        for base in [b for b in axis.points if b in set(on_axis["base"])]:
            for metric in metrics:
                rows, columns, keys = table(on_axis, axis, base, metric, metric_of)
                text += [f"## {metric}, base {base}\n", tables.render(rows, columns, keys, tex=False) + "\n"]
                sections.append((f"{axis.title}: {metric} ({base})", caption, (rows, columns, keys)))
                figures.append(plot(on_axis, axis, name, base, metric, metric_of, out_dir))
        path.write_text("\n".join(text))
        written.append(path)
    return written, figures, sections
