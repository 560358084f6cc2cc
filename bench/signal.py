"""Which columns carry signal (signal.md): per metric, the spread between methods against the spread between
seeds, and how many method pairs have separated 95% intervals."""

from __future__ import annotations

import math

import pandas as pd

from bench import stats
from bench.agreement import POOLED
from bench.tables import row_labels, without_repeats
from suites import SUITES


SIGNAL_NOTE = ("Does a column separate methods? For each metric: the spread between methods (standard deviation of "
               "the method means) against the spread between replicates (the root of the mean of the methods' "
               "variances; replicates are seeds, and forget sets where they are the replicates; a bit-identical one "
               "counts once), both on the scale the tables use (log10 for forget quality). Ratio > 1: methods differ "
               "by more than replicates do; `separated pairs` counts method pairs whose 95% intervals do not overlap; "
               "`replicates` is the fewest any method has (a method needs two).")


def signal_table(suite: str, runs: pd.DataFrame) -> list[dict]:
    """Between-method vs replicate spread of every metric, per model and split; pooled over the forget sets
    (split `all sets`) where they are the replicates (Suite.splits_are_replicates: one run per set and method
    has no seed spread of its own)."""

    kind = SUITES[suite]
    finished = runs[runs["status"] == "finished"] if "status" in runs else runs
    finished = without_repeats(finished)  # a bit-identical replicate is one observation, not a spread of 0
    if kind.splits_are_replicates and "split" in finished:
        finished = finished.assign(split=POOLED)
    out = []
    for (model, split), block in finished.groupby(["model", "split"]):
        for metric in kind.metrics:
            if metric.name not in block:
                continue
            values = pd.to_numeric(block[metric.name], errors="coerce")
            if metric.log_scale:
                values = values.clip(lower=stats.FLOOR).map(math.log10)
            frame = pd.DataFrame({"method": row_labels(block, ["method"]), "v": values}).dropna()
            frame = frame[frame.groupby("method")["v"].transform("size") >= 2]  # a spread needs two replicates
            groups = frame.groupby("method")["v"]
            if groups.ngroups < 2:
                continue
            between = float(groups.mean().std(ddof=1))
            within = math.sqrt(float(groups.var(ddof=1).mean()))
            summaries = [stats.summarize(g, False) for _, g in groups]
            separated = sum(1 for i in range(len(summaries)) for j in range(i + 1, len(summaries))
                            if not summaries[i].overlaps(summaries[j]))
            n_pairs = len(summaries) * (len(summaries) - 1) // 2
            out.append({"model": model, "split": split, "metric": metric.name + (" (log10)" if metric.log_scale else ""),
                        "between-method sd": stats.fmt(between), "replicate sd": stats.fmt(within),
                        "ratio": stats.fmt(between / within) if within > 0 else ("inf" if between > 0 else "–"),
                        "separated pairs": f"{separated}/{n_pairs}", "methods": groups.ngroups,
                        "replicates": int(groups.size().min())})
    return out
