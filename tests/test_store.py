import json
import os

import pytest

from bench.errors import BenchError
from bench.spec import RunSpec
from bench.store import ResultStore, write_json_atomic

SPEC = RunSpec("tofu-mini", "tiny-llama", "forget10", "ga", "full", 0, 0)


def test_interrupted_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"status": "running", "epochs": [1]})

    def killed(*args):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, {"status": "finished", "epochs": [1, 2]})
    assert json.loads(path.read_text()) == {"status": "running", "epochs": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left behind


def test_non_finite_numbers_are_stored_as_strings(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"loss": float("nan"), "ppl": float("inf")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"loss": "nan", "ppl": "inf"}


def test_a_claimed_run_cannot_be_claimed_twice(tmp_path):
    store = ResultStore(tmp_path)
    with store.claim(SPEC) as first:
        assert first is not None
        with store.claim(SPEC) as second:
            assert second is None
    with store.claim(SPEC) as again:
        assert again is not None


def test_corrupt_run_json_is_named_not_fatal(tmp_path):
    store = ResultStore(tmp_path)
    d = store.run_dir(SPEC)
    d.mkdir(parents=True)
    (d / "run.json").write_text('{"spec": {"suite": "tof')
    [(run_dir, record, error)] = list(store.iter_records("tofu-mini"))
    assert record is None and str(d / "run.json") in error
    assert store.status(SPEC) == "corrupt"


def test_results_directory_that_is_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BenchError, match=f"results directory '{blocker}/results' is not writable"):
        ResultStore(blocker / "results").check_writable()


def test_a_running_record_without_a_live_lock_shows_as_interrupted(tmp_path):
    """A killed process leaves `running` in run.json; only the lock says whether anyone still computes it."""
    from bench.grid import expand
    from bench.report import status_table
    from bench.store import new_record

    store = ResultStore(tmp_path)
    [spec] = expand("tofu-mini", "ga+lora", seeds="0", hparams={"epochs": 1})
    with store.claim(spec) as run:
        run.record = {**new_record(spec), "status": "running"}
        run.save()
        assert store.is_claimed(run.dir)
        assert "1 running" in status_table("tofu-mini", str(tmp_path))
    assert not store.is_claimed(store.run_dir(spec))
    table = status_table("tofu-mini", str(tmp_path))
    assert "1 interrupted" in table and "the next `run` resumes it" in table
