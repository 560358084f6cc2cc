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
      kind: best                            # A better than every other method of the suite ...
      method: ihl+fila
      metric: fq_constrained
      among: [ga, gd, ihl, kl, npo]         # optional: only methods of these objectives (the paper's)

A key the claim's kind does not read (`among` on a better claim, `better`/`than` on a best one), `among:`
null, empty or naming an objective twice, a for_each value given twice, an unknown key, metric, method or
objective and a margin that is no finite number > 0 are errors: `load` names them all, in file order, in
one line.

A claim names a practical margin (`margin:`, or the file's `margins:` per metric; the suites' own claims
also quote their source in the paper, `source:`): the smallest difference that matters, in the metric's units (log10 for
log-scale metrics, or for any metric with `scale: log10`). Each comparison pairs runs by (model, split,
seed), refuses runs whose settings other than the method differ (`not comparable`, naming them:
bench.runs.run_settings), drops bit-identical replicates (runs whose every epoch's metrics are equal are one observation),
and decides with bench.decide at a family-wise 95% over the claim's k comparisons (Bonferroni: each at
1 - 0.05 / k): holds, does not hold, equivalent (the interval lies within ±margin) or inconclusive, with
the replicates an inconclusive comparison would need. A claim does not hold when any comparison does
not; otherwise it holds when every comparison holds, is equivalent when every comparison is, is
inconclusive while any comparison is, and does not hold when some hold and the rest are equivalent
(A is not better everywhere by a difference that matters).

With a sequential plan (`bench run --until-decided`, bench/sequential.py) each comparison's level is the
alpha its look spends, and a comparison decided at one look keeps that verdict.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import yaml
from tabulate import tabulate

from bench import decide, stats
from bench.errors import BenchError, unknown
from bench.runs import first_requests, method_base, select_method, settings_key, unlike_settings
from bench.sequential import other_values
from bench.tables import REPEAT_SCOPE, epoch_cap
from methods import ADAPTERS, OBJECTIVES
from suites import SUITES

CLAIMS_DIR = Path(__file__).resolve().parent.parent / "suites" / "claims"
KEYS = ["model", "split", "seed"]
MAX_FAMILY = 64  # the most comparisons a claim's family is searched at for looks of another size (Plan.stale)


def suite_claims_path(suite: str) -> Path:
    """The claims file of the suite's family (`tofu-mini` shares `tofu.yaml`)."""
    return CLAIMS_DIR / f"{SUITES[suite].claims}.yaml"


@dataclass
class Check:
    """One comparison of a claim: A against B on the claim's metric, its verdict and the numbers behind it."""
    a: str
    b: str
    verdict: str
    a_value: str = "–"
    b_value: str = "–"
    diff: str = "–"
    interval: str = "–"
    p: str = "–"
    pairs: int = 0
    margin: str = "–"
    level: str = "–"
    needed: str = "–"
    reason: str = ""


@dataclass
class ClaimResult:
    """A claim's verdict (module docstring) with every comparison it made."""
    id: str
    text: str
    metric: str
    verdict: str
    checks: list[Check] = field(default_factory=list)
    source: str = ""
    margin: float | None = None
    note: str = ""  # what the verdict does not cover (a `best` claim whose family has objectives without runs)
    values: str = "value"  # what the A and B columns hold: `distance` for a metric with an ideal (compared_values)


# the keys every claim may have, and those of each kind (a key of the other kind is an error, not ignored)
COMMON_KEYS = ("id", "text", "metric", "kind", "margin", "scale", "only_forgotten", "source")
KIND_KEYS = {"better": ("better", "than", "for_each"), "best": ("method", "among")}
REQUIRED = {"better": ("id", "metric", "better", "than"), "best": ("id", "metric", "method")}
CLAIM_KEYS = set(COMMON_KEYS) | {k for keys in KIND_KEYS.values() for k in keys}
FILE_KEYS = ("claims", "margins")


def load(path: Path, suite: str | None = None) -> list[dict]:
    """The claims of a YAML file, checked (format in the module docstring; with `suite`, their metrics against
    the suite's). Every bad claim, key, metric, method, objective or margin is named, in file order, in one line
    of one BenchError (a missing margin does not hide the error after it)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise BenchError(f"claims file {path} not found") from None
    except UnicodeDecodeError as e:
        raise BenchError(f"claims file {path} is not UTF-8 text ({e.reason} at byte {e.start}; expected a YAML file)") from None
    except OSError as e:  # a directory, an unreadable file
        raise BenchError(f"claims file {path} cannot be read ({e.strerror}; expected a YAML file)") from None
    except yaml.YAMLError as e:
        raise BenchError(f"claims file {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    claims = (data or {}).get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list):
        raise BenchError(f"claims file {path} has no list `claims` (see bench/claims.py for the format)")
    errors = [str(unknown(f"key of claims file {path}", key, FILE_KEYS)) for key in data if key not in FILE_KEYS]
    margins = data.get("margins") or {}
    if not isinstance(margins, dict):
        errors.append(f"claims file {path}: margins must map metrics to numbers > 0, got {margins!r}")
        margins = {}
    seen: set = set()
    metrics = None if suite is None else [m.name for m in SUITES[suite].metrics]
    if metrics is not None:  # a typo under margins (`epochs_to_forget_or_cpa`) would leave its claims without one
        errors += [str(unknown(f"metric under margins of claims file {path}", key, metrics))
                   for key in margins if key not in metrics]
    for i, c in enumerate(claims):
        errors += claim_errors(c, i, path, margins, seen, metrics)
    if errors:
        raise BenchError("; ".join(errors))
    return claims


def claim_errors(c, i: int, path: Path, margins: dict, seen: set, metrics: list[str] | None = None) -> list[str]:
    """What is wrong with claim number `i` (0-based) of `path`, one message per fault, in the order of its keys
    (missing keys last); empty when it is valid, after which c["margin"] is a float and c["pairs"] its (A, B)
    methods (None for a best claim). `seen`: the ids of the claims before it (this one is added); `metrics`:
    the suite's metric names (None: not checked here)."""
    if not isinstance(c, dict):
        return [f"claim #{i + 1} in {path} is {c!r}, not a mapping of id, metric, better, than, ..."]
    name = f"claim {c.get('id', f'#{i + 1}')!r} in {path}"
    kind = c.get("kind", "better")
    if kind not in KIND_KEYS:
        return [f"{name}: bad kind {kind!r} (expected better or best)"]
    other = next(k for k in KIND_KEYS if k != kind)
    errors: list[str] = []

    def guard(check, *args) -> None:
        try:
            check(*args)
        except BenchError as e:
            errors.append(str(e))

    for key in c:
        if key not in CLAIM_KEYS:
            errors.append(str(unknown(f"key of {name}", key, sorted(set(COMMON_KEYS) | set(KIND_KEYS[kind])))))
        elif key in KIND_KEYS[other]:
            errors.append(f"{name}: `{key}` is read only by `kind: {other}` claims (a {kind} claim reads "
                          f"{', '.join(KIND_KEYS[kind])})")
        elif key == "id" and not isinstance(c["id"], str):  # it names the claim in claims.md and the plan's keys
            errors.append(f"{name}: bad id {c['id']!r} (expected a name such as fila-forgets-faster)")
        elif key == "id":
            if c["id"] in seen:
                errors.append(f"claim id {c['id']!r} appears twice in {path}; ids name the claims in claims.md and "
                              "the sequential plan")
            seen.add(c["id"])
        elif key == "metric" and metrics is not None and c["metric"] not in metrics:
            errors.append(str(unknown(f"metric of {name}", c["metric"], metrics)))
        elif key == "margin":
            guard(_check_margin, c["margin"], c, path)
        elif key == "scale" and c["scale"] not in ("linear", "log10"):
            errors.append(f"{name}: bad scale {c['scale']!r} (expected linear or log10)")
        elif key == "only_forgotten" and not isinstance(c["only_forgotten"], bool):
            errors.append(f"{name}: bad only_forgotten {c['only_forgotten']!r} (expected true or false)")
        elif key == "method":
            guard(check_method, c["method"], c, path)
        elif key == "among":
            guard(check_among, c, path)
    pairs = None
    if kind == "better" and "better" in c and "than" in c and not any(k in KIND_KEYS["best"] for k in c):
        try:
            pairs = _pairs_of(c, path)
        except BenchError as e:
            errors.append(str(e))
    missing = [k for k in REQUIRED[kind] if k not in c]
    if missing:
        errors.append(f"{name} lacks {', '.join(missing)}")
    if "margin" not in c and "metric" in c:
        margin = margins.get(c["metric"]) if isinstance(c["metric"], str) else None
        if margin is None:
            per_metric = f", or `margins: {{{c['metric']}: ...}}` for the file" if isinstance(c["metric"], str) else ""
            errors.append(f"{name}: no margin (a claim states its practical margin, a number > 0: give `margin:`"
                          f"{per_metric})")
        else:
            guard(_check_margin, margin, c, path)
    if not errors:
        c["margin"] = float(c.get("margin", margins.get(c["metric"])))
        c["pairs"] = pairs
    return errors


def _check_margin(margin, c: dict, path: Path) -> None:
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not (margin > 0 and math.isfinite(margin)):
        raise BenchError(f"claim {c.get('id')!r} in {path}: margin {margin!r} is not a finite number > 0 (give "
                         f"`margin:` or `margins: {{{c.get('metric')}: ...}}`)")


def check_among(c: dict, path: Path) -> None:
    """`among` of a best claim: a non-empty list of distinct objectives, else a one-line BenchError naming the
    valid ones (`among: null` is an error: leaving `among` out compares with every method)."""
    among = c.get("among")
    if not isinstance(among, list) or not among:
        raise BenchError(f"claim {c.get('id')!r} in {path}: among must be a non-empty list of objectives, got {among!r} "
                         f"(valid: {', '.join(sorted(OBJECTIVES))}; leave `among` out to compare with every method)")
    for name in among:
        if name not in OBJECTIVES:
            raise unknown(f"objective in `among` of claim {c.get('id')!r} in {path}", name, sorted(OBJECTIVES))
    repeated = next((o for j, o in enumerate(among) if o in among[:j]), None)
    if repeated is not None:
        raise BenchError(f"claim {c.get('id')!r} in {path}: objective {repeated!r} appears twice in among {among} "
                         "(expected each objective once)")


def _pairs_of(c: dict, path: Path) -> list[tuple[str, str]]:
    """The (A, B) methods of a `better` claim, one per substitution of `for_each`; a one-line BenchError for
    an axis that is not a non-empty list, a placeholder no axis fills, or a method compared with itself."""
    axes = c.get("for_each") or {}
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise BenchError(f"claim {c.get('id')!r} in {path}: for_each must map each placeholder to a non-empty list, "
                         f"got {axes!r}")
    for axis, values in axes.items():  # a repeated value would make one comparison twice (and take two shares of 5 %)
        repeated = next((v for j, v in enumerate(values) if v in values[:j]), None)
        if repeated is not None:
            raise BenchError(f"claim {c.get('id')!r} in {path}: {repeated!r} appears twice in for_each {axis}: {values} "
                             "(expected each value once)")
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] or [{}]
    pairs = []
    for sub in combos:
        try:
            a, b = str(c["better"]).format(**sub), str(c["than"]).format(**sub)
        except (KeyError, IndexError, ValueError) as e:
            raise BenchError(f"claim {c.get('id')!r} in {path}: placeholder {e} in better/than is not a for_each axis "
                             f"(axes: {', '.join(axes) or 'none'})") from None
        if a == b:
            raise BenchError(f"claim {c.get('id')!r} in {path} compares {a} with itself")
        if (a, b) in pairs:
            raise BenchError(f"claim {c.get('id')!r} in {path} compares {a} with {b} twice (expected each comparison once)")
        check_method(a, c, path)
        check_method(b, c, path)
        pairs.append((a, b))
    return pairs


def check_method(name: str, c: dict, path: Path) -> None:
    """`name` is a method as runs are labelled (OBJECTIVE, OBJECTIVE+ADAPTER, or with a rank, ihl+fila-r4), with
    or without its settings as tables label them (`ihl+fila[lr=0.5]`, bench.runs.select_method); otherwise a
    one-line BenchError with a did-you-mean. A known method without runs is not an error: its comparisons are
    `no data`."""
    valid = list(OBJECTIVES.names()) + [f"{o}+{a}" for o in OBJECTIVES.names() for a in ADAPTERS.names() if a != "full"]
    base = str(name).partition("[")[0].strip()  # without its settings
    ranked = re.fullmatch(r"(.+\+.+)-r[1-9]\d*", base)
    if (ranked.group(1) if ranked else base) not in valid:
        raise unknown(f"method in claim {c.get('id')!r} ({path})", base, valid)


def _runs_of(runs: pd.DataFrame, name: str, suite: str, only_forgotten: bool) -> pd.DataFrame:
    """Finished runs of `name` (empty when it has none); several configurations -> BenchError."""
    finished, base = runs[runs["status"] == "finished"], name.partition("[")[0].strip()  # without its settings
    if not (method_base(finished["method"]).eq(base) | finished["method"].eq(base)).any():
        return finished.iloc[0:0]
    chosen = select_method(runs, name, suite)
    if only_forgotten:
        chosen = chosen[chosen.get("forgotten", pd.Series(False, index=chosen.index)).fillna(False).astype(bool)]
    return chosen


def unfinished_runs(runs: pd.DataFrame, chosen: list[pd.DataFrame]) -> str:
    """What the comparison leaves out because it did not finish: per side whose configuration (method label and
    settings, from its finished runs `chosen`) has failed, running or pending runs, their count and seeds by status. A
    method that fails where it diverges would otherwise be compared on its survivors, unsaid."""
    said = []
    for side in chosen:
        if side.empty or "settings" not in runs:
            continue
        same = runs[(runs["method"] == side["method"].iloc[0]) & (runs["settings"] == side["settings"].iloc[0])]
        left = same[same["status"] != "finished"]
        # where the runs span several forget sets (the replicates of TDEC), a run is named by its set and seed
        by_split = "split" in same and same["split"].nunique() > 1
        if len(left):
            by_status = []
            for status, group in sorted(left.groupby("status")):
                named = group.dropna(subset=["seed"]) if "seed" in group else group.iloc[0:0]  # none: no record
                if by_split:
                    names = [f"{x} seed {y}" for x, y in sorted(zip(named["split"], named["seed"].astype(int)))]
                else:
                    seeds = sorted(int(y) for y in named["seed"])
                    names = [f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"] if seeds else []
                by_status.append(f"{len(group)} {status}" + (f": {', '.join(names)}" if names else ""))
            said.append(f"{side['method'].iloc[0]} has {len(left)} {'run' if len(left) == 1 else 'runs'} not finished "
                        f"({', '.join(by_status)}), left out")
    return "; ".join(said)


def _basis(runs: pd.DataFrame, suite: str, a: str, b: str, only_forgotten: bool) -> str:
    """A digest of the settings of the runs a comparison of A and B draws on (seeds and splits aside): a plan's
    decision is about runs of these settings, not of others that later take their place; "" when a side has none.
    A side none of whose runs forgot, in a comparison of the runs that forgot, is known by all its runs' settings:
    runs of other settings that never forget are runs of other settings, not the missing runs of a look."""
    sides = [sorted({str(x) for x in _runs_of(runs, m, suite, only_forgotten)["settings"]}
                    or {str(x) for x in _runs_of(runs, m, suite, False)["settings"]}) for m in (a, b)]
    if not all(sides):  # a side without runs has no settings to tell apart
        return ""
    return hashlib.sha256(json.dumps(sides).encode()).hexdigest()[:12]


def distinct_pairs(merged: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Matched pairs without bit-identical replicates: a pair is kept when neither its A run nor its B run
    repeats an earlier one (the seed changed nothing); the reason names a method whose runs repeat."""
    if "replicate_a" not in merged:
        return merged, ""
    split = [c for c in REPEAT_SCOPE if c in merged]  # a repeat is of the same model and forget set
    keep = ~merged[split + ["replicate_a"]].duplicated() & ~merged[split + ["replicate_b"]].duplicated()
    distinct = {side: len(merged[split + [f"replicate_{side}"]].drop_duplicates()) for side in ("a", "b")}
    repeats = [f"{merged[f'method_{side}'].iloc[0]}'s {len(merged)} replicates hold {distinct[side]} distinct "
               f"{'run' if distinct[side] == 1 else 'runs'}" for side in ("a", "b") if distinct[side] < len(merged)]
    return merged[keep], "; ".join(repeats)


class Compared(NamedTuple):
    """A's and B's values of one metric over matched pairs (`a`, `b`, shown in tables) and what the test compares
    (`test_a`, `test_b`): the values, or each run's distance to the metric's ideal, whose name is `label` (shown
    as distances too, so that the A and B columns and A - B tell one story)."""
    a: list[float]
    b: list[float]
    test_a: list[float]
    test_b: list[float]
    label: str | None  # `privleak (distance to 0)` where distances are tested, None where the values are
    higher_is_better: bool  # of what is tested: distances are better lower
    unpaired: int = 0  # pairs with both values but a run without its calibrating value: no distance, no pair
    reach: tuple[float, float] = (0.0, math.inf)  # the distances' range (Metric.distance_bounds)

    def summary(self, metric, values: list[float], cap: int | None = None) -> stats.Summary | None:
        """`values` (of `a`, `b`) summarised as a table shows them: on the metric's scale and range, or as
        distances, within their range `reach`."""
        return metric.summarize(values, cap) if self.label is None else stats.summarize(values, bounds=self.reach)

    @property
    def unpaired_note(self) -> str:
        """What the missing calibrating values left out, "" when nothing."""
        return (f"{self.unpaired} {'pair' if self.unpaired == 1 else 'pairs'} left out of {self.label}: a run without "
                f"its calibrating value (ref), where others have one" if self.unpaired else "")


def compared_values(merged: pd.DataFrame, metric) -> Compared:
    """`metric` in the pairs `merged` (columns `<metric>_a`, `<metric>_b`) as a comparison tests it: the values, or
    for a metric with an ideal (privleak 0, an attack AUC 0.5) each run's distance to it (Metric.distances, to
    the run's calibrating value `<metric>_ref_a/b` where it has one), as the leaderboard ranks such a metric
    by nearness: privleak 5 is better than -97, which the direction alone would call better."""
    va = list(pd.to_numeric(merged[metric.name + "_a"], errors="coerce"))
    vb = list(pd.to_numeric(merged[metric.name + "_b"], errors="coerce"))
    if metric.ideal is None:
        return Compared(va, vb, va, vb, None, metric.higher_is_better)
    refs = {side: pd.to_numeric(merged[f"{metric.name}_ref_{side}"], errors="coerce")
            if f"{metric.name}_ref_{side}" in merged else pd.Series(math.nan, index=merged.index) for side in "ab"}
    # where any run gives its calibrating value, both sides are read against theirs (a run without one: no pair)
    calibrated = metric.calibrated and any(r.notna().any() for r in refs.values())
    da = metric.distances(va, refs["a"] if calibrated else None)
    db = metric.distances(vb, refs["b"] if calibrated else None)
    unpaired = sum(pd.notna(x) and pd.notna(y) and not (pd.notna(u) and pd.notna(v))
                   for x, y, u, v in zip(va, vb, da, db))
    paired = [pd.notna(u) and pd.notna(v) for u, v in zip(da, db)]  # shown over the pairs tested: A - B adds up
    shown = lambda d: [x if ok else math.nan for x, ok in zip(d, paired)]
    return Compared(shown(da), shown(db), da, db, metric.distance_label(calibrated), False, unpaired,
                    metric.distance_bounds(calibrated))


def _numbers(check: Check) -> tuple[str, ...]:
    """What a check's numbers say (its values, A - B, interval and p), without its labels."""
    return check.a_value, check.b_value, check.diff, check.interval, check.p


class PairKeys(NamedTuple):
    """The runs a comparison drew on, as "model/split/seed" keys: `matched`, every pair of finished runs (copies
    and pairs the cap tied included), and `tested`, the pairs its test used."""
    matched: list[str]
    tested: list[str]
    unfinished: str = ""  # the runs of A and B it left out unfinished (`unfinished_runs`)


def _check(runs: pd.DataFrame, suite: str, a: str, b: str, metric, only_forgotten: bool, level: float,
           margin: float, log10: bool, family_alpha: float | None = None) -> tuple[Check, PairKeys]:
    """One comparison of A with B at `level`, and the runs it drew on (`PairKeys`): what a plan's look is taken on
    (bench.sequential.Plan.stale, Plan.look)."""
    try:
        ra, rb = _runs_of(runs, a, suite, only_forgotten), _runs_of(runs, b, suite, only_forgotten)
    except BenchError as e:
        return Check(a, b, f"no data ({e})"), PairKeys([], [])
    if ra.empty or rb.empty:
        return Check(a, b, "no data", reason=f"no finished run of {' or '.join(m for m, r in ((a, ra), (b, rb)) if r.empty)}"
                                             f"{' that forgot (only_forgotten)' if only_forgotten else ''}"), \
            PairKeys([], [])
    if metric.name not in ra or metric.name not in rb:
        return Check(a, b, "no data", reason=f"no run records {metric.name}"), PairKeys([], [])
    if set(ra["run_id"]) == set(rb["run_id"]):  # one configuration under two spellings (`ga`, `ga[defaults]`)
        return Check(a, b, "not comparable (A and B name the same runs)"), PairKeys([], [])
    differ = unlike_settings(ra, rb)
    if differ:  # a claim about methods must not rest on runs that differ in anything else
        return Check(a, b, f"not comparable ({differ})"), PairKeys([], [])
    # in seed order, so that of two copies the earlier seed stays whatever seeds are added (directories sort s10
    # before s2), and a plan's look names its runs with integer seeds (a pending run's NaN makes the column float)
    matched = ra.merge(rb, on=KEYS, suffixes=("_a", "_b")).sort_values(KEYS, kind="stable")
    keys_of = lambda frame: [f"{m}/{s}/{int(seed)}" for m, s, seed in frame[KEYS].itertuples(index=False)]
    keys = sorted(keys_of(matched))
    merged, repeats = distinct_pairs(matched)
    values = compared_values(merged, metric)
    va, vb = values.a, values.b
    # a count where a run that never forgot counts as its cap + 1: the value at which the cap cut a run off
    cut_at = (list(pd.to_numeric(merged["max_epochs_a"], errors="coerce") + metric.cap_offset)
              if metric.cap_offset == 1 and "max_epochs_a" in merged else [math.inf] * len(va))
    rows = [(x, y, c, k) for x, y, c, k in zip(values.test_a, values.test_b, cut_at, keys_of(merged))
            if pd.notna(x) and pd.notna(y)]
    if not rows:
        return Check(a, b, "no data", reason=values.unpaired_note), PairKeys(keys, [])
    # a pair in which neither run forgot ties only because the cap cut both off: it says nothing about which
    # method forgets faster, so it is no pair (as a pair of `only_forgotten` needs both runs to have forgotten)
    tied = [(x, y, c, k) for x, y, c, k in rows if x >= c and y >= c]
    cap = int(max(c for _, _, c, _ in rows) - metric.cap_offset) if tied else None
    at_cap = (f"{len(tied)} of {len(rows)} pairs left out: neither run forgot within the {cap}-epoch cap (both count "
              f"{cap + metric.cap_offset}), a tie the cap made, which says nothing about which method forgets faster; "
              f"a larger --epochs gives them values" if tied else "")
    rows = [r for r in rows if r not in tied]
    if not rows:
        return Check(a, b, "no data", reason=at_cap), PairKeys(keys, [])
    one_cut = sum((x >= c) != (y >= c) for x, y, c, _ in rows)  # one run cut off: the difference is only a bound
    pairs = [(x, y) for x, y, _, _ in rows]
    if tied:  # the A and B values summarise the pairs compared, as A - B does
        va, vb = [x for x, _ in pairs], [y for _, y in pairs]
    if log10:
        pairs = [(math.log10(max(x, stats.FLOOR)), math.log10(max(y, stats.FLOOR))) for x, y in pairs]
    sign = 1 if values.higher_is_better else -1  # A-better positive
    diffs = [sign * (x - y) for x, y in pairs]
    # runs that never forgot form no pair: more replicates add pairs only at the rate the matched ones did
    every = [_runs_of(runs, m, suite, False) for m in (a, b)] if only_forgotten else []
    matched = len(every[0][KEYS].merge(every[1][KEYS], on=KEYS).drop_duplicates()) if every else len(pairs)
    result = decide.decide(diffs, margin, level, family_alpha, rate=min(1.0, len(pairs) / max(matched, 1)))
    needed = "–" if result.needed is None else (f"> {decide.MAX_NEEDED:,}" if result.needed >= decide.MAX_NEEDED
                                                else str(result.needed))
    if one_cut and result.verdict == "equivalent":  # a bound inside the margin is no difference inside it
        result = replace(result, verdict="inconclusive")
        needed = decide.EPOCHS_NEEDED
        at_cap = "; ".join(r for r in (at_cap, (
            f"{one_cut} of {len(pairs)} pairs have one run that never forgot within the cap: their difference is only "
            f"a bound, so it cannot show the two equivalent; a larger --epochs gives those runs values")) if r)
    elif one_cut:
        at_cap = "; ".join(r for r in (at_cap, f"{one_cut} of {len(pairs)} pairs have one run that never forgot "
                                                f"within the cap, counted as cap + 1 (the claim's metric)") if r)
    forgot = ""
    if result.verdict == "inconclusive" and any(len(r) < len(e) for r, e in zip((ra, rb), every)):
        forgot = (f"a pair needs both runs to have forgotten: {a} forgot in {len(ra)} of {len(every[0])} runs, "
                  f"{b} in {len(rb)} of {len(every[1])}")
        if result.needed is not None and matched > len(pairs):
            forgot += (f"; replicates needed counts replicates, which gave pairs at the rate of {len(pairs)} in "
                       f"{matched}")
    left = unfinished_runs(runs, every or [ra, rb])
    nearness = values.label and "; ".join(r for r in (
        f"tested as {values.label}, each run's distance to the metric's ideal (the A and B values too): A - B is the "
        f"difference of the distances, negative where A is nearer", values.unpaired_note) if r)
    reason = "; ".join(r for r in (nearness, repeats and f"bit-identical replicates dropped ({repeats})", result.reason,
                                   forgot, at_cap, left) if r)
    shown = lambda v: None if v is None else sign * v  # report A - B in the metric's own direction
    lo, hi = sorted((shown(result.lo), shown(result.hi))) if result.lo is not None else (None, None)
    return Check(a, b, result.verdict, stats.fmt_summary(values.summary(metric, va, epoch_cap(ra))),
                 stats.fmt_summary(values.summary(metric, vb, epoch_cap(rb))),
                 stats.fmt(shown(result.diff)), "–" if lo is None else f"[{stats.fmt(lo)}, {stats.fmt(hi)}]",
                 stats.fmt(result.p_value), result.n, stats.fmt(margin), f"{level:.4g}", needed, reason), \
        PairKeys(keys, sorted(k for *_, k in rows), left)


def overall(verdicts: list[str]) -> str:
    """A claim's verdict from its comparisons' (module docstring)."""
    if "does not hold" in verdicts:  # one counter-example settles a claim about every comparison
        return "does not hold"
    if any(v.startswith("not comparable") for v in verdicts):
        return "not comparable"
    if not verdicts or all(v.startswith("no data") for v in verdicts):
        return "no data"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if all(v == "equivalent" for v in verdicts):
        return "equivalent"
    if any(v == "inconclusive" or v.startswith("no data") for v in verdicts):
        return "inconclusive"
    return "does not hold"  # some comparisons hold only within the margin


def comparison_key(claim: dict, a: str, b: str, comparisons: int) -> str:
    """The plan's name for one comparison: the claim's id and methods, and a digest of everything that
    defines its test and its family: metric, margin, scale, only_forgotten, kind, `among` (which methods a
    best claim is compared with) and the claim's number of comparisons k (each is tested at 0.05 / k). An
    edited claim, or the same claim over another family, is a new comparison with levels of its own."""
    among = claim.get("among")
    test = {k: claim.get(k) for k in ("metric", "margin", "scale", "only_forgotten")}
    test.update(kind=claim.get("kind", "better"), among=None if among is None else sorted(among), comparisons=comparisons)
    return f"{claim['id']}: {a} vs {b} [{hashlib.sha256(json.dumps(test, sort_keys=True).encode()).hexdigest()[:8]}]"


def legacy_comparison_key(claim: dict, a: str, b: str) -> str:
    """The key plans without a `version` used (metric, margin, scale and only_forgotten only): read to adopt
    their looks (bench.sequential.Plan.adopt), never written."""
    test = {k: claim.get(k) for k in ("metric", "margin", "scale", "only_forgotten")}
    return f"{claim['id']}: {a} vs {b} [{hashlib.sha256(json.dumps(test, sort_keys=True).encode()).hexdigest()[:8]}]"


def evaluate(claims: list[dict], suite: str, runs: pd.DataFrame, plan=None, sequential: bool | None = None
             ) -> list[ClaimResult]:
    """Every claim's comparisons decided on `runs`; with a sequential `plan` (bench.sequential.Plan) each
    comparison is tested at the level its look spends, and one decided at an earlier look keeps its verdict.
    `sequential` (default: whether there is a plan): the claims are ones `--until-decided` plans for, so an
    inconclusive comparison names the plan cap that would likely decide it (bench.decide.cap_needed), not the
    fixed-sample count."""
    sequential = plan is not None if sequential is None else sequential
    metrics = {m.name: m for m in SUITES[suite].metrics}
    runs = first_requests(runs)  # a later request of a sequence is no replicate of its split (bench/axes.py)
    labels = runs.loc[runs["status"] == "finished", "method"] if "method" in runs else pd.Series(dtype=str)
    methods = sorted(set(zip(labels, method_base(labels))))
    results = []
    for c in claims:
        if "pairs" not in c:  # given directly, not read by `load`: the same checks
            errors = claim_errors(c, 0, Path("(claims given directly)"), {}, set(), list(metrics))
            if errors:
                raise BenchError("; ".join(errors))
        if c["metric"] not in metrics:
            raise unknown(f"metric of suite {suite} (claim {c['id']})", c["metric"], metrics)
        metric, only = metrics[c["metric"]], bool(c.get("only_forgotten", False))
        positive = metric.ideal is None and metric.bounds is not None and metric.bounds[0] > 0
        if c.get("scale") == "log10" and not (metric.log_scale or positive):  # log10 of 0 is -inf, clipped: nonsense
            reach = "distances to its ideal" if metric.ideal is not None else f"values in {metric.bounds}"
            raise BenchError(f"claim {c['id']!r}: scale: log10 on {metric.name}, whose {reach} can be 0 or below "
                             f"(log10 needs positive values: perplexities); leave scale out")
        if c.get("kind", "better") == "best":
            among = c.get("among")  # the methods the claim's source compared: their objectives
            # a method named with its settings (`ga[lr=0.002]`) is best among the methods run at those settings
            name, _, settings = str(c["method"]).partition("[")
            name, at = name.strip(), settings and settings_key(settings.rstrip(" ]"))
            # the methods run there, each with the settings as its rows label them (`[lr=0.002]` for `[lr=2e-3]`)
            run_at = {m: f"[{text or 'defaults'}]" for m, text in zip(labels, runs.loc[labels.index, "settings"])
                      if settings_key(text) == at} if settings else None
            others = [label for label, base in methods if name not in (label, base)
                      and (among is None or base.split("+")[0] in among) and (run_at is None or label in run_at)]
            pairs = [(c["method"], o + (run_at[o] if settings else "")) for o in others]
            # A is labelled as its runs are, like the B methods (ihl+fila-r4 against ga+lora-r4); the plan's keys
            # keep the claim's own name
            own = [label for label, base in methods if name in (label, base)]
            label_a = (own[0] + (run_at.get(own[0], f"[{settings}") if settings else "")) if len(own) == 1 \
                else c["method"]
            # a partial grid shrinks the family: "best" against the methods run is not "best" of the paper's
            absent = [o for o in among or [] if not any(label.split("+")[0] == o for label in others + own)]
            note = (f"compared with {len(others)} method{'s' * (len(others) != 1)}; no finished run of "
                    f"{', '.join(absent)} (of among: {', '.join(among)}) was there to compare with, so the verdict "
                    f"covers only the methods compared" if absent and own and others else "")
            at_text = f" at [{settings}" if settings else ""
            if settings and not [label for label in own if label in run_at]:  # A itself never ran there
                alone = f"no finished run of {name}{at_text} (a setting none of its runs has)"
            elif not others:
                who = f"of among ({', '.join(among)}) " if among else ""
                alone = f"no other method {who}has finished runs{at_text} to compare {c['method']} with"
            else:
                alone = ""
        else:
            pairs, label_a, note, alone = c["pairs"], None, "", ""
        # family-wise 95% over the claim's comparisons (Bonferroni): one lucky comparison of nine decides nothing
        alpha = (1 - stats.LEVEL) / max(len(pairs), 1)
        log10 = metric.log_scale or c.get("scale") == "log10"
        checks = [Check(label_a, "–", "no data", reason=alone)] if alone else []  # a best claim with no one to beat
        for a, b in pairs:
            key = comparison_key(c, a, b, len(pairs))
            if plan is not None:  # a plan written under the old keys keeps the looks taken for this comparison
                plan.adopt(key, legacy_comparison_key(c, a, b), alpha)
            planned = alpha if sequential else None
            check, drawn = _check(runs, suite, a, b, metric, only, 1 - alpha, c["margin"], log10, planned)
            # (a comparison that cannot be made says why: several configurations, unlike settings)
            if plan is not None and (check.pairs or check.verdict == "no data"):
                # a verdict decided at an earlier look stands only for the runs it was decided on, and a look
                # without all of them would be a second look at old data
                # a best claim's family is the methods with runs; a better claim's is written down (an edit is a
                # new claim, comparison_key)
                siblings = tuple(comparison_key(c, a, b, k) for k in range(1, MAX_FAMILY + 1)
                                 if k != len(pairs)) if c.get("kind") == "best" else ()
                # the pairs with both runs finished, usable or not (a run that did not forget gives none)
                present = _check(runs, suite, a, b, metric, False, 1 - alpha, c["margin"], log10, planned)[1].matched \
                    if only else drawn.matched
                needs, stale = plan.stale(key, check.pairs, _basis(runs, suite, a, b, only), drawn.matched,
                                          siblings, present)
                if stale:
                    checks.append(Check(label_a or a, b, "inconclusive", pairs=check.pairs, needed=needs,
                                        reason="; ".join(r for r in (stale, drawn.unfinished) if r)))
                    continue
                frozen = plan.decided(key)
                level = plan.level_at(key, check.pairs) if frozen is not None else None
                again = level and _check(runs, suite, a, b, metric, only, level, c["margin"], log10, planned)[0]
                if again and frozen["pairs"] == check.pairs and plan.tested_at_last_look(key, drawn.tested) \
                        and _numbers(again) != _numbers(Check(**frozen)):
                    # the runs it was decided on give other numbers here: that verdict is not these runs'
                    detail = (f"A - B {again.diff} {again.interval} at its deciding look's level, not {frozen['diff']} "
                              f"{frozen['interval']}")
                    checks.append(Check(label_a or a, b, "inconclusive", pairs=check.pairs, needed=decide.PLAN_NEEDED,
                                        reason=other_values(plan.path, detail)))
                    continue
                if frozen is not None:
                    said = "" if frozen["pairs"] == check.pairs else (
                        f"decided at its plan's look at {frozen['pairs']} pairs, whose numbers these are; the runs "
                        f"now give {check.pairs} (a decided verdict is final: docs/statistics.md)")
                    reason = "; ".join(r for r in (said, frozen.get("reason", "")) if r)
                    checks.append(Check(**{**frozen, "a": label_a or frozen["a"], "reason": reason}))
                    continue
                if not check.pairs:  # no data, as before its looks (none were taken on it)
                    checks.append(replace(check, a=label_a or check.a))
                    continue
                level = plan.look(key, check.pairs, alpha, drawn)
                if level is None:  # past the cap: nothing left to spend
                    check.verdict, check.reason = "inconclusive", "no alpha left to spend (at the replicate cap)"
                elif not plan.tested_at_last_look(key, drawn.tested):
                    # as many pairs as at its last look, but other ones (a seed added below copies of a run changed
                    # the copy kept): testing them at that look's level would spend it twice
                    check.verdict = "inconclusive"
                    check.reason = ("its pairs are other runs than at its plan's last look, at the same count (a seed "
                                    "added below copies of a run changed the copy kept): no look is taken until a "
                                    "replicate is added")
                else:
                    check, _ = _check(runs, suite, a, b, metric, only, level, c["margin"], log10, planned)
                    plan.record(key, check)
            checks.append(replace(check, a=label_a or check.a))
        if all(k.verdict.startswith("no data") for k in checks):
            note = ""  # compared with nothing: the verdict says so
        results.append(ClaimResult(c["id"], c.get("text", ""), c["metric"], overall([k.verdict for k in checks]),
                                   checks, c.get("source", ""), c["margin"], note,
                                   "value" if metric.ideal is None else "distance"))
    return results


def evaluate_file(path: Path, suite: str, runs: pd.DataFrame, plan=None, sequential: bool | None = None
                  ) -> list[ClaimResult]:
    """`evaluate` on the claims of the file `path`."""
    return evaluate(load(path, suite), suite, runs, plan, sequential)


NOTE = ("Each comparison pairs runs by (model, split, seed), drops bit-identical replicates, and takes A minus B with "
        "its interval at a family-wise 95% over the claim's comparisons (Bonferroni; under a sequential plan, the alpha "
        "the look spends) and the p-value (paired t; sign test where all differences are equal; log-scale metrics as "
        "log10 ratios). holds = the interval lies on A's side of 0; does not hold = on B's side; equivalent = inside "
        "±margin; inconclusive = it contains 0 and reaches past a margin, with the replicates that would likely decide "
        "it (power 0.8; for the suite's own claims, the cap of a fresh `--until-decided` plan, docs/statistics.md). "
        "A claim does not hold when any comparison does not; otherwise it holds when all hold, is equivalent when all "
        "are, is inconclusive while any is, and does not hold when some hold and the rest are equivalent.")


def most_needed(result: ClaimResult) -> str:
    """For an inconclusive claim, the largest replicate count its inconclusive comparisons name (what deciding all of
    them would take), with how many name none (one pair: no spread to plan with); "unknown" when none does; "–"
    for a decided claim (its verdict no longer waits on them)."""
    if result.verdict != "inconclusive":
        return "–"
    open_checks = [k for k in result.checks if k.verdict == "inconclusive"]
    other = [n for n in decide.NOT_A_COUNT if any(k.needed == n for k in open_checks)]  # not seeds: named as such
    counts = [(int(k.needed.lstrip("> ").replace(",", "")), k.needed) for k in open_checks
              if k.needed not in ("–", *decide.NOT_A_COUNT)]
    unknown = sum(k.needed == "–" for k in open_checks)
    also = "".join(f" and {n}" for n in other)
    if not counts:
        return " and ".join(other) if other and not unknown else "unknown" + also
    return max(counts)[1] + (f" (+{unknown} unknown)" if unknown else "") + also


def shown_verdict(result: ClaimResult) -> str:
    """The verdict as tables show it: `(partial family)` after that of a best claim compared with fewer objectives
    than its `among` names (ClaimResult.note), wherever the verdict is read without its section."""
    return result.verdict + (" (partial family)" if result.note else "")


def write_markdown(results: list[ClaimResult], suite: str, path: Path) -> Path:
    """claims.md: the verdicts, then one section per claim with its comparisons and reasons. Returns `path`."""
    lines = [f"# {suite}: claims", "", NOTE, "",
             tabulate([{"claim": r.id, "verdict": shown_verdict(r), "metric": r.metric, "margin": stats.fmt(r.margin),
                        "replicates needed": most_needed(r), "statement": r.text} for r in results],
                      headers="keys", tablefmt="github"), ""]
    for r in results:
        lines += [f"## {r.id}: {shown_verdict(r)}", "", r.text, ""] + (
                 [f"Source: {r.source}", ""] if r.source else []) + (
                 [f"**Partial family:** {r.note}.", ""] if r.note else []) + [
                  tabulate([{"A": k.a, "B": k.b, f"A {r.values}": k.a_value, f"B {r.values}": k.b_value,
                             "A - B": k.diff, "interval": k.interval, "level": k.level, "margin": k.margin, "p": k.p,
                             "pairs": k.pairs, "verdict": k.verdict, "replicates needed": k.needed}
                            for k in r.checks], headers="keys", tablefmt="github"), ""]
        lines += [f"- {k.a} vs {k.b}: {k.reason}" for k in r.checks if k.reason]
        lines += [""] if any(k.reason for k in r.checks) else []
    path.write_text("\n".join(lines))
    return path
