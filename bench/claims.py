"""Claims as data: comparisons stated in a YAML file, evaluated against the results with intervals.

A claim file (`suites/claims/<family>.yaml`, or `bench report --claims FILE`) holds a list `claims`:

    - id: fila-fewer-epochs
      text: FILA reaches the forgetting threshold in fewer epochs than LoRA, per objective
      metric: epochs_to_forget_or_cap        # a metric of the suite (its direction comes from the suite)
      better: "{objective}+fila"            # A is claimed better than B ...
      than: "{objective}+lora"              # ... on `metric`
      for_each: {objective: [ga, gd, ihl]}  # optional: one comparison per substitution
      only_forgotten: false                 # optional: keep only runs that forgot (equal forgetting)
    - id: ihl-fila-best
      kind: best                            # A better than every other method of the suite
      method: ihl+fila
      metric: fq_constrained

Each comparison pairs runs by (model, split, seed) and takes the t-interval of the mean difference
(bench.stats.paired) at a family-wise 95% over the claim's k comparisons (Bonferroni: each interval at
1 - 0.05 / k), so that a claim of nine comparisons is not decided by one lucky one. Verdict per comparison: `holds` when the interval lies on A's side
of 0, `does not hold` when it lies on B's side, `inconclusive` when it contains 0, `no data` when a
method has no finished runs, `not comparable` when A's and B's runs differ in settings other than the method
(bench.report.run_settings: learning rate, epochs cap, options), which the check then names. A claim holds when every comparison holds, does not hold when any does
not, and is inconclusive otherwise.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.errors import BenchError

CLAIMS_DIR = Path(__file__).resolve().parent.parent / "suites" / "claims"
KEYS = ["model", "split", "seed"]


def suite_claims_path(suite: str) -> Path:
    """The claims file of the suite's family (`tofu-mini` shares `tofu.yaml`)."""
    from suites import SUITES

    return CLAIMS_DIR / f"{SUITES[suite].claims}.yaml"


@dataclass
class Check:
    a: str
    b: str
    verdict: str
    a_value: str = "–"
    b_value: str = "–"
    diff: str = "–"
    interval: str = "–"
    p: str = "–"
    pairs: int = 0


@dataclass
class ClaimResult:
    id: str
    text: str
    metric: str
    verdict: str
    checks: list[Check] = field(default_factory=list)


def load(path: Path) -> list[dict]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise BenchError(f"claims file {path} not found") from None
    except yaml.YAMLError as e:
        raise BenchError(f"claims file {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    claims = (data or {}).get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list):
        raise BenchError(f"claims file {path} has no list `claims` (see bench/claims.py for the format)")
    for c in claims:
        kind = c.get("kind", "better")
        need = {"better": ("id", "metric", "better", "than"), "best": ("id", "metric", "method")}.get(kind)
        if need is None:
            raise BenchError(f"claim {c.get('id')!r} in {path}: bad kind '{kind}' (expected better or best)")
        missing = [k for k in need if k not in c]
        if missing:
            raise BenchError(f"claim {c.get('id')!r} in {path} lacks {', '.join(missing)}")
    return claims


def _runs_of(runs: pd.DataFrame, name: str, suite: str, only_forgotten: bool) -> pd.DataFrame:
    """Finished runs of `name` (empty when it has none); several configurations -> BenchError."""
    from bench.report import method_base, select_method

    finished = runs[runs["status"] == "finished"]
    if not (method_base(finished["method"]).eq(name) | finished["method"].eq(name)).any():
        return finished.iloc[0:0]
    chosen = select_method(runs, name, suite)
    if only_forgotten:
        chosen = chosen[chosen.get("forgotten", pd.Series(False, index=chosen.index)).fillna(False).astype(bool)]
    return chosen


def _check(runs: pd.DataFrame, suite: str, a: str, b: str, metric, only_forgotten: bool, level: float) -> Check:
    try:
        ra, rb = _runs_of(runs, a, suite, only_forgotten), _runs_of(runs, b, suite, only_forgotten)
    except BenchError as e:
        return Check(a, b, f"no data ({e})")
    if ra.empty or rb.empty or metric.name not in ra or metric.name not in rb:
        return Check(a, b, "no data")
    from bench.report import unlike_settings

    differ = unlike_settings(ra, rb)
    if differ:  # a claim about methods must not rest on runs that differ in anything else
        return Check(a, b, f"not comparable ({differ})")
    merged = ra.merge(rb, on=KEYS, suffixes=("_a", "_b"))
    va = list(pd.to_numeric(merged[metric.name + "_a"], errors="coerce"))
    vb = list(pd.to_numeric(merged[metric.name + "_b"], errors="coerce"))
    result = stats.paired(va, vb, metric.log_scale, level=level)
    if result is None:
        return Check(a, b, "no data")
    verdict = {"A better": "holds", "B better": "does not hold",
               "inconclusive": "inconclusive"}[result.verdict(metric.higher_is_better)]
    return Check(a, b, verdict, stats.fmt_summary(metric.summarize(va)), stats.fmt_summary(metric.summarize(vb)),
                 stats.fmt(result.diff),
                 "–" if result.lo is None else f"[{stats.fmt(result.lo)}, {stats.fmt(result.hi)}]",
                 stats.fmt(result.p_value), result.n)


def overall(verdicts: list[str]) -> str:
    if any(v == "does not hold" for v in verdicts):
        return "does not hold"
    if any(v.startswith("not comparable") for v in verdicts):
        return "not comparable"
    if verdicts and all(v == "holds" for v in verdicts):
        return "holds"
    if all(v.startswith("no data") for v in verdicts):
        return "no data"
    return "inconclusive"


def evaluate(claims: list[dict], suite: str, runs: pd.DataFrame) -> list[ClaimResult]:
    from bench.errors import unknown
    from suites import SUITES

    metrics = {m.name: m for m in SUITES[suite].metrics}
    from bench.report import method_base

    labels = runs.loc[runs["status"] == "finished", "method"] if "method" in runs else pd.Series(dtype=str)
    methods = sorted(set(zip(labels, method_base(labels))))
    results = []
    for c in claims:
        if c["metric"] not in metrics:
            raise unknown(f"metric of suite {suite} (claim {c['id']})", c["metric"], metrics)
        metric, only = metrics[c["metric"]], bool(c.get("only_forgotten", False))
        if c.get("kind", "better") == "best":
            others = [label for label, base in methods if c["method"] not in (label, base)]
            pairs = [(c["method"], o) for o in others]
        else:
            axes = c.get("for_each") or {}
            combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] or [{}]
            pairs = [(c["better"].format(**sub), c["than"].format(**sub)) for sub in combos]
        # family-wise 95% over the claim's comparisons (Bonferroni): one lucky comparison of nine decides nothing
        level = 1 - (1 - stats.LEVEL) / max(len(pairs), 1)
        checks = [_check(runs, suite, a, b, metric, only, level) for a, b in pairs]
        results.append(ClaimResult(c["id"], c.get("text", ""), c["metric"], overall([k.verdict for k in checks]), checks))
    return results


def evaluate_file(path: Path, suite: str, runs: pd.DataFrame) -> list[ClaimResult]:
    return evaluate(load(path), suite, runs)


NOTE = ("Each comparison pairs runs by (model, split, seed): A minus B, the t-interval of the mean difference at a "
        "family-wise 95% over the claim's comparisons (Bonferroni) and the paired t-test p-value (log-scale metrics "
        "as log10 ratios). holds = the interval lies on A's side "
        "of 0; does not hold = on B's side; inconclusive = it contains 0. A claim holds when all its comparisons "
        "hold and does not hold when any does not.")


def write_markdown(results: list[ClaimResult], suite: str, path: Path) -> Path:
    lines = [f"# {suite}: claims", "", NOTE, "",
             tabulate([{"claim": r.id, "verdict": r.verdict, "metric": r.metric, "statement": r.text} for r in results],
                      headers="keys", tablefmt="github"), ""]
    for r in results:
        lines += [f"## {r.id}: {r.verdict}", "", r.text, "",
                  tabulate([{"A": k.a, "B": k.b, "A value": k.a_value, "B value": k.b_value, "A - B": k.diff,
                             "interval (family-wise 95%)": k.interval, "p": k.p, "pairs": k.pairs, "verdict": k.verdict}
                            for k in r.checks], headers="keys", tablefmt="github"), ""]
    path.write_text("\n".join(lines))
    return path
