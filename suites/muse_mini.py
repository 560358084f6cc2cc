"""muse-mini: MUSE's pipeline, metrics and checkpoint rule at laptop size.

Generated news articles about fictitious events (suites/muse_mini_data.py: random towns, names,
places, dates and numbers) with question-answer pairs about their facts. A 0.66M-parameter Llama with
its own tokenizer is trained on the forget and retain articles and their QA pairs until it reproduces
the articles verbatim and answers the questions (the target), and the same recipe without the forget
articles gives the retrained model; the holdout articles are never trained on. Everything is built
on first use and cached under the results directory (docs/suites.md gives the measurements behind the
recipe).

The forget set of `news` is fold 1 of four disjoint folds the target saw; `news-scal<k>` unlearns folds
1..k (MUSE's scal forget_k, growing) and `news-sust<k>` fold k (MUSE's sust forget_k, one request after
another); every split is evaluated on fold 1's sets, as MUSE evaluates every scal / sust point on the
corpus's sets. The retrained model saw no fold, so it is the reference for each of them.

What the twin changes from MUSE, and why:
- the facts are learnt from their QA pairs, which are part of the training text (each pair a document,
  "Question: q\\nAnswer: a", the layout of MUSE's few-shot prompt): a two-layer model recalls a fact
  out of its article's context only when it was trained to; so the forget text of a split is its
  articles and their QA pairs, and unlearning it removes both (MUSE's raw forget text is the articles);
- its tokenizer keeps every space a token of its own, so that MUSE's prompt ending "Answer: " is the
  start of the tokenisation of "Answer: <answer>" (with byte-level BPE's merged " word" tokens it is not,
  and a small model answers nothing after a bare space it never saw).
"""

from __future__ import annotations

import fcntl
import inspect
import random
from pathlib import Path

from bench.errors import BenchError, unknown
from bench.fingerprint import code_fingerprint, digest
from bench.models import STAND_IN_VOCABULARY, on_meta
from bench.spec import Hyperparams, RunSpec
from bench.store import artefact, read_json, write_json_atomic
from bench.tokenizer import load_tokenizer
from suites.base import MINI_OBJECTIVE_OVERRIDES, Context
from suites.muse import N_REQUESTS, Muse, chunks
from suites.muse_mini_data import Article, generate, qa_documents

FOLDS = N_REQUESTS  # disjoint forget folds the target saw: news = fold 1, scal k = folds 1..k, sust k = fold k
SPLITS = ("news",) + tuple(f"news-{kind}{k}" for kind in ("scal", "sust") for k in range(2, FOLDS + 1))
# articles per part; the tokenizer is trained on other articles (another seed), so that names split into
# syllable pieces instead of becoming tokens the retrained model never trained
DATA = dict(seed=0, fold=12, retain1=32, retain2=32, holdout=24, tokenizer_articles=300, tokenizer_seed=1, vocab=1024)
# the evaluation sets cut from the world: VerbMem's prompt length in tokens, the retain2 articles whose QA pairs
# are D_r's (as many as fold 1's), the few-shot pairs (from retain1, which both models learnt)
EVAL = dict(verbmem_prompt=16, retain_qa=12, icl=2)
# the world's training recipe: `repeats` shuffles of the documents, each joined and cut into windows of `window`
# tokens (MUSE's `chunks`), all in one epoch at a linearly decaying lr. 100 shuffles, not 60: at 60 the facts were
# learnt on one CPU (KnowMem 0.99) and half-learnt on others (0.78 on AMD AVX512 kernels); docs/suites.md
TRAIN = dict(repeats=100, lr=3e-3, window=256, batch=4)
SHAPE = dict(hidden=128, layers=2, heads=4, intermediate=512, max_positions=256)  # TinyShape


def train_spaced_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE over `texts` in which every space is a token of its own (so the tokenisation of a prompt
    that ends in a space is a prefix of the tokenisation of the prompt and its answer); EOS `<|endoftext|>` (id 0),
    PAD `<pad>` (id 1), as bench.tiny.train_tokenizer."""
    # tokenizers / transformers load when this runs, not when the CLI imports suites.muse_mini
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from bench.tiny import EOS, PAD

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(" "), "isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=PAD,
                                   model_max_length=SHAPE["max_positions"], clean_up_tokenization_spaces=False)


class MuseMini(Muse):
    name = "muse-mini"
    summary = "MUSE's twin on CPU: news about fictitious events, a 0.66M Llama that memorised them, built on first use"
    models = ("tiny-llama",)
    splits = SPLITS
    default_splits = ("news",)
    default_adapters = ("full", "lora", "fila")
    default_ranks = (8,)
    # replicates: the seed sets the batch order (the forget set is several batches) and LoRA's initialisation
    default_seeds = (0, 1, 2)
    # knowmem_tokens: the longest answer is 8 tokens (names of two 3-syllable words), so 10 holds it and its end
    options = {**Muse.options, "max_length": TRAIN["window"], "verbmem_tokens": 48, "knowmem_tokens": 10}
    objective_overrides = MINI_OBJECTIVE_OVERRIDES
    # LoRA and FILA train 47k of 656k parameters: at 3x full fine-tuning's rate GA+LoRA and GA/GD/KL/NPO+FILA reach
    # MUSE's checkpoint in every run, GD+LoRA in about half (the sweep in docs/suites.md; at 8e-3 GD+LoRA was slower)
    adapter_hparams = {"lora": {"lr": 6e-3}, "fila": {"lr": 6e-3}}
    reads_data_dir = False  # generated data, cached under the results directory
    evaluator_modules = Muse.evaluator_modules + ("suites.muse_mini",)

    def check_model(self, model: str) -> None:
        """Raises BenchError (via `unknown`) for a model other than the suite's own tiny one."""
        if model not in self.models:
            raise unknown(f"model of suite {self.name}", model, self.models)

    def model_structure(self, spec: RunSpec, ctx: Context):
        """See Suite.model_structure: the tiny Llama (SHAPE) on the meta device, with a stand-in vocabulary."""
        # torch loads when this runs, not when the CLI imports suites.muse_mini
        from bench.tiny import TinyShape, build_tiny

        return on_meta(lambda: build_tiny("llama", STAND_IN_VOCABULARY, TinyShape(**SHAPE)))

    def finetune(self, model: str, split: str, ctx: Context, seed: int = 0, overrides: dict | None = None) -> Path:
        """Never fine-tunes: the twin builds its target and retrained models on first use. Raises BenchError."""
        raise BenchError(f"suite {self.name} builds its target and retrained models itself on the first run (under "
                         f"results/{self.name}/artefacts/); `bench finetune` fine-tunes the muse suite's references")

    def hparams(self, model: str) -> Hyperparams:
        """See Suite.hparams: measured for the tiny model (docs/suites.md): MUSE's constant rate without warm-up or
        weight decay, lr 2e-3, 5 epochs, batches of 4 of the forget set's 11 windows (3 steps per epoch, so the seed
        changes the batches)."""
        # on the 100-shuffle world, at 1e-3 / 4 epochs whether GD and KL reach the checkpoint depended on the CPU
        # (6 of 8 runs each with AVX512 kernels; 1 of 4 with AVX2); at 2e-3 they reach it by epoch 3-4 with forget
        # KnowMem 0.00-0.02 at the cap, and the fifth epoch keeps GD+LoRA's epoch-4 arrival off the cap (docs/suites.md)
        return Hyperparams(lr=2e-3, epochs=5, batch_size=4, effective_batch=4, warmup_epochs=0.0, weight_decay=0.0,
                           schedule="constant")

    # -- the generated world -------------------------------------------------------------------------------------
    def root(self, ctx: Context) -> Path:
        """The directory of this synthetic world's artefacts, named by a digest of DATA, TRAIN, SHAPE, the generator
        and tiny-model modules and the source of the functions that tokenise and train (not the rest of this module:
        editing a docstring here does not rebuild the world)."""
        recipe = [inspect.getsource(f) for f in (train_spaced_tokenizer, chunks, MuseMini.training_examples,
                                                 MuseMini.documents, MuseMini._train)]
        code = [code_fingerprint("suites.muse_mini_data", "bench.tiny"), recipe]
        return ctx.store.artefact_dir(self.name) / f"world-{digest([DATA, TRAIN, SHAPE, code])}"

    def world(self, ctx: Context) -> dict:
        """The generated articles by part ({part: [{town, text, qa}]}; parts fold1..fold4, retain1, retain2,
        holdout) and the tokenizer beside them, written once."""
        def write(tmp: Path) -> None:
            other = generate({"tokenizer": DATA["tokenizer_articles"]}, DATA["tokenizer_seed"])["tokenizer"]
            tokenizer = train_spaced_tokenizer([t for a in other for t in (a.text, *qa_documents([a]))], DATA["vocab"])
            tokenizer.save_pretrained(tmp / "tokenizer")
            sizes = {**{f"fold{k}": DATA["fold"] for k in range(1, FOLDS + 1)},
                     **{p: DATA[p] for p in ("retain1", "retain2", "holdout")}}
            parts = generate(sizes, DATA["seed"])
            write_json_atomic(tmp / "articles.json", {p: [a.record() for a in arts] for p, arts in parts.items()})

        return read_json(artefact(self.root(ctx) / "data", write, ready="articles.json") / "articles.json")

    def articles(self, ctx: Context, *parts: str) -> list[Article]:
        """The articles of `parts`, in order."""
        world = self.world(ctx)
        return [Article.from_record(r) for p in parts for r in world[p]]

    def tokenizer(self, ctx: Context):
        """The world's tokenizer (train_spaced_tokenizer)."""
        self.world(ctx)
        return load_tokenizer(self.root(ctx) / "data" / "tokenizer")

    @staticmethod
    def forget_folds(split: str) -> list[str]:
        """The folds a split unlearns: news -> fold1, news-scal<k> -> fold1..fold<k>, news-sust<k> -> fold<k>."""
        if split == "news":
            return ["fold1"]
        kind, k = split[len("news-"):-1], int(split[-1])
        return [f"fold{i}" for i in range(1, k + 1)] if kind == "scal" else [f"fold{k}"]

    def training_examples(self, texts: list[str], tokenizer, seed: int) -> list[dict]:
        """TRAIN['repeats'] shuffles of `texts` (one per repeat, seeded), each joined and cut into windows by MUSE's
        `chunks`: a document sits in a different context in every repeat, so what the model learns of a QA pair
        is keyed on its question, not on the document before it."""
        rng, out = random.Random(seed), []
        for _ in range(TRAIN["repeats"]):
            order = list(texts)
            rng.shuffle(order)
            out += [{"input_ids": s, "labels": s} for s in chunks(order, tokenizer, TRAIN["window"]) if len(s) > 1]
        return out

    def _train(self, role: str, ctx: Context) -> str:
        """The world's `role` model (target: every fold and both retain parts; retrained: the retain parts), built
        once under a lock (a second process waits, then reads it)."""
        # torch loads when this runs, not when the CLI imports suites.muse_mini
        from bench.finetune import finetune
        from bench.tiny import TinyShape, build_tiny

        out = self.root(ctx) / role
        if (out / "config.json").exists():
            return str(out)
        parts = ["retain1", "retain2"] + ([f"fold{k}" for k in range(1, FOLDS + 1)] if role == "target" else [])
        texts = self.documents(ctx, *parts)
        tokenizer = self.tokenizer(ctx)

        def build(tmp: Path) -> None:
            model = build_tiny("llama", tokenizer, TinyShape(**SHAPE))
            examples = self.training_examples(texts, tokenizer, DATA["seed"])
            hp = Hyperparams(lr=TRAIN["lr"], epochs=1, batch_size=TRAIN["batch"], effective_batch=TRAIN["batch"],
                             warmup_epochs=0.05, weight_decay=0.01, max_grad_norm=1.0)
            ctx.log(f"muse-mini: training the {role} model on {len(examples)} windows "
                    f"({len(examples) // TRAIN['batch']} steps)")
            finetune(model, examples, hp, pad_id=tokenizer.pad_token_id, seed=0)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.with_name(out.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return str(artefact(out, build, ready="config.json"))

    def documents(self, ctx: Context, *parts: str) -> list[str]:
        """The training text of `parts`: each article, then each of its QA pairs as a document of its own."""
        arts = self.articles(ctx, *parts)
        return [a.text for a in arts] + qa_documents(arts)

    # -- the interface of suites/muse.py -------------------------------------------------------------------------
    def raw_texts(self, spec: RunSpec, ctx: Context, part: str) -> list[str]:
        """See Muse.raw_texts: the articles of `part` and their QA pairs (forget: the split's folds)."""
        if part not in ("forget", "retain1", "retain2", "holdout"):
            raise unknown("raw text part", part, ("forget", "retain1", "retain2", "holdout"))
        return self.documents(ctx, *(self.forget_folds(spec.split) if part == "forget" else [part]))

    def verbmem_rows(self, spec: RunSpec, ctx: Context) -> list[dict]:
        """See Muse.verbmem_rows: each fold-1 article cut after its first EVAL['verbmem_prompt'] tokens, at the
        space token at or after that point (so the prompt re-tokenises to the same ids), prompt and continuation."""
        tokenizer, rows = self.tokenizer(ctx), []
        space = tokenizer.convert_tokens_to_ids("Ġ")
        for a in self.articles(ctx, "fold1"):
            ids = tokenizer(a.text, add_special_tokens=False)["input_ids"]
            cut = next(k for k in range(EVAL["verbmem_prompt"], len(ids)) if ids[k] == space)
            rows.append({"prompt": tokenizer.decode(ids[:cut]), "gt": tokenizer.decode(ids[cut:])})
        return rows

    def knowmem_rows(self, spec: RunSpec, ctx: Context, part: str) -> list[dict]:
        """See Muse.knowmem_rows: the QA pairs of the fold-1 articles (forget) or of the first EVAL['retain_qa']
        retain2 articles (retain: as many as forget)."""
        if part not in ("forget", "retain"):
            raise unknown("knowmem part", part, ("forget", "retain"))
        arts = self.articles(ctx, "fold1") if part == "forget" else self.articles(ctx, "retain2")[:EVAL["retain_qa"]]
        return [{"question": q, "answer": a} for art in arts for q, a in art.qa]

    def knowmem_icl(self, spec: RunSpec, ctx: Context, part: str) -> list[dict]:
        """See Muse.knowmem_icl: EVAL['icl'] QA pairs of retain1 articles (both models learnt them), one per
        article, for both parts."""
        return [{"question": art.qa[0][0], "answer": art.qa[0][1]} for art in self.articles(ctx, "retain1")[:EVAL["icl"]]]

    def privleak_texts(self, spec: RunSpec, ctx: Context, part: str) -> list[str]:
        """See Muse.privleak_texts: the article texts of fold 1 (forget), retain2 (retain) or holdout."""
        if part not in ("forget", "retain", "holdout"):
            raise unknown("privleak part", part, ("forget", "retain", "holdout"))
        return [a.text for a in self.articles(ctx, {"forget": "fold1", "retain": "retain2", "holdout": "holdout"}[part])]

    def target_model(self, spec: RunSpec, ctx: Context) -> str:
        """See Muse.target_model: option `target`, else the world's target model (built on first use). Odd seeds
        build the retrained model first, so that the first two prepare tasks train the two side by side."""
        if spec.option("target", ""):
            return str(spec.option("target"))
        if spec.seed % 2 and not spec.option("retrained", ""):
            self._train("retrained", ctx)
        return self._train("target", ctx)

    def retrained_model(self, spec: RunSpec, ctx: Context) -> str:
        """See Muse.retrained_model: option `retrained`, else the world's retrained model (built on first use)."""
        return str(spec.option("retrained", "")) or self._train("retrained", ctx)

    def input_models(self, spec: RunSpec, ctx: Context) -> dict[str, str]:
        """See Suite.input_models: where the target and retrained models are (not built here: fingerprinting must not
        train)."""
        return {"target": str(spec.option("target", "")) or str(self.root(ctx) / "target"),
                "retrained": str(spec.option("retrained", "")) or str(self.root(ctx) / "retrained")}
