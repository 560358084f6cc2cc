"""TDEC offline on the knowledge-unlearning repository's files alone (UNLEARNING_BENCH_DATA/tdec): without the
WikiText-103 exports, retain / held-out / unseen text come from its validation_data/wikitext.csv, the run says
so, and the source is fingerprinted so a run made from one source is never reused for the other."""

import json
import shutil

import pandas as pd
import pytest

from bench.store import ResultStore
from suites import Context
from tests.conftest import real_data


def test_the_repositorys_wikitext_csv_stands_in_for_the_exports_in_disjoint_parts(tmp_path):
    from bench.fingerprint import file_fingerprint
    from bench.spec import RunSpec
    from suites import SUITES
    from suites.tdec import WIKITEXT_CSV_PARTS

    data = real_data() / "tdec"
    suite = SUITES["tdec"]
    ctx = Context(store=ResultStore(tmp_path / "results"), data_dir=str(data))
    docs = pd.read_csv(data / "validation_data" / "wikitext.csv", lineterminator="\n")["text"].tolist()
    assert len(docs) == 500  # the file's rows, read independently of the harness's reader
    parts = {kind: suite.text_lines(kind, ctx) for kind in ("retain", "heldout", "unseen")}
    assert parts == {"heldout": docs[0:100], "unseen": docs[100:200], "retain": docs[200:500]}
    assert WIKITEXT_CSV_PARTS == {"heldout": (0, 100), "unseen": (100, 200), "retain": (200, 500)}
    assert "validation_data/wikitext.csv" in suite.wikitext_source(ctx)
    # each document is chunked alone: the windows were cut from running text, so no chunk spans a cut
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(real_data() / "gpt2-tokenizer")
    first, second = (tokenizer(d, add_special_tokens=False)["input_ids"] for d in docs[:2])
    heldout = suite.text_chunks("heldout", tokenizer, 200, 64, ctx)
    assert heldout[:4] == [first[:200], first[200:400], second[:200], second[200:400]] and len(heldout) == 64
    assert len(suite.text_chunks("retain", tokenizer, 200, 10**6, ctx)) == 599  # the most retain_size can get

    spec = RunSpec("tdec", "gpt-neo-125m", "set0", "ga", "full", 0, 0, suite.hparams("gpt-neo-125m"),
                   suite.check_options({"lm_eval_tasks": "", "mia_reference": "none"}))
    files = {k: v for k, v in suite.inputs(spec, ctx).items() if k.startswith("data/")}
    assert files["data/wikitext.csv"] == file_fingerprint(data / "validation_data" / "wikitext.csv")
    assert files["data/lm_extraction_32_0.csv"] == file_fingerprint(data / "lm_extraction_32_0.csv")
    assert files["data/pile.csv"] != "missing" and files["data/lambada.csv"] != "missing"
    assert {"data/wizard_of_wikipedia.json", "data/blended_skill_talk.json"} <= set(files)

    # the same directory with the exports: another source, other fingerprints (the run is recomputed)
    exported = tmp_path / "with-exports"
    shutil.copytree(data, exported)
    for split in ("train", "validation", "test"):
        (exported / f"wikitext_{split}.txt").write_text(f" = {split} =\n")
    other = suite.inputs(spec, Context(store=ResultStore(tmp_path / "results"), data_dir=str(exported)))
    assert "data/wikitext.csv" not in other and other["data/wikitext_train.txt"] != "missing"
    # a partial export is an error naming the missing file, not a silent mix of the two sources
    (exported / "wikitext_test.txt").unlink()
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="wikitext_test.txt"):
        suite.text_lines("unseen", Context(store=ResultStore(tmp_path / "results"), data_dir=str(exported)))


def test_a_directory_with_neither_source_names_both(tmp_path):
    from bench.errors import BenchError
    from suites import SUITES

    with pytest.raises(BenchError, match=r"validation_data/wikitext.csv or .*wikitext_\{train,validation,test\}.txt"):
        SUITES["tdec"].text_lines("retain", Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path)))


@pytest.mark.slow
def test_the_documented_offline_tdec_command_succeeds_on_the_repository_directory_alone(tmp_path, capsys, caplog):
    """docs/suites.md's tiny end-to-end command, with --data-dir the repository's files and nothing else."""
    import logging

    from bench.build_tiny import main as build
    from bench.cli import main

    data = real_data() / "tdec"
    model = tmp_path / "tiny-neo"
    build(["--arch", "gpt-neo", "--out", str(model), "--tokenizer", str(real_data() / "gpt2-tokenizer"), "--hidden", "16"])
    results = tmp_path / "results"
    with caplog.at_level(logging.INFO, logger="bench"):
        code = main(["run", "--suite", "tdec", "--models", str(model), "--splits", "set0", "--methods", "gd+full",
                     "--epochs", "1", "--data-dir", str(data), "--results", str(results), "--option", "seq_len=24",
                     "--option", "eval_limit=2", "--option", "lm_eval_tasks=", "--option", "mia_reference=none",
                     "--option", "retain_size=8", "--option", "ppl_tokens=32"])
    assert code == 0, capsys.readouterr()
    record = json.loads(next(results.rglob("run.json")).read_text())
    assert record["status"] == "finished"
    assert record["suite_records"]["wikitext"].startswith("validation_data/wikitext.csv")
    assert record["suite_records"]["retain_sequences"] == 8
    assert "data/wikitext.csv" in record["inputs"]
    assert sum("come from validation_data/wikitext.csv" in r.getMessage() for r in caplog.records) == 1


def test_empty_wikitext_exports_are_a_one_line_error_before_any_model_runs(tmp_path, tokenizer):
    """Zero-byte (or too short) exports gave no chunk: the thresholds and the attacks then read NaN after a
    whole epoch of training. Now the text that holds no chunk is named when the run reads it, in prepare."""
    from bench.errors import BenchError
    from suites import SUITES

    for split in ("train", "validation", "test"):
        (tmp_path / f"wikitext_{split}.txt").write_text("" if split != "train" else "too short\n")
    ctx = Context(store=ResultStore(tmp_path / "r"), data_dir=str(tmp_path))
    for kind in ("retain", "heldout", "unseen"):
        with pytest.raises(BenchError, match=rf"the {kind} text \(wikitext_.*\) holds no 24-token chunk"):
            SUITES["tdec"].text_chunks(kind, tokenizer, 24, 8, ctx)
