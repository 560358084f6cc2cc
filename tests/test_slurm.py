"""Grid dispatch against a real SLURM cluster (slurm/local-cluster.sh start): sbatch, job arrays,
dependencies, sacct, scancel and requeue. Skipped, with the reason, where no cluster runs."""

import json
import shutil
import subprocess
import time

import pytest

from bench.cli import main
from bench.dispatch import load_profile, sweeps
from bench.errors import BenchError
from bench.grid import expand
from bench.runner import run_one
from bench.store import ResultStore
from suites import Context
from tests.conftest import TDEC_MINI_LEAN, TDEC_MINI_LEAN_ARGS, with_tdec_mini_artefacts

pytestmark = pytest.mark.slow
PROFILE = "slurm/local.yaml"
# these runs test dispatch, not the twin: without the utility tasks and the Reference attack (TDEC_MINI_LEAN)


def cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed", "allocated", "completing"))


needs_cluster = pytest.mark.skipif(not cluster_up(), reason="no SLURM cluster here (start one: slurm/local-cluster.sh start)")


def wait_for(predicate, timeout=400, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def status_rows(results):
    from bench.report import status_table

    table = status_table("tdec-mini", str(results))
    return {line.split("|")[2].strip(): line for line in table.splitlines() if "__" in line}


def run_records(results):
    return {p.parent.name: json.loads(p.read_text()) for p in results.glob("tdec-mini/runs/*/run.json")}


@pytest.fixture(scope="module")
def results(tmp_path_factory, tdec_mini_artefacts):
    if not cluster_up():
        pytest.skip("no SLURM cluster here (start one: slurm/local-cluster.sh start)")
    return with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path_factory.mktemp("slurm-results"))


@needs_cluster
def test_a_grid_goes_through_sbatch_and_lands_in_the_results(results, capsys):
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga,gd,ihl+fila,npo+lora", "--epochs", "3",
                 "--launcher", "slurm", "--profile", PROFILE, "--results", str(results), *TDEC_MINI_LEAN_ARGS]) == 0
    [sweep] = sweeps(ResultStore(results), "tdec-mini")
    assert [j["kind"] for j in sweep["jobs"]] == ["prepare", "run", "run", "run", "run"]
    wait_for(lambda: len(run_records(results)) == 4 and all(r["status"] == "finished" for r in run_records(results).values()),
             what="4 finished runs")
    assert all(r["slurm_job_id"] for r in run_records(results).values())  # they ran as SLURM jobs
    wait_for(lambda: all("COMPLETED" in row for row in status_rows(results).values()), timeout=60, what="sacct")
    # asking again submits nothing: every run is finished
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga,gd,ihl+fila,npo+lora", "--epochs", "3",
                 "--launcher", "slurm", "--profile", PROFILE, "--results", str(results), *TDEC_MINI_LEAN_ARGS]) == 0
    assert "0 run jobs submitted (4 already finished)" in capsys.readouterr().out


@needs_cluster
def test_a_forced_submission_the_cluster_refuses_leaves_every_record_as_it_was(results, tmp_path, capsys):
    """--force used to reset every finished run before sbatch was asked: a refusal lost them. Now a job starts its
    run anew only once it runs, and a sweep's jobs are held until all are accepted."""
    argv = ["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga,gd,ihl+fila,npo+lora",
            "--epochs", "3", "--results", str(results), "--force", "--launcher", "slurm", *TDEC_MINI_LEAN_ARGS]
    before = {p: p.read_bytes() for p in results.glob("tdec-mini/runs/*/run.json")}
    jobs_before = sorted((results / "tdec-mini" / "jobs").iterdir())
    refused = tmp_path / "refused.yaml"
    refused.write_text("partition: nosuchpartition\ndefault: {gpus: 0, cpus: 1, mem_gb: 2, time_min: 30}\n")
    assert len(before) == 4 and main([*argv, "--profile", str(refused)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: the submission failed: sbatch: error:")
    assert {p: p.read_bytes() for p in results.glob("tdec-mini/runs/*/run.json")} == before  # byte for byte
    assert sorted((results / "tdec-mini" / "jobs").iterdir()) == jobs_before  # nothing of the sweep left
    # accepted, a forced job still recomputes its run (here: one of them)
    assert main([*argv[:8], "ga", *argv[9:], "--profile", PROFILE]) == 0
    ga = expand("tdec-mini", "ga", hparams={"epochs": 3}, splits="set0", seeds="0", options=TDEC_MINI_LEAN)[0].run_id
    [job] = [j["job_id"] for j in sweeps(ResultStore(results), "tdec-mini")[-1]["jobs"] if j["kind"] == "run"]
    wait_for(lambda: run_records(results)[ga].get("slurm_job_id") == job
             and run_records(results)[ga]["status"] == "finished", what="the forced run recomputed by its job")


@needs_cluster
def test_failed_and_cancelled_runs_show_in_status(results):
    before = len(sweeps(ResultStore(results), "tdec-mini"))
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "gd", "--set", "retain_weight=1e39", "--epochs", "3",
                 "--launcher", "slurm", "--profile", PROFILE, "--results", str(results), *TDEC_MINI_LEAN_ARGS]) == 0
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ihl+lora", "--epochs", "400",
                 "--launcher", "slurm", "--profile", PROFILE, "--results", str(results), *TDEC_MINI_LEAN_ARGS]) == 0
    assert len(sweeps(ResultStore(results), "tdec-mini")) == before + 2  # one sweep per submission
    failing = expand("tdec-mini", "gd", hparams={"retain_weight": 1e39, "epochs": 3}, splits="set0", seeds="0", options=TDEC_MINI_LEAN)[0].run_id  # loss overflows
    long = expand("tdec-mini", "ihl+lora", hparams={"epochs": 400}, splits="set0", seeds="0", options=TDEC_MINI_LEAN)[0].run_id
    wait_for(lambda: run_records(results).get(long, {}).get("epochs"), what="the long run to start")
    assert main(["cancel", "--suite", "tdec-mini", "--results", str(results)]) == 0
    wait_for(lambda: "| cancelled" in status_rows(results).get(long, ""), timeout=120, what="cancelled in status")
    wait_for(lambda: "| failed" in status_rows(results).get(failing, ""), timeout=120, what="failed in status")
    assert "loss is inf at epoch 1, step 1" in status_rows(results)[failing]


@needs_cluster
def test_a_run_queued_or_running_is_not_submitted_again_and_status_and_cancel_follow_its_live_job(results, capsys):
    # a learning rate at which it never reaches the forgetting thresholds: it runs until cancelled (at the default
    # one, the stopping rule could end it before the cancel arrives)
    argv = ["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "1", "--methods", "ga+lora", "--epochs", "400",
            "--lr", "1e-9", "--launcher", "slurm", "--profile", PROFILE, "--results", str(results), *TDEC_MINI_LEAN_ARGS]
    store = ResultStore(results)
    assert main(argv) == 0
    first = sweeps(store, "tdec-mini")[-1]
    [live] = [j["job_id"] for j in first["jobs"] if j["kind"] == "run"]
    [prep] = [j["job_id"] for j in first["jobs"] if j["kind"] == "prepare"]
    capsys.readouterr()
    assert main(argv) == 0  # at once: its job is still queued
    assert "0 run jobs submitted (0 already finished, 1 queued or running already)" in capsys.readouterr().out
    assert sweeps(store, "tdec-mini")[-1]["sweep_id"] == first["sweep_id"]  # no second sweep, no duplicate job
    run = expand("tdec-mini", "ga+lora", hparams={"epochs": 400, "lr": 1e-9}, splits="set0", seeds="1",
                 options=TDEC_MINI_LEAN)[0].run_id
    wait_for(lambda: run_records(results).get(run, {}).get("epochs"), what="the run to start")
    # a newer sweep naming the run with a job that has ended (a duplicate an earlier version submitted, which found
    # the run busy and ended at once): the run is still its live job's, for status as for cancel
    sweep_dir = results / "tdec-mini" / "sweeps"
    (sweep_dir / "99999999-duplicate.json").write_text(json.dumps(
        {"sweep_id": "99999999-duplicate", "suite": "tdec-mini", "launcher": "slurm", "created": time.time(),
         "jobs": [{"kind": "run", "job_id": prep, "run_id": run}]}))
    row = status_rows(results)[run]
    assert f"| {live} RUNNING" in row and "| running" in row, row
    assert main(["cancel", "--suite", "tdec-mini", "--results", str(results)]) == 0
    wait_for(lambda: "| cancelled" in status_rows(results).get(run, ""), timeout=120, what="its live job cancelled")
    (sweep_dir / "99999999-duplicate.json").unlink()


@needs_cluster
def test_a_job_at_its_time_limit_is_requeued_and_resumes_to_the_same_result(results):
    import submitit

    argv = ["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "kl+lora", "--epochs", "20", "--launcher", "slurm",
            "--profile", PROFILE, "--results", str(results), *TDEC_MINI_LEAN_ARGS]
    assert main(argv) == 0
    sweep = sweeps(ResultStore(results), "tdec-mini")[-1]
    [job] = [j for j in sweep["jobs"] if j["kind"] == "run"]
    spec = expand("tdec-mini", "kl+lora", hparams={"epochs": 20}, splits="set0", seeds="0", options=TDEC_MINI_LEAN)[0]
    wait_for(lambda: len(run_records(results).get(spec.run_id, {}).get("epochs", [])) >= 4, what="a few epochs")
    folder = results / "tdec-mini" / "jobs" / sweep["sweep_id"] / "%j"
    # the signal SLURM sends signal_delay_s before the time limit: submitit checkpoints and requeues
    submitit.SlurmJob(folder=folder, job_id=job["job_id"])._interrupt(timeout=True)


    def finished_soon():
        # slurmctld holds a requeued job back for a while (BeginTime); let it start now
        subprocess.run(["scontrol", "update", f"JobId={job['job_id']}", "StartTime=now"], capture_output=True)
        return run_records(results)[spec.run_id]["status"] == "finished"

    wait_for(finished_soon, what="the requeued run to finish")
    requeued = run_records(results)[spec.run_id]
    assert requeued.get("resumed_after_epoch"), "the run restarted from scratch instead of resuming"

    ctx = Context(store=ResultStore(results), log=lambda m: None)
    assert run_one(spec, ctx, force=True) == "finished"  # uninterrupted, in this process
    fresh = run_records(results)[spec.run_id]
    assert [e["metrics"] for e in requeued["epochs"]] == [e["metrics"] for e in fresh["epochs"]]


def test_profile_errors_name_the_bad_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("partition: gpu\ngpu_count: 2\n")
    with pytest.raises(BenchError, match="unknown key\\(s\\) gpu_count"):
        load_profile(str(bad))
    bad.write_text("default: {gpus: 1, memory: 4}\n")
    with pytest.raises(BenchError, match="unknown key\\(s\\) memory in 'default'"):
        load_profile(str(bad))
    bad.write_text("default: {gpus: lots}\n")
    with pytest.raises(BenchError, match="bad default.gpus 'lots' \\(expected an integer >= 0\\)"):
        load_profile(str(bad))
    bad.write_text("partition: [unclosed\n")
    with pytest.raises(BenchError, match="not valid YAML"):
        load_profile(str(bad))
    with pytest.raises(BenchError, match="does not exist"):
        load_profile(str(tmp_path / "missing.yaml"))
    assert load_profile("slurm/a100.yaml").resources("llama2-7b").mem_gb == 128


@needs_cluster
def test_a_submission_the_cluster_refuses_is_a_one_line_error(tmp_path, capsys):
    """slurm/a100.yaml asks for GPUs (gres), which the localhost cluster does not have: sbatch refuses."""
    results = tmp_path / "new"
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga", "--launcher", "slurm",
                 "--profile", "slurm/a100.yaml", "--results", str(results), *TDEC_MINI_LEAN_ARGS]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # above it: sbatch's own stderr, passed through
    assert last.startswith("error: the submission failed: sbatch: error:") and "gres" in last
    assert not results.exists()  # nothing submitted, nothing recorded, no job folder: the directory it made is gone


def test_local_jobs_launcher_runs_the_grid_as_parallel_processes(tdec_mini_artefacts, tmp_path):
    results = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    profile = tmp_path / "local-jobs.yaml"  # what local-jobs reads of a profile: setup, time_min, cpus
    profile.write_text(f'setup: ["touch {tmp_path}/setup-ran"]\ndefault: {{cpus: 1, time_min: 20}}\n')
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga,ihl+fila", "--epochs", "2", "--launcher", "local-jobs",
                 "--profile", str(profile), "--results", str(results), *TDEC_MINI_LEAN_ARGS]) == 0
    wait_for(lambda: len(run_records(results)) == 2 and all(r["status"] == "finished" for r in run_records(results).values()),
             timeout=300, what="2 finished runs")
    assert {r["pid"] for r in run_records(results).values()}.isdisjoint({__import__("os").getpid()})
    assert (tmp_path / "setup-ran").exists()  # the profile's setup ran before the jobs
