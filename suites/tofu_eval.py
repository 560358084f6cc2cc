"""TOFU's metrics (Maini et al. 2024), per item and aggregated. Definitions: docs/metrics.md.

Teacher-forced scoring puts every candidate answer of every item of every eval set into shared,
length-sorted batches: one forward pass per batch, never one per answer string. Generation is
greedy and batched with left padding.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenize, tokenizers
from scipy import stats

from bench.data import collate, qa_example, to_device
from bench.models import decoder_and_head
from bench.errors import BenchError
from bench.phases import phase
from bench.truncation import left_cut, name_of, require_counted
from methods.losses import logits_of, sequence_mean_nll
from suites.privacy import metrics_of, model_scores



@dataclass(frozen=True)
class QAFormat:
    """How a question and an answer become one sequence: prompt(q) + answer(a).

    Special tokens appear exactly once, where the model's own format puts them: the plain formats
    are text the tokenizer adds its special prefix to (Llama's BOS + "[INST] q [/INST]"); a chat
    template renders its special tokens into the text itself (Llama-3: "<|begin_of_text|>..."), so its
    prompt is tokenised with nothing added, as `apply_chat_template(tokenize=True)` does. Adding the
    tokenizer's prefix to it too would start every sequence with BOS BOS."""

    name: str
    prompt_template: str
    answer_template: str
    chat_tokenizer: object = None  # set for `chat-template`: the tokenizer's own template

    def prompt(self, question: str) -> str:
        """The prompt text for `question`: the model's chat template with a generation prompt, or `prompt_template`."""
        if self.chat_tokenizer is not None:
            return self.chat_tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                           tokenize=False, add_generation_prompt=True)
        return self.prompt_template.format(q=question)

    @property
    def adds_special_tokens(self) -> bool:
        """Whether the tokenizer's special prefix goes in front of prompt(q) (False: the text holds it)."""
        return self.chat_tokenizer is None

    def prompt_ids(self, tokenizer, question: str) -> list[int]:
        """The prompt's token ids, with the tokenizer's special prefix only where the text does not hold it."""
        return tokenizer(self.prompt(question), add_special_tokens=self.adds_special_tokens)["input_ids"]

    def answer(self, answer: str) -> str:
        """The answer text as the model is trained on it: `answer_template` around the stripped answer."""
        return self.answer_template.format(a=answer.strip())

    def example(self, tokenizer, question: str, answer: str, max_length: int) -> dict:
        """The tokenised QA example (bench.data.qa_example): only answer + EOS labelled; longer than
        `max_length`, the prompt is cut from the left; an answer that does not fit names the question."""
        return qa_example(tokenizer, self.prompt(question), self.answer(answer), max_length,
                          special_tokens=self.adds_special_tokens, item=question)


FORMATS = {
    "qa": QAFormat("qa", "Question: {q}\nAnswer:", " {a}"),  # Phi-1.5 in TOFU, and the tiny models
    "llama2-chat": QAFormat("llama2-chat", "[INST] {q} [/INST]", "{a}"),
}


@dataclass(frozen=True)
class EvalSet:
    """One TOFU evaluation set. `base` is the answer field the truth ratio compares against."""

    name: str  # forget | retain | real_authors | world_facts
    items: Sequence[dict]  # question, answer, paraphrased_answer, perturbed_answer (list)
    base: str  # paraphrased_answer (forget, retain) or answer (real authors, world facts)
    normalised_probability: bool  # P(a) / (P(a) + sum P(perturbed)) for real authors / world facts




@torch.no_grad()
def answer_nll(model, examples: Sequence[dict], pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Mean answer-token NLL of each example [N].

    Candidates of one question share its prompt: where the model allows it (a plain causal LM
    whose logits are lm_head(last hidden state)), each distinct prompt runs once, its KV cache is
    copied to its candidate answers, and the vocabulary projection runs only at answer positions.
    Otherwise every sequence runs in full, in length-sorted batches. An example with no scored token
    raises BenchError: its mean NLL would be 0, P(a) = 1."""
    require_counted(examples, "scored example")
    split = decoder_and_head(model)
    if split is None:
        return _answer_nll_full(model, examples, pad_id, batch_size)
    body, head = split
    device = next(model.parameters()).device
    groups: dict[tuple, list[int]] = {}
    unprompted = []  # labelled from the first token on: no prompt to share, scored the plain way
    for i, ex in enumerate(examples):
        p = next(t for t, label in enumerate(ex["labels"]) if label != -100)
        if p == 0:
            unprompted.append(i)
        else:
            groups.setdefault(tuple(ex["input_ids"][:p]), []).append(i)
    # batched by their longest candidate answer: a chunk's answers are padded to its longest (4 % padding on
    # tofu-mini's eval sets, 15 % when batched by prompt length)
    longest = {p: max(len(examples[i]["input_ids"]) - len(p) for i in members) for p, members in groups.items()}
    prompts = sorted(groups, key=lambda p: (longest[p], len(p)))
    out = np.empty(len(examples), dtype=np.float64)
    if unprompted:
        out[unprompted] = _answer_nll_full(model, [examples[i] for i in unprompted], pad_id, batch_size)
    start = 0
    while start < len(prompts):
        chunk, n = [], 0  # prompts whose candidates make about one batch
        while start < len(prompts) and (not chunk or n + len(groups[prompts[start]]) <= batch_size):
            chunk.append(prompts[start])
            n += len(groups[prompts[start]])
            start += 1
        _score_chunk(body, head, chunk, groups, examples, pad_id, device, out)
    return out


def _score_chunk(body, head, prompts, groups, examples, pad_id, device, out) -> None:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):  # left padding: every prompt ends at the same column
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    first = body(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                 use_cache=True)
    rows = [r for r, p in enumerate(prompts) for _ in groups[p]]
    members = [i for p in prompts for i in groups[p]]
    answers = [examples[i]["input_ids"][len(prompts[r]):] for r, i in zip(rows, members)]
    cwidth = max(len(a) for a in answers)
    cand = torch.full((len(answers), cwidth), pad_id, dtype=torch.long)
    cmask = torch.zeros((len(answers), cwidth), dtype=torch.long)
    for k, a in enumerate(answers):
        cand[k, :len(a)] = torch.tensor(a)
        cmask[k, :len(a)] = 1
    index = torch.tensor(rows)
    cache = first.past_key_values
    cache.batch_select_indices(index.to(device))
    lengths = mask.sum(1)[index]
    hidden = body(input_ids=cand.to(device), attention_mask=torch.cat([mask[index], cmask], 1).to(device),
                  position_ids=(lengths[:, None] + torch.arange(cwidth)[None, :]).to(device),
                  past_key_values=cache, use_cache=True).last_hidden_state
    # position t of [last prompt token, answer tokens...] predicts answer token t
    states = torch.cat([first.last_hidden_state[index, -1:].to(hidden.dtype), hidden[:, :-1]], 1)
    cm = cmask.bool().to(device)
    logp = head(states[cm]).float().log_softmax(-1)
    nll = -logp.gather(1, cand.to(device)[cm].unsqueeze(1)).squeeze(1)
    sums = torch.zeros(len(answers), dtype=torch.float64, device=device).index_add_(0, cm.nonzero()[:, 0], nll.double())
    out[members] = (sums / cm.sum(1)).cpu().numpy()


@torch.no_grad()
def _answer_nll_full(model, examples: Sequence[dict], pad_id: int, batch_size: int) -> np.ndarray:
    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    out = np.empty(len(examples), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = to_device(collate([examples[i] for i in idx], pad_id), device)
        out[idx] = sequence_mean_nll(logits_of(model, batch), batch["labels"]).double().cpu().numpy()
    return out


def context_length(model) -> int | None:
    """The model's positional limit in tokens (its config's max_position_embeddings, n_positions or n_ctx);
    None when the config names none."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def generation_prompts(encoded: Sequence[list[int]], generation: str, max_length: int | None, bos_id: int | None,
                       names: Sequence[str]) -> list[list[int]]:
    """Each prompt cut so that it and what `generation` adds fit in `max_length` tokens: `new:N` keeps the
    last max_length - N prompt tokens (a leading BOS stays; lm-eval's rule for generation), `total:N`
    (at most N tokens with the prompt) needs every prompt shorter than N. BenchError names a prompt
    that leaves no room."""
    kind, limit = generation.split(":")
    limit = int(limit)
    if kind == "total":
        for ids, name in zip(encoded, names):
            if len(ids) >= limit:
                raise BenchError(f"item {name_of(name)} cannot be generated for: its prompt is {len(ids)} tokens and "
                                 f"generation={generation} allows {limit} with the prompt (use new:N)")
        return [list(ids) for ids in encoded]
    if max_length is None:
        return [list(ids) for ids in encoded]
    room = max_length - limit
    if room < 1:
        raise BenchError(f"generation={generation} leaves no prompt token within max_length={max_length} "
                         f"(expected new:N with N < {max_length})")
    return [left_cut(ids, room, bos_id) for ids in encoded]


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], generation: str, batch_size: int = 32, *,
             max_length: int | None = None, add_special_tokens: bool = True,
             names: Sequence[str] | None = None) -> list[str]:
    """Greedy continuations. `generation` is `new:N` (N new tokens, open-unlearning) or `total:N`
    (at most N tokens including the prompt, as the original TOFU code).

    `add_special_tokens`: False for prompts that hold their special tokens (a rendered chat template).
    Prompts longer than `max_length` (default: the model's context length) minus the new tokens lose
    tokens from the left (generation_prompts); `names` name the items in errors (default: the prompts)."""
    kind, limit = generation.split(":")
    limit = int(limit)
    device = next(model.parameters()).device
    encoded = generation_prompts([tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts],
                                 generation, max_length if max_length is not None else context_length(model),
                                 tokenizer.bos_token_id, names if names is not None else prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = to_device(collate([{"input_ids": encoded[i]} for i in idx], tokenizer.pad_token_id, side="left"), device)
        width = batch["input_ids"].shape[1]
        new = limit if kind == "new" else limit - width  # >= 1: every prompt is shorter than the limit
        tokens = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                max_new_tokens=new, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id)
        for row, i in enumerate(idx):
            out[i] = tokenizer.decode(tokens[row, width:], skip_special_tokens=True).strip()
    return out


class _StemmedTokens(tokenizers.Tokenizer):
    """rouge_score's own tokenisation with `use_stemmer=True` (lower case, alphanumeric runs, nltk's Porter
    stemmer on words over 3 letters), each distinct word stemmed once per process: the same gold answers and
    much the same generated words come back at every epoch and run, and stemming them again took 0.2 s of
    a 1.9 s tofu-mini evaluation (measured). The tokens are the library's: the scores are identical."""

    def __init__(self):
        self.stem = functools.lru_cache(maxsize=1 << 17)(porter.PorterStemmer().stem)

    def tokenize(self, text: str) -> list[str]:
        return tokenize.tokenize(text, self)


_ROUGE_L = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_StemmedTokens())


def rouge_l_recall(golds: Sequence[str], predictions: Sequence[str]) -> np.ndarray:
    """ROUGE-L recall (stemmed, rouge_score) of each prediction against its gold answer; shape [N], values in [0, 1].
    As TOFU's evaluation (Maini et al. 2024) scores generated answers.
    """
    scorer = _ROUGE_L
    return np.array([scorer.score(g, p)["rougeL"].recall for g, p in zip(golds, predictions)])


def truth_ratios(base_nll: np.ndarray, perturbed_nll: np.ndarray) -> np.ndarray:
    """R_i = geometric mean_j P(perturbed_ij) / P(base_i), with P = exp(-mean token NLL).
    base_nll [N], perturbed_nll [N, K]."""
    return np.exp(base_nll - perturbed_nll.mean(axis=1))


def forget_truth_score(r: np.ndarray) -> float:
    """TOFU's forget-set truth ratio in (0, 1]: mean of min(R, 1/R) over the truth ratios `r` [N]
    (Maini et al. 2024)."""
    return float(np.mean(np.minimum(r, 1.0 / r)))


def other_truth_score(r: np.ndarray) -> float:
    """TOFU's truth ratio for the retain / real-author / world-fact sets in [0, 1]: mean of max(0, 1 - R) over `r` [N]
    (Maini et al. 2024).
    """
    return float(np.mean(np.maximum(0.0, 1.0 - r)))


def forget_quality(unlearned_ratios, reference_ratios) -> tuple[float, float]:
    """(p-value, statistic) of the two-sample KS test between the forget-set truth ratios of the
    unlearned model and of the reference (retain-only) model."""
    result = stats.ks_2samp(np.asarray(unlearned_ratios), np.asarray(reference_ratios))
    return float(result.pvalue), float(result.statistic)


UTILITY_PARTS = tuple(f"{s}_{m}" for s in ("retain", "real_authors", "world_facts")
                      for m in ("prob", "rouge", "truth_ratio"))


def model_utility(metrics: dict[str, float]) -> float:
    """Harmonic mean of the 9 non-forget numbers; 0 if any of them is 0."""
    values = [metrics[k] for k in UTILITY_PARTS]
    return 0.0 if min(values) <= 0 else float(stats.hmean(values))


def encoder(tokenizer, fmt: QAFormat, max_length: int, cache: dict | None = None):
    """(question, answer) -> fmt.example(...). With `cache` (a dict kept across calls, for one tokenizer and
    format: `encoding_cache`), each pair is tokenised once, not once per epoch and run: the eval sets'
    thousands of candidates do not change."""
    if cache is None:
        return lambda question, answer: fmt.example(tokenizer, question, answer, max_length)

    def encode(question: str, answer: str) -> dict:
        key = (max_length, question, answer)
        if key not in cache:
            cache[key] = fmt.example(tokenizer, question, answer, max_length)
        return cache[key]

    return encode


_ENCODINGS: dict[tuple, dict] = {}


def encoding_cache(tokenizer_dir: str, fmt: QAFormat) -> dict:
    """The `encoder` cache of one tokenizer (its directory: content-addressed for the mini suites, a hub id
    otherwise) and prompt format, kept for the process: the runs of a grid on one worker share it."""
    return _ENCODINGS.setdefault((str(tokenizer_dir), fmt.name, fmt.prompt_template, fmt.answer_template), {})


def evaluate_sets(model, tokenizer, sets: Sequence[EvalSet], fmt: QAFormat, generation: str,
                  max_length: int = 512, batch_size: int = 64,
                  privacy: tuple[Sequence[dict], Sequence[dict]] | None = None,
                  cache: dict | None = None) -> tuple[dict[str, float], dict[str, list]]:
    """Every TOFU number of `sets` (except forget quality, which needs the reference), and with
    `privacy` = (members, non-members) QA items the membership attacks that need no reference model,
    extraction strength and exact memorisation (privacy_scores). Returns (metrics, per-item values).
    `cache`: see `encoder`."""
    was_training = model.training
    model.eval()
    encode = encoder(tokenizer, fmt, max_length, cache)
    examples, where = [], []  # where[k] = (set index, item index, candidate slot)
    with phase("encode"):
        for s, es in enumerate(sets):
            for i, item in enumerate(es.items):
                candidates = [item["answer"], item[es.base]] + list(item["perturbed_answer"])
                for slot, answer in enumerate(candidates):
                    examples.append(encode(item["question"], answer))
                    where.append((s, i, slot))
    with phase("scoring"):
        nll = answer_nll(model, examples, tokenizer.pad_token_id, batch_size)
    per_set: list[dict[int, dict[int, float]]] = [dict() for _ in sets]
    for value, (s, i, slot) in zip(nll, where):
        per_set[s].setdefault(i, {})[slot] = value
    questions = [it["question"] for es in sets for it in es.items]
    with phase("generation"):
        generations = generate(model, tokenizer, [fmt.prompt(q) for q in questions], generation, batch_size,
                               max_length=max_length, add_special_tokens=fmt.adds_special_tokens, names=questions)
    metrics, items, offset = {}, {}, 0
    for s, es in enumerate(sets):
        n = len(es.items)
        answer = np.array([per_set[s][i][0] for i in range(n)])
        base = np.array([per_set[s][i][1] for i in range(n)])
        perturbed = np.array([[per_set[s][i][k] for k in sorted(per_set[s][i]) if k >= 2] for i in range(n)])
        p_answer = np.exp(-answer)
        if es.normalised_probability:
            p_item = p_answer / (p_answer + np.exp(-perturbed).sum(axis=1))
        else:
            p_item = p_answer
        ratios = truth_ratios(base, perturbed)
        rouge = rouge_l_recall([it["answer"] for it in es.items], generations[offset:offset + n])
        offset += n
        metrics[f"{es.name}_prob"] = float(p_item.mean())
        metrics[f"{es.name}_rouge"] = float(rouge.mean())
        metrics[f"{es.name}_truth_ratio"] = (forget_truth_score(ratios) if es.name == "forget"
                                             else other_truth_score(ratios))
        items[es.name] = {"prob": p_item.tolist(), "truth_ratio": ratios.tolist(), "rouge": rouge.tolist()}
    if all(k in metrics for k in UTILITY_PARTS):
        metrics["model_utility"] = model_utility(metrics)
    model.train(was_training)
    if privacy is not None:
        privacy_metrics, items["mia"] = privacy_scores(model, tokenizer, privacy, fmt, max_length, batch_size, cache)
        metrics.update(privacy_metrics)
    return metrics, items


def privacy_scores(model, tokenizer, privacy: tuple[Sequence[dict], Sequence[dict]], fmt: QAFormat,
                   max_length: int = 512, batch_size: int = 64, cache: dict | None = None) -> tuple[dict, dict]:
    """The membership attacks that need no reference model (members = privacy[0], non-members =
    privacy[1], QA items), extraction strength and exact memorisation: (metrics, per-item scores).
    suites/privacy.py gives the definitions."""
    was_training = model.training
    model.eval()
    encode = encoder(tokenizer, fmt, max_length, cache)
    rows = lambda items: [encode(it["question"], it["answer"]) for it in items]
    with phase("attacks"):
        scores = model_scores(model, tokenizer, rows(privacy[0]), rows(privacy[1]), batch_size)
    model.train(was_training)
    return metrics_of(scores), scores


def paraphrase_probe(model, tokenizer, items: Sequence[dict], fmt: QAFormat, generation: str, max_length: int = 512,
                     batch_size: int = 64) -> dict[str, float]:
    """Forget probability and ROUGE-L recall with each question replaced by its `paraphrased_question`."""
    was_training = model.training
    model.eval()
    questions = [it["paraphrased_question"] for it in items]
    examples = [fmt.example(tokenizer, q, it["answer"], max_length) for q, it in zip(questions, items)]
    prob = np.exp(-answer_nll(model, examples, tokenizer.pad_token_id, batch_size))
    generations = generate(model, tokenizer, [fmt.prompt(q) for q in questions], generation, batch_size,
                           max_length=max_length, add_special_tokens=fmt.adds_special_tokens, names=questions)
    rouge = rouge_l_recall([it["answer"] for it in items], generations)
    model.train(was_training)
    return {"forget_prob": float(prob.mean()), "forget_rouge": float(rouge.mean())}
