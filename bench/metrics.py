"""Metric definitions: what a suite declares about each number it reports.

Part of the kernel: suites declare their metrics with `Metric`; the report and the statistics read only
these fields, never a suite's own code, so a new suite's metrics get intervals and leaderboards unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from bench.stats import Summary, distance_to, summarize, summarize_metric

UNIT = (0.0, 1.0)  # bounds of probabilities, accuracies, p-values, F1, ROUGE
EPOCHS = (1.0, math.inf)  # bounds of an epoch count: a stopping rule is first checked after epoch 1


@dataclass(frozen=True)
class Metric:
    """One reported number of a suite.

    `name`: the flat key in a run's metrics (e.g. `forget_quality`, `relearn_forget/recovery`).
    `higher_is_better`: the direction leaderboards rank by. `summary`: one line for tables and docs."""

    name: str
    higher_is_better: bool
    summary: str
    log_scale: bool = False  # summarised on log10 (geometric mean, asymmetric interval): p-values
    bounds: tuple[float, float] | None = None  # the metric's range; intervals are clipped to it
    ideal: float | None = None  # best = nearest to this value (an attack AUC's 0.5), not highest or lowest
    # the ideal is the calibrating model's value on the same items where a run records one (an attack AUC of
    # the retain-only model: chance is not 0.5 when members and non-members differ, e.g. by author)
    calibrated: bool = False
    # an epoch count: at most the runs' epoch cap plus this (epochs to forget: 0; counting a run that never
    # forgot as cap + 1: 1), so its interval is clipped there too when the cap is known
    cap_offset: int | None = None

    def summarize(self, values: Iterable[float], cap: int | None = None) -> Summary | None:
        """Mean and interval of `values` (one per seed) on this metric's scale and range, `cap` the runs'
        epoch cap (bench.stats.summarize_metric); None when there are none."""
        return summarize_metric(values, self, cap)

    def distances(self, values: Iterable[float], refs: Iterable[float] | None = None) -> list[float]:
        """|x - ideal| per run: how a pairwise comparison reads a metric with an `ideal` (a run nearer it is
        better on whichever side it lies: privleak 5 beats -97). For a calibrated metric given `refs` (the runs'
        calibrating values, same length as `values`), the ideal is each run's own, and a run without one (NaN)
        has no distance: one measured from 0.5 is no match for one measured from its calibrating model (the
        leaderboard sets such a row apart too). Otherwise the ideal is `ideal`. NaN where the value is missing.
        ValueError for a metric without an ideal."""
        if self.ideal is None:
            raise ValueError(f"metric {self.name} has no ideal value to measure a distance to")
        values = [float(v) for v in values]
        if refs is None or not self.calibrated:
            return [abs(x - self.ideal) for x in values]
        return [abs(x - float(r)) for x, r in zip(values, refs)]

    def distance_bounds(self, calibrated_runs: bool = False) -> tuple[float, float]:
        """The range of `distances`: from 0 to the farthest a value within `bounds` lies from the ideal, or from any
        value of the range where each run's calibrating value is its ideal (`calibrated_runs`): an attack AUC's
        distance to 0.5 is at most 0.5, to its ref at most 1; privleak's (range -100 to +inf) has no upper end."""
        if self.bounds is None:
            return 0.0, math.inf
        lo, hi = self.bounds
        return 0.0, hi - lo if calibrated_runs and self.calibrated else max(self.ideal - lo, hi - self.ideal)

    def distance_label(self, calibrated_runs: bool = False) -> str:
        """The name under which a comparison reports `distances` (no `|`: it is a Markdown table cell):
        `privleak (distance to 0)`, `mia_loss (distance to ref)` when runs give their calibrating value
        (`calibrated_runs`)."""
        return f"{self.name} (distance to {'ref' if calibrated_runs and self.calibrated else f'{self.ideal:g}'})"

    def ranked(self, values: Iterable[float], refs: Iterable[float] | None = None, cap: int | None = None
               ) -> Summary | None:
        """The summary a table ranks runs of this metric by, better being higher where `higher_is_better` and there
        is no ideal: the values' summary (`summarize`); for a metric with an ideal, lower being better, its
        distance to it (bench.stats.distance_to), and for a calibrated metric whose runs give their calibrating
        values `refs` the distance of the mean gap x - ref to 0. None when there are no values."""
        if self.ideal is None:
            return self.summarize(values, cap)
        values = [float(v) for v in values]
        refs = [float(r) for r in refs] if refs is not None and self.calibrated else []
        if any(not math.isnan(r) for r in refs):  # nearest the calibrating model: the gap is what is ranked
            gap = summarize([x - r for x, r in zip(values, refs)])
            return gap and distance_to(gap, 0.0)
        s = self.summarize(values, cap)
        return s and distance_to(s, self.ideal)
