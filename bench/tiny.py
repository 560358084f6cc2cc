"""Tiny causal LMs for the mini suites and the tests: a byte-level BPE tokenizer trained on given
text, and GPT-Neo, Llama or Phi configurations small enough to train on a laptop CPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from bench.errors import unknown

ARCHS = ("gpt-neo", "llama", "phi")
EOS = "<|endoftext|>"
PAD = "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000):
    """Byte-level BPE over `texts`; EOS = `<|endoftext|>` (id 0), PAD = `<pad>` (id 1)."""
    # transformers loads when this runs, not on import of bench.tiny
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                                   pad_token=PAD, model_max_length=1024)


@dataclass(frozen=True)
class TinyShape:
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 336
    max_positions: int = 256


def build_tiny(arch: str, tokenizer, shape: TinyShape = TinyShape(), seed: int = 0):
    """A randomly initialised causal LM of `arch` with `tokenizer`'s vocabulary."""
    # transformers loads when this runs, not on import of bench.tiny
    from transformers import (GPTNeoConfig, GPTNeoForCausalLM, LlamaConfig, LlamaForCausalLM, PhiConfig,
                              PhiForCausalLM)

    special = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                   eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if arch == "gpt-neo":
        config = GPTNeoConfig(hidden_size=shape.hidden, num_layers=shape.layers, num_heads=shape.heads,
                              intermediate_size=shape.intermediate, max_position_embeddings=shape.max_positions,
                              attention_types=[[["global", "local"], shape.layers // 2]] if shape.layers % 2 == 0
                              else [[["global"], shape.layers]], window_size=shape.max_positions,
                              embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0, **special)
        cls = GPTNeoForCausalLM
    elif arch == "llama":
        config = LlamaConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                             num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
                             max_position_embeddings=shape.max_positions, tie_word_embeddings=True, **special)
        cls = LlamaForCausalLM
    elif arch == "phi":
        config = PhiConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                           intermediate_size=shape.intermediate, max_position_embeddings=shape.max_positions,
                           resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0, **special)
        cls = PhiForCausalLM
    else:
        raise unknown("architecture", arch, ARCHS)
    torch.manual_seed(seed)
    return cls(config)
