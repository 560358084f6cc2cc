"""Settings that nothing reads are errors, not new run ids (issue 20, kind 3).

What each objective reads is found here by a different path than its declaration: every attribute its
loss and `prepare` touch on the hyperparameters is traced while the loss runs."""

import copy
import os
import re
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.errors import BenchError
from bench.grid import expand
from bench.spec import LOOP, Hyperparams, setting_names
from methods import OBJECTIVES, LossInputs
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
                   "simnpo, idkdpo, undial, wga; this grid reads, besides the loop's settings: retain_weight, npo_beta, "
                   "retain_loss\n")
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "npo+lora", "--set", "forget_weight=0.25"]) == 2
    err = capsys.readouterr().err
    assert "forget_weight=0.25" in err and "rmu" in err and "ceu" in err and err.count("\n") == 1
    # zero retain weight: the retain term, and so its choice of loss, is skipped
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "gd", "--set", "retain_weight=0",
                 "--set", "retain_loss=kl"]) == 2
    err = capsys.readouterr().err  # and so this grid reads only the weight
    assert "read only when retain_weight > 0" in err and err.endswith("besides the loop's settings: retain_weight\n")
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ga,rmu", "--set", "beta=2"]) == 2
    assert capsys.readouterr().err.endswith("this grid reads, besides the loop's settings: retain_weight, "
                                            "forget_weight, rmu_c, rmu_layer, rmu_params\n")


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
    # tdec-mini generates its own tasks; tdec's reasoning tasks are looked up in the directory (below)
    (["run", "--suite", "tdec-mini", "--methods", "ga", "--lm-eval-include", "."],
     "--lm-eval-include is read only with --lm-eval-tasks (the tasks it defines), or by the lm-eval tasks of suite tdec"),
    (["run", "--suite", "tdec", "--methods", "ga", "--lm-eval-include", ".", "--option", "lm_eval_tasks="],
     "--lm-eval-include is read only with --lm-eval-tasks"),
    (["run", "--suite", "tofu", "--methods", "ga+lora", "--data-dir", "/nonexistent/TOFU"],
     "bad --data-dir '/nonexistent/TOFU': no such directory (expected the directory of the suite's local data files)"),
    (["finetune", "--suite", "tofu", "--model", "phi-1.5", "--split", "full", "--data-dir", "/nonexistent/TOFU"],
     "bad --data-dir '/nonexistent/TOFU': no such directory"),
])
def test_unread_runtime_flags_are_errors_and_leave_nothing(argv, message, tmp_path, capsys):
    assert main([*argv, "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


# ---- settings declared by their objectives (issue 23) -------------------------------------------------

# What each setting accepted before the declarations moved into the objectives' files, written out by hand
# from the old global checks: the derived checks must give the same one-line messages.
VALID = {"lr": "a number > 0", "epochs": "an integer >= 1", "batch_size": "an integer >= 1",
         "effective_batch": "an integer >= 1", "warmup_epochs": "a number >= 0", "weight_decay": "a number >= 0",
         "retain_weight": "a number >= 0", "npo_beta": "a number > 0", "max_grad_norm": "a number >= 0",
         "dtype": "fp32 or bf16", "schedule": "linear or constant", "retain_loss": "nll or kl",
         "forget_weight": "a number >= 0", "beta": "a number > 0", "delta": "a finite number",
         "satimp_b1": "a number >= 0", "satimp_b2": "a number >= 0", "rmu_c": "a number > 0",
         "rmu_layer": "a block index, or -1 for the default depth", "rmu_params": "wmdp or all"}
BAD = {"a number > 0": 0.0, "an integer >= 1": 0, "a number >= 0": -0.5, "a finite number": float("nan"),
       "a block index, or -1 for the default depth": -2}


@pytest.mark.parametrize("name", sorted(VALID))
def test_each_declared_check_gives_the_message_of_the_old_global_check(name):
    from bench.errors import BenchError

    valid = VALID[name]
    bad = BAD.get(valid, "fp16")
    shown = f"{bad:g}" if isinstance(bad, float) else repr(bad)
    with pytest.raises(BenchError) as err:
        Hyperparams(**{name: bad})
    assert str(err.value) == f"bad hyperparameter {name}={shown} (expected {valid})"
    if isinstance(getattr(Hyperparams(), name), float) and valid != "a finite number":  # inf passes "> 0"
        with pytest.raises(BenchError, match=rf"^bad hyperparameter {name}=inf \(expected a finite"):
            Hyperparams(**{name: float("inf")})


def test_the_declarations_cover_exactly_the_settings_specs_have_had():

    assert setting_names() == ["lr", "epochs", "batch_size", "effective_batch", "warmup_epochs", "schedule",
                               "weight_decay", "retain_weight", "npo_beta", "max_grad_norm", "dtype", "retain_loss",
                               "forget_weight", "beta", "delta", "satimp_b1", "satimp_b2", "rmu_c", "rmu_layer",
                               "rmu_params"]
    declared = set(LOOP).union(*(OBJECTIVES[o].uses for o in OBJECTIVES.names()))
    assert declared == set(setting_names())  # every setting is read by the loop or some objective


def test_the_docs_settings_table_matches_the_declarations():
    from pathlib import Path

    from bench.settings import SETTINGS

    text = (Path(__file__).parents[1] / "docs" / "methods.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| `")}
    for name in setting_names():
        s = SETTINGS[name]
        default = f"{s.default:g}" if isinstance(s.default, float) else str(s.default)
        readers = "every objective (the loop)" if name in LOOP else \
            ", ".join(o for o in OBJECTIVES.names() if name in OBJECTIVES[o].uses)
        assert rows[name][:4] == [default, s.valid, readers, "no" if s.late else "yes"], name


def test_a_fresh_process_computes_the_pinned_ids_without_importing_methods_first():
    """bench.spec imports no method module; the first lookup of a setting loads the plug-ins, and the ids are
    those pinned in tests/test_objectives_ii.py."""
    import subprocess
    import sys

    code = ("import sys\nfrom bench.spec import Hyperparams, RunSpec\n"
            "print(any(m.split('.')[0] in ('methods', 'suites') for m in sys.modules))\n"
            "print(RunSpec('tofu-mini', 'tiny-llama', 'forget01', 'gd', 'lora', 4, 0, Hyperparams(), ()).hash)\n"
            "print(RunSpec('tofu-mini', 'tiny-llama', 'forget01', 'simnpo', 'lora', 4, 0, Hyperparams(beta=4.5), ())"
            ".to_dict()['hparams'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "False"
    assert out[1] == "44fc5fafc6629aa6cee53adaf3e9c5982c65aa8b0261c7b9a073fd80df3ecc15"
    assert "'delta': 0.0" in out[2] and "'retain_loss': 'nll'" in out[2] and "'forget_weight': 1.0" in out[2]


def test_hyperparams_behave_as_values(tmp_path):
    import copy
    import pickle

    hp = Hyperparams(lr=1e-3, rmu_c=3.0)
    assert pickle.loads(pickle.dumps(hp)) == hp == copy.deepcopy(hp)
    assert Hyperparams(beta=1.0) == Hyperparams() and hash(Hyperparams(beta=1.0)) == hash(Hyperparams())
    assert {hp: 1}[Hyperparams(rmu_c=3.0, lr=1e-3)] == 1
    assert hp.replace(rmu_c="4").rmu_c == 4.0 and hp.rmu_c == 3.0
    with pytest.raises(Exception, match="cannot assign"):
        hp.lr = 1.0


@pytest.fixture
def toy_objective():
    """A new objective with a setting of its own, registered the way a plug-in outside methods/ would be; the
    registries are restored afterwards."""
    import methods
    from bench import settings
    from bench.settings import non_negative
    from methods.objective import RETAIN_TERM, Objective

    saved = [(d, dict(d)) for d in (settings.SETTINGS, settings.READERS, settings.RECORDED, OBJECTIVES._items)]
    alpha = non_negative("toy_alpha", 0.5, "the toy's weight", source="this test")

    def loss(x):
        from methods.losses import nll_of

        return -x.hp.toy_alpha * nll_of(x.model, x.forget), {}

    try:
        toy = Objective("toy", loss, needs_retain=True, needs_reference=False, summary="toy",
                        settings=RETAIN_TERM + (alpha,), records_defaults=True)
        yield methods.OBJECTIVES.register(toy.name, toy)  # the one line README's plug-in has
    finally:
        for d, before in saved:
            d.clear()
            d.update(before)


def test_a_new_objective_brings_its_setting_without_editing_the_kernel(toy_objective, capsys):
    from bench.errors import BenchError

    from bench import settings
    from bench.settings import positive

    hp = Hyperparams()
    assert hp.toy_alpha == 0.5 and hp.replace(toy_alpha="2").toy_alpha == 2.0
    with pytest.raises(ValueError, match="setting 'beta' declared twice"):  # one flat name, one meaning
        settings.register(positive("beta", 2.0))
    with pytest.raises(BenchError, match=r"^bad hyperparameter toy_alpha=-1 \(expected a number >= 0\)$"):
        hp.replace(toy_alpha="-1")
    [toy] = expand("tofu-mini", "toy+lora", ranks="4", seeds="0", hparams={"toy_alpha": "0.25"})
    assert toy.hparams.toy_alpha == 0.25 and toy.to_dict()["hparams"]["toy_alpha"] == 0.25
    [plain] = expand("tofu-mini", "toy+lora", ranks="4", seeds="0")
    assert plain.to_dict()["hparams"]["toy_alpha"] == 0.5  # it records its own late setting at the default
    [ga] = expand("tofu-mini", "ga+lora", ranks="4", seeds="0")
    assert "toy_alpha" not in ga.to_dict()["hparams"]  # nobody else's spec (or id) changes
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ga+lora", "--set", "toy_alpha=1"]) == 2
    assert capsys.readouterr().err == ("error: --set toy_alpha=1 is read by none of this grid's objectives (ga); "
                                       "objectives that read it: toy; this grid reads, besides the loop's settings: "
                                       "none\n")


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_the_frozen_model_is_built_exactly_when_the_old_rule_said(name):
    """The rule written out as it was before the settings declared it (Setting.wants_reference / read_when)."""
    objective = OBJECTIVES[name]
    for retain_weight in (0.0, 1.0):
        for retain_loss in ("nll", "kl"):
            hp = Hyperparams(retain_weight=retain_weight, retain_loss=retain_loss)
            old = objective.needs_reference or (objective.needs_retain and retain_weight > 0 and retain_loss == "kl")
            assert objective.wants_reference(hp) == old, (retain_weight, retain_loss)


def test_defaults_and_suite_overrides_name_only_settings_their_objective_reads():
    import methods
    from methods.objective import Objective
    from suites import SUITES

    for suite in SUITES.names():
        for objective, overrides in SUITES[suite].objective_overrides.items():
            assert set(overrides) <= set(OBJECTIVES[objective].uses) | set(LOOP), (suite, objective)
        for adapter, overrides in SUITES[suite].adapter_hparams.items():  # applied to every objective
            assert set(overrides) <= set(LOOP), (suite, adapter)
    with pytest.raises(ValueError, match="has a default for beta, a setting it does not read"):
        methods.register(Objective("toy2", lambda x: None, needs_retain=False, needs_reference=False, summary="",
                                   defaults={"beta": 2.0}))
    assert "toy2" not in OBJECTIVES


def test_every_setting_says_what_is_valid_for_text_of_the_wrong_kind_as_for_a_value_out_of_range(capsys):
    """`--set epochs=2.5` and `--set lr=abc` (text that is no value of the setting's kind) name the same valid
    values as `--set epochs=0` and `--set lr=-1` (out of range): for every declared setting, by its kind."""
    from bench.cli import main
    from bench.errors import BenchError
    from bench.settings import SETTINGS

    wrong_kind = {int: ("2.5", "abc", "1e3"), float: ("abc", "1,5", "")}
    checked = 0
    for name in setting_names():
        s = SETTINGS[name]
        for text in wrong_kind.get(s.kind, ()):
            with pytest.raises(BenchError) as err:
                Hyperparams().replace(**{name: text})
            assert str(err.value) == f"bad hyperparameter {name}={text!r} (expected {s.valid})"
            checked += 1
        if s.kind is int:  # a number with a fraction is refused, never truncated (int(2.5) == 2)
            with pytest.raises(BenchError, match=rf"^bad hyperparameter {name}=2.5 \(expected {re.escape(s.valid)}\)$"):
                Hyperparams().replace(**{name: 2.5})
            assert getattr(Hyperparams().replace(**{name: 3.0}), name) == 3  # an integral number is that integer
        if s.kind is float:
            with pytest.raises(BenchError, match=rf"^bad hyperparameter {name}=True \(expected {re.escape(s.valid)}\)$"):
                Hyperparams().replace(**{name: True})
            assert type(getattr(Hyperparams().replace(**{name: "2"}), name)) is float
    assert checked == 3 * 4 + 3 * 12  # the int settings (epochs, the two batch sizes, rmu_layer), the float ones
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ga", "--set", "epochs=2.5"]) == 2
    assert capsys.readouterr().err == "error: bad hyperparameter epochs='2.5' (expected an integer >= 1)\n"
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ga", "--lr", "abc"]) == 2
    assert capsys.readouterr().err == "error: bad hyperparameter lr='abc' (expected a number > 0)\n"
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "ga", "--option", "max_items=2.5"]) == 2
    assert capsys.readouterr().err == "error: bad option max_items='2.5' (expected an integer >= 0)\n"



@pytest.mark.parametrize("argv, expected", [
    (["run", "--suite", "tofu-mini", "--threads", "abc"], "bad --threads 'abc' (expected an integer >= 1)"),
    (["run", "--suite", "tofu-mini", "--threads", "0"], "bad --threads 0 (expected an integer >= 1)"),
    (["finetune", "--suite", "tofu-mini", "--model", "tiny-llama", "--split", "full", "--seed", "1.5"],
     "bad --seed '1.5' (expected an integer from 0 to 4294967295)"),
    (["finetune", "--suite", "tofu-mini", "--model", "tiny-llama", "--split", "full", "--seed", "-1"],
     "bad --seed -1 (expected an integer from 0 to 4294967295)"),
    (["perf", "--real-sequences", "x"], "bad --real-sequences 'x' (expected an integer from 1 to 32)"),
    (["perf", "--real-limit", "0"], "bad --real-limit 0 (expected an integer >= 1)"),
    (["run", "--methods", "ga"], "the following arguments are required: --suite"),
])
def test_integer_flags_and_argparse_errors_are_one_line_saying_what_is_valid(argv, expected, capsys, tmp_path):
    """The command line's integer flags say the same valid range for text that is no integer as for one out
    of range, on one line like every other bad input (argparse's usage block is one --help away)."""
    assert main([*argv, "--results", str(tmp_path / "results")] if argv[0] != "perf" else argv) == 2
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert not (tmp_path / "results").exists()


def test_every_number_option_says_what_is_valid_for_text_as_for_a_value_out_of_range():
    """--option's conversion and its range checks speak with one voice, per suite and option: `max_items=abc`
    and `max_items=-5` both expect an integer >= 0, `relearn_epochs=x` and `=0` a positive integer, `seq_len=abc`
    and `=8` an integer >= 11."""
    from bench.errors import BenchError
    from suites import SUITES

    out_of_range = {"relearn_fraction": "1.5", "relearn_epochs": "0", "seq_len": "8",  # the options narrower than their type
                    "max_length": "1", "verbmem_tokens": "1", "knowmem_tokens": "1"}
    for _, suite in SUITES.items():
        assert set(suite.option_valid) <= set(out_of_range)
        for key, default in suite.all_options().items():
            if type(default) not in (int, float):
                continue
            valid = suite.option_valid.get(key) or ("an integer >= 0" if type(default) is int else "a number")
            bad = {"abc": "'abc'", out_of_range.get(key, "-5" if type(default) is int else None): None,
                   "-5" if type(default) is int else None: None}  # a negative count: the option's own bound too
            for text, shown in bad.items():
                if text is None:
                    continue
                with pytest.raises(BenchError) as err:
                    suite.check_options({key: text})
                assert str(err.value).startswith(f"bad option {key}=") and str(err.value).endswith(f" (expected {valid})"), \
                    (suite.name, key, text, str(err.value))


def test_lm_eval_include_serves_tdecs_own_tasks_and_is_fingerprinted(tmp_path):
    """docs/suites.md's offline TDEC command passes --lm-eval-include without --lm-eval-tasks: the directory holds
    local copies of the reasoning tasks, so it is read, and its files are among a run's inputs (an edited task file
    recomputes the run)."""
    from bench.cli import _check_runtime, _parser, _specs
    from bench.store import ResultStore
    from suites import SUITES, Context

    (tmp_path / "piqa.yaml").write_text("task: piqa\n")
    args = _parser().parse_args(["run", "--suite", "tdec", "--methods", "ga", "--seeds", "0", "--splits", "set0",
                                 "--lm-eval-include", str(tmp_path)])
    specs = _specs(args)
    _check_runtime(args, specs)  # accepted
    ctx = Context(store=ResultStore(tmp_path / "r"), log=lambda m: None, lm_eval_include=str(tmp_path))
    files = lambda: {k: v for k, v in SUITES["tdec"].inputs(specs[0], ctx).items() if k.startswith("data/lm_eval_include")}
    before = files()
    assert list(before) == ["data/lm_eval_include/piqa.yaml"]
    (tmp_path / "piqa.yaml").write_text("task: piqa\ndataset_path: json\n")
    assert files() != before


def test_spellings_of_one_generation_length_are_one_run():
    from bench.grid import expand

    run_id = lambda g: expand("tofu-mini", "ga", seeds="0", options={"generation": g})[0].run_id
    assert run_id("new:32") == run_id("new:032") == run_id("new:\u0663\u0662") == expand("tofu-mini", "ga", seeds="0")[0].run_id
    assert run_id("new:16") != run_id("new:32") != run_id("total:32")


def test_a_micro_batch_larger_than_a_step_is_refused_or_fitted(capsys, tmp_path):
    """The loop cuts micro-batches out of one optimiser step: `batch_size` above `effective_batch` changes nothing, so
    naming it is an error, and a smaller `effective_batch` alone brings the suite's micro-batch down with it (the spec
    records what runs)."""
    for argv in (["run", "--suite", "tofu-mini", "--methods", "ga+lora", "--set", "batch_size=64"],
                 ["finetune", "--suite", "tofu-mini", "--model", "tiny-llama", "--split", "full", "--set", "batch_size=64"]):
        assert main(argv + ["--results", str(tmp_path / "r")]) == 2
        assert capsys.readouterr().err.strip() == (
            "error: bad --set batch_size=64: larger than effective_batch=32, the examples of one optimiser step, so it "
            "would train as 32 does (expected batch_size <= 32, or a larger effective_batch; FILA's Fisher pass reads it)")
    assert not (tmp_path / "r").exists()
    [spec] = expand("tofu-mini", "ga+lora", seeds="0", hparams={"effective_batch": "16"})
    assert (spec.hparams.batch_size, spec.hparams.effective_batch) == (16, 16)
    [spec] = expand("tofu-mini", "ga+lora", seeds="0", hparams={"effective_batch": "64", "batch_size": "64"})
    assert (spec.hparams.batch_size, spec.hparams.effective_batch) == (64, 64)
    [spec] = expand("tofu-mini", "ga+fila", seeds="0", hparams={"batch_size": "64"})  # its Fisher pass batches by it
    assert (spec.hparams.batch_size, spec.hparams.effective_batch) == (64, 32)


def test_a_reference_split_that_is_the_splits_standard_one_and_a_reordered_task_list_are_one_run():
    """`reference_split=retain90` on forget10 is what `standard` means there; a list option's order changes no
    number (each task or set is evaluated on its own): one run id each, and one leaderboard row."""
    run = lambda suite, split, **opts: expand(suite, "ga", seeds="0", splits=split, options=opts)[0]
    assert run("tofu-mini", "forget10", reference_split="retain90").run_id == run("tofu-mini", "forget10").run_id
    assert run("tofu", "forget05", reference_split="retain95").run_id == run("tofu", "forget05").run_id
    assert run("tofu-mini", "forget10", reference_split="retain95").option("reference_split") == "retain95"
    default = run("tdec-mini", "set0")
    assert run("tdec-mini", "set0", lm_eval_tasks="mini_order,mini_phrase").run_id == default.run_id
    assert run("tdec-mini", "set0", lm_eval_tasks=" mini_phrase , mini_order").run_id == default.run_id
    assert run("tdec-mini", "set0", lm_eval_tasks="mini_phrase").run_id != default.run_id
    assert run("tdec", "set0", lm_eval_tasks="piqa,hellaswag").option("lm_eval_tasks") == "hellaswag,piqa"


@pytest.mark.parametrize("suite, option, message", [
    ("tofu-mini", "max_length=0", "bad option max_length=0 (expected an integer >= 2)"),
    ("tofu", "target=/nonexistent/model", "bad option target='/nonexistent/model': does not exist (expected a model "
                                          "directory written by save_pretrained, a hub id or published)"),
    ("tofu-mini", "reference=./gone", "bad option reference='./gone': "),
    ("muse-mini", "retrained=~/no-such-model", "bad option retrained='~/no-such-model': "),
])
def test_show_config_refuses_what_run_would(suite, option, message, capsys):
    """show-config checks a grid as `run` does before any work: a value run refuses is refused here too."""
    assert main(["show-config", "--suite", suite, "--methods", "ga", "--seeds", "0", "--option", option]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {message}")


def model_dir(path):
    """A directory that loads as a model as far as the checks before any work look: config.json."""
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


@pytest.mark.parametrize("suite, option", [("tofu-mini", "target"), ("tofu", "reference"), ("muse-mini", "retrained"),
                                           ("tdec", "mia_reference"), ("tdec-mini", "mia_reference")])
def test_spellings_of_one_model_directory_are_one_run_and_a_directory_without_a_model_is_refused(suite, option, tmp_path,
                                                                                              monkeypatch, capsys):
    """`./m`, `m`, `m/`, `/abs/m/`, `/abs/x/../m`, `~/m` and, from a symlinked working directory, `$PWD/m` are one model,
    so one run id, written as the real path (what the system opens: `link/../m` is the m beside the link's target,
    not beside the link). A directory without config.json, a file, a missing path or an empty value is a one-line
    error quoting the value as typed, before any work."""
    root = Path(os.path.realpath(tmp_path))
    model_dir(root / "m")
    (root / "empty").mkdir()
    (root / "file").write_text("")
    (root / "elsewhere" / "sub").mkdir(parents=True)
    model_dir(root / "elsewhere" / "m2")
    (root / "link").symlink_to(root / "elsewhere" / "sub")
    (tmp_path.parent / f"{tmp_path.name}-cwd-link").symlink_to(root)
    monkeypatch.chdir(tmp_path.parent / f"{tmp_path.name}-cwd-link")
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.setenv("PWD", str(tmp_path.parent / f"{tmp_path.name}-cwd-link"))
    spec = lambda value: expand(suite, "ga", seeds="0", options={option: value})[0]
    spellings = ["./m", "m", "m/", f"{root}/m/", f"{root}/empty/../m", "~/m", f"{os.environ['PWD']}/m"]
    assert len({spec(v).run_id for v in spellings}) == 1
    assert spec("m").option(option) == str(root / "m")
    assert spec("m").run_id != expand(suite, "ga", seeds="0")[0].run_id
    assert spec("link/../m2").option(option) == str(root / "elsewhere" / "m2")  # the operating system's `..`
    for bad, what in (("./empty", f"{root / 'empty'} holds no config.json"), ("file", f"{root / 'file'} is not a directory"),
                      ("link/../m", f"{root / 'elsewhere' / 'm'} does not exist")) + \
            ((("", "(expected a model directory written by save_pretrained, a hub id"),) if "tdec" in suite else ()):
        assert main(["show-config", "--suite", suite, "--methods", "ga", "--seeds", "0", "--option",
                     f"{option}={bad}"]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: bad option {option}={bad!r}") and what in line, line


def test_a_default_is_never_rewritten_and_a_hub_id_shaped_directory_here_is_the_directory(tmp_path, monkeypatch, capsys):
    """`openai-community/gpt2` (tdec's default Reference-attack model) downloaded with `--local-dir` into the working
    directory: the default runs keep their ids; given, it is the directory from_pretrained reads, so its real path
    (`models/r` in two working directories is two models, never one run id). A hub id that is no path here stays
    one; a directory named like a mini suite's model does not shadow it."""
    root = Path(os.path.realpath(tmp_path))
    monkeypatch.chdir(root)
    before = expand("tdec", "ga", seeds="0")[0].run_id
    model_dir(root / "openai-community" / "gpt2")
    assert expand("tdec", "ga", seeds="0")[0].run_id == before
    given = expand("tdec", "ga", seeds="0", options={"mia_reference": "openai-community/gpt2"})[0]
    assert given.option("mia_reference") == str(root / "openai-community" / "gpt2")
    assert expand("tdec", "ga", seeds="0", options={"mia_reference": "EleutherAI/gpt-neo-125M"})[0].option(
        "mia_reference") == "EleutherAI/gpt-neo-125M"
    assert len({s.model for m in ("openai-community/gpt2", "openai-community/gpt2/", "./openai-community/gpt2")
                for s in expand("tofu", "ga", models=m, seeds="0")}) == 1
    assert expand("tofu", "ga", models="phi-1.5=openai-community/gpt2", seeds="0")[0].model == \
        f"phi-1.5={root / 'openai-community' / 'gpt2'}"
    (root / "tiny-llama").mkdir()
    assert expand("tofu-mini", "ga", models="tiny-llama", seeds="0")[0].model == "tiny-llama"
    assert main(["show-config", "--suite", "tdec-mini", "--methods", "ga", "--seeds", "0", "--option", "mia_reference=none"]) == 0
    (tmp_path / "none").mkdir()  # a keyword stays a keyword; `./none` would be the directory
    assert expand("tdec-mini", "ga", seeds="0", options={"mia_reference": "none"})[0].option("mia_reference") == "none"


def test_spellings_of_one_model_directory_given_to_models_are_one_model(tmp_path, monkeypatch, capsys):
    """--models (and NAME=DIR's DIR) as the model options: one directory is one model, whatever the spelling; two
    spellings of it in one list are one model named twice; a path that is no model directory is refused as typed."""
    root = Path(os.path.realpath(tmp_path))
    model_dir(root / "m")
    (root / "empty").mkdir()
    (root / "file").write_text("")
    monkeypatch.chdir(root)
    runs = lambda models: [s.run_id for s in expand("tofu", "ga", models=models, seeds="0")]
    assert runs("./m") == runs("m/") == runs(f"{root}/m") == runs(f"{root}/empty/../m")
    assert expand("tofu", "ga", models="m", seeds="0")[0].model == str(root / "m")
    assert expand("tofu", "ga", models="phi-1.5=./m", seeds="0")[0].model == f"phi-1.5={root / 'm'}"
    assert expand("tofu", "ga", models="phi-1.5", seeds="0")[0].model == "phi-1.5"
    with pytest.raises(BenchError, match=rf"^--models './m,m/' names one directory twice: './m' and 'm/' are both "
                                         rf"{root / 'm'}$"):
        expand("tofu", "ga", models="./m,m/", seeds="0")
    model_dir(root / "ckpt" / "epoch=3-step=100")  # a checkpoint directory's '=' is no NAME=DIR
    assert expand("tofu", "ga", models="ckpt/epoch=3-step=100", seeds="0")[0].model == str(root / "ckpt" / "epoch=3-step=100")
    assert main(["show-config", "--suite", "tofu", "--option", "target=" + "a" * 300, "--methods", "ga"]) == 0  # a hub id
    capsys.readouterr()
    for bad, problem in (("empty", "holds no config.json"), ("file", "is not a directory"), ("./gone", "does not exist"),
                         ("phi-1.5=file", "is not a directory")):
        assert main(["show-config", "--suite", "tofu", "--models", bad, "--methods", "ga", "--seeds", "0"]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: model directory '{bad.split('=')[-1]}'") and problem in line, line


def test_a_prompt_format_that_is_the_models_auto_format_is_one_run_with_auto(tmp_path):
    """`prompt=qa` on phi-1.5 (whose recipe fixes qa) or on tofu-mini's tiny models (their tokenizer has no chat
    template) computes what `auto` does: one run id. Where the tokenizer decides (a target the user names), the
    format given stays in the spec."""
    run = lambda suite, model=None, **opts: expand(suite, "ga", models=model, seeds="0", options=opts)[0]
    assert run("tofu", "phi-1.5", prompt="qa").run_id == run("tofu", "phi-1.5").run_id
    assert run("tofu", "llama2-7b", prompt="llama2-chat").run_id == run("tofu", "llama2-7b").run_id
    assert run("tofu", "llama2-7b", prompt="qa").run_id != run("tofu", "llama2-7b").run_id
    assert run("tofu-mini", prompt="qa").run_id == run("tofu-mini").run_id
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    named = run("tofu-mini", prompt="qa", target=str(tmp_path / "m"))
    assert named.option("prompt") == "qa" and named.run_id != run("tofu-mini", target=str(tmp_path / "m")).run_id


def test_a_prompt_format_that_a_local_models_tokenizer_makes_auto_is_one_run_with_auto(tokenizer, tmp_path):
    """A local model without a registry recipe: `auto` is what its tokenizer makes it (qa_format: chat-template with a
    chat template, else qa), read before the run, so giving that format is the same run id; another format is not.
    For tofu the tokenizer is the model's (the target is fine-tuned from it) or that of the target the user names."""
    plain = tmp_path / "plain"
    tiny("llama", tokenizer).save_pretrained(plain)
    tokenizer.save_pretrained(plain)
    chat = tmp_path / "chat"
    tiny("llama", tokenizer).save_pretrained(chat)
    with_template = copy.deepcopy(tokenizer)
    with_template.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with_template.save_pretrained(chat)
    run = lambda suite, model=None, **opts: expand(suite, "ga", models=model, seeds="0", options=opts)[0]
    for model, auto, other in ((plain, "qa", "llama2-chat"), (chat, "chat-template", "qa")):
        assert run("tofu", str(model), prompt=auto).run_id == run("tofu", str(model)).run_id
        assert run("tofu", str(model), prompt=other).run_id != run("tofu", str(model)).run_id
        assert run("tofu-mini", prompt=auto, target=str(model), reference=str(model)).run_id == \
            run("tofu-mini", target=str(model), reference=str(model)).run_id
        assert run("tofu-mini", prompt=other, target=str(model)).option("prompt") == other
    # tofu-mini's own retain-only model is qa: with a plain named target, qa is auto; with a chat one, no format is
    assert run("tofu-mini", prompt="qa", target=str(plain)).run_id == run("tofu-mini", target=str(plain)).run_id
    assert run("tofu-mini", prompt="chat-template", target=str(chat)).option("prompt") == "chat-template"
    # the tokenizers of the models scored decide, not the model's: a chat target and retain-only model of a plain base
    assert run("tofu", str(plain), prompt="chat-template", target=str(chat), reference=str(chat)).run_id == \
        run("tofu", str(plain), target=str(chat), reference=str(chat)).run_id
    # auto scores each model in its own tokenizer's format: a chat retain-only model next to a plain target is not qa
    assert run("tofu-mini", prompt="qa", target=str(plain), reference=str(chat)).option("prompt") == "qa"
    assert run("tofu", str(plain), prompt="qa", reference=str(chat)).option("prompt") == "qa"


def test_an_empty_model_and_a_name_that_reads_two_ways_are_refused(tmp_path, monkeypatch, capsys):
    """`--model ""` is not the working directory; `phi-1.5=x` where a directory of that name is here could be either
    NAME=DIR or that directory: the error says how to write each."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "phi-1.5=x").mkdir()
    assert main(["finetune", "--suite", "tofu", "--model", "", "--split", "full", "--results", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "error: bad model '' (expected a registry name, a model directory or a hub id)"
    assert main(["show-config", "--suite", "tofu", "--models", "phi-1.5=x", "--methods", "ga"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: model 'phi-1.5=x' reads as NAME=DIR (phi-1.5's recipe for 'x') and is a directory here; "
        "'x' does not exist here; write ./phi-1.5=x for the directory")
    (tmp_path / "x").mkdir()
    assert main(["show-config", "--suite", "tofu", "--models", "phi-1.5=x", "--methods", "ga"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: model 'phi-1.5=x' reads as NAME=DIR (phi-1.5's recipe for 'x') and is a directory here; "
        "write phi-1.5=./x for the first or ./phi-1.5=x for the directory")
    assert not (tmp_path / "r").exists()


def test_bad_model_directories_timeouts_and_results_paths_stop_finetune_and_run_before_anything_is_written(
        tmp_path, monkeypatch, capsys):
    """`bench finetune --model DIR` without config.json (what `run`'s missing-reference hint prints for such a DIR), a
    bad BENCH_DIST_TIMEOUT on any launcher, and an empty --results: one line, exit 2, no --results directory made.
    BENCH_DIST_TIMEOUT set empty reads as unset."""
    (tmp_path / "nocfg").mkdir()
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    finetune = ["finetune", "--suite", "tofu", "--model", "nocfg", "--split", "full", "--results", str(out)]
    assert main(finetune) == 2
    assert "error: model directory 'nocfg' holds no config.json" in capsys.readouterr().err and not out.exists()
    run = ["run", "--suite", "tdec-mini", "--methods", "ga", "--seeds", "0", "--results", str(out)]
    for launcher in ("local", "slurm"):
        monkeypatch.setenv("BENCH_DIST_TIMEOUT", "abc")
        assert main(run + ["--launcher", launcher]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: bad BENCH_DIST_TIMEOUT='abc'") and not out.exists()
    monkeypatch.setenv("BENCH_DIST_TIMEOUT", "")
    from bench import distributed

    assert distributed.timeout_seconds() == distributed.DEFAULT_TIMEOUT_S
    assert main(["status", "--suite", "tdec-mini", "--results", ""]) == 2
    assert capsys.readouterr().err.strip() == ("error: bad --results '' (expected a directory; empty would write into "
                                               "the working directory)")
