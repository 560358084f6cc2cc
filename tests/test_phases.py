"""Time and peak memory per phase (bench/phases.py), and the runner's record of them in run.json."""

import json
import mmap

import numpy as np
import pytest

from bench import phases


def touch(mb: int) -> mmap.mmap:
    """`mb` MB made resident in pages fresh from the kernel: a numpy array could reuse pages the allocator
    already holds (after earlier tests in the same process), which would not raise the resident set."""
    pages = mmap.mmap(-1, mb * 2**20)
    np.frombuffer(pages, dtype=np.uint8)[:] = 1  # written, so resident
    return pages


@pytest.fixture
def recorder():
    with phases.recording() as r:
        if not r.gauge.exact:
            pytest.skip("this system cannot reset the resident-set high-water mark (/proc/self/clear_refs)")
        yield r


def test_each_phase_has_its_own_peak_and_a_parent_the_largest_of_its_parts(recorder):
    with recorder.phase("evaluate"):
        with phases.phase("big"):
            a = touch(200)
            del a
        with phases.phase("small"):
            b = touch(20)
            del b
        with phases.phase("small"):  # the same part again: seconds add up, the larger peak stays
            pass
    evaluate = recorder.phases["evaluate"]
    big, small = evaluate["phases"]["big"], evaluate["phases"]["small"]
    assert big["peak_memory_mb"] - big["start_memory_mb"] >= 195  # the 200 MB array, freed before the phase ended
    # reset at its start: the big array freed before does not count (it would with ru_maxrss)
    assert 15 <= small["peak_memory_mb"] - small["start_memory_mb"] < 100
    assert evaluate["peak_memory_mb"] >= big["peak_memory_mb"] and evaluate["exact"]
    assert evaluate["seconds"] >= big["seconds"] + small["seconds"]
    assert recorder.peak_mb() == evaluate["peak_memory_mb"]


def test_begin_and_end_span_callbacks_and_nothing_is_recorded_outside_a_recorder():
    with phases.phase("ignored") as frame:  # no recorder: a no-op
        assert frame is None
    with phases.recording() as r:
        r.begin("train-1")
        touch(50)
        r.end()
        r.end()  # nothing open: nothing happens
    assert list(r.phases) == ["train-1"] and r.phases["train-1"]["seconds"] > 0
    assert phases.current() is None


@pytest.mark.slow
def test_a_run_records_every_phase_and_the_evaluations_parts(tdec_mini_artefacts, tmp_path):
    from bench.cli import main
    from tests.conftest import with_tdec_mini_artefacts

    root = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "results")
    assert main(["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga",
                 "--epochs", "2", "--option", "eval_limit=3", "--results", str(root)]) == 0
    record = json.loads(next(root.rglob("run.json")).read_text())
    recorded = record["phases"]
    assert {"prepare", "load", "adapter", "utility"} <= set(recorded)
    # the model before unlearning: evaluated in full once per split, in prepare (stored for later runs)
    assert {"ma", "el_n", "attacks"} <= set(recorded["prepare"]["phases"]["start_evaluation"]["phases"])
    trained = [e["epoch"] for e in record["epochs"] if e["epoch"] > 0]
    assert [f"train-{e}" for e in trained] == [k for k in recorded if k.startswith("train-")]
    limit = record["suite_records"]["thresholds"]["ma"]
    for entry in record["epochs"][1:]:  # the evaluation's parts: MA, EL_n once MA is below its threshold, the attacks last
        epoch, parts = entry["epoch"], recorded[f"evaluate-{entry['epoch']}"]["phases"]
        last = epoch == trained[-1]
        assert set(parts) == {"ma"} | ({"el_n"} if last or entry["metrics"]["ma"] < limit else set()) | \
            ({"attacks"} if last else set())
        if last:
            assert set(parts["attacks"]["phases"]) == {"attack_statistics", "gradnorm"}
            assert parts["el_n"]["seconds"] <= recorded[f"evaluate-{epoch}"]["seconds"]
    if recorded["prepare"]["exact"]:
        # the run's peak is its phases' largest (up to the end of training, as before phases existed)
        assert record["peak_memory_mb"] == max(v["peak_memory_mb"] for k, v in recorded.items() if k != "utility")
