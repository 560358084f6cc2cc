"""Dialogue utility of TDEC (docs/metrics.md): greedy responses of at most 32 new tokens, scored by
unigram F1 against the reference response (ParlAI's normalisation: lower case, no punctuation, no
articles)."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> list[str]:
    """The words of `text` after ParlAI's normalisation: lower case, punctuation removed, articles (a, an, the)
    dropped."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def unigram_f1(prediction: str, reference: str) -> float:
    """Unigram F1 in [0, 1] between the normalised prediction and reference (ParlAI's F1 metric, as the TDEC
    paper's dialogue evaluation uses it); 0 when no word is shared.
    """
    pred, gold = normalise(prediction), normalise(reference)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def keep_last_tokens(tokenizer, text: str, n: int) -> str:
    """`text` from the start of its n-th last token on (the whole text when it has at most n tokens)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= n:
        return text
    return text[enc["offset_mapping"][-n][0]:]


def dialogue_f1(model, tokenizer, rows: Sequence[dict], max_new_tokens: int = 32, batch_size: int = 32,
                stop: str | None = None, max_prompt_tokens: int | None = None) -> float:
    """Mean unigram F1 of greedy continuations of each row's `context` against its `response`; with
    `stop`, a continuation is cut where `stop` first occurs (TDEC: the next speaker's tag); with
    `max_prompt_tokens`, a longer context keeps its last turns (and the next speaker's tag)."""
    # scipy, torch load when this runs, not when the CLI imports suites.dialogue
    from suites.tofu_eval import generate

    was_training = model.training
    model.eval()
    contexts = [r["context"] if max_prompt_tokens is None else keep_last_tokens(tokenizer, r["context"], max_prompt_tokens)
                for r in rows]
    responses = generate(model, tokenizer, contexts, f"new:{max_new_tokens}", batch_size)
    model.train(was_training)
    if stop:
        responses = [r.split(stop)[0] for r in responses]
    return sum(unigram_f1(p, r["response"]) for p, r in zip(responses, rows)) / len(rows)
