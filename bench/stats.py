"""Statistics over seeds: means with 95% confidence intervals, tied-best marking, paired comparisons.

Intervals are Student-t intervals over independent runs (seeds, and forget sets where a row averages
them): mean ± t_{n-1, 0.975} · s / sqrt(n). With 3 seeds t = 4.30, so intervals are honest about how
little three runs say. Metrics that span orders of magnitude (forget quality is a p-value) are
summarised on log10: the centre is the geometric mean and the interval is back-transformed, so it is
asymmetric. One run has no interval (lo = hi = None): it can never be separated from anything.

Ties: a method is marked best when its interval overlaps the interval of the method with the best
mean (the best included). Pairwise comparisons pair runs by (model, split, seed) and report the mean
difference, its t-interval, and the paired t-test p-value (scipy.stats.ttest_rel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

LEVEL = 0.95
FLOOR = 1e-300  # log-scale metrics: a p-value of exactly 0 is clipped here before log10


@dataclass(frozen=True)
class Summary:
    """Centre and 95% interval of one metric over n runs; lo/hi None when n < 2. `missing`: the runs that were
    summarised but had no value (a metric measured only on runs that forgot); such a summary never competes for
    best (`best_and_tied`), since it speaks for the survivors only."""

    mean: float
    lo: float | None
    hi: float | None
    n: int
    missing: int = 0

    @property
    def has_interval(self) -> bool:
        """True when lo / hi hold a 95% interval (never for n < 2)."""
        return self.lo is not None

    def overlaps(self, other: "Summary") -> bool:
        """True when the two intervals overlap (a summary without one counts as the point at its mean)."""
        lo_a, hi_a = (self.lo, self.hi) if self.has_interval else (self.mean, self.mean)
        lo_b, hi_b = (other.lo, other.hi) if other.has_interval else (other.mean, other.mean)
        return lo_a <= hi_b and lo_b <= hi_a


def t_quantile(n: int, level: float = LEVEL) -> float:
    """Student-t quantile for n values (scipy.special: a third of scipy.stats' import time)."""
    # scipy loads when this runs, not when the CLI imports bench.stats
    from scipy.special import stdtrit

    return float(stdtrit(n - 1, 0.5 + level / 2))


def summarize(values: Iterable[float], log_scale: bool = False, bounds: tuple[float, float] | None = None,
              level: float = LEVEL) -> Summary | None:
    """Mean and t-interval of the finite values, the interval clipped to `bounds` (the metric's range:
    a probability's interval never leaves [0, 1]); None when there are no values. The values that are not finite
    numbers are counted as `missing`."""
    values = list(values)
    xs = [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))]
    if not xs:
        return None
    if log_scale:
        xs = [math.log10(max(x, FLOOR)) for x in xs]
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        lo = hi = None
    else:
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = t_quantile(n, level) * std / math.sqrt(n)
        lo, hi = mean - half, mean + half
    if log_scale:
        back = lambda v: None if v is None else 10 ** max(min(v, 300.0), -300.0)
        mean, lo, hi = 10 ** mean, back(lo), back(hi)
    if bounds is not None and lo is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Summary(mean, lo, hi, n, len(values) - n)


def summarize_metric(values: Iterable[float], metric, cap: int | float | None = None) -> Summary | None:
    """`summarize` with the scale and range a suite's Metric declares (None: a plain number). For an epoch
    count (`metric.cap_offset` set) `cap` is the runs' epoch cap: the range ends at cap + cap_offset."""
    if metric is None:
        return summarize(values)
    bounds = metric.bounds
    offset = getattr(metric, "cap_offset", None)
    if offset is not None and cap is not None and not (isinstance(cap, float) and math.isnan(cap)):
        low, high = bounds or (-math.inf, math.inf)
        bounds = (low, min(high, cap + offset))
    return summarize(values, metric.log_scale, bounds)


def distance_to(s: Summary, ideal: float) -> Summary:
    """|x - ideal| as a Summary: its interval is the range of distances the interval of x allows."""
    if not s.has_interval:
        d = abs(s.mean - ideal)
        return Summary(d, None, None, s.n, s.missing)
    ends = (abs(s.lo - ideal), abs(s.hi - ideal))
    lo = 0.0 if s.lo <= ideal <= s.hi else min(ends)
    return Summary(abs(s.mean - ideal), lo, max(ends), s.n, s.missing)


def best_and_tied(summaries: Sequence[Summary | None], higher_is_better: bool) -> set[int]:
    """Indices of the best mean and of every summary whose interval overlaps the best one's. A metric with an
    ideal value (an AUC of 0.5, a privleak of 0) is ranked on its distances to it, lower being better
    (Metric.ranked). A summary with `missing` runs never competes: a mean over the runs that forgot would otherwise
    beat a method whose every run was counted (2 survivors of 12 against 12 of 12). A summary of one run (no
    interval) never sets the best where a summary has an interval, so it pushes no overlapping interval out; it is
    marked when it lies in that best interval or beyond it (nothing shows it worse)."""
    present = [(i, s) for i, s in enumerate(summaries) if s is not None and not s.missing]
    if not present:
        return set()
    sign = 1 if higher_is_better else -1
    # one run is no estimate to outrank an interval (agreement.md's rule too): the best is the best of the
    # summaries with an interval where there are any; a single run is marked where nothing shows it worse
    estimates = [p for p in present if p[1].has_interval] or present
    best = max(estimates, key=lambda p: sign * p[1].mean)[1]
    return {i for i, s in present if s is best or s.overlaps(best)
            or (not s.has_interval and sign * s.mean >= sign * best.mean)}


@dataclass(frozen=True)
class Paired:
    """A minus B over matched runs: mean difference, its t-interval, paired t-test p-value."""

    diff: float
    lo: float | None
    hi: float | None
    p_value: float | None
    n: int

    def verdict(self, higher_is_better: bool) -> str:
        """`A better`, `B better` (the interval excludes 0), or `inconclusive`."""
        if self.lo is None:
            return "inconclusive"
        if self.lo > 0 or self.hi < 0:
            a_better = (self.lo > 0) == higher_is_better
            return "A better" if a_better else "B better"
        return "inconclusive"


def paired(a: Sequence[float], b: Sequence[float], log_scale: bool = False, level: float = LEVEL) -> Paired | None:
    """Paired comparison of matched values (a[i] and b[i] from the same seed / split); the p-value is the
    two-sided paired t-test's (what scipy.stats.ttest_rel gives)."""
    # scipy loads when this runs, not when the CLI imports bench.stats
    from scipy.special import stdtr

    pairs = [(float(x), float(y)) for x, y in zip(a, b) if x is not None and y is not None
             and math.isfinite(float(x)) and math.isfinite(float(y))]
    if not pairs:
        return None
    if log_scale:
        pairs = [(math.log10(max(x, FLOOR)), math.log10(max(y, FLOOR))) for x, y in pairs]
    d = [x - y for x, y in pairs]
    n = len(d)
    mean = sum(d) / n
    if n < 2:
        return Paired(mean, None, None, None, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    half = t_quantile(n, level) * sd / math.sqrt(n)
    if sd <= 1e-9 * max(1.0, abs(mean)):  # equal differences (up to float rounding): t is undefined; the sign test's interval is the point once 2 * 0.5^n <= 1 - level
        p = min(1.0, 2 * 0.5 ** n) if mean != 0 else 1.0
        return Paired(mean, mean, mean, p, n) if p <= 1 - level else Paired(mean, None, None, p, n)
    t = mean / (sd / math.sqrt(n))
    p = float(2 * stdtr(n - 1, -abs(t)))
    return Paired(mean, mean - half, mean + half, p, n)


def fmt(x: float | None) -> str:
    """Compact number: 3 significant digits, scientific below 1e-3."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:  # -0.0 (a difference of equal values, negated for direction) is no negative number
        return "0"
    if float(x).is_integer() and abs(x) >= 100:
        return f"{int(x):,}"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"
    return f"{x:.2e}"


def fmt_summary(s: Summary | None) -> str:
    """`0.46 [0.41, 0.51]`; one run: just the value."""
    if s is None:
        return "–"
    if not s.has_interval:
        return fmt(s.mean)
    return f"{fmt(s.mean)} [{fmt(s.lo)}, {fmt(s.hi)}]"
