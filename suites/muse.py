"""MUSE (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language Models", arXiv 2407.06460):
make a model that was fine-tuned on a corpus forget part of it, judged against a model retrained without it.

Corpora: News (BBC articles) and Books (Harry Potter), each a split of this suite (`news`, `books`); the
scalability forget sets of growing size (`news-scal2` .. `news-scal4`, each unlearned from the target) and the
sustainability requests (`news-sust2` .. `news-sust4`, each unlearned from the model the request before
produced) are splits too; point 1 of both is `news` itself (MUSE-Books has no scal / sust configs).
Data: the hub datasets muse-bench/MUSE-News / MUSE-Books or `--data-dir` with the same files
(suites/muse_data.py). Models: the published target (fine-tuned on the whole corpus: the model
unlearned) and retrained model (without the forget set: the reference) per corpus, muse-bench/MUSE-news_target
and ..._retrain, or `--option target=DIR --option retrained=DIR`.

Every method reads only these overridable methods for data and models (the interface the CPU twin
suites/muse_mini.py overrides; names fixed): raw_texts, verbmem_rows, knowmem_rows, knowmem_icl,
privleak_texts, target_model, retrained_model.

Metrics (docs/metrics.md, MUSE): VerbMem on D_f, KnowMem on D_f and D_r (ROUGE-L F1 of greedy outputs, in
[0, 1]; MUSE's tables print x 100), PrivLeak (Min-K% AUC of forget vs holdout text relative to the retrained
model's, in %), utility preservation = KnowMem on D_r. The checkpoint rule (MUSE's stopping criterion): the
first epoch whose forget KnowMem is at most the retrained model's; its numbers are derived metrics
(`*_at_forget`), reported next to the last epoch's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from bench import fingerprint
from bench.errors import BenchError, unknown
from bench.fingerprint import base_record, check_fine_tune, digest, model_fingerprint
from bench.metrics import EPOCHS, UNIT, Metric
from bench.models import hub_reachable, is_local, load_model, load_tokenizer, on_meta, resolve, same_tokenizer
from bench.phases import phase
from bench.spec import Hyperparams, RunSpec, fit_micro_batch
from bench.store import artefact, json_artefact, publish_once, read_json, write_json_atomic
from suites.base import SCORING_MODULES, Axis, Context, Evaluation, Prepared, Suite
from suites.muse_data import FOLDER, HUB, load_rows, local_files
from suites.privacy import ATTACK_NAMES, auc, privleak, teacher_forced_scores, token_stats

CORPORA = ("news", "books")
REQUESTS = ("scal", "sust")  # scalability: forget sets of growing size; sustainability: successive requests
N_REQUESTS = 4
# point 1 of both axes is the corpus's own forget set (raw/forget == scal/forget_1 == sust/forget_1: muse_bench's
# README), so it has no second name; only MUSE-News has the scal / sust configs
SPLITS = CORPORA + tuple(f"news-{kind}{k}" for kind in REQUESTS for k in range(2, N_REQUESTS + 1))
# the published models per corpus (Shi et al. 2024: Llama-2 7B fine-tuned on the corpus / on it without D_f),
# spelled as the hub's muse-bench organisation lists them
PUBLISHED = {(c, role): f"muse-bench/MUSE-{c}_{suffix}" for c in CORPORA
             for role, suffix in (("target", "target"), ("retrained", "retrain"))}
KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")  # MUSE's knowmem eval cuts the answer where these begin
TEACHER_FORCED = ("loss", "zlib", "min_k", "min_k_pp")  # the attacks one teacher-forced pass gives (no GradNorm)
# `bench finetune --suite muse --split S`: the reference models' training text (the hub's `train` config: the
# text the published target saw, and the same without its forget part for the retrained model)
FINETUNE_SPLITS = {f"{c}-{role}": parts for c in CORPORA for role, parts in
                   (("target", ("forget", "retain1", "retain2")), ("retrained", ("retain1", "retain2")))}
PRIVLEAK_ATTACK = "min_k"  # MUSE: Min-40% Prob (Shi et al. 2024, Section 3 C3); suites/privacy.py MIN_K = 0.4

METRICS = (
    Metric("verbmem_f", False, "VerbMem on D_f: mean ROUGE-L F1 of the greedy continuation of each verbmem prompt "
           "against its true continuation (first verbmem_tokens tokens)", bounds=UNIT),
    Metric("knowmem_f", False, "KnowMem on D_f: mean ROUGE-L F1 of greedy few-shot answers to the forget QA",
           bounds=UNIT),
    Metric("knowmem_r", True, "KnowMem on D_r (utility preservation): mean ROUGE-L F1 of greedy few-shot answers "
           "to the retain QA", bounds=UNIT),
    Metric("privleak", False, "PrivLeak: (AUC gap to the retrained model) (s - r) / r x 100 with s = 1 - AUC, r = 1 - "
           "AUC of the retrained model, Min-K% (k 0.4) on privleak forget vs holdout text (0 = as private as "
           "retraining; -100 = fully exposed; > 0 over-unlearned)", bounds=(-100.0, math.inf), ideal=0.0),
) + tuple(Metric(f"mia_{a}", False, f"AUC of the {ATTACK_NAMES[a]} membership attack, privleak forget vs holdout "
                 "text (best: the retrained model's AUC on the same texts)", bounds=UNIT, ideal=0.5, calibrated=True)
          for a in TEACHER_FORCED)
CHECKPOINT_READS = ("verbmem_f", "knowmem_f", "knowmem_r", "privleak")  # reported at the checkpoint epoch
DERIVED = (
    Metric("epochs_to_forget", False, "MUSE's checkpoint: the first epoch whose forget KnowMem is at most the "
           "retrained model's", bounds=EPOCHS, cap_offset=0),
    Metric("epochs_to_forget_or_cap", False, "the checkpoint epoch; a run that never reached it counts as cap + 1",
           bounds=EPOCHS, cap_offset=1),
) + tuple(Metric(f"{m.name}_at_forget", m.higher_is_better, f"{m.summary}; at MUSE's checkpoint epoch",
                 bounds=m.bounds, ideal=m.ideal) for m in METRICS if m.name in CHECKPOINT_READS)


# -- the metrics (each a function of generated text or scores; docs/metrics.md, MUSE) -------------------------

def rouge_l_f1(reference: str, candidate: str) -> float:
    """ROUGE-L F1 in [0, 1] of `candidate` against `reference`: rouge_score's RougeScorer(['rougeL'],
    use_stemmer=False) F-measure, as MUSE's RougeEvalLogger (metrics/logger.py) scores; 0 when either is empty."""
    # rouge_score loads when this runs, not when the CLI imports suites.muse
    from rouge_score import rouge_scorer

    return float(rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(reference, candidate)["rougeL"].fmeasure)


def cut_answer(output: str) -> str:
    """A generated answer up to where MUSE's knowmem eval cuts it: before the first "\\n\\n", "\\nQuestion" or
    "Question:" (the model going on to the next few-shot question)."""
    for stop in KNOWMEM_STOPS:
        output = output.split(stop)[0]
    return output


def few_shot_prompt(icl: list[dict], question: str) -> str:
    """MUSE's knowmem prompt: each few-shot pair as "Question: q\\nAnswer: a\\n\\n", then "Question: {question}\\nAnswer: "."""
    return "".join(f"Question: {e['question']}\nAnswer: {e['answer']}\n\n" for e in icl) + f"Question: {question}\nAnswer: "


def verbmem_scores(model, tokenizer, rows: list[dict], max_new_tokens: int = 128, batch_size: int = 32) -> list[float]:
    """VerbMem per row (shape [len(rows)], each in [0, 1]): ROUGE-L F1 of the greedy continuation of `prompt`
    (at most `max_new_tokens` new tokens) against `gt` cut to its first `max_new_tokens` tokens (tokenised with
    the special tokens, decoded without them), as MUSE's metrics/verbmem.py. Source: Shi et al. 2024, C1."""
    # torch loads when this runs, not when the CLI imports suites.muse
    from suites.tofu_eval import generate

    outputs = generate(model, tokenizer, [r["prompt"] for r in rows], f"new:{max_new_tokens}", batch_size,
                       names=[f"verbmem/{k}" for k in range(len(rows))])
    truths = [tokenizer.decode(tokenizer(r["gt"])["input_ids"][:max_new_tokens], skip_special_tokens=True,
                               clean_up_tokenization_spaces=True) for r in rows]
    return [rouge_l_f1(gt, out) for gt, out in zip(truths, outputs)]


def knowmem_scores(model, tokenizer, rows: list[dict], icl: list[dict], max_new_tokens: int = 32,
                   batch_size: int = 32) -> list[float]:
    """KnowMem per QA pair (shape [len(rows)], each in [0, 1]): ROUGE-L F1 of the greedy answer to the few-shot
    prompt (few_shot_prompt; at most `max_new_tokens` new tokens, cut by cut_answer) against `answer`, as MUSE's
    metrics/knowmem.py. Source: Shi et al. 2024, C2 (forget QA) and C4 (retain QA, utility preservation)."""
    # torch loads when this runs, not when the CLI imports suites.muse
    from suites.tofu_eval import generate

    outputs = generate(model, tokenizer, [few_shot_prompt(icl, r["question"]) for r in rows], f"new:{max_new_tokens}",
                       batch_size, names=[r["question"] for r in rows])
    return [rouge_l_f1(r["answer"], cut_answer(out)) for r, out in zip(rows, outputs)]


def membership_items(model, tokenizer, members: list[list[int]], non_members: list[list[int]],
                     batch_size: int = 32) -> dict:
    """The teacher-forced attacks' scores (higher = member; suites/privacy.py) of every member and non-member
    sequence, each sequence counted whole: {"n_members", "scores": {attack: [score per sequence]}}."""
    examples = [{"input_ids": s, "labels": s} for s in members + non_members]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stats = token_stats(model, examples, pad, batch_size)
    scores = teacher_forced_scores(stats, [tokenizer.decode(s, skip_special_tokens=True) for s in members + non_members])
    return {"n_members": len(members), "scores": {k: v.tolist() for k, v in scores.items()}}


def attack_aucs(items: dict) -> dict[str, float]:
    """{"mia_<attack>": AUC of members against non-members} for each attack in `items` (membership_items)."""
    n = items["n_members"]
    return {f"mia_{a}": auc(s[:n], s[n:]) for a, s in items["scores"].items()}


def checkpoint_epoch(epochs: list[dict], bar: float, metric: str = "knowmem_f") -> dict | None:
    """MUSE's checkpoint rule: the first epoch entry (epoch >= 1, in order) whose `metric` is at most `bar` (the
    retrained model's value; a tie counts as reached), None when no epoch reaches it. Source: muse_bench's README
    (knowmem/get_best_forget_quality.py determines "the first checkpoint ... to achieve a memorization score less
    than or equal to that of the retrained model") and Shi et al. 2024, Section 4."""
    return next((e for e in epochs if e.get("epoch", 0) >= 1 and isinstance(e.get("metrics", {}).get(metric), (int, float))
                 and e["metrics"][metric] <= bar), None)


def split_parts(split: str) -> tuple[str, str, int]:
    """`news` -> ("news", "", 0); `news-scal3` -> ("news", "scal", 3); `news-sust2` -> ("news", "sust", 2)."""
    m = re.fullmatch(r"(news|books)(?:-(scal|sust)(\d+))?", split)
    if m is None or split not in SPLITS:
        raise unknown("split of suite muse", split, SPLITS)
    return m.group(1), m.group(2) or "", int(m.group(3) or 0)


def chunks(texts: list[str], tokenizer, max_length: int) -> list[list[int]]:
    """MUSE's training sequences: the texts joined by a blank line, tokenised once, cut into pieces of
    `max_length` - 1 tokens each preceded by BOS (max_length tokens without BOS where the tokenizer has none); the
    last piece keeps its own length (MUSE wraps it round to the first tokens)."""
    ids = tokenizer("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    step = max_length - 1 if bos is not None else max_length
    return [([bos] if bos is not None else []) + ids[k:k + step] for k in range(0, len(ids), step)]


class Muse(Suite):
    name = "muse"
    summary = "MUSE News / Books: verbatim, knowledge, privacy, utility on the published Llama-2 7B targets (GPU)"
    models = ("meta-llama/Llama-2-7b-hf",)  # the base of the published target and retrained models
    splits = SPLITS
    default_splits = CORPORA
    default_adapters = ("full", "lora")
    default_ranks = (8,)
    # the seed sets the batch order (and LoRA's initialisation): three give every cell an interval, as TOFU's
    default_seeds = (0, 1, 2)
    claims = "muse"  # suites/claims/muse.yaml: MUSE's findings as comparisons
    reference_role = "retrained"  # MUSE's name for the model trained without D_f
    # MUSE's scalability and sustainability (`bench run --axis scal|sust`, bench/axes.py), News only: MUSE-Books has
    # no scal / sust subsets. Fold 1 is the original forget set (muse_bench README, "Evaluate Scalability and
    # Sustainability"), so point 1 is the corpus's ordinary run. Scalability unlearns each fold from the target
    # (baselines/scripts/unlearn_bbc_scal.sh); sustainability unlearns fold k alone from request k-1's model
    # (unlearn_bbc_sust.sh). MUSE measures utility (KnowMem on D_r) at each point (knowmem/get_utility_scal_sust);
    # the forgetting of D_f is shown beside it. PrivLeak is not: its retrained reference is for fold 1 only.
    axes = {
        "scal": Axis("sizes", {"news": ("news", "news-scal2", "news-scal3", "news-scal4")},
                     "scalability: forget sets of growing size", metrics=("knowmem_r", "knowmem_f", "verbmem_f"),
                     source="Shi et al. 2024 (MUSE), muse_bench baselines/scripts/unlearn_bbc_scal.sh"),
        "sust": Axis("requests", {"news": ("news", "news-sust2", "news-sust3", "news-sust4")},
                     "sustainability: successive unlearning requests", metrics=("knowmem_r", "knowmem_f", "verbmem_f"),
                     source="Shi et al. 2024 (MUSE), muse_bench baselines/scripts/unlearn_bbc_sust.sh"),
    }
    # the paper table (Shi et al. 2024, Table 3's columns): at MUSE's checkpoint and after the last epoch
    paper_columns = ("verbmem_f", "knowmem_f", "privleak", "knowmem_r")
    metrics = METRICS + DERIVED
    headline = ("knowmem_f", "knowmem_r", "verbmem_f", "privleak")
    option_valid = {**Suite.option_valid, **{k: "an integer >= 2" for k in ("max_length", "verbmem_tokens", "knowmem_tokens")}}
    model_options = {"target": ("",), "retrained": ("",)}
    options = {
        "target": "",  # "" = the corpus's published target (muse-bench/MUSE-<corpus>_target); or a directory / hub id
        "retrained": "",  # "" = the published retrained model (..._retrain); or a directory / hub id
        "max_length": 2048,  # training sequence length (MUSE's max_len) and the privleak texts' cut
        "verbmem_tokens": 128,  # VerbMem: new tokens generated, and the true continuation's cut (MUSE: 128)
        "knowmem_tokens": 32,  # KnowMem: new tokens per answer (MUSE: 32)
        "max_items": 0,  # per evaluation set: the first N verbmem rows, QA pairs, privleak texts (0 = all)
        "stop": "none",  # none: train every epoch; checkpoint: stop at MUSE's checkpoint (forget KnowMem <= retrained's)
    }

    def check_options(self, given: dict) -> tuple:
        """See Suite.check_options. Also raises BenchError for `stop` other than none / checkpoint, lengths below 2,
        and any robustness stage (this suite has none: no paraphrased probe items, no per-item recovery)."""
        options = super().check_options(given)
        values = dict(options)
        if values.get("robustness", "none") != "none":
            raise BenchError(f"bad option robustness={values['robustness']!r}: suite {self.name} has no robustness "
                             f"stages (expected none)")
        if values["stop"] not in ("none", "checkpoint"):
            raise BenchError(f"bad option stop={values['stop']!r} (expected none or checkpoint)")
        for key in ("max_length", "verbmem_tokens", "knowmem_tokens"):
            if int(values[key]) < 2:
                raise BenchError(f"bad option {key}={values[key]} (expected {self.option_valid[key]})")
        return options

    def hparams(self, model: str) -> Hyperparams:
        """See Suite.hparams. MUSE's baselines (muse_bench baselines/scripts/unlearn_news.sh, baselines/iterative.py):
        AdamW at a constant lr 1e-5, no warm-up or weight decay, 10 epochs, batches of 32 (4 per device x 8 GPUs),
        bf16."""
        return Hyperparams(lr=1e-5, epochs=10, batch_size=4, effective_batch=32, warmup_epochs=0.0, weight_decay=0.0,
                           schedule="constant", dtype="bf16")

    # -- the interface (h24-shared.md): every datum and model a run reads ---------------------------------------
    def raw_texts(self, spec: RunSpec, ctx: Context, part: str) -> list[str]:
        """Training text of the split's corpus: `part` forget (the split's forget set: raw/forget, or scal / sust
        forget_k), retain1 (the retain set objectives regularise on), retain2, holdout."""
        corpus, kind, k = split_parts(spec.split)
        if part not in ("forget", "retain1", "retain2", "holdout"):
            raise unknown("raw text part", part, ("forget", "retain1", "retain2", "holdout"))
        config, split = (kind, f"forget_{k}") if kind and part == "forget" else ("raw", part)
        return [r["text"] for r in load_rows(corpus, config, split, ctx.data_dir)]

    def verbmem_rows(self, spec: RunSpec, ctx: Context) -> list[dict]:
        """VerbMem's rows {prompt, gt} (verbmem/forget: passages of D_f cut into a prompt and its continuation)."""
        return load_rows(split_parts(spec.split)[0], "verbmem", "forget", ctx.data_dir)

    def knowmem_rows(self, spec: RunSpec, ctx: Context, part: str) -> list[dict]:
        """KnowMem's QA pairs {question, answer} on D_f (`part` forget) or D_r (retain)."""
        return load_rows(split_parts(spec.split)[0], "knowmem", f"{self._qa_part(part)}_qa", ctx.data_dir)

    def knowmem_icl(self, spec: RunSpec, ctx: Context, part: str) -> list[dict]:
        """The few-shot QA pairs {question, answer} put before each KnowMem question of `part` (forget / retain)."""
        return load_rows(split_parts(spec.split)[0], "knowmem", f"{self._qa_part(part)}_qa_icl", ctx.data_dir)

    def privleak_texts(self, spec: RunSpec, ctx: Context, part: str) -> list[str]:
        """PrivLeak's texts: `part` forget (members), retain, holdout (non-members no model trained on)."""
        if part not in ("forget", "retain", "holdout"):
            raise unknown("privleak part", part, ("forget", "retain", "holdout"))
        return [r["text"] for r in load_rows(split_parts(spec.split)[0], "privleak", part, ctx.data_dir)]

    def target_model(self, spec: RunSpec, ctx: Context) -> str:
        """The model that saw the forget set (unlearning starts here): option `target`, else the corpus's published
        target (muse-bench/MUSE-news_target / MUSE-books_target)."""
        return str(spec.option("target", "")) or PUBLISHED[(split_parts(spec.split)[0], "target")]

    def retrained_model(self, spec: RunSpec, ctx: Context) -> str:
        """The model trained without the forget set (PrivLeak's and the checkpoint rule's reference): option
        `retrained`, else the corpus's published one (muse-bench/MUSE-news_retrain / MUSE-books_retrain)."""
        return str(spec.option("retrained", "")) or PUBLISHED[(split_parts(spec.split)[0], "retrained")]

    @staticmethod
    def _qa_part(part: str) -> str:
        if part not in ("forget", "retain"):
            raise unknown("knowmem part", part, ("forget", "retain"))
        return part

    # -- reference models the harness fine-tunes itself (`bench finetune`) --------------------------------------
    def finetune_hparams(self, model: str) -> Hyperparams:
        """muse_bench's fine-tuning recipe (baselines/scripts/unlearn_news.sh, the task-vector baseline's fine-tune:
        FT_EPOCHS 10, FT_LR 1e-5, batches of 32 sequences of 2048 tokens, constant lr, bf16). The published models'
        own recipe is not released; this is the one muse_bench fine-tunes with."""
        return self.hparams(model)

    def finetune_path(self, model: str, split: str, ctx: Context, seed: int = 0, recipe: Hyperparams | None = None
                      ) -> Path:
        """Where the fine-tuned `split` model of `model` is stored: named by the model and a digest of the recipe,
        then the split (and `-s<seed>` when the seed is not 0)."""
        recipe = recipe or self.finetune_hparams(model)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1])
        return ctx.store.artefact_dir(self.name) / "models" / f"{slug}-{digest([model, recipe.record()])}" / \
            (split if seed == 0 else f"{split}-s{seed}")

    def finetune_texts(self, split: str, ctx: Context) -> list[str]:
        """The text a `split` model (FINETUNE_SPLITS) is fine-tuned on: the corpus's `train` config parts."""
        corpus = split.split("-")[0]
        return [r["text"] for part in FINETUNE_SPLITS[split] for r in load_rows(corpus, "train", part, ctx.data_dir)]

    def finetune_data(self, split: str, ctx: Context) -> dict[str, str]:
        """Fingerprints of the local files a fine-tune on `split` reads ({} for hub data)."""
        if not ctx.data_dir:
            return {}
        corpus = split.split("-")[0]
        return {f"train/{p.name}": fingerprint.file_fingerprint(p) for part in FINETUNE_SPLITS[split]
                for p in local_files(ctx.data_dir, corpus, "train", part)}

    def finetune(self, model: str, split: str, ctx: Context, seed: int = 0, overrides: dict | None = None) -> Path:
        """Fine-tune `model` on `split`'s text (news-target, news-retrained, books-target, books-retrained) with
        `finetune_hparams` (`overrides`: settings changed from it) into MUSE's training sequences of `max_length`
        (2048) tokens, or of the model's positional limit where that is shorter; cached by (model, recipe, split, seed). A stored model fine-tuned on other files than the
        data directory holds now is refused. Use it in runs with --option target=DIR / --option retrained=DIR.
        Raises BenchError for another split."""
        # torch loads when this runs, not when the CLI imports suites.muse
        from bench.finetune import finetune

        if split not in FINETUNE_SPLITS:
            raise unknown("fine-tune split of suite muse", split, FINETUNE_SPLITS)
        hp = fit_micro_batch(self.finetune_hparams(model).replace(**(overrides or {})), overrides or {})
        out = self.finetune_path(model, split, ctx, seed, hp)
        data = self.finetune_data(split, ctx)
        if (out / "config.json").exists():
            check_fine_tune(out, split, data)
            return out
        # MUSE's 2048 tokens, or fewer where the model reads fewer
        max_length = min(int(self.options["max_length"]), self.context_limit(model, ctx) or math.inf)
        texts = self.finetune_texts(split, ctx)  # a bad or missing file fails before the model loads
        started_from = base_record(model)  # checked whenever it is reused, as the data are
        net, tokenizer = load_model(model, dtype=hp.dtype, trust_remote_code=ctx.trust_remote_code, device=ctx.device)
        examples = [{"input_ids": s, "labels": s} for s in chunks(texts, tokenizer, max_length)]
        ctx.log(f"fine-tuning {model} on {self.name}/{split}: {len(examples)} sequences, {hp.epochs} epochs")
        finetune(net, examples, hp, pad_id=tokenizer.pad_token_id, seed=seed, progress=ctx.log)

        def save(tmp: Path) -> None:
            net.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json_atomic(tmp / "recipe.json", {"model": model, "split": split, "hparams": hp.record(), "seed": seed,
                                                    "data": data, "max_length": max_length, "base": started_from})

        return publish_once(out, save)

    # -- what a run reads (fingerprinted into run.json) ----------------------------------------------------------
    evaluator_modules = ("suites.muse", "suites.muse_data", "suites.tofu_data") + SCORING_MODULES

    def sources(self, spec: RunSpec) -> list[tuple[str, str]]:
        """Every (config, split) of the corpus a run of `spec` reads."""
        _, kind, k = split_parts(spec.split)
        return [(kind, f"forget_{k}") if kind else ("raw", "forget"), ("raw", "retain1"), ("verbmem", "forget"),
                ("knowmem", "forget_qa"), ("knowmem", "forget_qa_icl"), ("knowmem", "retain_qa"),
                ("knowmem", "retain_qa_icl"), ("privleak", "forget"), ("privleak", "holdout")]

    def input_files(self, spec: RunSpec, ctx: Context) -> dict[str, Path]:
        """See Suite.input_files: each local file a run reads (none for hub data)."""
        if not (ctx.data_dir and self.reads_data_dir):
            return {}
        corpus = split_parts(spec.split)[0]
        out = {}
        for config, split in self.sources(spec):
            for path in local_files(ctx.data_dir, corpus, config, split):
                out[f"{FOLDER[corpus]}/{config}/{path.name}"] = path
        return out

    def input_models(self, spec: RunSpec, ctx: Context) -> dict[str, str]:
        """See Suite.input_models: the target (unlearned) and the retrained model."""
        return {"target": self.target_model(spec, ctx), "retrained": self.retrained_model(spec, ctx)}

    def model_structure(self, spec: RunSpec, ctx: Context):
        """See Suite.model_structure: the target's structure (the model a run adapts); None when its config
        cannot be read here."""
        # transformers loads when this runs, not when the CLI imports suites.muse
        from transformers import AutoConfig, AutoModelForCausalLM

        source, revision = resolve(self.target_model(spec, ctx))
        try:
            config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=ctx.trust_remote_code)
        except Exception:  # offline without a cached copy, or not a model: not this check's to report
            return None
        return on_meta(lambda: AutoModelForCausalLM.from_config(config, trust_remote_code=ctx.trust_remote_code))

    # -- the checkpoint rule, from a finished run.json -------------------------------------------------------------
    def derived_metrics(self, record: dict) -> dict:
        """See Suite.derived_metrics. MUSE's checkpoint (checkpoint_epoch against the retrained model's forget
        KnowMem in suite_records.reference_metrics): `forgotten`, `epochs_to_forget` (None when not reached),
        `epochs_to_forget_or_cap` (cap + 1 then) and each reported metric at that epoch (`<metric>_at_forget`,
        absent when not reached); {} for a run without the reference's value or not finished."""
        bar = record.get("suite_records", {}).get("reference_metrics", {}).get("knowmem_f")
        if not isinstance(bar, (int, float)) or record.get("status") != "finished":
            return {}
        hit = checkpoint_epoch(record.get("epochs", []), bar)
        cap = record["spec"]["hparams"]["epochs"]
        out = {"forgotten": hit is not None, "epochs_to_forget": hit and hit["epoch"],
               "epochs_to_forget_or_cap": hit["epoch"] if hit else cap + 1}
        if hit:
            out.update({f"{m}_at_forget": hit["metrics"].get(m) for m in CHECKPOINT_READS})
        return out

    # -- report sections (suites/muse_report.py); imported when a report is written, so that pandas stays out of
    # `import suites` -----------------------------------------------------------------------------------------------
    def paper_table(self, runs, refs):
        """See Suite.paper_table: MUSE's Table-3 layout (suites/muse_report.py)."""
        from suites.muse_report import paper_table

        return paper_table(self, runs, refs)

    def plots(self, runs, refs, out_dir: Path) -> list[Path]:
        """See Suite.plots: MUSE's plots (suites/muse_report.py)."""
        from suites.muse_report import plots

        return plots(self, runs, refs, out_dir)

    # -- evaluation ------------------------------------------------------------------------------------------------
    def eval_data(self, spec: RunSpec, ctx: Context) -> dict:
        """Every evaluation set of a run, each cut to `max_items` (0 = all): verbmem rows, forget / retain QA with
        their few-shot pairs, privleak forget / holdout texts. Raises BenchError for an empty set."""
        cap = int(spec.option("max_items")) or None
        data = {"verbmem": self.verbmem_rows(spec, ctx)[:cap],
                "forget_qa": self.knowmem_rows(spec, ctx, "forget")[:cap],
                "forget_icl": self.knowmem_icl(spec, ctx, "forget"),
                "retain_qa": self.knowmem_rows(spec, ctx, "retain")[:cap],
                "retain_icl": self.knowmem_icl(spec, ctx, "retain"),
                "privleak_forget": self.privleak_texts(spec, ctx, "forget")[:cap],
                "privleak_holdout": self.privleak_texts(spec, ctx, "holdout")[:cap]}
        for name, rows in data.items():
            if not rows and not name.endswith("_icl"):
                raise BenchError(f"the MUSE {name} set of {spec.split} is empty")
        return data

    def privleak_ids(self, texts: list[str], tokenizer, max_length: int, what: str) -> list[list[int]]:
        """Each privleak text tokenised (with the tokenizer's special tokens) and cut to `max_length` tokens.
        Raises BenchError naming a text with fewer than two tokens (no token is predicted)."""
        out = []
        for k, text in enumerate(texts):
            ids = tokenizer(text)["input_ids"][:max_length]
            if len(ids) < 2:
                raise BenchError(f"privleak {what} text {k} has {len(ids)} token(s); the attacks need at least 2")
            out.append(ids)
        return out

    def evaluator(self, spec: RunSpec, ctx: Context, tokenizer):
        """(evaluate(model, tokenizer) -> Evaluation of every metric but privleak, the data it scores)."""
        data = self.eval_data(spec, ctx)
        max_length = int(spec.option("max_length"))
        members = self.privleak_ids(data["privleak_forget"], tokenizer, max_length, "forget")
        non_members = self.privleak_ids(data["privleak_holdout"], tokenizer, max_length, "holdout")
        verbmem_n, knowmem_n = int(spec.option("verbmem_tokens")), int(spec.option("knowmem_tokens"))
        batch = ctx.eval_batch_size

        def evaluate(model, tok) -> Evaluation:
            was_training = model.training
            model.eval()
            try:
                with phase("verbmem"):
                    verbmem = verbmem_scores(model, tok, data["verbmem"], verbmem_n, batch)
                with phase("knowmem"):
                    forget = knowmem_scores(model, tok, data["forget_qa"], data["forget_icl"], knowmem_n, batch)
                    retain = knowmem_scores(model, tok, data["retain_qa"], data["retain_icl"], knowmem_n, batch)
                with phase("privleak"):
                    mia = membership_items(model, tok, members, non_members, batch)
            finally:
                model.train(was_training)
            mean = lambda xs: sum(xs) / len(xs)
            metrics = {"verbmem_f": mean(verbmem), "knowmem_f": mean(forget), "knowmem_r": mean(retain),
                       **attack_aucs(mia)}
            return Evaluation(metrics, {"verbmem_f": verbmem, "knowmem_f": forget, "knowmem_r": retain, "mia": mia})

        return evaluate, data

    def stored_evaluation(self, model_path: str, spec: RunSpec, ctx: Context, evaluate, data: dict) -> Evaluation:
        """The evaluation of a fixed model (target, retrained) on `data`, computed once per model weights, data,
        options that change scores and evaluator code, and stored."""
        options = {k: v for k, v in spec.options if k in ("max_length", "verbmem_tokens", "knowmem_tokens")}
        key = digest([model_fingerprint(model_path), spec.hparams.dtype, options, data,
                      fingerprint.code_fingerprint(*self.evaluator_modules)])

        def compute() -> dict:
            model, tok = load_model(model_path, dtype=spec.hparams.dtype, trust_remote_code=ctx.trust_remote_code,
                                    device=ctx.device)
            evaluation = evaluate(model, tok)
            return {"model": model_path, "split": spec.split, "metrics": evaluation.metrics, "items": evaluation.items}

        stored = json_artefact(ctx.store.artefact_dir(self.name) / "evals" / f"{key}.json", compute)
        return Evaluation(stored["metrics"], stored["items"])

    def check_context(self, model: str, max_length: int, ctx: Context) -> None:
        """Raises BenchError when `max_length` (training sequences and privleak texts) exceeds the model's
        positional limit, which would fail or wrap inside the model after the references were evaluated."""
        limit = self.context_limit(model, ctx)
        if limit is not None and max_length > limit:
            raise BenchError(f"bad option max_length={max_length}: the target '{model}' reads at most {limit} tokens "
                             f"(expected max_length <= {limit})")

    def with_tokenizer(self, model: str, spec: RunSpec, ctx: Context) -> str:
        """`model` when it has its own tokenizer; else a directory under the artefacts holding links to `model`'s
        files and the tokenizer of the base `spec.model` (the published MUSE models ship config and weights only;
        muse_bench loads them with tokenizer_dir = meta-llama/Llama-2-7b-hf), made once, so that every loader
        (this suite's, the runner's) reads both from one place. Raises BenchError when the model's files are on
        neither this machine nor a reachable hub, or the base has no tokenizer either."""
        try:
            load_tokenizer(model, ctx.trust_remote_code)
            return model
        except (BenchError, OSError, ValueError):  # transformers: OSError / ValueError for a model without one
            pass
        tokenizer = load_tokenizer(spec.model, ctx.trust_remote_code,
                                   offline_hint=f"'{model}' has no tokenizer of its own and the base's is read instead: "
                                                f"pass --models DIR with the base's tokenizer files")
        source, revision = resolve(model)
        if not is_local(source):
            # huggingface_hub loads when this runs, not when the CLI imports suites.muse
            from huggingface_hub import snapshot_download

            try:
                source = snapshot_download(source, revision=revision, local_files_only=not hub_reachable())
            except Exception as e:  # not cached and no hub, or no such repository
                raise BenchError(f"model '{model}' could not be read ({type(e).__name__}); download it elsewhere and "
                                 f"pass --option target=DIR / --option retrained=DIR") from None
        files = sorted(p for p in Path(source).iterdir() if p.is_file() and not p.name.startswith("."))
        key = digest([str(Path(source).resolve()), [p.name for p in files], spec.model])
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1])

        def build(tmp: Path) -> None:
            tmp.mkdir(parents=True)
            for p in files:
                (tmp / p.name).symlink_to(p.resolve())
            tokenizer.save_pretrained(tmp)

        ctx.log(f"{model} has no tokenizer; using {spec.model}'s (as muse_bench does)")
        return str(artefact(ctx.store.artefact_dir(self.name) / "with_tokenizer" / f"{slug}-{key}", build,
                            ready="config.json"))

    def prepare(self, spec: RunSpec, ctx: Context) -> Prepared:
        """See Suite.prepare. Reads and checks every data set, checks that the target and the retrained model share
        a tokenizer, evaluates both (stored), and tokenises the forget set of the split and retain1 into MUSE's
        training sequences; every epoch then measures every metric (the checkpoint rule reports them all at the
        epoch it selects), privleak against the retrained model's Min-K% AUC. Raises BenchError for a bad data file,
        different tokenizers or an empty set."""
        target = self.with_tokenizer(self.target_model(spec, ctx), spec, ctx)
        retrained = self.with_tokenizer(self.retrained_model(spec, ctx), spec, ctx)
        tokenizer = load_tokenizer(target, ctx.trust_remote_code, offline_hint="pass --option target=DIR")
        if not same_tokenizer(load_tokenizer(retrained, ctx.trust_remote_code, offline_hint="pass --option retrained=DIR"),
                              tokenizer):
            raise BenchError(f"the retrained model '{retrained}' has another tokenizer than the target '{target}'; "
                             f"the attacks and answers are compared on the same token ids: pass --option retrained=DIR "
                             f"with a model trained from the same base")
        max_length = int(spec.option("max_length"))
        self.check_context(target, max_length, ctx)
        with phase("forget_and_retain_data"):
            forget = chunks(self.raw_texts(spec, ctx, "forget"), tokenizer, max_length)
            retain = chunks(self.raw_texts(spec, ctx, "retain1"), tokenizer, max_length)
        if not forget:  # an all-empty text: training and the checkpoint rule would run on nothing
            raise BenchError(f"the forget set of split {spec.split} holds no token")
        with phase("eval_data"):
            evaluate_raw, data = self.evaluator(spec, ctx, tokenizer)
        with phase("reference_evaluation"):
            ref = self.stored_evaluation(retrained, spec, ctx, evaluate_raw, data)
        ref_auc = ref.metrics[f"mia_{PRIVLEAK_ATTACK}"]

        def with_privleak(evaluation: Evaluation) -> Evaluation:
            return Evaluation({**evaluation.metrics, "privleak": privleak(evaluation.metrics[f"mia_{PRIVLEAK_ATTACK}"],
                                                                          ref_auc)}, evaluation.items)

        def evaluate(model, tok) -> Evaluation:
            return with_privleak(evaluate_raw(model, tok))

        with phase("target_evaluation"):
            start = with_privleak(self.stored_evaluation(target, spec, ctx, evaluate_raw, data))
        bar = ref.metrics["knowmem_f"]
        should_stop = (lambda metrics: metrics["knowmem_f"] <= bar) if spec.option("stop") == "checkpoint" else None
        as_examples = lambda seqs: [{"input_ids": s, "labels": s} for s in seqs]
        return Prepared(model_path=target, forget=as_examples(forget), retain=as_examples(retain), evaluate=evaluate,
                        should_stop=should_stop,
                        records={"target": target, "reference": retrained, "target_metrics": start.metrics,
                                 "reference_metrics": with_privleak(ref).metrics,
                                 "checkpoint_rule": f"first epoch with knowmem_f <= {bar:.4f} (the retrained model's)",
                                 "forget_sequences": len(forget), "retain_sequences": len(retain),
                                 "eval_items": {k: len(v) for k, v in data.items()}})
