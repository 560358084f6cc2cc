"""IdkDPO's preferred answers: refusals paired with forget examples.

The project ships methods/idk_answers.txt (one refusal per line, written for this project);
`--option idk_answers=FILE` names another file of the same shape. Each forget example gets one refusal,
drawn by the run's seed, so a run and its resumption see the same pairs."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Callable, Sequence

from bench.errors import BenchError

SHIPPED = Path(__file__).with_name("idk_answers.txt")
IGNORE = -100  # methods.losses.IGNORE; not imported from there, which loads torch (this module must not)


def load(path: str = "") -> list[str]:
    """The refusals of file `path` (the shipped methods/idk_answers.txt when empty), one per non-empty
    line; a missing or empty file is a one-line BenchError."""
    file = Path(path) if path else SHIPPED
    if not file.is_file():
        raise BenchError(f"bad option idk_answers={path!r} (expected a text file with one refusal per line)")
    try:
        text = file.read_text()
    except UnicodeDecodeError as e:
        raise BenchError(f"bad option idk_answers={path!r} (not UTF-8 text: {e.reason} at byte {e.start}; expected a text "
                         f"file with one refusal per line)") from None
    answers = [line.strip() for line in text.splitlines() if line.strip()]
    if not answers:
        raise BenchError(f"bad option idk_answers={path!r} (the file has no non-empty line)")
    return answers


def describe(path: str = "") -> dict:
    """What run.json records: which file, its content hash and size."""
    file = Path(path) if path else SHIPPED
    return {"file": str(file) if path else "methods/idk_answers.txt", "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
            "answers": len(load(path))}


def pair(n: int, answers: Sequence[str], seed: int) -> list[str]:
    """`n` refusals drawn with replacement from `answers` by `seed` (the same pairs on every resumption)."""
    rng = random.Random(seed)
    return [rng.choice(answers) for _ in range(n)]


def alternates(forget: Sequence[dict], tokenizer, answers: Sequence[str], seed: int,
               format_answer: Callable[[str], str] | None = None, max_length: int | None = None) -> list[dict]:
    """Each forget example with its answer replaced by a refusal: the same prompt (its leading unlabelled
    tokens; none for TDEC's plain sequences) + the refusal + EOS, only the refusal and EOS labelled.
    With `max_length` (the suite's limit) a prompt that no longer fits loses tokens from the left, as
    the forget example's did (bench/truncation.py); a refusal too long for it raises BenchError."""
    from bench.truncation import fit_prompt

    out = []
    for k, (ex, text) in enumerate(zip(forget, pair(len(forget), answers, seed))):
        labels = ex["labels"]
        start = next((i for i, v in enumerate(labels) if v != IGNORE), len(labels))
        prompt = list(ex["input_ids"][:start])
        answer = tokenizer((format_answer or (lambda a: a))(text), add_special_tokens=False)["input_ids"]
        answer = answer + [tokenizer.eos_token_id]
        if max_length is not None and prompt:
            prompt = fit_prompt(prompt, answer, max_length, f"forget example #{k} with refusal {text}",
                                tokenizer.bos_token_id)
        out.append({"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer})
    return out
