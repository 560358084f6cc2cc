import atexit
import os
import shutil
import tempfile

# Hub calls must fail fast, never hang: every test runs offline on local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# lm-eval loads every generated JSON task through `datasets`, which caches one copy per data path: keep the
# session's copies out of the user's ~/.cache (read before `datasets` is imported)
if "HF_DATASETS_CACHE" not in os.environ:
    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="bench-tests-datasets-")
    atexit.register(shutil.rmtree, os.environ["HF_DATASETS_CACHE"], True)
# the model fingerprints' records (bench.fingerprint.record_path) too: a test's model directories are its own
os.environ["UNLEARNING_BENCH_CACHE"] = tempfile.mkdtemp(prefix="bench-tests-cache-")
atexit.register(shutil.rmtree, os.environ["UNLEARNING_BENCH_CACHE"], True)

import fcntl
import random

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def grids_in_this_process(monkeypatch):
    """`bench run` called here (`main([...])`) with `--workers auto` runs its grid in the test's own process. A worker
    process imports torch, transformers, peft and lm-eval again (8-9 CPU-seconds measured), more than a small test
    grid costs; under `pytest -n 2` two of them also compete with the other test for the two cores. The pool is
    tested where a test asks for it: `--workers N`, or a `bench` subprocess (which keeps `auto`)."""
    monkeypatch.setattr("bench.cli.auto_workers", lambda *args, **kwargs: 1)


@pytest.fixture(scope="session")
def tokenizer():
    from bench.tiny import train_tokenizer

    rng = random.Random(0)
    syl = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "pe", "qua", "dor", "fen", "gil"]
    texts = [" ".join("".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(30)) for _ in range(300)]
    texts += ["Question: Where was Kalo born?\nAnswer: Kalo was born in Mine."] * 5
    return train_tokenizer(texts, vocab_size=400)


@pytest.fixture
def batch(tokenizer):
    from bench.data import collate, qa_example

    examples = [qa_example(tokenizer, f"Question: who is {w}?\nAnswer:", f" {w} is a kalo mine", 64)
                for w in ("Ruto", "Sapequa", "Dorfen", "Gil")]
    return collate(examples, tokenizer.pad_token_id)


def tiny(arch, tokenizer, seed=0):
    from bench.tiny import TinyShape, build_tiny

    return build_tiny(arch, tokenizer, TinyShape(hidden=32, layers=2, heads=2, intermediate=64, max_positions=128), seed=seed)


@pytest.fixture(scope="session")
def tdec_mini_artefacts(tmp_path_factory):
    """tdec-mini's corpus and memorising base model, built once per test session (about a minute;
    once for both processes under `pytest -n 2`);
    `with_tdec_mini_artefacts(dir)` copies them into a results directory (they are keyed by content)."""
    from bench.store import ResultStore
    from bench.spec import RunSpec
    from suites import SUITES, Context

    if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: one build for both worker processes, not one each
        root = tmp_path_factory.getbasetemp().parent / "tdec-mini-artefacts"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("tdec-mini-artefacts")
    suite = SUITES["tdec-mini"]
    spec = RunSpec("tdec-mini", "tiny-gpt-neo", "set0", "ga", "full", 0, 0, suite.hparams("tiny-gpt-neo"),
                   suite.check_options({}))
    ctx = Context(store=ResultStore(root), log=lambda msg: None)
    with open(root / "build.lock", "w") as lock:  # the other worker waits, then finds every part built
        fcntl.flock(lock, fcntl.LOCK_EX)
        suite.model_path(spec, ctx)
        suite.mia_reference_model(spec, ctx)
        suite.lm_eval_tasks_dir(ctx)
    return root / "tdec-mini" / "artefacts"


# for tests of tdec-mini runs that read neither the utility tasks nor the Reference attack: without them a
# 2-epoch run takes about 3 s instead of 6 (lm-eval's tasks 1.5 s, the dialogue set 0.3 s, the attack's model)
TDEC_MINI_LEAN = {"lm_eval_tasks": "", "dialogue": "none", "mia_reference": "none"}
TDEC_MINI_LEAN_ARGS = [arg for k, v in TDEC_MINI_LEAN.items() for arg in ("--option", f"{k}={v}")]


def with_tdec_mini_artefacts(artefacts, results):
    shutil.copytree(artefacts, results / "tdec-mini" / "artefacts")
    return results


def real_data():
    """The real public data directory (tofu/, tdec/, gpt2-tokenizer/; named by UNLEARNING_BENCH_DATA), or skip."""
    from pathlib import Path

    if not os.environ.get("UNLEARNING_BENCH_DATA"):
        pytest.skip("UNLEARNING_BENCH_DATA is unset: the real-data tests need the directory of real TOFU / TDEC "
                    "files (tofu/, tdec/, gpt2-tokenizer/; .ci/run sets it in CI)")
    return Path(os.environ["UNLEARNING_BENCH_DATA"])


def choice_accuracy_by_hand(model, tokenizer, rows, positions: int | None = None) -> float:
    """Multiple-choice accuracy as lm-eval defines it, computed here with one forward pass per choice:
    each choice scored by the summed log-probabilities of its tokens after the context, the input cut from
    the left to the model's `positions` as lm-eval cuts it ((context + choice)[-(positions + 1):][:-1])."""
    hits = 0
    with torch.no_grad():
        for r in rows:
            context = tokenizer(r["context"])["input_ids"]
            scores = []
            for choice in r["choices"]:
                whole = tokenizer(r["context"] + choice)["input_ids"]
                n = len(whole) - len(context)
                ids = (whole[-(positions + 1):] if positions else whole)[:-1]
                logp = model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
                scores.append(sum(logp[len(ids) - n + k, whole[len(whole) - n + k]].item() for k in range(n)))
            hits += int(max(range(len(scores)), key=scores.__getitem__) == r["label"])
    return hits / len(rows)
