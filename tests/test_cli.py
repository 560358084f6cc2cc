import pytest

from bench.cli import main


@pytest.mark.parametrize("argv, message", [
    (["show-config", "--suite", "tofu-mimi"], "unknown suite 'tofu-mimi'; did you mean 'tofu-mini'?"),
    (["show-config", "--suite", "tofu-mini", "--methods", "ihl+fil"], "unknown adapter 'fil'; did you mean 'fila'?"),
    (["show-config", "--suite", "tofu-mini", "--methods", "nop"], "unknown objective 'nop'; did you mean 'npo'?"),
    (["show-config", "--suite", "tofu-mini", "--models", "tiny-lama"], "did you mean 'tiny-llama'?"),
    (["show-config", "--suite", "tofu", "--models", "phi15"], "unknown model 'phi15'; did you mean 'phi-1.5'?"),
    (["show-config", "--suite", "tofu-mini", "--splits", "forget5"], "did you mean 'forget05'?"),
    (["show-config", "--suite", "tofu-mini", "--ranks", "4,x"], "bad rank 'x'"),
    (["show-config", "--suite", "tofu-mini", "--ranks", "-4"], "bad LoRA rank -4"),
    (["show-config", "--suite", "tofu-mini", "--option", "max_item=3"], "did you mean 'max_items'?"),
    (["show-config", "--suite", "tofu-mini", "--set", "lr=-1"], "bad hyperparameter lr=-1 (expected a number > 0)"),
    (["report", "--suite", "tdex"], "unknown suite 'tdex'"),
    (["show-config", "--suite", "tdec-mini", "--option", "robustness=relearn,quantise"],
     "bad option robustness='relearn,quantise' (expected none, all, or a comma list of relearn, quant, paraphrase)"),
    (["show-config", "--suite", "tofu-mini", "--option", "privleak_attack=minkk"], "bad option privleak_attack='minkk'"),
    (["show-config", "--suite", "tofu-mini", "--option", "relearn_fraction=1.5"],
     "bad option relearn_fraction=1.5 (expected a number between 0 and 1, exclusive)"),
    (["show-config", "--suite", "tofu-mini", "--set", "retain_loss=kll"], "bad hyperparameter retain_loss='kll'"),
    # values that passed unchecked before (a new user tried them)
    (["show-config", "--suite", "tofu-mini", "--option", "max_items=-5"], "bad option max_items='-5' (expected an integer >= 0)"),
    (["show-config", "--suite", "tofu-mini", "--option", "generation=bogus"], "bad option generation='bogus' (expected new:N"),
    (["show-config", "--suite", "tofu-mini", "--methods", "ga+lora,"], "bad --methods 'ga+lora,': an empty entry"),
    (["show-config", "--suite", "tofu-mini", "--seeds", "0,0"], "seed '0' appears twice in '0,0'"),
    (["show-config", "--suite", "tofu-mini", "--seeds", ""], "bad seed list '': an empty entry"),
    (["show-config", "--suite", "tofu-mini", "--seeds", "abc"], "e.g. 0,1,2"),
    (["show-config", "--suite", "tofu", "--methods", "ga+lora", "--models", "phi-1.5="], "names no directory (expected phi-1.5=DIR)"),
    (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--max-seeds", "5"], "--max-seeds 5 is read only with --until-decided"),
    (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--threads", "0"], "bad --threads 0"),
    (["show-config", "--suite", "tofu-mini", "--lr", "inf"], "bad hyperparameter lr=inf"),
    (["show-config", "--suite", "tofu-mini", "--seeds", "99999999999999999999"], "bad seed 99999999999999999999"),
    (["show-config", "--suite", "tofu-mini", "--seeds", "-1"], "bad seed -1 (expected an integer from 0"),
    (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--device", "bogus"], "bad --device 'bogus'"),
    (["run", "--suite", "tofu-mini", "--methods", "rmu+lora", "--until-decided"], "no claim of suite tofu-mini compares two methods"),
    (["finetune", "--suite", "tofu", "--model", "phi-1.5", "--split", "full", "--set", "npo_beta=2"],
     "--set npo_beta is not read by fine-tuning"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_status_and_report_refuse_a_results_directory_that_is_not_there(tmp_path, capsys):
    """They only read: a mistyped --results is an error, never "no runs" with exit 0; an empty one has nothing to
    report, and nothing is written into it."""
    for argv, message in ((["status", "--results", str(tmp_path / "typo")], "no such directory"),
                          (["report", "--suite", "tofu-mini", "--results", str(tmp_path / "typo")], "no such directory"),
                          (["report", "--suite", "tofu-mini", "--results", __file__], "not a directory"),
                          (["cancel", "--suite", "tofu-mini", "--results", str(tmp_path / "typo")], "no such directory"),
                          (["report", "--suite", "tofu-mini", "--results", str(tmp_path)], "nothing to report")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []
    assert main(["status", "--results", str(tmp_path)]) == 0 and "no runs" in capsys.readouterr().out


def test_show_config_resolves_the_grid(capsys):
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "paper", "--ranks", "4,8", "--seeds", "0,1"]) == 0
    out = capsys.readouterr().out
    # GA, GD, IHL x (full + LoRA r4, r8 + FILA r4, r8) x 2 seeds
    assert out.count('"run_id"') == 3 * 5 * 2
    assert '"rank": 8' in out and '"lr": 0.01' in out


def test_the_suites_default_seeds_are_a_grid_axis(capsys):
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ihl+fila"]) == 0
    assert capsys.readouterr().out.count('"seed": ') == 3  # mini suites: seeds 0, 1, 2 by default
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ihl+fila", "--seeds", "7"]) == 0
    assert capsys.readouterr().out.count('"seed": 7') == 1


def test_every_help_has_an_example(capsys):
    for command in ("list", "show-config", "run", "finetune", "status", "report"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "example: python -m bench" in capsys.readouterr().out


def test_commands_that_touch_no_model_never_import_the_model_stack():
    """`list`, `show-config`, `status` and `--help` answer without importing torch / transformers / peft
    (measured in `bench perf`: about 0.1 s instead of 6-9 s)."""
    import subprocess
    import sys

    code = ("import sys; from bench.cli import main; main(['list']); "
            "main(['show-config', '--suite', 'tofu-mini', '--methods', 'all']); main(['status', '--results', 'nowhere']); "
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'lm_eval') if m in sys.modules]; "
            "print('heavy:', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "heavy: []"


@pytest.mark.parametrize("argv, expected", [
    (["--max-seeds", "5"], "error: --max-seeds 5 is read only with --until-decided"),
    (["--until-decided", "--max-seeds", "abc"], "error: bad --max-seeds 'abc' (expected an integer >= 1)"),
    (["--until-decided", "--max-seeds", "-3"], "error: bad --max-seeds -3 (expected an integer >= 1)"),
    (["--until-decided", "--max-seeds", "2", "--seeds", "0,1,2"],
     "error: --max-seeds 2 is below the 3 seeds the grid starts with (0,1,2); give at least 3"),
    (["--set", "warmup_epochs=-1"], "error: bad hyperparameter warmup_epochs=-1 (expected a number >= 0)"),
    (["--set", "epochs=0"], "error: bad hyperparameter epochs=0 (expected an integer >= 1)"),
    (["--lr", "inf"], "error: bad hyperparameter lr=inf (expected a finite number > 0)"),
])
def test_messages_quote_the_value_typed_and_say_what_is_valid(argv, expected, capsys, tmp_path):
    results = tmp_path / "results"
    assert main(["run", "--suite", "tdec-mini", "--methods", "ga+fila,ga+lora", "--results", str(results), *argv]) == 2
    assert capsys.readouterr().err.strip() == expected
    assert not results.exists()  # refused before anything is written


@pytest.mark.parametrize("argv", [
    ["finetune", "--suite", "tofu", "--model", "phi-1.5", "--split", "bogus"],
    ["run", "--suite", "tdec-mini", "--methods", "ga+lora", "--ranks", "100000", "--seeds", "0", "--splits", "set0"],
    ["run", "--suite", "tdec-mini", "--methods", "rmu", "--set", "rmu_layer=50", "--seeds", "0", "--splits", "set0"],
])
def test_a_bad_input_found_after_the_results_directory_was_made_leaves_no_directory(argv, tmp_path, capsys):
    results = tmp_path / "new" / "results"
    assert main([*argv, "--results", str(results)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "new").exists()  # the parent it made too
    # a directory that existed is never removed, even empty, even named through a `..` past a new one
    (tmp_path / "exist" / "a" / "b").mkdir(parents=True)
    assert main([*argv, "--results", str(tmp_path / "typo" / ".." / "exist")]) == 2
    assert (tmp_path / "exist" / "a" / "b").is_dir()
    assert main([*argv, "--results", str(tmp_path / "exist" / "newsub" / "..")]) == 2
    assert (tmp_path / "exist" / "a" / "b").is_dir()
    assert not (tmp_path / "typo").exists() and not (tmp_path / "exist" / "newsub").exists()  # what the `..` made


def test_perf_on_a_results_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("keep")
    assert main(["perf", "--quick", "--results", str(path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: results directory '{path}' is not writable ('{path}' is not a directory)")
    assert path.read_text() == "keep"


def test_importing_the_cli_after_rouge_leaves_stderr_and_logging_alone():
    """submitit configured logging on import (logging.config.dictConfig), which closed every existing handler; absl's
    (imported by rouge-score) closed the sys.stderr it held. The CLI imports submitit: a process that scored ROUGE
    first (a notebook, a test session) kept a closed stderr."""
    import subprocess
    import sys

    # absl's handler keeps the stream that was sys.stderr when absl loaded; a test runner swaps sys.stderr after
    code = ("import io, sys, logging; first = sys.stderr = io.StringIO(); import rouge_score.rouge_scorer, absl.logging; "
            "absl.logging.use_absl_handler(); handlers = list(logging.root.handlers); sys.stderr = io.StringIO(); "
            "import bench.cli; assert not first.closed, 'stderr closed'; assert logging.root.handlers == handlers; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("launcher, profile, message", [
    ("slurm", "partition: debug\narray_parallelism: lots\n", "bad array_parallelism 'lots' (expected an integer >= 1)"),
    ("slurm", "signal_delay_s: [1]\n", "bad signal_delay_s [1] (expected an integer >= 0)"),
    ("slurm", "default: {gpus: 0, cpus: 0, mem_gb: 2}\n", "bad default.cpus 0 (expected an integer >= 1)"),
    ("slurm", "default: {cpus: 1.7}\n", "bad default.cpus 1.7 (expected an integer >= 1)"),  # was truncated to 1
    ("slurm", "models: {tiny-gpt-neo: {mem_gb: -2}}\n", "bad models.tiny-gpt-neo.mem_gb -2 (expected a number > 0)"),
    ("slurm", "partition: ''\n", "bad partition '' (expected a non-empty name)"),
    ("slurm", "setup: touch x\n", "bad setup 'touch x' (expected a list of shell commands)"),
    # local-jobs honours setup, time_min and cpus (its torch threads); SLURM's keys would be ignored without a word
    ("local-jobs", "partition: nosuchpartition\naccount: nobody\nsetup: [\"exit 3\"]\narray_parallelism: 1\n"
                   "default: {gpus: 4, cpus: 1, mem_gb: 2, time_min: 30}\n",
     "--launcher local-jobs does not read partition, account, array_parallelism, default.gpus, default.mem_gb "
     "(it reads setup, cpus, time_min; the others are for --launcher slurm)"),
])
def test_a_bad_profile_is_one_line_naming_the_key_and_value_before_anything_is_written(launcher, profile, message,
                                                                                       tmp_path, capsys):
    path = tmp_path / "profile.yaml"
    path.write_text(profile)
    results = tmp_path / "new" / "results"
    assert main(["run", "--suite", "tdec-mini", "--methods", "ga", "--seeds", "0", "--splits", "set0", "--launcher",
                 launcher, "--profile", str(path), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: profile '{path}': ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "new").exists()
