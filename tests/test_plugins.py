"""Plug-ins without editing the kernel: README's toy objective (`my_method.py`) and toy suite (`my_suite.py`),
taken from README's "Adding a method, a suite or a metric", written into a temporary directory, imported from
there (each registers itself in one line) and reported by `bench report`: a leaderboard with 95% intervals, the
toy suite's own paper table and its derived metric. Running the README's code keeps the README honest."""

import importlib
import math
import re
import statistics
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bench.cli import main
from bench.errors import BenchError
from bench.grid import expand
from bench.plugins import VARIABLE, load_plugins
from bench.store import ResultStore, new_record, read_json, write_json_atomic
from methods import OBJECTIVES
from suites import SUITES

README = Path(__file__).resolve().parent.parent / "README.md"
PLUGINS = ("my_method", "my_suite")


def readme_files() -> dict[str, str]:
    """README's Python blocks that begin with a `# <file>.py` line, by file name."""
    return dict(re.findall(r"```python\n# (\w+\.py)\n(.*?)```", README.read_text(), re.S))


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """README's two plug-in files in tmp_path/plugins, imported from there; the registries and sys.modules
    are restored afterwards, so no other test sees the toy suite or objective."""
    monkeypatch.setattr(SUITES, "_items", dict(SUITES._items))
    monkeypatch.setattr(OBJECTIVES, "_items", dict(OBJECTIVES._items))
    folder = tmp_path / "plugins"
    folder.mkdir()
    files = readme_files()
    for name in PLUGINS:
        (folder / f"{name}.py").write_text(files[f"{name}.py"])
    monkeypatch.syspath_prepend(str(folder))
    for name in PLUGINS:
        monkeypatch.delitem(sys.modules, name, raising=False)
        importlib.import_module(name)
    yield folder
    for name in PLUGINS:
        sys.modules.pop(name, None)


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval, computed here with scipy (the report uses bench.stats)."""
    mean = statistics.fmean(values)
    half = scipy_stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


# last-epoch values per seed, chosen so that the intervals separate: ga forgets more (higher forget NLL) and
# mine keeps the retain sentences better (lower retain NLL)
FORGET = {"mine": [2.0, 2.1, 2.3], "ga": [3.0, 3.2, 3.1]}
RETAIN = {"mine": [1.5, 1.6, 1.7], "ga": [2.3, 2.4, 2.5]}


def test_a_toy_suite_and_objective_from_a_temporary_directory_get_a_leaderboard_with_intervals(plugins, tmp_path):
    assert "toy" in SUITES and "mine" in OBJECTIVES and "toy" in SUITES.names()
    store = ResultStore(tmp_path / "results")
    for method in FORGET:
        specs = expand("toy", method, seeds="0,1,2")
        assert [s.objective for s in specs] == [method] * 3 and specs[0].model == "tiny"
        for spec, forget, retain in zip(specs, FORGET[method], RETAIN[method]):
            record = new_record(spec)  # what `bench run` writes, with these numbers
            record.update(status="finished", epochs=[
                {"epoch": 0, "metrics": {"forget_nll": 1.0, "retain_nll": 1.0}},
                {"epoch": 1, "metrics": {"forget_nll": forget, "retain_nll": retain}}])
            write_json_atomic(store.run_dir(spec) / "run.json", record)

    assert main(["report", "--suite", "toy", "--results", str(store.root)]) == 0
    out = store.suite_dir("toy")
    board = pd.read_csv(out / "leaderboard.csv").set_index("method")
    for method in FORGET:
        row = board.loc[method]
        assert row["n"] == 3 and row["runs"] == "3/3" and row["status"] == "ok"
        gap = [f - r for f, r in zip(FORGET[method], RETAIN[method])]  # the suite's derived metric
        for metric, values in (("forget_nll", FORGET[method]), ("retain_nll", RETAIN[method]), ("nll_gap", gap)):
            mean, lo, hi = interval(values)
            assert (row[metric], row[metric + "_lo"], row[metric + "_hi"]) == pytest.approx((mean, lo, hi))
    # best and tied-best follow each metric's direction: the intervals above do not overlap
    assert list(board["forget_nll_best"]) == [m == "ga" for m in board.index]
    assert list(board["retain_nll_best"]) == [m == "mine" for m in board.index]

    # the suite's own section: its paper table, with the same intervals and its bold best cells
    table = (out / "paper_table.md").read_text()
    mean, lo, hi = interval(FORGET["ga"])
    assert f"**{mean:.3g} [{lo:.3g}, {hi:.3g}]**" in table
    assert "Mean over seeds and its 95% interval" in table
    page = (out / "index.html").read_text()
    assert "Paper-style table" in page and "<h2>Leaderboard</h2>" in page


def test_a_suite_without_report_sections_gets_the_leaderboard_alone(plugins, tmp_path):
    """The section hooks are optional: without `paper_table` the report writes no paper table and no error."""
    suite = SUITES["toy"]
    plain = type("PlainToy", (type(suite),), {"name": "plain-toy", "paper_table": lambda self, runs, refs: None})()
    SUITES.register(plain.name, plain)
    store = ResultStore(tmp_path / "results")
    for spec, forget in zip(expand("plain-toy", "mine", seeds="0,1"), (2.0, 2.4)):
        record = new_record(spec)
        record.update(status="finished", epochs=[{"epoch": 1, "metrics": {"forget_nll": forget, "retain_nll": 1.0}}])
        write_json_atomic(store.run_dir(spec) / "run.json", record)
    assert main(["report", "--suite", "plain-toy", "--results", str(store.root)]) == 0
    out = store.suite_dir("plain-toy")
    assert not (out / "paper_table.md").exists() and "Paper-style table" not in (out / "index.html").read_text()
    board = pd.read_csv(out / "leaderboard.csv")
    assert board["forget_nll_lo"].item() == pytest.approx(interval([2.0, 2.4])[1])


def test_plugins_named_in_the_environment_are_imported_and_a_missing_one_is_named(plugins, monkeypatch):
    monkeypatch.setenv(VARIABLE, " my_suite, my_method ")
    assert load_plugins() == ["my_suite", "my_method"]  # already imported: registered once, no error
    monkeypatch.setenv(VARIABLE, "my_suite,no_such_plugin")
    with pytest.raises(BenchError, match=r"^plug-in module 'no_such_plugin' \(from UNLEARNING_BENCH_PLUGINS\) is not "
                                         r"importable: put its directory on PYTHONPATH"):
        load_plugins()


@pytest.mark.slow
def test_the_toy_plugins_run_end_to_end(plugins, tmp_path, monkeypatch):
    """`bench run` trains README's toy objective and GA on README's toy suite (a tiny random GPT-Neo built on
    first use) in two worker processes, then `bench report` gives each a leaderboard row; gradient ascent raised the
    forget sentences' NLL above the model's before unlearning."""
    import torch

    torch.set_num_threads(1)
    results = tmp_path / "results"
    # two spawned worker processes: they find the plug-ins through the variable (and sys.path) they inherit
    monkeypatch.setenv(VARIABLE, ",".join(PLUGINS))
    assert main(["run", "--suite", "toy", "--methods", "mine,ga", "--seeds", "0,1", "--workers", "2",
                 "--results", str(results)]) == 0
    store = ResultStore(results)
    records = [record for _, record, _ in store.iter_records("toy")]
    assert len(records) == 4 and all(r["status"] == "finished" for r in records)
    for record in records:
        if record["spec"]["objective"] == "ga":
            before, after = record["epochs"][0]["metrics"], record["epochs"][-1]["metrics"]
            assert after["forget_nll"] > before["forget_nll"]
    assert main(["report", "--suite", "toy", "--results", str(results)]) == 0
    board = pd.read_csv(store.suite_dir("toy") / "leaderboard.csv").set_index("method")
    assert board.loc["mine", "n"] == 2 and board.loc[["mine"], ["forget_nll_lo", "forget_nll_hi", "nll_gap_lo"]].notna().all(axis=None)
    # GA on the toy suite trains on one batch of the two forget sentences and reads no retain data: the seed
    # changes nothing, and the kernel counts the two bit-identical runs as one observation
    assert board.loc["ga", "runs"] == "2/2 (1 distinct)" and board.loc["ga", "n"] == 1
    assert read_json(next(store.suite_dir("toy").glob("runs/*/run.json")))["spec"]["suite"] == "toy"


def test_a_plugin_that_fails_while_the_cli_loads_is_a_one_line_error(tmp_path):
    """The registries load when `python -m bench` starts: a misspelt plug-in, or one whose name is taken, is
    one line naming it and exit 2 for every command, --help included, never a traceback."""
    import os
    import subprocess
    import sys

    (tmp_path / "clash.py").write_text("from suites import SUITES\nSUITES.register('tofu-mini', SUITES['tofu-mini'])\n")
    for plugins, message in (("my_methd", "plug-in module 'my_methd'"), ("clash", "plug-in module 'clash'")):
        for argv in (["--help"], ["list"]):
            env = {**os.environ, "UNLEARNING_BENCH_PLUGINS": plugins, "PYTHONPATH": str(tmp_path)}
            out = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True, env=env,
                                 timeout=120)
            assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and message in out.stderr, out.stderr
