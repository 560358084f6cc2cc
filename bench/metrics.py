"""Metric definitions: what a suite declares about each number it reports.

Part of the kernel: suites declare their metrics with `Metric`; the report and the statistics read only
these fields, never a suite's own code, so a new suite's metrics get intervals and leaderboards unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from bench.stats import Summary, summarize_metric

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
