"""show-config prints what `run` would run: the settings each run reads, by the rule --set is checked by, and
only grids that pass the checks `run` makes before anything is built that need no weights, data or device."""

import json
import sys

import pytest

from bench.cli import main
from bench.grid import expand
from bench.spec import LOOP, Hyperparams, setting_names
from methods import OBJECTIVES


def test_show_config_shows_what_each_run_reads_by_the_rule_set_applies(capsys):
    """show-config's `hparams` are the settings a run reads (the loop's and its objective's, under their
    conditions); what its spec only records for the id (npo_beta of a GA run) is `hparams_not_read`, and a
    --set of such a name is the error saying the objective does not read it; a --set of a shown one is not."""
    from bench.settings import SETTINGS

    for objective in OBJECTIVES.names():
        assert main(["show-config", "--suite", "tofu-mini", "--methods", objective, "--seeds", "0"]) == 0
        [spec] = json.loads(capsys.readouterr().out)
        expected = [n for n in setting_names() if n in LOOP or (n in OBJECTIVES[objective].uses and (
            SETTINGS[n].read_when is None or SETTINGS[n].read_when(Hyperparams(**{**spec["hparams"]}))))]
        assert list(spec["hparams"]) == expected, objective
        for name, value in spec.get("hparams_not_read", {}).items():
            assert name not in expected
            assert main(["show-config", "--suite", "tofu-mini", "--methods", objective, "--seeds", "0",
                         "--set", f"{name}={value}"]) == 2
            assert f"--set {name}={value} is read by none of this grid's objectives ({objective})" in capsys.readouterr().err
        assert main(["show-config", "--suite", "tofu-mini", "--methods", objective, "--seeds", "0",
                     *[a for n, v in spec["hparams"].items() for a in ("--set", f"{n}={v}")]]) == 0
        capsys.readouterr()
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ga", "--seeds", "0"]) == 0
    ga = json.loads(capsys.readouterr().out)[0]
    assert "npo_beta" not in ga["hparams"] and ga["hparams_not_read"] == {"retain_weight": 1.0, "npo_beta": 0.1}
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "gd", "--seeds", "0", "--set", "retain_weight=0"]) == 0
    gd = json.loads(capsys.readouterr().out)[0]
    assert gd["hparams"]["retain_weight"] == 0.0 and "retain_loss" not in gd["hparams"]  # read only when > 0


@pytest.mark.parametrize("suite, argv, message", [
    ("tofu-mini", ["--methods", "rmu", "--set", "rmu_layer=7"],
     "bad hyperparameter rmu_layer=7 (this model has 2 blocks: expected 0..0, or -1 for the default depth)"),
    ("tdec-mini", ["--methods", "rmu+lora", "--ranks", "8", "--set", "rmu_layer=5"],
     "bad hyperparameter rmu_layer=5 (this model has 2 blocks: expected 0..0, or -1 for the default depth)"),
    ("tofu-mini", ["--methods", "ga+lora", "--ranks", "512"],
     "LoRA rank 512 is larger than layer 'model.layers.0.mlp.down_proj' allows (at most 128 for this model)"),
    ("tdec-mini", ["--methods", "ihl+fila", "--ranks", "8,4096"], "LoRA rank 4096 is larger than layer"),
])
def test_show_config_refuses_what_run_refuses_before_building_anything(suite, argv, message, tmp_path, capsys):
    """The structural checks `run` makes on the model's config (RMU's layer, LoRA / FILA ranks), with the same
    one-line message; nothing is written."""
    errors = []
    for command in ("show-config", "run"):
        results = tmp_path / command
        assert main([command, "--suite", suite, "--seeds", "0", "--results", str(results), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err
        errors.append(err)
        assert not results.exists() or not any(results.rglob("run.json"))
    assert errors[0] == errors[1]
    assert not (tmp_path / "show-config").exists()


@pytest.mark.parametrize("suite", ["tofu-mini", "tdec-mini"])
def test_every_suites_own_grid_passes_the_structural_checks(suite, tmp_path):
    """What lets show-config skip the structural checks when the command line names no model, rank or RMU
    setting (and answer without loading torch): the suite's own models, default ranks and settings pass them,
    for every objective (`all`: the suite's adapters; `baselines`: full fine-tuning)."""
    from bench.preflight import check_structure
    from bench.store import ResultStore
    from suites import Context

    for methods in ("all", "baselines"):
        specs = expand(suite, methods, seeds="0")
        assert any(OBJECTIVES[s.objective].check is not None for s in specs)
        check_structure(specs, Context(store=ResultStore(tmp_path)))  # raises BenchError on a failure


@pytest.mark.slow  # two fresh processes, one loading torch and transformers (about 10 s)
def test_show_config_of_a_default_grid_stays_light_and_one_with_ranks_checks_them():
    """`--methods all` alone loads no model stack (bench perf's CLI row); `--ranks` makes it check the
    ranks on the model's structure, which loads it."""
    import subprocess

    code = ("import sys; from bench.cli import main; assert main(['show-config', '--suite', 'tofu-mini', "
            "'--methods', 'all']) == 0; print('torch:', 'torch' in sys.modules); assert main(['show-config', '--suite', "
            "'tofu-mini', '--methods', 'ga+lora', '--ranks', '4']) == 0; print('torch:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if line.startswith("torch:")] == ["torch: False", "torch: True"]
