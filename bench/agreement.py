"""Do two result sets (this machine and another, two commits, two thread counts) draw the same
conclusions? For every metric and every pair of methods whose 95% intervals are separated in the
first set: is the order the same in the second, and still separated? And does every claim get the
same verdict? `python -m bench report --suite S --against OTHER_RESULTS_DIR` writes agreement.md."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.tables import epoch_cap, row_labels, without_repeats


POOLED = "all sets"  # the split label of summaries pooled over forget sets


def _summaries(runs: pd.DataFrame, metrics, pool_splits: bool = False
               ) -> tuple[dict[tuple, stats.Summary], set, dict[tuple, stats.Summary], set]:
    """(model, split, metric, method) -> the summary of the method's finished runs that orders and separates
    methods: the values', or for a metric with an ideal their distance to it, as the leaderboard ranks them
    (Metric.ranked); the keys of epoch counts some of whose runs the cap cut off (cap + 1 is a bound, not a value:
    such a mean may be the larger count of a pair, never the smaller); the values' summaries, as shown; and the keys
    of calibrated metrics ranked against their runs' calibrating values (never ordered against one that is not)."""
    finished = without_repeats(runs[runs["status"] == "finished"])  # copies of one run are no separation
    if pool_splits:  # the forget sets are replicates: one summary over sets and seeds, as the paper table's
        finished = finished.assign(split=POOLED)
    finished = finished.assign(method=row_labels(finished, ["model", "split", "method"]))  # unlike runs never pool
    ranked, bounded, shown, by_ref = {}, set(), {}, set()
    for (model, split, method), group in finished.groupby(["model", "split", "method"]):
        for metric in metrics:
            if metric.name in group:
                values, cap = pd.to_numeric(group[metric.name], errors="coerce"), epoch_cap(group)
                s = metric.summarize(values, cap)
                if s is not None:
                    key = (model, split, metric.name, method)
                    refs = group.get(f"{metric.name}_ref")
                    shown[key] = s
                    refs = None if refs is None else pd.to_numeric(refs, errors="coerce")
                    ranked[key] = metric.ranked(values, refs, cap)
                    if metric.calibrated and refs is not None and refs.notna().any():
                        by_ref.add(key)  # ranked by its gap to its calibrating model, not by its distance to 0.5
                    if metric.cap_offset == 1 and cap is not None and (values >= cap + 1).any():
                        bounded.add(key)
    return ranked, bounded, shown, by_ref


def _separable(s: stats.Summary) -> bool:
    """A summary that can be separated from another: a 95% interval over all its runs. One distinct run has no
    interval (it is no point estimate to separate), and one over the runs that forgot speaks for survivors only,
    as in the tables (bench.stats.best_and_tied)."""
    return s.has_interval and not s.missing


def separated_pairs(runs_a: pd.DataFrame, runs_b: pd.DataFrame, metrics, pool_splits: bool = False) -> list[dict]:
    """Every pair separated in A (both summaries `_separable`, the intervals apart), with what B says of it:
    the same order or reversed, separated or overlapping, or "no interval in B" where B cannot separate them
    (one distinct run, a value on some runs only, or a smaller epoch count that the cap cut off in some runs, a
    bound). `pool_splits`: summarise each method over all forget
    sets and seeds (split `all sets`), for suites whose splits are replicates (Suite.splits_are_replicates)."""
    (a, bounds_a, shown_a, ref_a), (b, bounds_b, shown_b, ref_b) = (_summaries(runs_a, metrics, pool_splits),
                                                                    _summaries(runs_b, metrics, pool_splits))
    # a metric with an ideal is ordered by distances to it, the nearer better (Metric.ranked)
    direction = {m.name: m.higher_is_better and m.ideal is None for m in metrics}
    groups: dict[tuple, list[str]] = {}
    for model, split, metric, method in a:
        groups.setdefault((model, split, metric), []).append(method)
    rows = []
    for (model, split, metric), methods in sorted(groups.items()):
        for x, y in itertools.combinations(sorted(methods), 2):
            sa_x, sa_y = a[(model, split, metric, x)], a[(model, split, metric, y)]
            if not (_separable(sa_x) and _separable(sa_y)) or sa_x.overlaps(sa_y):
                continue
            if ((model, split, metric, x) in ref_a) != ((model, split, metric, y) in ref_a):
                continue  # a gap to a calibrating model and a distance to 0.5 are not one scale
            better, worse = (x, y) if (sa_x.mean > sa_y.mean) == direction[metric] else (y, x)
            if (model, split, metric, better) in bounds_a:  # fewer epochs only as a bound: the order is not shown
                continue
            sb_better, sb_worse = b.get((model, split, metric, better)), b.get((model, split, metric, worse))
            if sb_better is None or sb_worse is None:
                verdict = "missing"
            else:
                reversed_ = (sb_better.mean > sb_worse.mean) != direction[metric] and sb_better.mean != sb_worse.mean
                order = "reversed" if reversed_ else "same order"
                ahead = (model, split, metric, worse if reversed_ else better)  # the side B finds better
                scales = {k in ref for k, ref in (((model, split, metric, better), ref_b),
                                                  ((model, split, metric, worse), ref_b),
                                                  ((model, split, metric, better), ref_a))}
                if len(scales) > 1:  # a gap to a calibrating model against a distance to 0.5, within B or across sets
                    verdict = "not comparable in B"
                elif not (_separable(sb_better) and _separable(sb_worse)) or ahead in bounds_b:
                    verdict = f"{order}, no interval in B"
                elif sb_better.overlaps(sb_worse):
                    verdict = f"{order}, overlapping"
                else:
                    verdict = "reversed, separated" if reversed_ else "same, separated"
            rows.append({"model": model, "split": split, "metric": metric, "better": better, "worse": worse,
                         "A": f"{stats.fmt_summary(shown_a[(model, split, metric, better)])} vs "
                              f"{stats.fmt_summary(shown_a[(model, split, metric, worse)])}",
                         "B": "–" if verdict == "missing" else
                              f"{stats.fmt_summary(shown_b[(model, split, metric, better)])} vs "
                              f"{stats.fmt_summary(shown_b[(model, split, metric, worse)])}",
                         "in B": verdict})
    return rows


def unfinished(runs: pd.DataFrame, strays: list[str] = ()) -> str:
    """"k of n runs did not finish (1 corrupt, 2 failed), left out" for a result set, with its directories that are
    no run's (`strays`, ResultStore.strays: "1 directory of runs/ not counted: PATH"), "" when there is nothing to
    say: agreement.md compares the finished runs only, and a damaged set must say so."""
    once = runs.drop_duplicates("run_id") if "run_id" in runs else runs
    left = once[once["status"] != "finished"]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(left["status"].value_counts().items()))
    said = [f"{len(left)} of {len(once)} runs did not finish ({counts}), left out"] if len(left) else []
    if strays:
        said.append(f"{len(strays)} {'directory' if len(strays) == 1 else 'directories'} of runs/ not counted: "
                    + "; ".join(why.split(": not counted")[0] for why in strays))
    return "; ".join(said)


def _count(pairs: list[dict]) -> str:
    counts = pd.Series([p["in B"] for p in pairs], dtype=object).value_counts().to_dict()
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "no separated pairs"


def write(suite: str, path: Path, pairs: list[dict], claims_a: list, claims_b: list, other: str,
          table_metrics: tuple[str, ...] = (), claims_a_fixed: list | None = None,
          origins: list[dict] | None = None, left: dict[str, str] | None = None) -> Path:
    """Write the agreement report of two result sets to `path` and return `path`.

    `pairs`: one row per method pair whose 95% intervals do not overlap in A (these results), with B's verdict;
    `claims_a` / `claims_b`: the claims checked on each set, B's at the fixed-sample level; `claims_a_fixed`: A's at
    that level too, when `claims_a` were tested under a sequential plan (claims.md's verdicts): the two sets are
    then compared by the same test, and claims.md's column is shown beside them. `table_metrics`: the paper
    table's columns, counted apart. `origins`: where each set's runs came from (bench.report.provenance rows with
    a `set` key, A or B: machine, CPU capability, threads, software), so that the file says what differed; `left`:
    per set, its runs that did not finish (`unfinished`), which neither side's summaries hold.
    Markdown, overwritten if it exists.
    """
    verdicts_b = {c.id: c.verdict for c in claims_b}
    fixed = {c.id: c.verdict for c in (claims_a_fixed if claims_a_fixed is not None else claims_a)}
    claim_rows = [{"claim": c.id, **({"A (claims.md)": c.verdict} if claims_a_fixed is not None else {}),
                   "A": fixed[c.id], "B": verdicts_b.get(c.id, "–"),
                   # two sets without data for a claim agree on nothing
                   "A and B agree": "–" if "no data" in (fixed[c.id], verdicts_b.get(c.id)) else
                                    "yes" if verdicts_b.get(c.id) == fixed[c.id] else "NO"} for c in claims_a]
    lines = [f"# {suite}: do these results and {other} agree?", "",
             "A = these results, B = the other set. Every pair of methods whose 95% intervals over all their runs "
             "do not overlap in A, per metric, and what B says of it. A summary over some runs only (a value "
             "measured on the runs that forgot), over one distinct run, or a smaller epoch count that holds runs "
             "the cap cut off (a bound) separates nothing, in either set: `no interval in B` marks a pair B cannot "
             "separate, and `not comparable in B` an attack AUC that B measures against its calibrating model's for "
             "one method and against 0.5 for the other, or on another of these two scales than A. A metric with an "
             "ideal value (privleak 0, an attack AUC that of the calibrating model) is ordered and separated by "
             "nearness to it, as the leaderboard ranks it; A and B show its values." + (
                 " The forget sets are replicates here: each method is summarised over all of them (split "
                 f"`{POOLED}`), as in the paper table." if any(p["split"] == POOLED for p in pairs) else ""), "",
             f"All metrics: {_count(pairs)}.", "",
             f"The paper table's columns ({', '.join(table_metrics)}): "
             f"{_count([p for p in pairs if p['metric'] in table_metrics])}.", ""]
    if origins:
        lines += ["## Where each set came from", "", "Finished runs per machine and software.", "",
                  tabulate(origins, headers="keys", tablefmt="github"), ""]
    lines += [f"{name}: {text}." for name, text in (left or {}).items() if text]
    lines += [""] if any((left or {}).values()) else []
    if claim_rows:
        lines += ["## Claims", ""]
        if claims_a_fixed is not None:
            lines += ["A and B are both tested at the fixed-sample level (family-wise 95 % per claim), the same test "
                      "for both sets; `A (claims.md)` is A under its sequential plan, whose looks spend the 5 % "
                      "(docs/statistics.md): a verdict there can be inconclusive where the fixed-sample test decides.", ""]
        lines += [tabulate(claim_rows, headers="keys", tablefmt="github"), ""]
    lines += ["## Separated pairs", "", tabulate(pairs, headers="keys", tablefmt="github") if pairs else "none", ""]
    path.write_text("\n".join(lines))
    return path
