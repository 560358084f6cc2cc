"""Length limits that never cost the scored part.

A sequence longer than the limit keeps everything that is scored (an answer and its EOS, or the tokens
a generation adds) and loses prompt tokens from the left, after a leading BOS, which stays (as a
tokenizer's own left truncation leaves it). When even the scored part does not fit, the item is a
one-line error naming it: cutting answer tokens instead would score what is left, and with nothing left
a mean over zero tokens would read as certainty (P(a) = exp(0) = 1). No torch here: the refusal module
and other torch-free code use it.
"""

from __future__ import annotations

from typing import Sequence

from bench.errors import BenchError

IGNORE = -100  # methods.losses.IGNORE (imported from there, torch would load)


def name_of(item: str) -> str:
    """A short quoted name for an error message (one line: repr escapes newlines)."""
    return repr(item if len(item) <= 80 else item[:77] + "...")


def left_cut(prompt_ids: Sequence[int], keep: int, bos_id: int | None) -> list[int]:
    """The last `keep` tokens of the prompt, with its leading BOS (if any) kept in front of them;
    `keep` counts the BOS. The prompt is returned whole when it already fits."""
    prompt_ids = list(prompt_ids)
    if len(prompt_ids) <= keep:
        return prompt_ids
    head = prompt_ids[:1] if bos_id is not None and prompt_ids[:1] == [bos_id] else []
    return head + prompt_ids[len(prompt_ids) - (keep - len(head)):]


def fit_prompt(prompt_ids: Sequence[int], answer_ids: Sequence[int], max_length: int, item: str,
               bos_id: int | None = None) -> list[int]:
    """The prompt cut from the left so that prompt + answer <= max_length tokens, keeping at least one
    prompt token (position t predicts token t+1: the first answer token needs one before it).
    Raises BenchError naming `item` when the answer alone leaves no room for that token."""
    room = max_length - len(answer_ids)
    if room < 1 or not prompt_ids:
        why = "an empty prompt" if not prompt_ids else (
            f"its answer is {len(answer_ids)} tokens (with EOS), and max_length={max_length} leaves no prompt "
            f"token before it")
        raise BenchError(f"item {name_of(item)} cannot be scored: {why}; raise --option max_length or drop the item")
    return left_cut(prompt_ids, room, bos_id)


def counted_tokens(example: dict) -> int:
    """How many tokens of an example a loss or score counts: labels other than -100 after the first
    position (position 0 is never predicted)."""
    labels = example.get("labels", example["input_ids"])
    return sum(1 for label in labels[1:] if label != IGNORE)


def require_counted(examples: Sequence[dict], what: str, minimum: int = 1) -> None:
    """Raise BenchError naming the first of `examples` with fewer than `minimum` counted tokens: a mean
    over zero tokens is not a score."""
    for i, example in enumerate(examples):
        n = counted_tokens(example)
        if n < minimum:
            raise BenchError(f"{what} #{i} has {n} scored token{'s' if n != 1 else ''} (needs {minimum}; "
                             f"{len(example['input_ids'])} tokens in all): nothing to score")
