"""Pairwise comparisons (`bench report --compare A,B`): A minus B on every metric over runs paired by (model,
split, seed), with the 95% interval of the mean difference and the paired t-test."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.claims import KEYS, compared_values, distinct_pairs, unfinished_runs
from bench.errors import BenchError
from bench.runs import first_requests, select_method, unlike_settings
from bench.tables import epoch_cap
from suites import SUITES


COMPARE_NOTE = ("A minus B over runs paired by (model, split, seed); 95% t-interval of the mean difference and the "
                "paired t-test p-value (scipy.stats.ttest_rel); log-scale metrics compared as log10 ratios; a metric "
                "with an ideal value (privleak 0, an attack AUC 0.5, or the calibrating model's AUC on the same items "
                "where a run records it: `ref`) compared as each run's distance to it, `(distance to 0)`: its A and "
                "B columns are those distances, and A - B < 0 means A is nearer. A, B and A - B are over the pairs "
                "compared (both runs with a value). A verdict needs the interval to exclude 0.")


def parse_compare(text: str) -> list[tuple[str, str]]:
    """`--compare` text (`a,b;c,d`) -> [(a, b), (c, d)]; a pair that is not two distinct methods, or one given twice,
    is a one-line BenchError."""
    pairs = []
    if not text.strip():
        raise BenchError(f"bad --compare {text!r}: no pair given (expected two methods, e.g. ihl+fila,ga+lora)")
    for item in text.split(";"):
        names = [t.strip() for t in item.split(",")]  # an empty name (`ga,,npo`, `ga,`) is a typo, never skipped
        if not item.strip():  # `npo,ga;` or `;;`: the piece is empty, so the whole value is named
            raise BenchError(f"bad --compare {text!r}: an empty pair between semicolons (expected pairs separated "
                             f"by ';', e.g. ihl+fila,ga+lora;ihl+lora,ga+lora)")
        piece = f"{text!r}: pair {item!r}" if ";" in text else repr(item)  # in a list, the list and the pair; repr: one line
        if len(names) != 2 or not all(names):
            raise BenchError(f"bad --compare {piece} (expected two methods, e.g. ihl+fila,ga+lora)")
        for name in names:
            check_method_name(name)
        if names[0] == names[1]:
            raise BenchError(f"bad --compare {piece}: a method compared with itself (expected two methods, e.g. "
                             f"ihl+fila,ga+lora)")
        if tuple(names) in pairs or tuple(names[::-1]) in pairs:
            raise BenchError(f"bad --compare {text!r}: {names[0]} and {names[1]} are compared twice")
        pairs.append((names[0], names[1]))
    return pairs


def check_method_name(name: str) -> None:
    """A method as `--compare` names it: `label` or `label[setting=value ...]` (bench.runs.select_method), each
    setting once, `[defaults]` alone. One-line BenchError otherwise."""
    base, bracket, rest = name.partition("[")
    inside, closed, after = rest.partition("]")
    if "]" in base or (bracket and (not closed or after.strip() or "[" in inside)):
        raise BenchError(f"bad --compare method '{name}' (expected a method, or a method and its settings in one pair of "
                         f"brackets, e.g. ga+lora[lr=0.001 epochs=3])")
    tokens = inside.split()
    if "defaults" in tokens and len(tokens) > 1:
        raise BenchError(f"bad --compare method '{name}': [defaults] with other settings (give one or the other)")
    said: dict[str, str] = {}
    for token in tokens:
        key, eq, value = token.partition("=")
        if token != "defaults" and (not eq or not key or not value):
            raise BenchError(f"bad --compare method '{name}': setting '{token}' is not name=value (e.g. lr=0.001)")
        if key in said:
            raise BenchError(f"bad --compare method '{name}': {key} is given twice ({key}={said[key]} and {token}); "
                             f"give it once")
        said[key] = value


@dataclass
class Comparison:
    """A pairwise comparison of methods A and B: one row per metric (values, A - B with its interval, p, verdict)."""
    a: str
    b: str
    rows: list[dict]
    note: str = ""  # what the pairs leave out (bit-identical replicates, runs not finished), said under the table

    def markdown(self) -> str:
        """The comparison as a Markdown section (heading, table and what the pairs leave out)."""
        table = [{"metric": r["metric"], "A": r["a"], "B": r["b"], "A - B": stats.fmt(r["diff"]),
                  "95% interval": "–" if r["lo"] is None else f"[{stats.fmt(r['lo'])}, {stats.fmt(r['hi'])}]",
                  "paired t p": stats.fmt(r["p"]), "pairs": r["n"], "verdict": r["verdict"]} for r in self.rows]
        return (f"## A = {self.a}, B = {self.b}\n\n" + tabulate(table, headers="keys", tablefmt="github")
                + (f"\n\n{self.note}." if self.note else ""))


def _label(runs: pd.DataFrame, chosen: pd.DataFrame) -> str:
    """The chosen runs' method label, with their settings where the method has finished runs of other settings
    too (`ihl+fila-r4 [defaults]`), as the tables label such rows."""
    method, settings = chosen["method"].iloc[0], chosen["settings"].iloc[0]
    finished = runs[(runs["status"] == "finished") & (runs["method"] == method)]
    return method if finished["settings"].nunique() == 1 else f"{method} [{settings or 'defaults'}]"


def compare_methods(suite: str, runs: pd.DataFrame, a: str, b: str, results: str | None = None) -> Comparison:
    """A minus B on every metric of the suite, over runs paired by (model, split, seed) without bit-identical
    replicates: mean difference, 95% t-interval and paired t-test p-value (scipy.stats.ttest_rel via
    bench.stats.paired; log-scale metrics as log10 ratios). BenchError when either method has no finished run,
    matches several configurations, or when their runs differ in settings other than the method (`results`: the
    results directory the hints name)."""
    kind = SUITES[suite]
    runs = first_requests(runs)  # a later request of a sequence is no replicate of its split (bench/axes.py)
    ra, rb = select_method(runs, a, suite, results), select_method(runs, b, suite, results)
    if set(ra["run_id"]) == set(rb["run_id"]):  # one configuration under two spellings (`ihl+fila,ihl+fila-r4`)
        raise BenchError(f"bad --compare '{a},{b}': both name the runs of {_label(runs, ra)}, a method compared with "
                         f"itself (expected two methods, e.g. ihl+fila,ga+lora)")
    a, b = (_label(runs, r) for r in (ra, rb))
    differ = unlike_settings(ra, rb)
    if differ:
        raise BenchError(f"cannot compare {a} with {b}: their runs differ in settings other than the method "
                         f"({differ}); compare runs made with the same --lr/--epochs/--set/--option")
    # paired as claims pair them: in seed order, so the copy kept is the earliest seed's (bench.claims._check)
    merged, repeats = distinct_pairs(ra.merge(rb, on=KEYS, suffixes=("_a", "_b")).sort_values(KEYS, kind="stable"))
    rows, said = [], []
    for metric in kind.metrics:
        if metric.name not in ra or metric.name not in rb:
            continue
        values = compared_values(merged, metric)  # a metric with an ideal: each run's distance to it
        tested = [pd.notna(x) and pd.notna(y) for x, y in zip(values.test_a, values.test_b)]
        over_pairs = lambda v: [x for x, ok in zip(v, tested) if ok]  # A, B and A - B over the same pairs
        result = stats.paired(values.test_a, values.test_b, metric.log_scale)
        said += [values.unpaired_note] if values.unpaired else []
        if result is None:
            continue
        verdict = result.verdict(values.higher_is_better)
        verdict = {"A better": f"{a} better", "B better": f"{b} better"}.get(verdict, verdict)
        rows.append({"metric": values.label or metric.name + (" (log10 ratio)" if metric.log_scale else ""),
                     "a": stats.fmt_summary(values.summary(metric, over_pairs(values.a), epoch_cap(ra))),
                     "b": stats.fmt_summary(values.summary(metric, over_pairs(values.b), epoch_cap(rb))),
                     "diff": result.diff, "lo": result.lo, "hi": result.hi, "p": result.p_value, "n": result.n,
                     "verdict": verdict})
    said += [f"Bit-identical replicates counted once ({repeats}): a pair holding a copy of an earlier run is "
             f"dropped"] if repeats else []
    left = unfinished_runs(runs, [ra, rb])  # the pairs speak for the runs that finished: say which did not
    said += [left] if left else []
    return Comparison(a, b, rows, ". ".join(said))
