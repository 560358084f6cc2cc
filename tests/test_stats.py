"""Intervals, ties and paired comparisons against scipy and hand computation."""


import pytest
from scipy import stats as sp

from bench import stats


def test_interval_is_scipys_t_interval():
    xs = [0.41, 0.47, 0.52, 0.44]
    s = stats.summarize(xs)
    lo, hi = sp.t.interval(0.95, len(xs) - 1, loc=sp.tmean(xs), scale=sp.sem(xs))
    assert s.n == 4 and s.mean == pytest.approx(sum(xs) / 4)
    assert (s.lo, s.hi) == (pytest.approx(lo), pytest.approx(hi))


def test_log_scale_summary_is_a_geometric_mean_with_a_back_transformed_interval():
    s = stats.summarize([1e-2, 1e-4], log_scale=True)
    assert s.mean == pytest.approx(1e-3)
    half = sp.t.ppf(0.975, 1) * 1.0  # log10 values -2, -4: sd sqrt(2), sem 1
    assert s.lo == pytest.approx(10 ** (-3 - half)) and s.hi == pytest.approx(10 ** (-3 + half))
    assert stats.summarize([0.0, 1e-2], log_scale=True).mean > 0  # a p-value of 0 is floored, not an error


def test_one_run_has_no_interval_and_missing_values_are_skipped():
    s = stats.summarize([0.3, None, float("nan")])
    assert s.n == 1 and s.lo is None and stats.fmt_summary(s) == "0.3"
    assert stats.summarize([None]) is None and stats.fmt_summary(None) == "–"
    assert stats.fmt_summary(stats.summarize([1.0, 3.0])) .startswith("2 [")


def test_every_interval_overlapping_the_best_is_tied_best():
    a = stats.Summary(0.50, 0.45, 0.55, 3)
    b = stats.Summary(0.42, 0.40, 0.44, 3)  # upper end below a's lower end: separated
    c = stats.Summary(0.44, 0.30, 0.46, 3)  # reaches a's interval: tied
    d = stats.Summary(0.20, None, None, 1)
    assert stats.best_and_tied([a, b, c, d, None], higher_is_better=True) == {0, 2}
    assert stats.best_and_tied([a, b, c, d], higher_is_better=False) == {1, 2, 3}  # d: beyond b, shown worse by none


def test_a_single_run_sets_no_best_over_intervals():
    """One run (no interval) at 0.9 against two methods of twelve runs whose intervals overlap: before, the single
    point was "best" and each interval, not reaching 0.9, lost its mark; the point is marked (nothing shows it
    worse) and the best interval keeps its tie. Where no summary has an interval, the best point is the best."""
    single = stats.Summary(0.9, None, None, 1)
    x = stats.Summary(0.60, 0.55, 0.65, 12)
    y = stats.Summary(0.57, 0.52, 0.62, 12)
    z = stats.Summary(0.40, 0.35, 0.45, 12)
    assert stats.best_and_tied([single, x, y, z], higher_is_better=True) == {0, 1, 2}
    low = stats.Summary(0.3, None, None, 1)  # below the best interval: shown worse
    assert stats.best_and_tied([low, x, y, z], higher_is_better=True) == {1, 2}
    inside = stats.Summary(0.58, None, None, 1)
    assert stats.best_and_tied([inside, x, z], higher_is_better=True) == {0, 1}
    assert stats.best_and_tied([single, low, stats.Summary(0.9, None, None, 1)], higher_is_better=True) == {0, 2}


def test_a_summary_over_some_of_its_runs_never_competes_for_best():
    """Two of five runs have a value (utility at forgetting, where three never forgot): the summary counts
    the three as missing and is never best, although its mean is the highest."""
    survivors = stats.summarize([0.9, None, float("nan"), 0.8, None])
    assert (survivors.n, survivors.missing) == (2, 3)
    everyone = stats.summarize([0.5, 0.52, 0.48, 0.5, 0.5])
    assert everyone.missing == 0
    assert stats.best_and_tied([survivors, everyone], higher_is_better=True) == {1}
    assert stats.distance_to(survivors, 0.5).missing == 3


def test_paired_comparison_is_scipys_paired_t_test():
    a, b = [0.50, 0.55, 0.61, 0.47], [0.40, 0.49, 0.50, 0.45]
    p = stats.paired(a, b)
    d = [x - y for x, y in zip(a, b)]
    lo, hi = sp.t.interval(0.95, 3, loc=sp.tmean(d), scale=sp.sem(d))
    assert p.diff == pytest.approx(sum(d) / 4) and (p.lo, p.hi) == (pytest.approx(lo), pytest.approx(hi))
    assert p.p_value == pytest.approx(sp.ttest_rel(a, b).pvalue) and p.n == 4
    assert p.verdict(higher_is_better=True) == "A better"
    assert p.verdict(higher_is_better=False) == "B better"
    assert stats.paired([0.5, 0.4], [0.45, 0.47]).verdict(True) == "inconclusive"
    assert stats.paired([0.5], [0.4]).verdict(True) == "inconclusive"  # one pair proves nothing


def test_paired_comparison_drops_incomplete_pairs_and_compares_log_metrics_as_ratios():
    p = stats.paired([1e-2, 1e-3, None], [1e-4, 1e-5, 0.5], log_scale=True)
    assert p.n == 2 and p.diff == pytest.approx(2.0)
    # two equal differences: no t-interval, and the sign test (p = 2 * 0.5^2) excludes nothing
    assert p.lo is None and p.p_value == 0.5 and p.verdict(True) == "inconclusive"
    six = stats.paired([3] * 6, [1] * 6)  # 2 * 0.5^6 = 0.031 <= 0.05: the point interval, never p = 0
    assert six.lo == six.hi == 2 and six.p_value == pytest.approx(0.03125) and six.verdict(True) == "A better"


def test_a_zero_difference_prints_as_0_never_minus_0():
    """A difference of equal values negated for the metric's direction is -0.0: it prints as 0."""
    from bench.stats import Summary, fmt, fmt_summary

    assert fmt(-0.0) == fmt(0.0) == fmt(0) == "0"
    assert fmt(-1 * (0.5 - 0.5)) == "0"
    assert fmt_summary(Summary(-0.0, -0.0, 0.0, 3)) == "0 [0, 0]"
    assert fmt(-0.0004) == "-4.00e-04" and fmt(-0.25) == "-0.25"  # real negatives keep their sign


@pytest.mark.parametrize("suite", ["tofu-mini", "tdec-mini"])
def test_an_epoch_count_interval_stays_within_one_and_the_cap(suite):
    """Epochs to forget lie in [1, cap] (cap + 1 for a run that never forgot, in the _or_cap column): npo on
    tdec-mini forgot after 2, 2, 2, 2 and 8 epochs on the five sets, whose t-interval starts below 0. Every
    table that summarises the column (leaderboard, paper table, claims' A/B values) clips it there, as a
    probability's to [0, 1]."""
    import pandas as pd

    from bench.leaderboard import leaderboard
    from bench.tables import column_summary
    from suites import SUITES

    metric = {m.name: m for m in SUITES[suite].metrics}
    values = [2, 2, 2, 2, 8]
    lo, hi = sp.t.interval(0.95, 4, loc=sp.tmean(values), scale=sp.sem(values))
    assert lo == pytest.approx(-0.131, abs=1e-3) and hi == pytest.approx(6.531, abs=1e-3)  # 3.2 ± 2.776 x 1.2
    assert (metric["epochs_to_forget"].summarize(values, cap=6).lo, metric["epochs_to_forget"].summarize(values, cap=6).hi) == (1.0, 6.0)
    assert metric["epochs_to_forget_or_cap"].summarize(values, cap=6).hi == pytest.approx(hi)  # below cap + 1 = 7
    assert metric["epochs_to_forget"].summarize(values).hi == pytest.approx(hi)  # no cap known: only the floor
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(5)], "status": "finished", "model": "m", "split": "s",
                         "method": "npo", "lr": 1e-3, "config": "c", "max_epochs": 20, "epochs_to_forget": values,
                         "epochs_to_forget_or_cap": values})
    row = leaderboard(suite, None, runs=runs, refs=pd.DataFrame()).iloc[0]
    assert (row["epochs_to_forget_lo"], row["epochs_to_forget_hi"]) == (1.0, pytest.approx(hi))
    capped = runs.assign(max_epochs=5)
    assert (column_summary(capped, "epochs_to_forget", metric).lo, column_summary(capped, "epochs_to_forget", metric).hi) == (1.0, 5.0)
    assert column_summary(capped, "epochs_to_forget_or_cap", metric).hi == 6.0  # cap 5 + 1
