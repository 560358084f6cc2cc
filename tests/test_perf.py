"""`bench perf --quick` runs, and its fast and naive paths agree (timings are not checked here)."""

from bench import perf
from bench.cli import main


def test_perf_quick_runs_and_the_fast_paths_equal_the_naive_ones(tmp_path, capsys):
    assert main(["perf", "--quick", "--results", str(tmp_path)]) == 0
    text = (tmp_path / "perf-quick.md").read_text()
    assert "--quick smoke run, not a measurement" in text
    rows = perf.run(str(tmp_path), quick=True)
    scoring = next(r for r in rows if r.name.startswith("2."))
    assert float(scoring.detail.split("max |diff| ")[1].split(";")[0]) <= 1e-5
    assert all("continuations identical: True" in r.detail for r in rows if r.name.startswith("3."))
