"""The unlearning loop as 2 CPU processes (torch.distributed + gloo through Accelerate, as
`accelerate launch` / torchrun start it): both run to completion and end with identical parameters."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # several processes, tens of seconds each


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("objective", ["gd", "rmu"])  # RMU's loss leaves the blocks above its layer without gradient
def test_two_processes_end_with_identical_parameters(objective, tmp_path):
    script = Path(__file__).parent / "helpers" / "ddp_unlearn.py"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    done = subprocess.run(torchrun + [str(script), str(tmp_path), objective], capture_output=True, text=True, timeout=300,
                          env=offline_env())
    assert done.returncode == 0, done.stderr[-2000:]
    first = torch.load(tmp_path / "params-0.pt")
    second = torch.load(tmp_path / "params-1.pt")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)

    single = tmp_path / "single"
    single.mkdir()
    subprocess.run([sys.executable, str(script), str(single), objective], check=True, capture_output=True, timeout=300,
                   env=offline_env())
    alone = torch.load(single / "params-0.pt")
    # Each rank takes whole one-process micro-batches (4 of 2 examples per step of 8), so every token-mean loss
    # averages over the examples it does in one process: equal up to the float rounding of summing gradients
    # across ranks (measured 1.2e-8; dealing the examples out one by one, as before, gave 3.0e-3 with these
    # answers of different lengths)
    assert all(torch.allclose(alone[k], first[k], rtol=0, atol=1e-6) for k in first)


# -- the command line under torchrun (issue 20, kind 4) ---------------------------------------------------
import json
import os

from tests.conftest import with_tdec_mini_artefacts

RUN = ["-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--methods", "ga+lora", "--seeds", "0", "--epochs", "1"]


def offline_env(**extra):
    repo = str(Path(__file__).parent.parent)  # this checkout's bench/, not an installed copy
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
           **extra}
    env.pop("WORLD_SIZE", None), env.pop("RANK", None), env.pop("LOCAL_RANK", None)
    return env


def only_record(results):
    (path,) = (results / "tdec-mini" / "runs").glob("*/run.json")
    return json.loads(path.read_text())


def test_the_cli_under_torchrun_matches_one_process(tmp_path, tdec_mini_artefacts):
    repo = Path(__file__).parent.parent
    alone = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "alone")
    done = subprocess.run([sys.executable, "-m", "bench", *RUN, "--results", str(alone)], cwd=repo, env=offline_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    two = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "two")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    done = subprocess.run(torchrun + ["-m", "bench", *RUN, "--results", str(two)], cwd=repo,
                          env=offline_env(BENCH_DIST_TIMEOUT="300"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 finished, 0 already done, 0 busy elsewhere, 0 failed" in done.stdout
    assert done.stdout.count("1 finished") == 1  # rank 0 reports, rank 1 trains quietly
    one, both = only_record(alone), only_record(two)
    assert both["status"] == "finished" and both["world_size"] == 2 and both["run_id"] == one["run_id"]
    assert [e["epoch"] for e in both["epochs"]] == [0, 1]
    # the same examples per optimiser step, split across 2 processes: the same update up to float rounding
    for mine, theirs in zip(one["epochs"], both["epochs"]):
        assert mine["metrics"].keys() == theirs["metrics"].keys()
        for name, value in mine["metrics"].items():
            assert theirs["metrics"][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert both["epochs"][1]["train"]["loss"] == pytest.approx(one["epochs"][1]["train"]["loss"], rel=1e-5)
    assert one["final_metrics"].keys() == both["final_metrics"].keys()
    for name, value in one["final_metrics"].items():  # numbers, and epochs_to_forget (None: not forgotten)
        expected = pytest.approx(value, rel=1e-5, abs=1e-6) if isinstance(value, float) else value
        assert both["final_metrics"][name] == expected, name
    # and a second torchrun finds it done, rather than one rank finding the other's lock
    done = subprocess.run(torchrun[:-1] + [str(free_port()), "-m", "bench", *RUN, "--results", str(two)], cwd=repo,
                          env=offline_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "0 finished, 1 already done, 0 busy elsewhere" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("mode", ["die", "hang"])
def test_a_rank_that_dies_or_hangs_stops_the_others_with_an_error(mode, tmp_path, tdec_mini_artefacts):
    """Two ranks started without torchrun (as a scheduler would), so nothing but the harness stops rank 0."""
    import time

    repo = Path(__file__).parent.parent
    results = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "results")
    # the hang is detected after `timeout` s; a slow start-up (importing torch on a busy machine) that outlasts it
    # also ends in rank 0's error, never in a pass that should fail
    port, timeout = str(free_port()), 30
    env = lambda rank: {**offline_env(BENCH_DIST_TIMEOUT=str(timeout)), "WORLD_SIZE": "2", "RANK": str(rank),
                        "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    args = [*RUN, "--results", str(results)]
    start = time.time()
    zero = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=repo, env=env(0), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    one = subprocess.Popen([sys.executable, str(Path(__file__).parent / "helpers" / "cli_rank.py"), mode, *args],
                           cwd=repo, env=env(1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _, err = zero.communicate(timeout=300)
    finally:
        one.kill()
        one.wait(timeout=60)
        zero.kill()
    assert zero.returncode != 0
    assert "error" in err.lower(), err[-2000:]
    assert time.time() - start < 300
    record = only_record(results)
    assert record["status"] == "failed" and record["reason"]  # not left "running"


def test_finetune_under_torchrun_trains_on_both_ranks_and_rank_0_alone_saves_and_reports(tokenizer, tmp_path):
    """`torchrun --nproc_per_node 2 -m bench finetune`: the ranks split each step (the model equals the one-process
    fine-tune up to float rounding: rank 0 alone would have taken half the gradient), one copy of the model is
    written, no staging directory is left, and the command prints its result once."""
    from tests.test_hints import save_tiny, tofu_dir

    model, data = save_tiny(tokenizer, tmp_path / "tiny-model"), tofu_dir(tmp_path / "TOFU")
    args = ["-m", "bench", "finetune", "--suite", "tofu", "--model", model, "--split", "full", "--data-dir", data,
            "--epochs", "2", "--lr", "1e-3"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    two = subprocess.run(torchrun + args + ["--results", str(tmp_path / "two")], capture_output=True, text=True,
                         timeout=600, env=offline_env(BENCH_DIST_TIMEOUT="120"))
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("full model of") == 1, two.stdout
    one = subprocess.run([sys.executable] + args + ["--results", str(tmp_path / "one")], capture_output=True,
                         text=True, timeout=600, env=offline_env())
    assert one.returncode == 0, one.stderr[-2000:]
    [made] = (tmp_path / "two" / "tofu" / "artefacts" / "models").glob("*/full")
    assert not [p for p in made.parent.iterdir() if p.name.startswith(".")]  # no staging directory left behind
    [alone] = (tmp_path / "one" / "tofu" / "artefacts" / "models").glob("*/full")
    from safetensors.torch import load_file

    a, b = load_file(made / "model.safetensors"), load_file(alone / "model.safetensors")
    start = load_file(Path(model) / "model.safetensors")
    assert a.keys() == b.keys()
    mean_abs = lambda x, y: sum(float((x[k] - y[k]).abs().sum()) for k in x) / sum(x[k].numel() for k in x)
    # Adam moves each weight by about lr per step whatever the gradient's size, so half a gradient (one rank's
    # share) would move many weights another way; float rounding between the groupings moves a few (measured:
    # 6e-6 against 1e-3 of training)
    assert mean_abs(a, b) < 0.02 * mean_abs(a, start)


def test_finetune_stops_with_a_one_line_error_when_the_other_rank_dies(tokenizer, tmp_path):
    """Rank 1 of a `bench finetune` exits as training starts: rank 0 ends at its next collective with one error
    line naming the rank and the cause, exit 1, and no model (or staging directory) left behind."""
    from tests.test_hints import save_tiny, tofu_dir

    repo = Path(__file__).parent.parent
    model, data = save_tiny(tokenizer, tmp_path / "tiny-model"), tofu_dir(tmp_path / "TOFU")
    args = ["finetune", "--suite", "tofu", "--model", model, "--split", "full", "--data-dir", data, "--epochs", "2",
            "--results", str(tmp_path / "r")]
    port = str(free_port())
    env = lambda rank: {**offline_env(BENCH_DIST_TIMEOUT="60"), "WORLD_SIZE": "2", "RANK": str(rank),
                        "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    one = subprocess.Popen([sys.executable, str(Path(__file__).parent / "helpers" / "cli_rank.py"), "die", *args],
                           cwd=repo, env=env(1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        zero = subprocess.run([sys.executable, "-m", "bench", *args], cwd=repo, env=env(0), capture_output=True,
                              text=True, timeout=300)
    finally:
        one.kill()
        one.wait(timeout=60)
    assert zero.returncode == 1
    [line] = [l for l in zero.stderr.splitlines() if l.startswith("error:")]
    assert line.startswith("error: fine-tuning stopped on rank 0 of 2 (collectives wait BENCH_DIST_TIMEOUT=60 s): ")
    assert "Traceback" not in zero.stderr
    assert not list((tmp_path / "r" / "tofu" / "artefacts").rglob("config.json"))
    assert not list((tmp_path / "r" / "tofu" / "artefacts").rglob(".full.*"))


@pytest.mark.parametrize("world", ["2", "1"])
@pytest.mark.parametrize("value", ["0", "-5", "abc", "inf", "nan", "1e15", "0.0004"])
def test_a_bad_dist_timeout_is_a_one_line_error_before_the_process_group_starts(value, world, monkeypatch):
    """Under torchrun, and in one process too (the value set is checked where it is given)."""
    from bench import distributed
    from bench.errors import BenchError

    monkeypatch.setenv("BENCH_DIST_TIMEOUT", value)
    monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(BenchError, match=rf"^bad BENCH_DIST_TIMEOUT='{value}' \(expected seconds, a number >= 0.001 and <= 1e\+07\)$"):
        distributed.init()
