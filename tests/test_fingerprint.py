"""Caches keyed by content: a model retrained at the same path, changed data, another option or a
changed evaluator each miss the cache; the same inputs hit it."""

import json
import os

import pytest

from bench import fingerprint
from bench.runner import fisher_key
from bench.runs import OTHER_CODE, load_runs
from bench.spec import Hyperparams, RunSpec
from bench.status import status_table
from bench.store import ResultStore
from suites import Context, Prepared
from suites.tofu import Tofu
from suites.tofu_mini_data import generate
from tests.conftest import tiny


def save(model, tokenizer, path):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_model_fingerprint_follows_the_weights_not_the_path(tokenizer, tmp_path):
    path = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "m")
    saved = sorted(os.listdir(path))
    first = fingerprint.model_fingerprint(path)
    assert json.loads(fingerprint.record_path(tmp_path / "m").read_text())["sha256"] == first  # in the user's cache
    assert sorted(os.listdir(path)) == saved  # nothing written into the model directory
    assert fingerprint.model_fingerprint(path) == first
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "m")  # retrained in place
    assert fingerprint.model_fingerprint(path) != first
    copy = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "elsewhere")
    assert fingerprint.model_fingerprint(copy) == first  # same weights, another path: same key


def test_model_fingerprint_follows_the_tokenizer_and_its_chat_templates(tokenizer, tmp_path):
    """Every prompt is tokenised by the directory's tokenizer: a changed vocabulary, special token or chat template is
    another model to score with, as changed weights are; a file no model reads is not."""
    path = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "m")
    seen = {fingerprint.model_fingerprint(path)}
    (tmp_path / "m" / "README.md").write_text("notes")
    assert fingerprint.model_fingerprint(path) in seen
    for name, text in (("tokenizer_config.json", None), ("chat_template.jinja", "{{ messages }}"),
                       ("additional_chat_templates/tool.jinja", "{{ tools }}"), ("tokenizer.json", None)):
        target = tmp_path / "m" / name
        target.parent.mkdir(exist_ok=True)
        target.write_text(text if text is not None else target.read_text() + " ")
        value = fingerprint.model_fingerprint(path)
        assert value not in seen, name
        seen.add(value)


@pytest.fixture
def tofu_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    from suites.tofu_mini_unseen import holdout_configs

    shape = dict(n_authors=10, n_attributes=3, n_real=3, n_world=3, n_tokenizer_authors=0)
    for config, rows in {**generate(**shape), **holdout_configs(**shape)}.items():  # TOFU's configs, holdouts included
        (data / f"{config}.json").write_text(json.dumps(rows))
    return data


def test_reference_evaluation_cache_misses_on_every_input_that_changes_it(tokenizer, tmp_path, tofu_data, monkeypatch):
    suite = Tofu()
    ctx = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None, data_dir=str(tofu_data))
    model = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "model")
    spec = lambda **opts: RunSpec("tofu", model, "forget10", "ga", "full", 0, 0, Hyperparams(),
                                  suite.check_options({"generation": "new:4", "prompt": "qa", **opts}))
    evals = ctx.store.artefact_dir("tofu") / "evals"
    count = lambda: len(list(evals.glob("*.json")))

    first = suite.evaluation_of(model, spec(), ctx)
    assert count() == 1
    assert suite.evaluation_of(model, spec(), ctx).metrics == first.metrics and count() == 1  # hit
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "model")  # retrained at the same path
    retrained = suite.evaluation_of(model, spec(), ctx)
    assert count() == 2 and retrained.metrics != first.metrics
    rows = json.loads((tofu_data / "forget10_perturbed.json").read_text())
    (tofu_data / "forget10_perturbed.json").write_text(json.dumps(rows[:-1]))  # the data changed
    suite.evaluation_of(model, spec(), ctx)
    assert count() == 3
    suite.evaluation_of(model, spec(max_items=2), ctx)  # an option that changes scores
    assert count() == 4
    rows = json.loads((tofu_data / "holdout10.json").read_text())
    (tofu_data / "holdout10.json").write_text(json.dumps(rows[::-1]))  # the membership attacks' non-members changed
    suite.evaluation_of(model, spec(max_items=2), ctx)
    assert count() == 5
    real = fingerprint.code_fingerprint
    monkeypatch.setattr(fingerprint, "code_fingerprint",
                        lambda *m: real(*m) + ("changed" if "suites.tofu_eval" in m else ""))  # evaluator code
    suite.evaluation_of(model, spec(max_items=2), ctx)
    assert count() == 6


def test_fisher_key_reads_weights_forget_and_retain_data(tokenizer, tmp_path):
    model = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "model")
    spec = RunSpec("tofu", model, "forget10", "ga", "fila", 4, 0, Hyperparams())
    forget = [{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}]
    retain = [{"input_ids": [4, 5, 6], "labels": [4, 5, 6]}]
    prepared = lambda f, r: Prepared(model_path=model, forget=f, retain=r, evaluate=None)
    key = fisher_key(spec, prepared(forget, retain))
    assert fisher_key(spec, prepared(forget, retain)) == key
    assert fisher_key(spec, prepared(forget, [{"input_ids": [4, 5, 7], "labels": [4, 5, 7]}])) != key  # retain data
    assert fisher_key(spec, prepared([{"input_ids": [1, 2], "labels": [1, 2]}], retain)) != key  # forget data
    other = RunSpec("tofu", model, "forget10", "ga", "fila", 4, 0, Hyperparams(batch_size=2))
    assert fisher_key(other, prepared(forget, retain)) != key  # batching changes the Fisher
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "model")
    assert fisher_key(spec, prepared(forget, retain)) != key  # the weights


def tofu_run(data, target, reference, results):
    """A one-epoch GA run of the tofu suite on local files, as a user types it."""
    from bench.cli import main

    return main(["-q", "run", "--suite", "tofu", "--models", str(target), "--splits", "forget10", "--methods", "ga",
                 "--seeds", "0", "--epochs", "1", "--data-dir", str(data), "--option", f"target={target}",
                 "--option", f"reference={reference}", "--option", "generation=new:4", "--option", "prompt=qa",
                 "--option", "privleak_attack=zlib",  # its retain-only AUC is below 1 for these tiny models
                 "--results", str(results)])


def the_run(results):
    (record,) = [json.loads(p.read_text()) for p in (results / "tofu" / "runs").glob("*/run.json")]
    return record


@pytest.mark.slow
def test_a_finished_run_is_reused_only_while_everything_it_read_is_unchanged(tokenizer, tmp_path, tofu_data,
                                                                             monkeypatch, capsys, caplog):
    target = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "target")
    reference = save(tiny("llama", tokenizer, seed=2), tokenizer, tmp_path / "reference")
    results = tmp_path / "results"

    def run_and_count():
        caplog.clear()
        with caplog.at_level("INFO", logger="bench"):
            assert tofu_run(tofu_data, target, reference, results) == 0
        summary = next(line for line in capsys.readouterr().out.splitlines() if "already done" in line)
        return summary.split(" finished")[0], caplog.text

    assert run_and_count()[0] == "1"
    first = the_run(results)
    inputs = first["inputs"]
    assert inputs["data/forget10.json"] == fingerprint._sha256_file(tofu_data / "forget10.json")
    assert inputs["model/target"] == fingerprint.model_fingerprint(target)
    assert {"data/holdout10.json", "data/retain90.json", "model/reference", "code/evaluator"} <= set(inputs)
    assert run_and_count()[0] == "0"  # unchanged: already done

    # the forget set's evaluation items change: recomputed over the items that are there now
    rows = json.loads((tofu_data / "forget10_perturbed.json").read_text())
    (tofu_data / "forget10_perturbed.json").write_text(json.dumps(rows[:2]))
    finished, log = run_and_count()
    assert finished == "1" and "data/forget10_perturbed.json" in log
    assert the_run(results)["suite_records"]["eval_items"]["forget"] == 2 != first["suite_records"]["eval_items"]["forget"]
    assert run_and_count()[0] == "0"

    rows = json.loads((tofu_data / "forget10.json").read_text())  # the training forget set
    (tofu_data / "forget10.json").write_text(json.dumps(rows[:-1]))
    assert run_and_count()[0] == "1"

    before = the_run(results)["epochs"][0]["metrics"]["forget_prob"]
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "target")  # the target retrained in place
    finished, log = run_and_count()
    assert finished == "1" and "model/target" in log
    assert the_run(results)["epochs"][0]["metrics"]["forget_prob"] != before  # the new target's numbers

    save(tiny("llama", tokenizer, seed=3), tokenizer, tmp_path / "reference")  # the retain-only model
    finished, log = run_and_count()
    assert finished == "1" and "model/reference" in log

    real = fingerprint.code_fingerprint
    monkeypatch.setattr(fingerprint, "code_fingerprint",
                        lambda *m: real(*m) + ("changed" if "suites.tofu_eval" in m else ""))  # evaluator code
    # before anything recomputes it, status names the run and the report's rows mark it (the report says so)
    assert OTHER_CODE in status_table("tofu", str(results))
    assert load_runs("tofu", ResultStore(results))["other_code"].tolist() == [True]
    finished, log = run_and_count()
    assert finished == "1" and "code/evaluator" in log
    assert run_and_count()[0] == "0"
    assert OTHER_CODE not in status_table("tofu", str(results))
    assert load_runs("tofu", ResultStore(results))["other_code"].tolist() == [False]
    assert set(the_run(results)["inputs"]["code/training"]) <= set("0123456789abcdef")
    # the objective's own code (a method under development, a plug-in's alike): named, then recomputed
    monkeypatch.setattr(fingerprint, "code_fingerprint",
                        lambda *m: real(*m) + ("changed" if "suites.tofu_eval" in m else "")
                        + ("edited" if "methods.ga" in m else ""))
    assert OTHER_CODE in status_table("tofu", str(results))
    finished, log = run_and_count()
    assert finished == "1" and "code/training" in log
    assert run_and_count()[0] == "0"

    # an input that is gone: a one-line refusal, and the finished run stays as it was
    kept = (results / "tofu" / "runs").glob("*/run.json").__next__().read_bytes()
    (tofu_data / "retain90.json").unlink()

    assert tofu_run(tofu_data, target, reference, results) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: missing data file")
    assert (results / "tofu" / "runs").glob("*/run.json").__next__().read_bytes() == kept
    assert json.loads(kept)["status"] == "finished"


def test_a_bad_input_before_the_run_starts_leaves_nothing_behind(tokenizer, tmp_path, tofu_data, capfd):
    target = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "target")
    (tofu_data / "retain90.json").unlink()
    results = tmp_path / "results"
    assert tofu_run(tofu_data, target, target, results) == 2
    last = capfd.readouterr().err.splitlines()[-1]  # after the libraries' loading bars
    assert last == f"error: missing data file {tofu_data / 'retain90.json'} (a TOFU data directory holds retain90.json and the other configs)"
    assert not (results / "tofu" / "runs").exists()
    assert list(ResultStore(results).iter_records("tofu")) == []  # what status and the leaderboard list


def test_a_reference_fine_tuned_on_other_data_is_never_reused(tokenizer, tmp_path, tofu_data):
    suite = Tofu()
    ctx = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None, data_dir=str(tofu_data))
    base = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "base")
    suite.finetune_hparams = lambda model: Hyperparams(lr=1e-3, epochs=1, batch_size=8, effective_batch=8)
    out = suite.finetune(base, "retain90", ctx)
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["data"] == {"retain90.json": fingerprint._sha256_file(tofu_data / "retain90.json")}
    assert suite.finetune(base, "retain90", ctx) == out  # same data: reused
    rows = json.loads((tofu_data / "retain90.json").read_text())
    (tofu_data / "retain90.json").write_text(json.dumps(rows[:-1]))
    spec = RunSpec("tofu", base, "forget10", "ga", "full", 0, 0, Hyperparams(), suite.check_options({}))
    from bench.errors import BenchError

    with pytest.raises(BenchError, match=r"the retain90 model at .* was fine-tuned on other data"):
        suite.reference_model(spec, "reference", "retain90", ctx)
    with pytest.raises(BenchError, match="delete that directory to fine-tune it again"):
        suite.finetune(base, "retain90", ctx)
    # what decides whether a finished run on it is reused: refused alike, not "finished already, skipped"
    with pytest.raises(BenchError, match=r"the retain90 model at .* was fine-tuned on other data"):
        suite.inputs(spec, ctx)


def test_a_reference_fine_tuned_in_bf16_is_trained_and_saved_in_bf16(tokenizer, tmp_path, tofu_data):
    """`bench finetune --set dtype=bf16` is read: the recipe says bf16 and so do the weights (it was recorded and
    ignored: the model trained and saved in fp32)."""
    from safetensors import safe_open

    suite = Tofu()
    suite.finetune_hparams = lambda model: Hyperparams(lr=1e-3, epochs=1, batch_size=8, effective_batch=8)
    base = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "base")
    ctx = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None, data_dir=str(tofu_data))
    out = suite.finetune(base, "retain90", ctx, overrides={"dtype": "bf16"})
    assert json.loads((out / "recipe.json").read_text())["hparams"]["dtype"] == "bf16"
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}


def test_a_reference_fine_tuned_from_a_base_replaced_in_place_is_never_reused(tokenizer, tmp_path, tofu_data):
    """Another checkpoint saved at the base model's path (a new download, `save_pretrained` over it): the references
    fine-tuned from the old weights are refused, by `finetune`, by a run and by the reuse of a finished run."""
    from bench.errors import BenchError

    suite = Tofu()
    ctx = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None, data_dir=str(tofu_data))
    base = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "base")
    suite.finetune_hparams = lambda model: Hyperparams(lr=1e-3, epochs=1, batch_size=8, effective_batch=8)
    out = suite.finetune(base, "retain90", ctx)
    assert json.loads((out / "recipe.json").read_text())["base"] == {
        "path": base, "fingerprint": fingerprint.model_fingerprint(base), "covers": "weights, config, tokenizer"}
    assert suite.finetune(base, "retain90", ctx) == out  # same weights: reused
    # a reference recorded before the fingerprint covered the tokenizer (no `covers`, the weights-only value): still
    # the same base, so reused, not refused for "other weights"
    recipe = json.loads((out / "recipe.json").read_text())
    legacy = {"path": base, "fingerprint": fingerprint.model_fingerprint(base, tokenizer=False)}
    assert legacy["fingerprint"] != recipe["base"]["fingerprint"]
    (out / "recipe.json").write_text(json.dumps({**recipe, "base": legacy}))
    assert suite.finetune(base, "retain90", ctx) == out
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "base")
    spec = RunSpec("tofu", base, "forget10", "ga", "full", 0, 0, Hyperparams(), suite.check_options({}))
    message = rf"^the retain90 model at {out} was fine-tuned from other weights than {base} holds now; delete that directory"
    for refusal in (lambda: suite.finetune(base, "retain90", ctx), lambda: suite.reference_model(spec, "reference", "retain90", ctx),
                    lambda: suite.inputs(spec, ctx)):
        with pytest.raises(BenchError, match=message):
            refusal()


def test_a_reference_fine_tuned_on_local_files_asked_for_with_hub_data_names_the_data_dir(tokenizer, tmp_path, tofu_data):
    """Fine-tuned with --data-dir, then a command without it: the advice is to pass it, not to delete a valid model."""
    from bench.errors import BenchError

    suite = Tofu()
    base = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "base")
    suite.finetune_hparams = lambda model: Hyperparams(lr=1e-3, epochs=1, batch_size=8, effective_batch=8)
    local = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None, data_dir=str(tofu_data))
    out = suite.finetune(base, "retain90", local)
    hub = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None)
    with pytest.raises(BenchError, match=r"fine-tuned on local data files \(retain90.json\) and this command reads "
                                         r"the hub's data; pass --data-dir"):
        suite.check_fine_tuned(out, "retain90", hub)


def test_without_a_writable_cache_a_model_directory_is_hashed_once_per_process(tokenizer, tmp_path, monkeypatch):
    """A read-only cache: the fingerprint cannot be recorded; checking it again in the same process (inputs, then
    the references, target and retain-only) reads no weight file again, until one changes."""
    model = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "ro")
    (tmp_path / "cache").write_text("a file where the cache directory would be")
    monkeypatch.setenv("UNLEARNING_BENCH_CACHE", str(tmp_path / "cache"))
    reads = []
    real = fingerprint._sha256_file
    monkeypatch.setattr(fingerprint, "_sha256_file", lambda p, *a: reads.append(p) or real(p, *a))
    first = fingerprint.model_fingerprint(model)
    count = len(reads)
    assert count and fingerprint.model_fingerprint(model) == first and len(reads) == count
    assert not any(p.name.startswith("fingerprint") for p in (tmp_path / "ro").iterdir())
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "ro")  # another checkpoint at the same path
    assert fingerprint.model_fingerprint(model) != first


def test_every_suites_run_fingerprint_covers_the_truncation_code_its_evaluation_reads():
    """bench.data (every evaluator reads it) cuts prompts with bench.truncation, and TOFU's cached reference
    evaluations are keyed by it: a change there must recompute finished runs too, not the references alone."""
    from suites import SUITES

    for name, suite in SUITES.items():
        assert {"bench.data", "bench.truncation"} <= set(suite.evaluator_modules), name


def test_a_run_in_another_prompt_format_than_its_fine_tuned_references_is_refused(tokenizer, tmp_path):
    """--option prompt=llama2-chat with the target this harness fine-tuned in Q/A form would score (and unlearn) it on
    [INST] prompts it never learnt: refused in one line. A recipe.json without the field means the auto format; a
    model the user named (--option target=DIR) is theirs to know."""
    from bench.errors import BenchError

    suite = Tofu()
    paths = {}
    for role, recorded in (("target", {"prompt": "qa"}), ("reference", {})):
        (tmp_path / role).mkdir()
        (tmp_path / role / "recipe.json").write_text(json.dumps({"split": "full", **recorded}))
        (tmp_path / role / "config.json").write_text("{}")  # a model directory: --option target= names it
        paths[role] = str(tmp_path / role)
    spec = lambda **opts: RunSpec("tofu", "my-model", "forget10", "ga", "full", 0, 0, Hyperparams(), suite.check_options(opts))
    suite.check_prompt_of_references(spec(), "qa", paths, tokenizer)  # auto is qa for this tokenizer: both agree
    suite.check_prompt_of_references(spec(prompt="qa"), "qa", paths, tokenizer)
    with pytest.raises(BenchError, match=r"^option prompt=llama2-chat scores in the llama2-chat format, but the target "
                                         r"model at .* was fine-tuned in the qa format; leave prompt at auto"):
        suite.check_prompt_of_references(spec(prompt="llama2-chat"), "llama2-chat", paths, tokenizer)
    with pytest.raises(BenchError, match="the reference model at"):  # no field: the auto format (qa)
        suite.check_prompt_of_references(spec(prompt="llama2-chat", target=paths["target"]), "llama2-chat", paths,
                                         tokenizer)


def test_a_harness_model_of_another_split_named_as_target_is_refused_as_such(tmp_path, tofu_data):
    """--option target=<the retain90 model this harness made>: the error says it is the retain90 model, not that
    its data changed (which would have advised deleting a valid model)."""
    from bench.errors import BenchError

    suite = Tofu()
    made = tmp_path / "models" / "m" / "retain90"
    made.mkdir(parents=True)
    (made / "recipe.json").write_text(json.dumps({"split": "retain90", "data": {"retain90.json": "x"}}))
    (made / "config.json").write_text("{}")
    ctx = Context(store=ResultStore(tmp_path / "results"), log=lambda msg: None, data_dir=str(tofu_data))
    spec = RunSpec("tofu", "m", "forget10", "ga", "full", 0, 0, Hyperparams(), suite.check_options({"target": str(made)}))
    with pytest.raises(BenchError, match=r"^option target=.*/retain90 names a model this harness fine-tuned on retain90 "
                                         r"\(its recipe.json\), not on full \(expected the full model\)$"):
        suite.inputs(spec, ctx)


@pytest.mark.parametrize("suite, modules", [
    ("tofu", {"suites.extraction", "bench.models", "suites.tofu_data"}), ("muse", {"suites.extraction", "bench.models"}),
    ("tdec", {"suites.tofu_eval", "bench.models", "suites.tdec_data"}), ("tofu-mini", {"suites.extraction"}),
    ("tdec-mini", {"suites.tofu_eval"}), ("muse-mini", {"suites.tofu_data"})])
def test_every_module_a_suites_evaluation_computes_with_is_in_its_fingerprint(suite, modules, monkeypatch):
    """A finished run is recomputed when its evaluator's code changes only if the fingerprint covers every module
    the evaluation runs: suites.privacy's exact memorisation lives in suites.extraction, scoring splits the model with
    bench.models, TDEC generates with suites.tofu_eval, the relearning attack trains with bench.finetune. The
    fingerprint follows the evaluator's imports (code_closure), stopping only at NOT_COMPUTING."""
    from suites import SUITES

    closure = set(fingerprint.code_closure(*SUITES[suite].evaluator_modules))
    assert set(SUITES[suite].evaluator_modules) | modules <= closure
    assert not closure & (set(fingerprint.NOT_COMPUTING) - set(SUITES[suite].evaluator_modules))
    if suite.startswith("muse"):  # MUSE has no robustness stages
        return
    spec = RunSpec(suite, "m", SUITES[suite].splits[0], "ga", "full", 0, 0, Hyperparams(),
                   SUITES[suite].check_options({"robustness": "relearn"}))
    seen = []
    monkeypatch.setattr(fingerprint, "code_fingerprint", lambda *m: seen.extend(m) or "x")
    SUITES[suite].evaluator_code(spec)
    assert {"bench.robustness", "bench.finetune", "bench.loop"} <= set(seen)


def test_a_plug_in_objectives_helpers_are_part_of_its_training_code(tmp_path, monkeypatch):
    """`code/training` follows a plug-in objective's own imports (absolute and relative, in a function too): an edit
    of a helper its loss calls recomputes its runs, as an edit of the loss does."""
    package = tmp_path / "myplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("SCALE = 1.0\n")
    (package / "deep.py").write_text("OFFSET = 0.0\n")
    (package / "method.py").write_text("from . import helpers\n\ndef loss(x):\n    from myplug.deep import OFFSET\n"
                                       "    return helpers.SCALE + OFFSET\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    closure = fingerprint.code_closure("myplug.method")
    assert {"myplug.method", "myplug.helpers", "myplug.deep"} <= set(closure)
    first = fingerprint.code_fingerprint(*closure)
    (package / "deep.py").write_text("OFFSET = 10.0\n")
    assert fingerprint.code_fingerprint(*closure) != first
