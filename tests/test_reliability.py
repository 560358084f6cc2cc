"""Nothing lost, nothing computed twice: overlapping grids from two processes on one results
directory; bad input that must stop before any work."""

import json
import re
import subprocess
import sys

import pytest

from bench.cli import main
from tests.conftest import TDEC_MINI_LEAN_ARGS, with_tdec_mini_artefacts

pytestmark = pytest.mark.slow


def test_two_processes_on_overlapping_grids_compute_each_run_once(tdec_mini_artefacts, tmp_path):
    results = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    grids = ["ga,gd,npo,ihl+lora", "ihl+lora,npo,gd,ga+fila"]  # 3 runs in common, in another order
    procs = [subprocess.Popen([sys.executable, "-m", "bench", "-q", "run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", g,
                               "--epochs", "3", "--results", str(results), *TDEC_MINI_LEAN_ARGS], stdout=subprocess.PIPE,
                              text=True)
             for g in grids]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    finished = sum(int(re.search(r"(\d+) finished", out).group(1)) for out in outputs)
    records = [json.loads(p.read_text()) for p in results.glob("tdec-mini/runs/*/run.json")]
    assert len(records) == 5 and all(r["status"] == "finished" for r in records)
    assert finished == 5  # every distinct run computed by exactly one of the two processes
    assert not list(results.glob("tdec-mini/runs/*/.run.json.*.tmp"))


def test_bad_input_is_one_line_and_keeps_earlier_results(tdec_mini_artefacts, tmp_path, capsys):
    results = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path / "results")
    keep = results / "tdec-mini" / "leaderboard.md"
    keep.write_text("earlier results")
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ihl+fila", "--ranks", "4096",
                 "--results", str(results)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # progress lines come first
    assert err.startswith("error: LoRA rank 4096 is larger than layer")
    assert keep.read_text() == "earlier results"
    assert not list(results.glob("tdec-mini/runs/*"))  # no failed run for the leaderboard to list
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--results", str(blocker / "r")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_save_models_on_a_finished_run_without_its_model_recomputes_it_with_the_model(tdec_mini_artefacts, tmp_path, capsys):
    """--save-models used to say "finished already, skipped" and export nothing: the model the user asked for never
    appeared. A finished run without it is recomputed (same numbers: fixed seed), then skipped while it is there."""
    results = with_tdec_mini_artefacts(tdec_mini_artefacts, tmp_path)
    argv = ["run", "--suite", "tdec-mini", "--splits", "set0", "--seeds", "0", "--methods", "ga", "--epochs", "1",
            "--results", str(results), *TDEC_MINI_LEAN_ARGS]
    assert main(argv) == 0
    [path] = results.glob("tdec-mini/runs/*/run.json")
    first = json.loads(path.read_text())
    assert not (path.parent / "model").exists()
    capsys.readouterr()
    assert main(argv + ["--save-models"]) == 0
    assert "1 finished, 0 already done" in capsys.readouterr().out
    assert (path.parent / "model" / "config.json").is_file()
    again = json.loads(path.read_text())
    assert again["final_metrics"] == first["final_metrics"]
    assert main(argv + ["--save-models"]) == 0
    assert "0 finished, 1 already done" in capsys.readouterr().out
