"""Benchmark suites, registered by name."""

from bench.registry import Registry
from suites.base import Context, Evaluation, Prepared, Suite
from suites.tofu import Tofu
from suites.tofu_mini import TofuMini

SUITES: Registry[Suite] = Registry("suite")
for _suite in (Tofu(), TofuMini()):
    SUITES.register(_suite.name, _suite)
