"""Tokenised examples and batches. An example is {"input_ids": [int], "labels": [int]} where
labels are -100 wherever the loss must not count (the prompt, padding)."""

from __future__ import annotations

from typing import Sequence

import torch

from bench.truncation import fit_prompt

Example = dict
IGNORE = -100  # the label of a position the loss must not count (the prompt, padding), as torch's cross-entropy


def qa_example(tokenizer, prompt: str, answer: str, max_length: int, *, special_tokens: bool = True,
               item: str | None = None) -> Example:
    """Prompt tokens, then answer + EOS; only the answer and the EOS are labelled.

    `special_tokens`: the tokenizer adds its special prefix (e.g. Llama's BOS) to the prompt; False
    when the prompt text already holds every special token (a rendered chat template, which
    `apply_chat_template(tokenize=True)` also tokenises without adding any). Longer than `max_length`:
    the prompt loses tokens from the left (a leading BOS stays), never the answer; an answer that does
    not fit raises BenchError naming `item` (default: the prompt). bench/truncation.py."""
    prompt_ids = tokenizer(prompt, add_special_tokens=special_tokens)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt_ids = fit_prompt(prompt_ids, answer_ids, max_length, prompt if item is None else item,
                            tokenizer.bos_token_id)
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def collate(examples: Sequence[Example], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad to the longest example; padded positions get attention 0 and label -100."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        cols = slice(width - n, width) if side == "left" else slice(0, n)
        ids[i, cols] = torch.tensor(e["input_ids"])
        labels[i, cols] = torch.tensor(e.get("labels", e["input_ids"]))
        mask[i, cols] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def to_device(batch: dict, device) -> dict:
    """The batch with every tensor moved to `device` (same keys, same shapes)."""
    return {k: v.to(device) for k, v in batch.items()}


def epoch_pairing(n_forget: int, n_retain: int, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Forget order for this epoch and, for each forget example, a uniformly random retain partner.
    A function of (seed, epoch) only, so a resumed run sees exactly the batches it would have seen."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n_forget, generator=g)
    partners = torch.randint(n_retain, (n_forget,), generator=g) if n_retain else torch.empty(0, dtype=torch.long)
    return order, partners


def paired_batches(forget: Sequence[Example], retain: Sequence[Example], batch_size: int, pad_id: int,
                   seed: int, epoch: int = 0):
    """(forget batch, paired retain batch) over one pass of the forget set."""
    order, partners = epoch_pairing(len(forget), len(retain), seed, epoch)
    for start in range(0, len(forget), batch_size):
        idx = order[start:start + batch_size]
        yield (collate([forget[i] for i in idx], pad_id),
               collate([retain[partners[i]] for i in idx], pad_id) if len(retain) else None)
