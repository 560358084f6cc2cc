"""Settings that nothing reads are errors, not new run ids (issue 20, kind 3).

What each objective reads is found here by a different path than its declaration: every attribute its
loss and `prepare` touch on the hyperparameters is traced while the loss runs."""

import copy

import pytest
import torch

from bench.cli import main
from bench.grid import expand
from bench.spec import Hyperparams
from methods import OBJECTIVES, LossInputs
from methods.objective import LOOP
from tests.conftest import tiny


class Traced:
    """Hyperparams that record which fields are read."""

    def __init__(self, hp):
        self._hp, self.read = hp, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._hp, name)


@pytest.mark.parametrize("name", OBJECTIVES.names())
@pytest.mark.parametrize("retain_weight", [1.0, 0.0])
def test_each_objective_declares_exactly_what_its_loss_reads(name, retain_weight, tokenizer, batch):
    objective = OBJECTIVES[name]
    net = tiny("llama", tokenizer)
    reference = copy.deepcopy(net).eval()
    hp = Hyperparams(retain_weight=retain_weight, rmu_params="all").replace(**objective.defaults)
    hp = hp.replace(retain_weight=retain_weight)
    traced = Traced(hp)
    if objective.prepare is not None:
        objective.prepare(net, traced)
    alternate = batch if objective.needs_alternate else None
    objective.loss(LossInputs(net, batch, batch, reference, traced, alternate=alternate, seed=0))
    declared = {f for f in objective.uses if objective.reads_hparam(f, hp)}
    assert traced.read == declared
    assert not traced.read & set(LOOP)  # the loop's settings are the loop's


def test_a_setting_no_objective_of_the_grid_reads_is_a_one_line_error(capsys):
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "npo+lora", "--set", "beta=0.5"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --set beta=0.5 is read by none of this grid's objectives (npo); objectives that read it: "
                   "simnpo, idkdpo, undial, wga\n")
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "npo+lora", "--set", "forget_weight=0.25"]) == 2
    err = capsys.readouterr().err
    assert "forget_weight=0.25" in err and "rmu" in err and "ceu" in err and err.count("\n") == 1
    # zero retain weight: the retain term, and so its choice of loss, is skipped
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "gd", "--set", "retain_weight=0",
                 "--set", "retain_loss=kl"]) == 2
    assert "read only when retain_weight > 0" in capsys.readouterr().err


def test_objectives_that_do_not_read_a_setting_keep_their_ids():
    plain = {s.objective: s for s in expand("tofu-mini", "npo+lora,simnpo+lora", ranks="4", seeds="0")}
    swept = {s.objective: s for s in expand("tofu-mini", "npo+lora,simnpo+lora", ranks="4", seeds="0",
                                            hparams={"beta": "0.5", "npo_beta": "0.2"})}
    assert swept["npo"].hparams.beta == 1.0 and swept["npo"].hparams.npo_beta == 0.2
    assert swept["simnpo"].hparams.beta == 0.5 and swept["simnpo"].hparams.npo_beta == 0.1
    assert swept["simnpo"].run_id != plain["simnpo"].run_id
    assert swept["npo"].run_id != plain["npo"].run_id  # npo_beta is NPO's
    only_beta = {s.objective: s for s in expand("tofu-mini", "npo+lora,simnpo+lora", ranks="4", seeds="0",
                                                hparams={"beta": "0.5"})}
    assert only_beta["npo"].run_id == plain["npo"].run_id


def test_an_unread_setting_changes_nothing_a_run_computes(tokenizer, batch):
    """The independent check behind the rule: NPO's loss is the same number whatever beta is."""
    net = tiny("llama", tokenizer)
    reference = copy.deepcopy(net).eval()
    loss = lambda hp: OBJECTIVES["npo"].loss(LossInputs(net, batch, batch, reference, hp))[0].item()
    assert loss(Hyperparams(beta=0.5, forget_weight=0.25)) == loss(Hyperparams())
    assert loss(Hyperparams(npo_beta=0.5)) != loss(Hyperparams())


@pytest.mark.parametrize("argv, message", [
    (["--suite", "tofu-mini", "--methods", "ga", "--ranks", "8"],
     "--ranks 8 is read by none of this grid's adapters (full); adapters that read it: lora, fila"),
    (["--suite", "tofu-mini", "--methods", "npo+lora", "--option", "idk_answers=mine.txt"],
     "--option idk_answers=mine.txt is read by no run of this grid: only objectives trained towards refusals read it (idkdpo)"),
    (["--suite", "tofu-mini", "--methods", "ga+lora", "--option", "relearn_epochs=2"],
     "--option relearn_epochs=2 is read by no run of this grid: only the relearning stage reads it"),
    (["--suite", "tdec-mini", "--methods", "ga", "--option", "seq_len=32"],
     "--option seq_len=32 is read by no run of this grid: tdec-mini's sequences are generated once at 64 tokens"),
    (["--suite", "tdec-mini", "--methods", "ga", "--option", "pile_ppl=none"], "tdec-mini has no Pile text"),
    (["--suite", "tdec-mini", "--methods", "ga+lora", "--option", "retain_size=64"],
     "only objectives with a retain term, and FILA's Fisher pass, read the retain sequences"),
    (["--suite", "tdec-mini", "--methods", "ga", "--option", "dialogue=taskmaster"],
     "bad option dialogue='taskmaster' for tdec-mini (expected auto or none)"),
    (["--suite", "tdec", "--methods", "ga", "--option", "thresholds=guess"], "bad option thresholds='guess'"),
])
def test_unread_options_and_ranks_are_errors(argv, message, capsys):
    assert main(["show-config", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_options_apply_only_to_the_runs_that_read_them():
    plain = {s.method: s for s in expand("tdec-mini", "ga,gd,ga+fila", ranks="8", splits="set0", seeds="0")}
    sized = {s.method: s for s in expand("tdec-mini", "ga,gd,ga+fila", ranks="8", splits="set0", seeds="0",
                                         options={"retain_size": "64"})}
    assert sized["ga"].run_id == plain["ga"].run_id  # GA with full fine-tuning reads no retain sequence
    assert sized["gd"].option("retain_size") == 64 and sized["ga+fila"].option("retain_size") == 64
    both = {s.method: s for s in expand("tofu-mini", "idkdpo+lora,npo+lora", ranks="4", seeds="0",
                                        options={"idk_answers": "methods/idk_answers.txt"})}
    assert both["npo+lora"].options == expand("tofu-mini", "npo+lora", ranks="4", seeds="0")[0].options
    assert both["idkdpo+lora"].option("idk_answers") == "methods/idk_answers.txt"


@pytest.mark.parametrize("argv, message", [
    (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--data-dir", "."],
     "--data-dir is read by no run of suite tofu-mini (it generates its own data)"),
    (["run", "--suite", "tdec-mini", "--methods", "ga", "--data-dir", "."], "--data-dir is read by no run of suite tdec-mini"),
    (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--lm-eval-include", "."],
     "--lm-eval-include is read only with --lm-eval-tasks"),
    (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--profile", "slurm/a100.yaml"],
     "--profile is read only by --launcher slurm or local-jobs"),
    (["finetune", "--suite", "tofu-mini", "--model", "tiny-llama", "--split", "full", "--lm-eval-include", "."],
     "--lm-eval-include is read only with --lm-eval-tasks"),
])
def test_unread_runtime_flags_are_errors_and_leave_nothing(argv, message, tmp_path, capsys):
    assert main([*argv, "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "results").exists()
