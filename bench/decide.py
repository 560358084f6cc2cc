"""Deciding one comparison: holds, does not hold, equivalent or inconclusive, against a practical margin;
how many replicates an undecided comparison would need; and the level of each look when replicates are
added until the comparison is decided (alpha spending).

A comparison is a list of paired differences d_i = A_i - B_i over matched replicates, signed so that
d > 0 means A is better (the caller negates lower-is-better metrics and takes log10 of log-scale ones).
With a margin δ > 0 (the smallest difference that matters, per metric: docs/statistics.md) and the
(1 - α) interval [lo, hi] of the mean difference:

- equivalent     lo > -δ and hi < δ: whatever the difference is, it is smaller than the margin
- holds          otherwise lo > 0: A is better
- does not hold  otherwise hi < 0: B is better
- inconclusive   the interval contains 0 and reaches past a margin

Every wrong verdict needs an interval that misses the true mean difference, so one interval at 1 - α
bounds the error of all three decisions at α.

The interval is Student's t (mean ± t_{n-1, 1-α/2} s / sqrt(n)) when the differences vary. When all n
differences are equal (an integer metric such as epochs to forget, every replicate the same), t has
no interval; the sign test's does: the distribution-free interval for the median difference is the
point d when 2 · 0.5^n <= α and unbounded otherwise (too few replicates to exclude anything).
Replicates must vary what rerunning the experiment varies: bit-identical replicates are one
observation, and the caller removes them before calling (bench/claims.py).

Replicates needed (power 1 - β = 0.8, at the level the comparison is tested at), from the observed mean
difference d and standard deviation s, the smallest n with
- (t_{n-1, 1-α/2} + t_{n-1, 1-β}) · s / sqrt(n) <= |d|        when |d| >= δ (to tell the sign), or
- (t_{n-1, 1-α/2} + t_{n-1, 1-β/2}) · s / sqrt(n) <= δ - |d|  when |d| < δ (to show equivalence: both
  ends of the interval must fall inside the margins, so β is split between them),
the usual normal-approximation sample size with t quantiles (Julious 2004, "Sample sizes for clinical
trials with Normal data"; the equivalence form is the two one-sided tests' of Schuirmann 1987).

Under a plan (`bench run --until-decided`, below) the number an inconclusive comparison reports is the cap
N, in matched replicates (`--max-seeds` x forget splits x models), of a fresh plan whose last look,
adding one replicate at level 1 - α_c / N, would decide it with power 0.8: the smallest N with N >= the
count above at that level, and for equal differences the smallest N with 2 · 0.5^N <= α_c / N. The
fixed-level count is smaller (α_c
= 0.01: the sign test needs 8 equal differences at a fixed level, a plan a cap of 12), and a plan
capped at it would spend too little at its last looks to decide.

Sequential looks: adding replicates and testing again inflates the error rate if every look uses α.
`spent_level` gives look k the share α · (n_k - n_{k-1}) / n_max of the replicates it adds, out of the
cap n_max (a linear alpha-spending function, Lan & DeMets 1983); the looks' shares sum to at most α,
so by the union bound the chance that any look's interval misses stays below α, however the looks
fall. It is conservative (it ignores the looks' correlation) and needs no plan of when to look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

POWER = 0.8
VERDICTS = ("holds", "does not hold", "equivalent", "inconclusive")
MAX_NEEDED = 10_000
EQUAL = 1e-9  # differences this close (relative) are equal: t would give a point interval with p ~ 0


# `replicates needed` of a comparison that more seeds cannot decide: a run cut off by the epoch cap makes its
# difference a bound, and only a larger --epochs turns the bound into a value (`--until-decided` skips it)
EPOCHS_NEEDED = "a larger --epochs"
# ... of one some of whose runs its plan looked at are missing: those runs, which rerunning their seeds reproduces
# (`--until-decided` adds seeds to it until it has them, taking no look before)
RUNS_NEEDED = "the runs of its looks"
# ... and of one whose plan looked at runs of other settings: only those runs (or a new plan, which discards the
# looks' error control) can decide it, no seed (`--until-decided` skips it)
SETTINGS_NEEDED = "the settings of its looks"
# ... and of one whose plan looked at the same two methods in a family of another size (a best claim whose other
# methods with runs changed): a look in this family would look at them again at a fresh level
CLAIM_NEEDED = "the family its plan looked at"
# ... and of one whose plan looked at other values of the same runs (runs rebuilt on another machine or software:
# float rounding differs): its looks and verdict are about those runs; only a plan of these runs' own decides it
PLAN_NEEDED = "a plan of these runs' own"
NOT_A_COUNT = (EPOCHS_NEEDED, RUNS_NEEDED, SETTINGS_NEEDED, CLAIM_NEEDED, PLAN_NEEDED)


@dataclass(frozen=True)
class Decision:
    """One comparison's verdict. diff/lo/hi are A - B in the comparison's units, A-better positive;
    lo/hi are None where no interval exists; `needed` is the replicate count that would likely decide an
    inconclusive comparison (None: decided, or no spread to plan with); `reason` says why in words."""

    verdict: str
    diff: float
    lo: float | None
    hi: float | None
    n: int
    p_value: float | None
    level: float
    needed: int | None = None
    reason: str = ""


def _t(df: int, q: float) -> float:
    # scipy loads when this runs, not when the CLI imports bench.decide
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def decide(diffs: Sequence[float], margin: float, level: float = 0.95, family_alpha: float | None = None,
           rate: float = 1.0) -> Decision:
    """Verdict of the paired differences `diffs` (A-better positive) against `margin` (> 0, same units)
    at interval level `level` (0 < level < 1). With `family_alpha` (the comparison's α_c, under a sequential
    plan) an inconclusive comparison's `needed` is the plan cap that would likely decide it (`cap_needed`),
    else the fixed-sample count at `level` (`replicates_needed`), in replicates that each give a pair with
    probability `rate` (0 < rate <= 1: a comparison of runs that forgot gets a pair only where both did).
    Raises ValueError for a margin <= 0 or a level outside (0, 1)."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = [float(x) for x in diffs if x is not None and math.isfinite(float(x))]
    n, alpha = len(d), 1 - level
    if n == 0:
        return Decision("inconclusive", math.nan, None, None, 0, None, level, reason="no matched replicates")
    mean = sum(d) / n
    if n < 2:
        return Decision("inconclusive", mean, None, None, 1, None, level, needed=None,
                        reason="one replicate: no spread to build an interval from")
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd <= EQUAL * max(1.0, abs(mean)):  # equal up to float rounding (log10 of equal ratios): sign test: every difference on one side; the point interval once 2 * 0.5^n <= alpha
        p = min(1.0, 2 * 0.5 ** n) if mean != 0 else 1.0
        if n < sign_test_count(alpha):
            if family_alpha is None:
                enough = (sign_test_count(alpha) if rate >= 1 else
                          replicates_at_rate(_sign_power, rate, lambda n: alpha))
                words = f"the sign test needs {enough} to exclude anything"
            else:
                enough = sign_test_cap(family_alpha, rate)
                words = f"the sign test excludes nothing at this look's level; a plan capped at {enough} replicates can"
            return Decision("inconclusive", mean, None, None, n, p, level, needed=enough,
                            reason=f"all {n} differences equal {mean:g}: {words}")
        lo = hi = mean
    else:
        half = _t(n - 1, 1 - alpha / 2) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
        # scipy loads when this runs, not when the CLI imports bench.decide
        from scipy.special import stdtr

        p = float(2 * stdtr(n - 1, -abs(mean) / (sd / math.sqrt(n))))
    if -margin < lo and hi < margin:
        verdict = "equivalent"
    elif lo > 0:
        verdict = "holds"
    elif hi < 0:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    needed = None
    if verdict == "inconclusive":
        if family_alpha is not None:
            needed = cap_needed(mean, sd, margin, family_alpha, rate=rate)
        elif rate >= 1:
            needed = replicates_needed(mean, sd, margin, level)
        elif 0 < sd < math.inf:
            needed = replicates_at_rate(_t_power(mean, sd, margin), rate, lambda n: alpha)
    return Decision(verdict, mean, lo, hi, n, p, level, needed)


def sign_test_count(alpha: float) -> int:
    """Fewest equal differences whose two-sided sign test reaches `alpha`: the smallest n with 2 · 0.5^n <= alpha."""
    return math.ceil(math.log2(2 / alpha) - 1e-12)


def sign_test_cap(family_alpha: float, rate: float = 1.0) -> int:
    """Smallest plan cap N at which N equal differences decide at the last look, which adds one replicate and
    spends family_alpha / N: 2 · 0.5^N <= family_alpha / N (family_alpha 0.01: 12; 0.05: 9). With replicates that
    give a pair at `rate` < 1, the smallest N at which the pairs, Binomial(N, rate) of them, are enough with
    probability POWER (`replicates_at_rate`)."""
    if rate < 1:
        return replicates_at_rate(_sign_power, rate, lambda n: family_alpha / n)
    n = 2
    while 2 * 0.5 ** n > family_alpha / n:
        n += 1
    return n


def _sign_power(k, alpha: float):
    """Whether k equal differences decide at level 1 - alpha (the two-sided sign test), per k (an array)."""
    import numpy as np

    return (2 * 0.5 ** np.asarray(k, dtype=float) <= alpha).astype(float)


def _t_power(diff: float, sd: float, margin: float):
    """The power of the paired t interval on k pairs at level 1 - alpha, per k (an array): the chance that it
    excludes 0 on the side of `diff` (|diff| >= margin) or lies within the margin (|diff| < margin, its near
    end; the far end's miss is negligible there), from the noncentral t (scipy.special.nctdtr)."""
    import numpy as np
    from scipy.special import nctdtr, stdtrit

    gap = abs(diff) if abs(diff) >= margin else margin - abs(diff)

    def power(k, alpha: float):
        k = np.asarray(k, dtype=float)
        df = np.maximum(k - 1, 1)
        hit = 1 - nctdtr(df, gap * np.sqrt(k) / sd, stdtrit(df, 1 - alpha / 2))
        return np.where(k >= 2, hit, 0.0)

    return power


def replicates_at_rate(pair_power, rate: float, alpha_at, power: float = POWER) -> int:
    """Smallest number of replicates N whose pairs, Binomial(N, `rate`) of them since a replicate gives a pair
    only at `rate`, decide with probability `power`: the mean over that count k of pair_power(k, alpha_at(N))
    (`alpha_at`: the level's alpha for a cap or sample of N; a plan's last look spends family_alpha / N).
    Counting N x rate pairs as certain would fall short: at 1 pair in 6 and 5 pairs needed, 30 replicates give
    them only 58 % of the time. Found by doubling, then bisection (the power grows with N); MAX_NEEDED when it
    would take more."""
    import numpy as np
    from scipy.stats import binom

    def expected(n: int) -> float:
        ks = np.arange(n + 1)
        return float(np.sum(binom.pmf(ks, n, rate) * pair_power(ks, alpha_at(n))))

    low, high = 1, 2
    while expected(high) < power:
        if high >= MAX_NEEDED:
            return MAX_NEEDED
        low, high = high, min(2 * high, MAX_NEEDED)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if expected(mid) >= power else (mid, high)
    return high


def cap_needed(diff: float, sd: float, margin: float, family_alpha: float, power: float = POWER,
               rate: float = 1.0) -> int | None:
    """Smallest cap N of a sequential plan (one replicate per look) whose last look, at level 1 - family_alpha / N,
    decides a comparison with true mean difference `diff` and spread `sd` with probability `power`: the smallest
    N >= replicates_needed(diff, sd, margin, 1 - family_alpha / N). Where a replicate gives a pair only at `rate`
    < 1 while the plan's cap, and so each look's share of alpha, counts replicates: the smallest N whose
    Binomial(N, rate) pairs decide at that level with probability `power` (`replicates_at_rate`, the t test's
    power from the noncentral t). Earlier looks only add chances, so the plan's power is at least `power`. None
    when sd is 0 or not finite; MAX_NEEDED when it would take more."""
    if not 0 < family_alpha < 1:
        raise ValueError(f"family_alpha must be in (0, 1), got {family_alpha}")
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    n = replicates_needed(diff, sd, margin, 1 - family_alpha, power)  # a lower bound: the last look spends less
    if n is None:
        return None
    if rate < 1:  # the pairs are Binomial(N, rate): their chance of being enough, not N x rate
        return replicates_at_rate(_t_power(diff, sd, margin), rate, lambda cap: family_alpha / cap, power)
    while n < MAX_NEEDED:
        at_cap = replicates_needed(diff, sd, margin, 1 - family_alpha / n, power)
        if at_cap <= n:
            return n
        n = max(n + 1, min(at_cap, MAX_NEEDED))  # the count at level 1 - alpha/n' only grows with n'
    return MAX_NEEDED


def replicates_needed(diff: float, sd: float, margin: float, level: float = 0.95, power: float = POWER) -> int | None:
    """Smallest n (>= 2) at which a comparison with true mean difference `diff` and spread `sd` is decided
    with probability `power` at interval level `level`: the sign when |diff| >= margin, equivalence when
    |diff| < margin. None when sd is 0 or not finite; MAX_NEEDED when it would take more."""
    if not (sd > 0 and math.isfinite(sd) and math.isfinite(diff)):
        return None
    alpha = 1 - level
    sign = abs(diff) >= margin
    gap = abs(diff) if sign else margin - abs(diff)
    # equivalence needs both ends of the interval inside the margins: beta split over the two sides
    miss = 1 - power if sign else (1 - power) / 2
    if gap == 0:
        return MAX_NEEDED
    # scipy loads when this runs, not when the CLI imports bench.decide
    from scipy.special import ndtri

    # the normal approximation is a lower bound (t quantiles exceed z): search upwards from it
    start = max(2, math.floor(((ndtri(1 - alpha / 2) + ndtri(1 - miss)) * sd / gap) ** 2))
    if start >= MAX_NEEDED:
        return MAX_NEEDED
    for n in range(start, MAX_NEEDED + 1):
        if (_t(n - 1, 1 - alpha / 2) + _t(n - 1, 1 - miss)) * sd / math.sqrt(n) <= gap:
            return n
    return MAX_NEEDED


def spent_level(alpha: float, n: int, n_previous: int, n_max: int) -> float:
    """Interval level of a look at n replicates whose previous look was at n_previous (0: the first look),
    with at most n_max replicates planned: 1 - alpha * (min(n, n_max) - n_previous) / n_max. A look that
    adds no replicates spends nothing (level 1: it cannot decide anything new)."""
    if n_max < 1 or n_previous < 0:
        raise ValueError(f"need n_max >= 1 and n_previous >= 0, got {n_max}, {n_previous}")
    share = max(0, min(n, n_max) - n_previous) / n_max
    return 1 - alpha * share
