"""Loading a tokenizer, in one place: always through AutoTokenizer, and never an empty vocabulary.

With transformers 5, building a GPT-2 tokenizer from its files by class
(`GPT2TokenizerFast(vocab_file=..., merges_file=...)`) gives a tokenizer of one entry that turns every
text into []; a model trained or scored with it learns nothing and fails nowhere. AutoTokenizer reads the
directory's own configuration; `load_tokenizer` also refuses a vocabulary that came out empty.
"""

from __future__ import annotations

from bench.errors import BenchError


def check_vocabulary(tokenizer, source) -> None:
    """Refuse a tokenizer with (almost) no vocabulary or one that encodes text to nothing."""
    if len(tokenizer) < 2 or not tokenizer("Hello world", add_special_tokens=False)["input_ids"]:
        raise BenchError(f"the tokenizer loaded from {source} has an empty vocabulary ({len(tokenizer)} entries; "
                         f"expected a directory with tokenizer.json, or vocab.json + merges.txt + tokenizer_config.json)")


def load_tokenizer(source, **kwargs):
    """AutoTokenizer.from_pretrained(source, **kwargs), checked; pad = EOS where the tokenizer has no pad."""
    # transformers loads when this runs, not when the CLI imports bench.tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source), **kwargs)
    check_vocabulary(tokenizer, source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
