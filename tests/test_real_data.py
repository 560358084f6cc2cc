"""The real public files (UNLEARNING_BENCH_DATA, see tests/conftest.py::real_data): read as their publishers
ship them, checked against their published digests, and run end to end with tiny models (slow tier)."""

import hashlib
import io
import json
import shutil

import pytest

from bench.errors import BenchError
from bench.store import ResultStore
from suites import Context
from tests.conftest import real_data

DIALOGUE_ROWS = {"wizard_of_wikipedia": 967, "empathetic_dialogues": 2758, "blended_skill_talk": 1009,
                 "wizard_of_internet": 516}


def gpt2_tokenizer():
    from bench.tokenizer import load_tokenizer

    return load_tokenizer(real_data() / "gpt2-tokenizer")


def tdec_dir(tmp_path):
    """The real TDEC files laid out as the knowledge-unlearning repository, plus the harness's own WikiText
    rows (retain / held-out / unseen), carved from the repository's validation_data/wikitext.csv."""
    from benchmarks.perf_real import tdec_layout

    return tdec_layout(real_data(), tmp_path / "tdec-data")


# -- TDEC: checksums, download, layout -----------------------------------------------------------------

def test_the_pinned_checksums_are_the_real_files_digests():
    from suites.tdec_data import PUBLISHED_SHA256, local_file

    for published, pinned in PUBLISHED_SHA256.items():
        path = local_file(real_data() / "tdec", published)  # flat layout: the file's name in the directory
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pinned, published


def test_a_local_file_that_is_not_the_published_one_is_refused_naming_both_digests(tmp_path):
    from suites.tdec import Tdec

    real = (real_data() / "tdec" / "lm_extraction_32_2.csv").read_bytes()
    (tmp_path / "lm_extraction_32_2.csv").write_bytes(real.replace(b"the", b"teh", 1))
    actual = hashlib.sha256((tmp_path / "lm_extraction_32_2.csv").read_bytes()).hexdigest()
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tmp_path))
    with pytest.raises(BenchError) as e:
        Tdec().forget_texts("set2", ctx)
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / "lm_extraction_32_2.csv") in message
    assert actual in message and "5f8208e9d200f597d41af1aec8b13df8601035c647e543f286fdf388a037f4aa" in message


def test_downloads_come_from_data_main_and_are_verified_before_they_are_kept(tmp_path, monkeypatch):
    import urllib.request

    from suites.tdec import Tdec

    real = (real_data() / "tdec" / "lm_extraction_32_3.csv").read_bytes()
    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(real if "tampered" not in str(tmp_path) else real + b"x")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    ctx = Context(store=ResultStore(tmp_path / "results"))
    texts = Tdec().forget_texts("set3", ctx)
    assert asked == ["https://raw.githubusercontent.com/joeljang/knowledge-unlearning/"
                     "732876dc19a782c4440c3565cf9821df0a4c7ca0/data/main/lm_extraction_32_3.csv"]
    assert len(texts) == 32 and Tdec().forget_texts("set3", ctx) == texts and len(asked) == 1  # cached, re-verified

    bad = tmp_path / "tampered"
    bad.mkdir()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(real + b"x"))
    with pytest.raises(BenchError, match=r"is not the published file: SHA-256 [0-9a-f]{64}, expected c70a83d4.*not kept"):
        Tdec().forget_texts("set3", Context(store=ResultStore(bad)))
    assert not list(bad.rglob("*.csv"))


@pytest.mark.slow
def test_real_forget_sequences_keep_their_own_lengths_under_the_gpt2_tokenizer(tmp_path):
    from suites.tdec import Tdec

    tok = gpt2_tokenizer()
    suite = Tdec()
    ctx = Context(store=ResultStore(tmp_path), data_dir=str(real_data() / "tdec"))
    whole, cut = [], []
    for i in range(5):
        texts = suite.forget_texts(f"set{i}", ctx)
        whole += [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        from bench.spec import RunSpec

        spec = RunSpec("tdec", "x", f"set{i}", "ga", "full", 0, 0, suite.hparams("x"), suite.check_options({}))
        cut += [len(s) for s in suite.forget_sequences(spec, tok, ctx)]
    assert len(whole) == 160
    assert sorted(n for n in whole if n < 200) == [189, 198, 198, 199, 199, 199, 199, 199, 199]
    assert sorted(n for n in whole if n > 200) == [201, 201, 202]
    assert cut == [min(n, 200) for n in whole]  # cut to seq_len, never padded


@pytest.mark.slow
def test_ma_and_the_attacks_count_only_a_short_sequences_own_tokens(tmp_path):
    import torch

    from bench.tiny import TinyShape, build_tiny
    from suites.extraction import memorization_accuracy, sequences_tensor, teacher_forced_argmax
    from suites.privacy import token_stats
    from suites.tdec import Tdec

    tok = gpt2_tokenizer()
    texts = Tdec().forget_texts("set1", Context(store=ResultStore(tmp_path), data_dir=str(real_data() / "tdec")))
    seqs = [s[:200] for s in (tok(t, add_special_tokens=False)["input_ids"] for t in texts)]
    short = next(k for k, s in enumerate(seqs) if len(s) == 189)
    pair = [next(s for s in seqs if len(s) == 200), seqs[short]]
    model = build_tiny("gpt-neo", tok, TinyShape(hidden=16, layers=2, heads=2, intermediate=32, max_positions=256)).eval()
    ids, lengths = sequences_tensor(pair, tok.pad_token_id)
    ma = memorization_accuracy(teacher_forced_argmax(model, ids, lengths), ids, lengths)
    with torch.no_grad():  # by hand: the short sequence alone, its 188 predictions
        alone = model(input_ids=torch.tensor([seqs[short]])).logits[0, :-1].argmax(-1)
    assert ma[1].item() == pytest.approx((alone == torch.tensor(seqs[short][1:])).float().mean().item())
    stats = token_stats(model, [{"input_ids": s, "labels": s} for s in pair], tok.pad_token_id)
    assert [len(s.logp) for s in stats] == [199, 188]


def test_max_sequences_takes_the_first_forget_sequences_and_refuses_more_than_the_set_has(tmp_path):
    from bench.spec import RunSpec
    from suites.tdec import Tdec

    suite, tok = Tdec(), gpt2_tokenizer()
    ctx = Context(store=ResultStore(tmp_path), data_dir=str(real_data() / "tdec"))
    spec = lambda **o: RunSpec("tdec", "x", "set0", "ga", "full", 0, 0, suite.hparams("x"), suite.check_options(o))
    every = suite.forget_sequences(spec(), tok, ctx)
    assert len(every) == 32 and suite.forget_sequences(spec(max_sequences=8), tok, ctx) == every[:8]
    assert dict(spec().options).get("max_sequences") is None  # a late option: runs without it keep their ids
    with pytest.raises(BenchError, match=r"^bad option max_sequences=33: set0 has 32 forget sequences \(expected 1-32, or 0"):
        suite.forget_sequences(spec(max_sequences=33), tok, ctx)


# -- TDEC: utility data as shipped ------------------------------------------------------------------------

def test_dialogue_prompts_are_the_reference_codes():
    from suites.tdec_data import dialogue_prompt, normalize_reply

    # by hand: lower-cased, punctuation attached, sentence starts and "I" capitalised, a final period added
    assert normalize_reply("hello . how are you ?") == "Hello. How are you?"
    assert normalize_reply("I'M FINE , thanks") == "I'm fine, thanks."
    assert dialogue_prompt(["hi there", "hello . how are you ?"]) == "User 1: Hi there.\nUser 2: Hello. How are you?\nUser 1:"
    assert dialogue_prompt(["hi"]) == "User 1: Hi.\nUser 2:"


@pytest.mark.slow
def test_the_real_utility_files_are_read_as_shipped(tmp_path):
    from bench.spec import RunSpec
    from suites.tdec import Tdec

    suite, tok = Tdec(), gpt2_tokenizer()
    ctx = Context(store=ResultStore(tmp_path), data_dir=str(tdec_dir(tmp_path)))
    spec = RunSpec("tdec", "x", "set0", "ga", "full", 0, 0, suite.hparams("x"), suite.check_options({}))
    dialogues = suite.dialogue_sets(spec, ctx)
    assert {name: len(rows) for name, rows in dialogues.items()} == DIALOGUE_ROWS
    first = dialogues["wizard_of_internet"][0]
    assert first["context"].startswith("User 1: I enjoy reading books.\nUser 2: Same here! What kind of books do you read?\n")
    assert first["context"].endswith("\nUser 1:")
    pile = suite.pile_sequences(spec, tok, ctx)
    assert len(pile) == 1500  # the repository's documents are 200-token chunks: none reaches ppl_tokens
    import pandas as pd

    doc = pd.read_csv(real_data() / "tdec" / "validation_data" / "pile.csv", lineterminator="\n")["text"][0]
    assert pile[0] == tok(doc, add_special_tokens=False)["input_ids"][:512]  # line breaks kept
    lambada = suite.lambada_examples(spec, tok, ctx)
    assert len(lambada) == 4992
    text = pd.read_csv(real_data() / "tdec" / "validation_data" / "lambada.csv", lineterminator="\n")["text"][0]
    word = [t for t, label in zip(lambada[0]["input_ids"], lambada[0]["labels"]) if label != -100]
    assert tok.decode(word) == " " + text.split(" ")[-1]


# -- TOFU --------------------------------------------------------------------------------------------------

TOFU_ROWS = {"full": 4000, "forget01": 40, "forget05": 200, "forget10": 400, "retain90": 3600, "retain95": 3800,
             "retain99": 3960, "retain_perturbed": 400, "holdout01": 40, "holdout05": 200, "holdout10": 400,
             "forget01_perturbed": 40, "forget05_perturbed": 200, "forget10_perturbed": 400, "real_authors": 100,
             "world_facts": 117, "real_authors_perturbed": 100, "world_facts_perturbed": 117}


def test_every_real_tofu_config_is_read_with_its_schema():
    from suites.tofu_data import read_config_file

    counts, perturbed = {}, {}
    for config, n in TOFU_ROWS.items():
        rows = read_config_file(real_data() / "tofu" / f"{config}.json", config)
        counts[config] = len(rows)
        if "perturbed_answer" in rows[0]:
            perturbed[config] = {len(r["perturbed_answer"]) for r in rows}
    assert counts == TOFU_ROWS
    assert perturbed["real_authors_perturbed"] == perturbed["world_facts_perturbed"] == {3}
    assert perturbed["forget01_perturbed"] == perturbed["retain_perturbed"] == {5}


def test_the_odd_forms_in_the_wild_are_read_correctly_or_refused_with_what_to_do():
    from suites.tofu_data import read_config_file

    shipped = real_data() / "tofu" / "as-shipped"
    for config in ("full", "retain90", "retain95", "retain99"):  # several JSON arrays in one file: read in order
        assert read_config_file(shipped / f"{config}.json", config) == \
            read_config_file(real_data() / "tofu" / f"{config}.json", config)
    with pytest.raises(BenchError) as e:  # prompt/response: refused, never guessed
        read_config_file(shipped / "forget01.json", "forget01")
    assert "\n" not in str(e.value) and "forget01.json: row 0 lacks question, answer" in str(e.value)
    assert "rename prompt -> question, response -> answer" in str(e.value)


def test_a_bad_tofu_file_fails_before_any_model_runs_naming_the_file(tmp_path):
    from bench.spec import RunSpec
    from suites.tofu import Tofu

    data = tmp_path / "tofu"
    shutil.copytree(real_data() / "tofu", data, ignore=shutil.ignore_patterns("as-shipped"))
    suite = Tofu()
    spec = RunSpec("tofu", "phi-1.5", "forget01", "ga", "lora", 4, 0, suite.hparams("phi-1.5"), suite.check_options({}))
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(data))
    rows = [json.loads(line) for line in (data / "holdout01.json").read_text().splitlines()]
    (data / "holdout01.json").write_text("\n".join(json.dumps({"q": r["question"], "a": r["answer"]}) for r in rows))
    model = tmp_path / "model"  # the references exist (any directory will do: nothing is loaded before the check)
    (model / "config.json").parent.mkdir()
    (model / "config.json").write_text("{}")
    spec = RunSpec("tofu", "phi-1.5", "forget01", "ga", "lora", 4, 0, suite.hparams("phi-1.5"),
                   suite.check_options({"target": str(model), "reference": str(model)}))
    with pytest.raises(BenchError, match=r"holdout01.json: row 0 lacks question, answer \(it has q, a; holdout01 needs"):
        suite.prepare(spec, ctx)
    (data / "holdout01.json").write_text('{"question": "x", "answer": "y"}\n{"question": "x", "answer": ')
    with pytest.raises(BenchError, match=r"holdout01.json is not JSON \(line 2, column \d+: Expecting value\)"):
        suite.prepare(spec, ctx)


# -- tokenizers --------------------------------------------------------------------------------------------

def test_tokenizer_directories_load_through_autotokenizer_and_an_empty_vocabulary_is_refused():
    from transformers import GPT2TokenizerFast

    from bench.tokenizer import check_vocabulary

    tok = gpt2_tokenizer()
    assert len(tok) == 50257 and tok("Hello world")["input_ids"] == [15496, 995] and tok.pad_token_id == 50256
    directory = real_data() / "gpt2-tokenizer"
    by_class = GPT2TokenizerFast(vocab_file=str(directory / "vocab.json"), merges_file=str(directory / "merges.txt"))
    if by_class("Hello world")["input_ids"]:
        pytest.skip("this transformers builds GPT2TokenizerFast from files correctly")
    with pytest.raises(BenchError, match="has an empty vocabulary"):
        check_vocabulary(by_class, directory)


# -- end to end with tiny models (the CI real-data tier) ---------------------------------------------------

@pytest.mark.slow
def test_tdec_set0_end_to_end_on_the_real_files_with_a_tiny_gpt_neo(tmp_path):
    from bench.build_tiny import main as build
    from bench.runner import run_one
    from bench.spec import RunSpec
    from suites import SUITES

    real_data()
    model_dir = tmp_path / "tiny-neo"
    build(["--arch", "gpt-neo", "--out", str(model_dir), "--tokenizer", str(real_data() / "gpt2-tokenizer"),
           "--hidden", "16"])
    suite = SUITES["tdec"]
    options = suite.check_options({"seq_len": 24, "eval_limit": 2, "lm_eval_tasks": "", "mia_reference": "none",
                                   "ppl_tokens": 64})
    spec = RunSpec("tdec", str(model_dir), "set0", "ga", "full", 0, 0, suite.hparams("x").replace(epochs=1), options)
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(tdec_dir(tmp_path)), log=lambda m: None)
    run_one(spec, ctx)
    record = json.loads(next((tmp_path / "results").rglob("run.json")).read_text())
    final = record["final_metrics"]
    assert set(DIALOGUE_ROWS) == {k.split("/")[1] for k in final if k.startswith("dialogue/")}
    assert final["ppl_pile"] > 1 and 0 <= final["lambada_acc"] <= 1 and 0 <= record["epochs"][-1]["metrics"]["ma"] <= 1
    sets = record["suite_records"]["utility_sets"]
    assert sets["pile_documents"] == 2 and sets["lambada_passages"] == 2
    assert sets["dialogue_rows"] == {name: 2 for name in DIALOGUE_ROWS}
    assert record["suite_records"]["forget_sequences"] == 32


@pytest.mark.slow
def test_tofu_forget01_end_to_end_on_the_real_files_with_a_tiny_llama(tmp_path):
    from bench.build_tiny import main as build
    from bench.runner import run_one
    from bench.spec import RunSpec
    from suites import SUITES

    data = real_data() / "tofu"
    model_dir = tmp_path / "tiny-llama"
    build(["--arch", "llama", "--out", str(model_dir), "--train-on", str(data / "full.json"), "--hidden", "16",
           "--vocab-size", "600"])
    suite = SUITES["tofu"]
    options = suite.check_options({"target": str(model_dir), "reference": str(model_dir), "generation": "new:8"})
    spec = RunSpec("tofu", str(model_dir), "forget01", "ga", "lora", 4, 0, suite.hparams("x").replace(epochs=1), options)
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(data), log=lambda m: None, eval_batch_size=64)
    run_one(spec, ctx)
    record = json.loads(next((tmp_path / "results").rglob("run.json")).read_text())
    assert record["suite_records"]["eval_items"] == {"forget": 40, "retain": 400, "real_authors": 100, "world_facts": 117}
    last = record["epochs"][-1]["metrics"]
    for name in ("forget_quality", "model_utility", "forget_truth_ratio", "forget_rouge", "real_authors_prob",
                 "world_facts_truth_ratio", "privleak", "mia_min_k", "mia_gradnorm", "mia_reference", "extraction_strength",
                 "exact_memorisation"):
        assert name in last, name
