"""Benchmark suites, registered by name."""

from bench.plugins import load_plugins
from bench.registry import Registry
from suites.base import Context, Evaluation, Prepared, Suite
from suites.muse import Muse
from suites.muse_mini import MuseMini
from suites.tdec import Tdec
from suites.tdec_mini import TdecMini
from suites.tofu import Tofu
from suites.tofu_mini import TofuMini

SUITES: Registry[Suite] = Registry("suite")
for _suite in (Tofu(), TofuMini(), Tdec(), TdecMini(), Muse(), MuseMini()):
    SUITES.register(_suite.name, _suite)

__all__ = ["SUITES", "Suite", "Context", "Evaluation", "Prepared"]

# plug-ins from outside this repository register themselves (bench/plugins.py); last, so that they find SUITES
load_plugins()
