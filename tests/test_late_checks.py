"""Checks that used to wait for a loaded model (LoRA / FILA rank, RMU's layer, the suite's lm-eval tasks, the
device) run before any reference or base model is built: a one-line error within seconds, exit 2, and no
run, model or reference left behind (bench/preflight.py)."""

import pytest

from bench.cli import main


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def nothing_built(results, suite="tdec-mini"):
    assert not list(results.glob(f"{suite}/runs/*"))  # no run directory, nothing for status
    assert not list(results.glob(f"{suite}/artefacts/**/config.json"))  # no base, target or reference model


def test_a_rank_or_rmu_layer_the_model_cannot_take_fails_from_its_config_alone(tmp_path, capsys):
    """A model directory holding only config.json (no weights, no tokenizer): the checks read the structure."""
    from transformers import GPTNeoConfig

    model = tmp_path / "neo-config-only"
    GPTNeoConfig(hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64, vocab_size=100, bos_token_id=0, eos_token_id=0,
                 attention_types=[[["global", "local"], 2]]).save_pretrained(model)
    results = tmp_path / "results"
    base = ["run", "--suite", "tdec", "--models", str(model), "--splits", "set0", "--results", str(results),
            "--data-dir", str(tmp_path), "--option", "lm_eval_tasks=", "--option", "mia_reference=none"]
    assert main(base + ["--methods", "ga+lora", "--ranks", "100000"]) == 2
    # the smallest target layer: the 32 x 32 attention projections (the MLP is 32 x 64)
    assert "LoRA rank 100000 is larger than layer 'transformer.h.0.attn.attention.k_proj' allows (at most 32" \
        in one_line_error(capsys)
    assert main(base + ["--methods", "ga+fila", "--ranks", "33"]) == 2
    assert "(at most 32 for this model)" in one_line_error(capsys)
    assert main(base + ["--methods", "rmu+full", "--set", "rmu_layer=99"]) == 2
    assert "rmu_layer=99 (this model has 4 blocks: expected 0..2" in one_line_error(capsys)
    nothing_built(results, "tdec")


def test_mini_suites_check_before_their_base_model_is_trained(tmp_path, capsys):
    results = tmp_path / "results"
    for suite in ("tdec-mini", "tofu-mini"):
        base = ["run", "--suite", suite, "--seeds", "0", "--results", str(results)]
        assert main(base + ["--methods", "ga+lora", "--ranks", "4,100000"]) == 2
        assert "LoRA rank 100000 is larger than" in one_line_error(capsys)
        assert main(base + ["--methods", "rmu+full", "--set", "rmu_layer=99"]) == 2
        assert "rmu_layer=99 (this model has 2 blocks: expected 0..0" in one_line_error(capsys)
        nothing_built(results, suite)


def test_an_unknown_suite_task_fails_before_the_base_model_with_did_you_mean(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["run", "--suite", "tdec-mini", "--seeds", "0", "--methods", "ga", "--results", str(results),
                 "--option", "lm_eval_tasks=mini_phrse"]) == 2
    assert "unknown lm-eval task of this suite (option lm_eval_tasks) 'mini_phrse'; did you mean 'mini_phrase'?" \
        in one_line_error(capsys)
    nothing_built(results)


def test_a_device_this_machine_does_not_have_fails_at_once(tmp_path, capsys, monkeypatch):
    import torch

    results = tmp_path / "results"
    base = ["run", "--suite", "tdec-mini", "--seeds", "0", "--methods", "ga", "--results", str(results)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(base + ["--device", "cuda:7"]) == 2
    assert "bad --device cuda:7: this machine's torch sees no CUDA device (valid: cpu)" in one_line_error(capsys)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert main(base + ["--device", "cuda:7"]) == 2
    assert "has 2 CUDA device(s) (valid: cpu, cuda, cuda:0..cuda:1)" in one_line_error(capsys)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["finetune", "--suite", "tofu-mini", "--model", "tiny-llama", "--split", "full", "--device", "cuda",
                 "--results", str(results)]) == 2
    assert "sees no CUDA device" in one_line_error(capsys)
    nothing_built(results)


@pytest.mark.parametrize("suite, option, expected", [
    ("tofu-mini", "reference_split=retain98", "bad option reference_split='retain98' (expected standard, retain99"),
    ("tofu-mini", "prompt=llama2", "bad option prompt='llama2' (expected auto, qa, llama2-chat or chat-template)"),
    ("tofu-mini", "reference_seed=each", "bad option reference_seed='each' (expected shared or run)"),
    ("tdec", "dialogue=wizard_of_wikipedia,empathetic", "unknown dialogue set (option dialogue) 'empathetic'; did you "
                                                         "mean 'empathetic_dialogues'?"),
    ("tofu-mini", "idk_answers=/no/such/file.txt", "bad option idk_answers='/no/such/file.txt' (expected a text file"),
    ("tdec", "seq_len=8", "bad option seq_len=8 (expected an integer >= 11: EL_10 needs a prefix and a 10-gram)"),
])
def test_option_values_read_late_are_checked_with_the_spec(tmp_path, capsys, suite, option, expected):
    """Values a run reads only once references are evaluated or the model is loaded fail at `show-config`."""
    methods = "idkdpo" if option.startswith("idk") else "ga"
    assert main(["show-config", "--suite", suite, "--methods", methods, "--option", option,
                 "--results", str(tmp_path)]) == 2
    assert expected in one_line_error(capsys)
    assert not list(tmp_path.iterdir())


def test_a_missing_quantisation_library_fails_before_the_base_model(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optimum.quanto", None)  # what an environment without optimum-quanto gives
    results = tmp_path / "results"
    assert main(["run", "--suite", "tdec-mini", "--seeds", "0", "--methods", "ga", "--results", str(results),
                 "--option", "robustness=quant"]) == 2
    assert "the quant robustness stage needs optimum-quanto" in one_line_error(capsys)
    nothing_built(results)
