"""Caches keyed by content: a model retrained at the same path, changed data, another option or a
changed evaluator each miss the cache; the same inputs hit it."""

import json

import pytest

from bench import fingerprint
from bench.runner import fisher_key
from bench.spec import Hyperparams, RunSpec
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
    first = fingerprint.model_fingerprint(path)
    assert json.loads((tmp_path / "m" / "fingerprint.json").read_text())["sha256"] == first  # stored beside them
    assert fingerprint.model_fingerprint(path) == first
    save(tiny("llama", tokenizer, seed=1), tokenizer, tmp_path / "m")  # retrained in place
    assert fingerprint.model_fingerprint(path) != first
    copy = save(tiny("llama", tokenizer, seed=0), tokenizer, tmp_path / "elsewhere")
    assert fingerprint.model_fingerprint(copy) == first  # same weights, another path: same key


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
