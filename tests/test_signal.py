"""signal.md's table: the spread between methods against the spread between replicates, on numbers worked by hand."""

import math

import pandas as pd
import pytest

from bench.signal import signal_table


def runs(suite_splits, values):
    """Finished runs: one per (method, split) of `values` = {method: [value per split]}."""
    return pd.DataFrame([{"model": "m", "split": split, "method": method, "config": "", "status": "finished",
                          "ppl_heldout": v, "model_utility": v}
                         for method, vs in values.items() for split, v in zip(suite_splits, vs)])


def test_where_forget_sets_are_the_replicates_the_spread_pools_over_them():
    """tdec-mini: one run per method and forget set. Pooled over the five sets, method means 3 and 5 give a
    between-method sd of sqrt(2); each method's sets vary by sd sqrt(2.5); per set there would be no spread."""
    sets = [f"set{i}" for i in range(5)]
    [row] = [r for r in signal_table("tdec-mini", runs(sets, {"a": [1, 2, 3, 4, 5], "b": [3, 4, 5, 6, 7]}))
             if r["metric"] == "ppl_heldout"]
    assert row["split"] == "all sets" and row["replicates"] == 5 and row["methods"] == 2
    assert float(row["between-method sd"]) == pytest.approx(math.sqrt(2), rel=1e-2)
    assert float(row["replicate sd"]) == pytest.approx(math.sqrt(2.5), rel=1e-2)
    assert float(row["ratio"]) == pytest.approx(math.sqrt(2 / 2.5), rel=1e-2)
    assert row["separated pairs"] == "0/1"  # [1.04, 4.96] against [3.04, 6.96]


def test_where_splits_are_not_replicates_each_split_stands_alone():
    """tofu-mini: forget01 and forget10 are different tasks; a method with one run per split has no seed spread,
    so there is no row."""
    assert signal_table("tofu-mini", runs(["forget01", "forget10"], {"a": [0.1, 0.2], "b": [0.3, 0.4]})) == []


def test_runs_of_another_setting_are_never_copies_of_these():
    """Two settings of one method whose runs happen to produce the same metrics (GA+FILA forgets at epoch 2 under
    either epoch cap) are two rows: signal.md keeps both, and drops only true copies within a setting."""
    frame = runs([f"set{i}" for i in range(3)], {"a": [1, 2, 3], "b": [3, 4, 5]})
    other = frame[frame["method"] == "a"].assign(config="epochs=2")
    both = pd.concat([frame, other], ignore_index=True).assign(settings=lambda d: d["config"])
    both["replicate"] = both["split"] + both["method"]  # the same key in both settings of a
    [row] = [r for r in signal_table("tdec-mini", both) if r["metric"] == "ppl_heldout"]
    assert row["methods"] == 3
