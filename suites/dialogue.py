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
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def unigram_f1(prediction: str, reference: str) -> float:
    pred, gold = normalise(prediction), normalise(reference)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def dialogue_f1(model, tokenizer, rows: Sequence[dict], max_new_tokens: int = 32, batch_size: int = 32) -> float:
    """Mean unigram F1 of greedy continuations of each row's `context` against its `response`."""
    from suites.tofu_eval import generate

    was_training = model.training
    model.eval()
    responses = generate(model, tokenizer, [r["context"] for r in rows], f"new:{max_new_tokens}", batch_size)
    model.train(was_training)
    return sum(unigram_f1(p, r["response"]) for p, r in zip(responses, rows)) / len(rows)
