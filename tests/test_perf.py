"""`bench perf --quick` runs, and its fast and naive paths agree (timings are not checked here)."""

import pytest

from benchmarks import perf, perf_real
from bench.cli import main


@pytest.mark.slow  # perf --quick twice: builds tiny models and trains them (about a minute on 2 cores)
def test_perf_quick_runs_and_the_fast_paths_equal_the_naive_ones(tmp_path, capsys):
    assert main(["perf", "--quick", "--results", str(tmp_path)]) == 0
    text = (tmp_path / "perf-quick.md").read_text()
    assert "--quick smoke run, not a measurement" in text
    rows = perf.run(str(tmp_path), quick=True)
    scoring = next(r for r in rows if r.name.startswith("2."))
    assert float(scoring.detail.split("max |diff| ")[1].split(";")[0]) <= 1e-5
    assert all("continuations identical: True" in r.detail for r in rows if r.name.startswith("3."))


def test_perf_real_data_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "data" / "tdec").mkdir(parents=True)
    results = tmp_path / "results"
    assert main(["perf", "--real-data", str(tmp_path / "data"), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lacks tdec/lm_extraction_32_0.csv" in err and "gpt2-tokenizer" in err
    for bad, valid in ((["--real-sequences", "0"], "an integer from 1 to 32"), (["--real-sequences", "33"], "an integer from 1 to 32"),
                       (["--real-limit", "0"], "an integer >= 1"), (["--real-items", "-1"], "an integer >= 0")):
        assert main(["perf", "--real-data", str(tmp_path / "data"), *bad, "--results", str(results)]) == 2
        assert capsys.readouterr().err == f"error: bad {bad[0]} {bad[1]} (expected {valid})\n"
    assert main(["perf", "--real-sequences", "4", "--results", str(results)]) == 2
    assert "go with --real-data DIR" in capsys.readouterr().err
    assert main(["perf", "--quick", "--real-data", str(tmp_path / "data"), "--results", str(results)]) == 2
    assert not results.exists()


@pytest.mark.slow
def test_perf_real_data_profiles_every_phase_of_both_real_shaped_runs(tmp_path):
    from tests.conftest import real_data

    text = perf_real.run(str(real_data()), str(tmp_path), sequences=1, items=3, limit=2)
    assert text == (tmp_path / "perf-real.md").read_text()
    tdec, tofu = text.split("## TOFU")
    for phase in ("| prepare ", "| prepare / start_evaluation / el_n ", "| evaluate-1 / attacks / gradnorm ", "| train-1 ",
                  "| utility / dialogue ", "| prepare / mia_reference_nll "):
        assert phase in tdec, phase
    assert "1 real forget sequences of set0" in tdec and "x 32/1" in tdec
    for phase in ("| prepare / reference_evaluation / generation ", "| evaluate-1 / scoring ",
                  "| evaluate-1 / attacks ", "| evaluate-1 / encode "):
        assert phase in tofu, phase
    assert '{"forget": 3, "retain": 3, "real_authors": 3, "world_facts": 3}' in tofu


def test_sweep_rows_read_the_wall_time_of_the_bench_run_that_built_the_references_and_of_a_cached_one(tmp_path):
    """Row 6 against the issue's targets: cold = the latest grid that built its shared artefacts, cached = the
    latest that found them built (never estimated)."""
    import json

    from bench.runner import GridOutcome, record_grid
    from bench.store import ResultStore

    from bench.grid import expand

    store = ResultStore(tmp_path)
    sweep = [s.run_id for s in expand("tofu-mini", "all")]
    record_grid(store, "tofu-mini", 0.0, GridOutcome(finished=["a"] * 72, artefact_seconds=240.0), 2, sweep,
                built=["models/tiny-llama-1/full"])
    record_grid(store, "tofu-mini", 1.0, GridOutcome(finished=["a"], artefact_seconds=60.0), 2, sweep[:1],
                built=["models/tiny-llama-1/full"])  # a test grid
    [row] = [r for r in perf.sweep_times(tmp_path) if "tofu-mini" in r.name]
    grid = json.loads((tmp_path / "tofu-mini" / "grids.json").read_text())[0]
    cold = (grid["finished_at"] - grid["started_at"]) / 60
    assert row.value == f"{cold:.1f} min / – (no cached rerun)" and row.ok is False
    assert "references built within its first 4.0 min" in row.detail
    from bench.environment import machine_name

    # the CPU and its kernels: one kind of host differs up to 2x by them, so a sweep's time names where it ran
    assert grid["machine"] == machine_name() and f"UTC on {machine_name()}: 72 runs" in row.detail
    # cached: it built nothing, though preparing (reading references, recomputing their evaluations) took time
    record_grid(store, "tofu-mini", grid["finished_at"] - 300, GridOutcome(finished=["a"] * 72, artefact_seconds=13.0), 2,
                sweep)
    record_grid(store, "tofu-mini", 0.0, GridOutcome(finished=["a"], artefact_seconds=0.1), 2, sweep[:1])  # ignored
    [row] = [r for r in perf.sweep_times(tmp_path) if "tofu-mini" in r.name]
    assert row.value.endswith("/ 5.0 min") and "a rerun with them built (72 runs)" in row.detail
    # a later cached rerun on another kind of host is not this cold sweep's cached figure
    entries = json.loads((tmp_path / "tofu-mini" / "grids.json").read_text())
    other = {**entries[2], "started_at": entries[2]["started_at"] + 100, "machine": "Another CPU, AVX512"}
    (tmp_path / "tofu-mini" / "grids.json").write_text(json.dumps(entries + [other]))
    [row] = [r for r in perf.sweep_times(tmp_path) if "tofu-mini" in r.name]
    assert row.value.endswith("/ 5.0 min")
    assert row.ok is False  # the cold grid's 'wall time' here is the age of the test's clock: far over 12 minutes
    [missing] = [r for r in perf.sweep_times(tmp_path) if "tdec-mini" in r.name]
    assert missing.value == "–" and "built its references" in missing.detail
    record_grid(store, "tdec-mini", 0.0, GridOutcome(finished=["a"], artefact_seconds=10.0), 1, ["one-run"], built=["world-1"])
    [small] = [r for r in perf.sweep_times(tmp_path) if "tdec-mini" in r.name]
    assert small.value == "–"  # a one-run grid is not the 180-run sweep the target is for


def test_a_grid_records_the_shared_artefacts_it_built(tmp_path):
    """grids.json's `built`: the artefact entries a `bench run` added (reference models, data; not the stored
    evaluations), which is what tells a cold sweep from one with its references cached."""
    from bench.runner import artefact_entries
    from bench.store import ResultStore

    store = ResultStore(tmp_path)
    assert artefact_entries(store, "tofu-mini") == set()
    root = store.artefact_dir("tofu-mini")
    (root / "models" / "tiny-llama-1" / "full").mkdir(parents=True)
    (root / "evals").mkdir()
    (root / "evals" / "x.json").write_text("{}")
    before = artefact_entries(store, "tofu-mini")
    assert before == {"models", "models/tiny-llama-1", "models/tiny-llama-1/full"}
    (root / "models" / "tiny-llama-1" / "full-s3").mkdir()  # one more seed's reference
    (root / "evals" / "y.json").write_text("{}")
    assert artefact_entries(store, "tofu-mini") - before == {"models/tiny-llama-1/full-s3"}


def test_grids_recorded_before_built_existed_are_told_apart_by_their_preparing_time(tmp_path):
    """An entry without `built` is cold when preparing took over a minute (a reference fine-tune), cached when it
    took seconds (reading references, recomputing their stored evaluations)."""
    import json

    from bench.fingerprint import digest
    from bench.grid import expand

    grid = digest(sorted(s.run_id for s in expand("tofu-mini", "all")))
    entry = lambda start, minutes, prep: {"grid": grid, "runs": 72, "started_at": start, "finished_at": start + 60 * minutes,
                                          "workers": 2, "finished": 72, "skipped": 0, "failed": 0, "artefact_seconds": prep}
    (tmp_path / "tofu-mini").mkdir()
    (tmp_path / "tofu-mini" / "grids.json").write_text(json.dumps([entry(0, 11.8, 369.0), entry(1000, 5.9, 13.0)]))
    [row] = [r for r in perf.sweep_times(tmp_path) if "tofu-mini" in r.name]
    assert row.value == "11.8 min / 5.9 min" and row.ok is True
