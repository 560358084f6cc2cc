"""bench.decide: verdicts against a margin by hand and against scipy, the power calculation against
simulation, and the error rate of sequential looks with and without alpha spending on synthetic data."""

import math

import numpy as np
import pytest
from scipy import stats as st

from bench.decide import cap_needed, decide, replicates_needed, sign_test_cap, spent_level


def test_t_interval_and_p_value_equal_scipy():
    d = [0.3, 0.1, 0.5, 0.2]
    got = decide(d, margin=0.05)
    ci = st.ttest_1samp(d, 0).confidence_interval(0.95)
    assert got.lo == pytest.approx(ci.low) and got.hi == pytest.approx(ci.high)
    assert got.p_value == pytest.approx(st.ttest_1samp(d, 0).pvalue)
    assert got.verdict == "holds" and got.needed is None


def test_the_four_verdicts_by_hand():
    # mean 2, sd 1, n 3: half-width t_{2,0.975} / sqrt(3) = 4.303 / 1.732 = 2.484
    wide = decide([1, 2, 3], margin=0.5)
    assert (wide.lo, wide.hi) == (pytest.approx(-0.484, abs=1e-3), pytest.approx(4.484, abs=1e-3))
    assert wide.verdict == "inconclusive"
    assert decide([-1, -2, -3, -2.5, -1.5], margin=0.5).verdict == "does not hold"
    small = [0.01, -0.01, 0.005, -0.004, 0.0, 0.002]
    assert decide(small, margin=0.05).verdict == "equivalent"
    # better, but by less than the margin: equivalent, not holds (the difference does not matter)
    assert decide([0.010, 0.011, 0.012, 0.011], margin=0.05).verdict == "equivalent"
    assert decide([0.010, 0.011, 0.012, 0.011], margin=0.005).verdict == "holds"
    with pytest.raises(ValueError, match="margin"):
        decide([1, 2], margin=0)


def test_equal_differences_use_the_sign_test_not_a_zero_width_t_interval():
    three = decide([-12, -12, -12], margin=1)  # e.g. epochs to forget: 1 against the cap + 1 for every seed
    assert three.verdict == "inconclusive" and three.lo is None and three.p_value == 0.25
    assert three.needed == 6 and "sign test needs 6" in three.reason  # 2 * 0.5^6 = 0.031 <= 0.05 < 2 * 0.5^5
    six = decide([-12] * 6, margin=1)
    assert six.verdict == "does not hold" and six.lo == six.hi == -12 and six.p_value == pytest.approx(2 * 0.5 ** 6)
    one = decide([3.0], margin=1)
    assert one.verdict == "inconclusive" and one.lo is None and "one replicate" in one.reason


def test_replicates_needed_gives_the_stated_power_in_simulation():
    rng = np.random.default_rng(0)
    diff, sd, margin = 0.5, 1.0, 0.1
    n = replicates_needed(diff, sd, margin)
    assert 30 <= n <= 40  # normal approximation: (1.96 + 0.84)^2 / 0.25 = 31.4, t quantiles add a little
    decided = np.mean([decide(rng.normal(diff, sd, n), margin).verdict == "holds" for _ in range(1000)])
    assert 0.75 <= decided <= 0.9
    fewer = np.mean([decide(rng.normal(diff, sd, n // 2), margin).verdict == "holds" for _ in range(1000)])
    assert fewer < 0.6
    eq_n = replicates_needed(0.0, sd, margin=0.5)
    shown = np.mean([decide(rng.normal(0.0, sd, eq_n), 0.5).verdict == "equivalent" for _ in range(1000)])
    assert 0.75 <= shown <= 0.92
    assert replicates_needed(0.5, 0.0, 0.1) is None


def _sequential(rng, true_diff, margin, n0, n_max, alpha, spend):
    """First decided verdict of one simulated sequence that adds a replicate per look, or 'inconclusive'."""
    d = list(rng.normal(true_diff, 1.0, n_max))
    previous = 0
    for n in range(n0, n_max + 1):
        level = spent_level(alpha, n, previous, n_max) if spend else 1 - alpha
        previous = n
        verdict = decide(d[:n], margin, level).verdict
        if verdict != "inconclusive":
            return verdict
    return "inconclusive"


def _upper(k, n, conf=0.99):
    return st.binomtest(k, n).proportion_ci(conf).high


def test_alpha_spending_keeps_the_error_rate_of_sequential_looks_and_plain_looks_do_not():
    rng = np.random.default_rng(1)
    alpha, reps, n0, n_max = 0.05, 1500, 3, 20
    # a true null: A is no better than B (difference 0); any "holds" or "does not hold" is an error
    spent = [_sequential(rng, 0.0, 0.1, n0, n_max, alpha, True) for _ in range(reps)]
    wrong = sum(v in ("holds", "does not hold") for v in spent)
    assert wrong / reps <= alpha and _upper(sum(v == "holds" for v in spent), reps) < alpha
    plain = [_sequential(rng, 0.0, 0.1, n0, n_max, alpha, False) for _ in range(reps)]
    assert sum(v in ("holds", "does not hold") for v in plain) / reps > 2 * alpha  # 18 looks at 5 % each
    # the difference sits exactly on the margin: "equivalent" is the error now
    edge = [_sequential(rng, 0.5, 0.5, n0, n_max, alpha, True) for _ in range(reps)]
    assert _upper(sum(v == "equivalent" for v in edge), reps) < alpha
    # and a real difference is still found
    real = [_sequential(rng, 1.0, 0.1, n0, n_max, alpha, True) for _ in range(300)]
    assert sum(v == "holds" for v in real) / 300 > 0.8


def test_spent_levels_sum_to_alpha():
    alpha, looks = 0.05, [3, 5, 6, 10, 12]
    spent, previous = 0.0, 0
    for n in looks:
        spent += 1 - spent_level(alpha, n, previous, 12)
        previous = n
    assert math.isclose(spent, alpha)
    assert spent_level(alpha, 15, 12, 12) == 1.0  # past the cap nothing is left to spend


def test_differences_equal_but_for_float_rounding_use_the_sign_test():
    # log10(6 / 4) computed two ways differs in the last bits; t would report p ~ 1e-60
    d = [0.17609125905568124, 0.17609125905568135, 0.17609125905568124, 0.17609125905568135]
    got = decide(d, margin=0.02)
    assert got.verdict == "inconclusive" and got.lo is None and got.p_value == 0.125


def _planned(d, n0, n_max, alpha):
    """First decided verdict of a plan capped at n_max adding one replicate per look to the differences d."""
    previous = 0
    for n in range(n0, n_max + 1):
        level = spent_level(alpha, n, previous, n_max)
        previous = n
        verdict = decide(d[:n], 1.0, level).verdict
        if verdict != "inconclusive":
            return verdict
    return "inconclusive"


def test_the_cap_named_for_equal_differences_is_the_one_a_plan_decides_at():
    # fila-forgets-faster on tofu-mini: five comparisons (alpha_c = 0.01), every difference one epoch
    assert sign_test_cap(0.01) == 12 and sign_test_cap(0.05) == 9
    assert _planned([1.0] * 12, 3, 12, 0.01) == "holds"
    assert _planned([1.0] * 11, 3, 11, 0.01) == "inconclusive"  # 2 * 0.5^11 > 0.01 / 11 at the last look
    # the fixed-level count is smaller and a plan capped at it decides nothing
    fixed = decide([1.0] * 3, 1.0, 1 - 0.01)
    assert fixed.needed == 8 and _planned([1.0] * 8, 3, 8, 0.01) == "inconclusive"
    planned = decide([1.0] * 3, 1.0, 1 - 0.01 * 3 / 12, family_alpha=0.01)
    assert planned.needed == 12 and "capped at 12" in planned.reason


def test_a_cap_for_pairs_that_come_at_a_rate_counts_replicates():
    """A comparison of runs that forgot gets a pair only where both did, but the plan's cap, and so each look's
    share of alpha, counts replicates, and the pairs N replicates give are Binomial(N, rate). tofu-mini's IHL+LoRA
    vs GA+LoRA (2 pairs in 12 seeds, d 0.509, sd 0.088, alpha_c 0.025): 4 pairs at a cap of 4 would do; at 1 pair
    in 6 the last look of a 30-seed plan needs 5 pairs, which 30 seeds give only 58 % of the time, so the cap is
    38. Simulated plans (one look per new pair, alpha spent against the cap in replicates): 38 reaches the stated
    power, 30 (5 pairs counted as certain) and 24 (the pair cap scaled) fall short."""
    assert cap_needed(0.509, 0.088, 0.02, 0.025) == 4
    assert cap_needed(0.509, 0.088, 0.02, 0.025, rate=2 / 12) == 38
    assert sign_test_cap(0.01, 1.0) == 12 and sign_test_cap(0.01, 0.5) == 30

    def plan_holds(d, n_max, alpha):
        previous = 0
        for k in range(3, len(d) + 1):
            level, previous = spent_level(alpha, k, previous, n_max), k
            verdict = decide(d[:k], 0.02, level).verdict
            if verdict != "inconclusive":
                return verdict == "holds"
        return False

    rng = np.random.default_rng(3)
    power = {cap: np.mean([plan_holds(list(rng.normal(0.509, 0.088, rng.binomial(cap, 2 / 12))), cap, 0.025)
                           for _ in range(1500)]) for cap in (24, 30, 38)}
    assert power[38] >= 0.78 and power[30] < 0.75 and power[24] < power[30]  # 0.82, 0.70, 0.54
    with pytest.raises(ValueError, match="rate"):
        cap_needed(1.0, 1.0, 1.0, 0.01, rate=0.0)


def test_cap_needed_gives_a_plan_the_stated_power_in_simulation():
    rng = np.random.default_rng(2)
    diff, sd, alpha = 1.0, 1.0, 0.01
    fixed = replicates_needed(diff, sd, 1.0, 1 - alpha)
    cap = cap_needed(diff, sd, 1.0, alpha)
    assert cap > fixed  # the last look of a plan spends alpha / cap, not alpha
    assert decide([0.0, 1.0, 2.0], 1.0, 1 - alpha * 3 / cap, family_alpha=alpha).needed == cap  # mean 1, sd 1
    runs = [list(rng.normal(diff, sd, cap)) for _ in range(400)]
    power = np.mean([_planned(d, 3, cap, alpha) == "holds" for d in runs])
    assert power >= 0.78
    short = np.mean([_planned(d[:fixed], 3, fixed, alpha) == "holds" for d in runs])
    assert short < power  # a plan capped at the fixed-level count decides less often
    with pytest.raises(ValueError, match="family_alpha"):
        cap_needed(diff, sd, 1.0, 0.0)
