import json
import math
import multiprocessing
import os
import signal
import time

import pytest

from bench.errors import BenchError
from bench.spec import RunSpec
from bench.store import ResultStore, artefact, json_artefact, publish, write_json_atomic

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
    with pytest.raises(BenchError, match=f"results directory '{blocker}/results' is not writable \\('{blocker}' is not a "
                                         "directory\\)"):
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


# --- content-addressed artefacts (bench/store.py artefact / publish / json_artefact) ---


def _write_model_dir(tmp, tag="ours"):
    tmp.mkdir()
    (tmp / "weights.bin").write_text(tag)
    (tmp / "config.json").write_text(json.dumps({"tag": tag}))  # the ready marker, written last


def test_an_artefact_is_built_once_then_read(tmp_path):
    builds = []

    def build(tmp):
        builds.append(tmp)
        _write_model_dir(tmp)

    out = tmp_path / "models" / "m-abc"
    assert artefact(out, build, ready="config.json") == out
    assert artefact(out, build, ready="config.json") == out
    assert len(builds) == 1 and builds[0] != out  # built at a temporary path, then renamed
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "weights.bin"]
    assert [p.name for p in out.parent.iterdir()] == ["m-abc"]  # no staging directory left


def test_a_failing_build_leaves_no_artefact_and_no_staging(tmp_path):
    def build(tmp):
        tmp.mkdir()
        (tmp / "weights.bin").write_text("half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        artefact(tmp_path / "m", build, ready="config.json")
    assert list(tmp_path.iterdir()) == []


def _killed_writer(out, started):
    def build(tmp):
        tmp.mkdir()
        (tmp / "weights.bin").write_text("half")
        started.set()
        time.sleep(60)  # killed here, before config.json and before the rename

    artefact(out, build, ready="config.json")


def test_a_killed_writer_leaves_no_partial_artefact(tmp_path):
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    out = tmp_path / "m"
    child = ctx.Process(target=_killed_writer, args=(out, started))
    child.start()
    assert started.wait(30)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert not out.exists()  # only its hidden staging directory remains
    assert [p.name.startswith(".m.") and p.name.endswith(".tmp") for p in tmp_path.iterdir()] == [True]
    artefact(out, _write_model_dir, ready="config.json")  # the next caller builds it whole
    assert json.loads((out / "config.json").read_text()) == {"tag": "ours"}


def test_a_directory_published_first_by_another_process_is_kept(tmp_path):
    out = tmp_path / "m"

    def racing_build(tmp):
        _write_model_dir(tmp, "ours")
        publish(out, lambda theirs: _write_model_dir(theirs, "theirs"))  # the other process renames first

    assert artefact(out, racing_build, ready="config.json") == out
    assert json.loads((out / "config.json").read_text()) == {"tag": "theirs"}
    assert (out / "weights.bin").read_text() == "theirs"  # one complete copy, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_published_file_replaces_a_stale_one(tmp_path):
    path = tmp_path / "fisher" / "k.safetensors"
    publish(path, lambda tmp: tmp.write_text("old rows"))
    publish(path, lambda tmp: tmp.write_text("new rows"))
    assert path.read_text() == "new rows"
    assert [p.name for p in path.parent.iterdir()] == ["k.safetensors"]


def test_a_json_artefact_is_computed_once_and_returned_as_computed(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"ma": 0.25, "el10": float("nan")}

    path = tmp_path / "thresholds" / "k.json"
    first = json_artefact(path, compute)
    assert first["ma"] == 0.25 and math.isnan(first["el10"])  # the computed value, NaN as a float
    assert json_artefact(path, compute) == {"ma": 0.25, "el10": "nan"}  # read back: NaN stored as a string
    assert len(calls) == 1


def test_artefacts_are_published_only_through_the_store():
    """"Compute, write to a temporary path, publish by rename" has one implementation (bench/store.py): a
    rename anywhere else is a hand-written copy. bench/checkpoint.py renames a run's own checkpoint, which no
    other process shares (the run's lock holds it)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    allowed = {"bench/store.py", "bench/checkpoint.py"}
    renames = []
    for package in ("bench", "suites", "methods", "benchmarks"):
        for path in sorted((root / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                module_call = isinstance(node.func.value, ast.Name) and node.func.value.id in ("os", "shutil")
                if node.func.attr == "rename" or module_call and node.func.attr in ("replace", "move"):
                    renames.append(f"{path.relative_to(root)}:{node.lineno}")  # os.replace/rename, shutil.move, Path.rename
    assert renames and all(r.split(":")[0] in allowed for r in renames), renames


@pytest.mark.parametrize("text, problem", [
    ('{"spec": {}, "status": "finished"}', "its spec lacks suite, model"),
    ('[1, 2]', "a JSON list, not an object"),
    ('{"spec": SPEC, "status": "running", "run_id": "x", "epochs": null}', "epochs is NoneType, not a list"),
    ('{"spec": SPEC, "status": "finished", "epochs": []}', "run_id is missing, not a str"),
    ('{"spec": SPEC, "status": "finished", "run_id": "x", "epochs": [{"epoch": "a"}]}', "an epoch entry is no object"),
    ('{"spec": SPEC, "status": "running", "run_id": "x", "epochs": [], "final_metrics": "x"}', "final_metrics is a str"),
    ('{"spec": SPEC, "status": "done", "run_id": "x", "epochs": []}', "status 'done' is none of pending, running, finished"),
    ('{"spec": SPEC, "status": "finished", "run_id": "x", "epochs": []}', "it is finished with no epoch's metrics"),
    ('{"spec": SPEC, "status": "finished", "run_id": "x", "epochs": [{"epoch": 0, "metrics": {}}]}',
     "it is finished with no epoch's metrics"),
    ('{"spec": RANKX, "status": "finished", "run_id": "x", "epochs": []}', "its spec's rank has the wrong type"),
])
def test_a_run_json_of_another_shape_is_a_corrupt_run_for_status_and_report(tmp_path, text, problem):
    """Valid JSON that is no run record (edited by hand, written by another program) is named as corrupt by
    `bench status` and the report, as truncated text is, never a KeyError that stops them."""
    from bench.grid import expand
    from bench.report import load_runs
    from bench.status import status_table
    from bench.store import new_record

    store = ResultStore(tmp_path)
    good, bad = expand("tofu-mini", "ga+lora", seeds="0,1", hparams={"epochs": 1})
    write_json_atomic(store.run_dir(good) / "run.json", {**new_record(good), "status": "failed",
                                                            "reason": "line one\nline | two"})
    store.run_dir(bad).mkdir(parents=True)
    (store.run_dir(bad) / "run.json").write_text(text.replace("SPEC", json.dumps(bad.to_dict())).replace(
        "RANKX", json.dumps({**bad.to_dict(), "rank": "x"})))
    table = status_table("tofu-mini", str(tmp_path))
    assert "1 corrupt" in table and f"not a run record ({problem}" in table
    assert "| line one line / two " in table and "line | two" not in table  # a reason stays on its table row
    runs = load_runs("tofu-mini", store).set_index("run_id")
    assert runs.loc[bad.run_id, "status"] == "corrupt" and runs.loc[good.run_id, "status"] == "failed"


def test_a_report_on_only_corrupt_records_is_a_one_line_error(tmp_path, capsys):
    """Every record unreadable (here: a status the runner never writes): the report names each, then says there
    is nothing to report, exit 2, rather than a KeyError."""
    from bench.cli import main
    from bench.grid import expand
    from bench.store import new_record

    store = ResultStore(tmp_path)
    for spec in expand("tofu-mini", "ga+lora", seeds="0,1", hparams={"epochs": 1}):
        write_json_atomic(store.run_dir(spec) / "run.json", {**new_record(spec), "status": "done"})
    assert main(["report", "--suite", "tofu-mini", "--results", str(tmp_path), "--compare", "ga+lora,ga+fila"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert sum("status 'done' is none of" in line for line in err) == 2
    assert "no readable run of suite tofu-mini" in err[-1] and "2 corrupt or pending" in err[-1]
    for spec in expand("tofu-mini", "ga+lora", seeds="0,1", hparams={"epochs": 1}):  # no record written yet
        (store.run_dir(spec) / "run.json").unlink()
    assert main(["report", "--suite", "tofu-mini", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no readable run of suite tofu-mini" in err[0] and "2 corrupt or pending" in err[0]


def test_a_damaged_sweep_file_is_skipped_with_a_warning_naming_it(tmp_path, caplog):
    from bench.dispatch import sweeps
    from bench.status import status_table

    store = ResultStore(tmp_path)
    folder = store.suite_dir("tofu-mini") / "sweeps"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text("{bad")
    write_json_atomic(folder / "b.json", {"sweep_id": "b", "launcher": "slurm", "created": 1.0,
                                          "jobs": [{"kind": "run", "job_id": 5, "run_id": "r1"}]})
    write_json_atomic(folder / "c.json", {"sweep_id": "c", "suite": "tofu-mini", "launcher": "slurm", "created": 2.0,
                                          "jobs": [{"kind": "run", "job_id": "7", "run_id": "r1"}]})
    assert [s["sweep_id"] for s in sweeps(store, "tofu-mini")] == ["c"]
    assert "skipped" in caplog.text and "a.json" in caplog.text and "b.json" in caplog.text
    assert "| tofu-mini | r1 " in status_table("tofu-mini", str(tmp_path))


def test_json_files_get_the_mode_the_umask_gives_new_files(tmp_path, monkeypatch):
    """A results directory shared on a cluster: run.json must get the mode the umask gives new files (0644 under
    umask 022), not mkstemp's 0600, or a colleague's `report` sees every run as corrupt."""
    import bench.store

    monkeypatch.setattr(bench.store, "_UMASK", 0o022)  # the umask the module read at import
    write_json_atomic(tmp_path / "run.json", {"a": 1})
    assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o644


def test_status_with_no_runs_says_whether_a_plan_waits_for_them(tmp_path):
    """A fresh clone's results hold the committed sequential plan and no runs: `bench status` says which plan waits
    and what rebuilds its runs, not only "no runs"."""
    from bench.sequential import FILE
    from bench.status import status_table

    (tmp_path / "tofu-mini").mkdir()
    assert status_table("tofu-mini", str(tmp_path)) == f"no runs in {tmp_path}"
    write_json_atomic(tmp_path / "tofu-mini" / FILE, {"looks": {}})
    said = status_table(None, str(tmp_path))
    assert said.startswith(f"no runs in {tmp_path}\n{tmp_path / 'tofu-mini' / FILE} holds a sequential plan")
    assert f"`python -m bench run --suite tofu-mini --methods all --results {tmp_path}`, then" in said


def test_tables_and_status_ask_slurm_about_a_run_its_job_left_saying_running(tmp_path, monkeypatch):
    """A SLURM job killed at its time limit leaves a record saying running: `bench status` and the tables both
    ask the scheduler (a fake `sacct` here saying TIMEOUT) and say `timeout`, never `running`."""
    from bench.grid import expand
    from bench.report import load_runs
    from bench.status import status_table
    from bench.store import new_record

    store = ResultStore(tmp_path / "results")
    [spec] = expand("tofu-mini", "ga+lora", seeds="0")
    write_json_atomic(store.run_dir(spec) / "run.json", {**new_record(spec), "status": "running"})
    write_json_atomic(store.suite_dir("tofu-mini") / "sweeps" / "s.json",
                      {"sweep_id": "s", "suite": "tofu-mini", "launcher": "slurm", "created": 1.0,
                       "jobs": [{"kind": "run", "job_id": "41", "run_id": spec.run_id}]})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text("#!/bin/sh\necho '41|TIMEOUT'\n")
    (bin_dir / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert load_runs("tofu-mini", store).set_index("run_id").loc[spec.run_id, "status"] == "timeout"
    assert f"| {spec.run_id} | timeout " in status_table("tofu-mini", str(store.root))
    (bin_dir / "sacct").write_text("#!/bin/sh\necho '41|COMPLETED'\n")  # its job ended, the run never wrote its end
    assert load_runs("tofu-mini", store).set_index("run_id").loc[spec.run_id, "status"] == "interrupted"
    assert f"| {spec.run_id} | interrupted " in status_table("tofu-mini", str(store.root))
    [never] = expand("tofu-mini", "ga+lora", seeds="1")  # submitted, its job completed, nothing written
    write_json_atomic(store.suite_dir("tofu-mini") / "sweeps" / "s.json",
                      {"sweep_id": "s", "suite": "tofu-mini", "launcher": "slurm", "created": 1.0,
                       "jobs": [{"kind": "run", "job_id": "41", "run_id": spec.run_id},
                                {"kind": "run", "job_id": "41", "run_id": never.run_id}]})
    assert (f"| {never.run_id} | interrupted |         | 41 COMPLETED | its job ended before the run wrote its "
            f"record") in status_table("tofu-mini", str(store.root))
    # a record that says more than its job keeps its status, in both
    write_json_atomic(store.run_dir(spec) / "run.json", {**new_record(spec), "status": "failed", "reason": "nan loss"})
    (bin_dir / "sacct").write_text("#!/bin/sh\necho '41|TIMEOUT'\n")
    assert load_runs("tofu-mini", store).set_index("run_id").loc[spec.run_id, "status"] == "failed"
    assert f"| {spec.run_id} | failed " in status_table("tofu-mini", str(store.root))
