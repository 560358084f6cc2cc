"""Issue 25: every hint in an error is a command that works as printed, and the models a run combines
share a tokenizer. Hints are run here exactly as printed (shlex-split, through the CLI)."""

import json
import shlex
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.grid import expand
from bench.store import ResultStore
from suites import SUITES, Context
from suites.base import MissingReference
from tests.conftest import tiny


def save_tiny(tokenizer, path, arch="llama", seed=0):
    model = tiny(arch, tokenizer, seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def tofu_dir(path):
    """Every TOFU config a run reads, in the hub's schema (JSON lines), from tofu-mini's generator at a tiny size."""
    from suites.tofu_mini_data import generate
    from suites.tofu_mini_unseen import holdout_configs

    path.mkdir(parents=True)
    shape = dict(n_authors=10, n_attributes=3, n_real=3, n_world=3, n_tokenizer_authors=0)
    for config, rows in {**generate(**shape), **holdout_configs(**shape)}.items():
        (path / f"{config}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def hinted_command(message: str) -> list[str]:
    command = message.split("produce it with: ", 1)[1].split(" or --option", 1)[0]
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "bench"]
    return args[3:]


@pytest.mark.slow
def test_the_missing_reference_hint_runs_as_printed_with_the_users_data_dir(tokenizer, tmp_path):
    """The printed `bench finetune` carries the --data-dir the run was given (before, it did not, and failed
    again); running it as printed produces exactly the model the run looks for, for the target and then
    for the retain-only model."""
    model = save_tiny(tokenizer, tmp_path / "tiny-model")
    data = tofu_dir(tmp_path / "TOFU")
    [spec] = expand("tofu", "ga+lora", models=model, splits="forget10", seeds="0", ranks="4")
    ctx = Context(store=ResultStore(tmp_path / "results"), log=lambda m: None, data_dir=data)
    suite = SUITES["tofu"]
    for role, split in (("target", "full"), ("reference", "retain90")):
        with pytest.raises(MissingReference) as caught:
            suite.reference_model(spec, role, split, ctx)
        args = hinted_command(str(caught.value))
        assert args[args.index("--data-dir") + 1] == data and args[args.index("--split") + 1] == split
        assert main(["-q"] + args) == 0
        assert (tmp_path / "results" / "tofu" / "artefacts").is_dir()
        found = suite.reference_model(spec, role, split, ctx)  # no error now: the hint made it
        assert json.loads((tmp_path / "results" / "tofu" / "artefacts" / "models" / found.split("/models/")[1] /
                           "recipe.json").read_text())["split"] == split


@pytest.mark.slow
def test_finetune_takes_lr_epochs_and_set_and_says_how_to_use_the_model(tokenizer, tmp_path, capsys):
    model = save_tiny(tokenizer, tmp_path / "tiny-model")
    data = tofu_dir(tmp_path / "TOFU")
    assert main(["finetune", "--suite", "tofu", "--model", model, "--split", "full", "--data-dir", data,
                 "--results", str(tmp_path / "r"), "--lr", "1e-3", "--epochs", "1", "--set", "batch_size=2"]) == 0
    out = capsys.readouterr().out
    made = out.split("--option target=", 1)[1].strip()
    recipe = json.loads((Path(made) / "recipe.json").read_text())["hparams"]
    assert (recipe["lr"], recipe["epochs"], recipe["batch_size"]) == (1e-3, 1, 2)
    [spec] = expand("tofu", "ga+lora", models=model, splits="forget10", seeds="0", ranks="4", options={"target": made})
    ctx = Context(store=ResultStore(tmp_path / "r"), log=lambda m: None, data_dir=data)
    assert SUITES["tofu"].reference_model(spec, "target", "full", ctx) == made  # the printed option finds it
    assert main(["finetune", "--suite", "tofu", "--model", model, "--split", "full", "--data-dir", data,
                 "--results", str(tmp_path / "r"), "--set", "lr=-1"]) == 2


def test_offline_reference_attack_hint_names_the_option_that_fixes_it(tokenizer, tmp_path):
    """Offline with TDEC's default Reference model (GPT-2 from the hub): the error names
    --option mia_reference=DIR|none, not --model; each alternative, run as printed, is accepted."""
    suite = SUITES["tdec"]
    [spec] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0", seeds="0")
    ctx = Context(store=ResultStore(tmp_path), log=lambda m: None)
    with pytest.raises(BenchError) as caught:
        suite.mia_reference_nll(spec, [[1, 2, 3]], ctx, tokenizer)
    message = str(caught.value)
    assert "--option mia_reference=DIR" in message and "--option mia_reference=none" in message
    assert "--model " not in message and "\n" not in message
    for value in ("none", save_tiny(tokenizer, tmp_path / "ref")):
        [fixed] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0", seeds="0",
                         options={"mia_reference": value})
        nll = suite.mia_reference_nll(fixed, [[5, 6, 7, 8]], ctx, tokenizer)
        assert (nll is None) == (value == "none")


def test_a_reference_model_with_another_tokenizer_is_refused(tokenizer, tmp_path):
    """The Reference attack subtracts the reference model's NLL of the same token ids: a model with another
    vocabulary would score other text. TDEC's mia_reference and TOFU's retain-only model are both checked."""
    from bench.tiny import train_tokenizer

    other = train_tokenizer(["zebra quartz " * 20, "völlig andere wörter " * 20], vocab_size=300)
    foreign = save_tiny(other, tmp_path / "foreign")
    [spec] = expand("tdec", "ga", models="gpt-neo-125m", splits="set0", seeds="0", options={"mia_reference": foreign})
    ctx = Context(store=ResultStore(tmp_path / "r"), log=lambda m: None)
    with pytest.raises(BenchError, match="has another tokenizer than the unlearned model"):
        SUITES["tdec"].mia_reference_nll(spec, [[1, 2]], ctx, tokenizer)
    target = save_tiny(tokenizer, tmp_path / "target")
    [spec] = expand("tofu", "ga+lora", models=target, splits="forget10", seeds="0", ranks="4",
                    options={"target": target, "reference": foreign})
    ctx = Context(store=ResultStore(tmp_path / "r"), log=lambda m: None, data_dir=tofu_dir(tmp_path / "TOFU"))
    with pytest.raises(BenchError, match="retain-only model .* has another tokenizer than the target"):
        SUITES["tofu"].prepare(spec, ctx)


def test_local_directories_keep_their_registry_recipe(tokenizer, tmp_path, capsys):
    """`--models phi-1.5=DIR` gets phi-1.5's learning rates and prompt format; a directory named like the hub
    model whose config agrees is recognised; show-config states which recipe and why. Registry names keep
    their run ids."""
    from bench.models import recipe_of

    suite = SUITES["tofu"]
    plain = save_tiny(tokenizer, tmp_path / "some-model", arch="phi")
    named_like = save_tiny(tokenizer, tmp_path / "phi-1_5", arch="phi")
    wrong_type = save_tiny(tokenizer, tmp_path / "x" / "phi-1_5", arch="llama")
    assert recipe_of(plain)[0] is None and recipe_of(wrong_type)[0] is None
    assert recipe_of(named_like)[0].name == "phi-1.5" and "detected" in recipe_of(named_like)[1]
    for model in (f"phi-1.5={plain}", named_like):
        [spec] = expand("tofu", "ga+lora", models=model, splits="forget10", seeds="0", ranks="4")
        assert spec.hparams.lr == 2e-4 and suite.finetune_hparams(model).lr == 2e-5
        assert suite.qa_format(model, tokenizer).name == "qa"
    assert expand("tofu", "ga+lora", models=plain, splits="forget10", seeds="0", ranks="4")[0].hparams.lr == 1e-4
    llama = save_tiny(tokenizer, tmp_path / "chat", arch="llama")
    assert suite.qa_format(f"llama2-7b={llama}", tokenizer).name == "llama2-chat"
    assert main(["show-config", "--suite", "tofu", "--models", f"phi-1.5={plain}", "--methods", "ga+lora",
                 "--splits", "forget10", "--seeds", "0", "--ranks", "4"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert shown["model_recipe"] == f"phi-1.5 (named: phi-1.5={plain})" and shown["hparams"]["lr"] == 2e-4
    assert main(["show-config", "--suite", "tofu", "--models", f"phi-9={plain}"]) == 2
    assert "unknown registry recipe of NAME=DIR 'phi-9'" in capsys.readouterr().err
