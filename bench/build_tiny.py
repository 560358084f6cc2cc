"""`python -m bench.build_tiny --arch llama --out DIR (--tokenizer DIR | --train-on FILE ...)`: a randomly
initialised tiny model directory (bench/tiny.py) that `--model DIR` / `--models DIR` accept; the real-data
tests and the end-to-end commands in docs/suites.md use it. (A module of its own: bench/tiny.py's source
is part of the mini suites' artefact fingerprints.)"""

from __future__ import annotations

import argparse
import json

from bench.tiny import ARCHS, TinyShape, build_tiny, train_tokenizer
from bench.tokenizer import load_tokenizer


def _texts(path: str) -> list[str]:
    """Training text for a tokenizer: the string values of a JSON-lines file, else its lines."""
    out = []
    for line in open(path, encoding="utf-8"):
        try:
            row = json.loads(line)
        except ValueError:
            row = line
        out += [v for v in row.values() if isinstance(v, str)] if isinstance(row, dict) else [str(row)]
    return out


def main(argv=None) -> None:
    """Build a tiny causal LM directory with a given or freshly trained tokenizer."""
    p = argparse.ArgumentParser(prog="python -m bench.build_tiny", description=main.__doc__)
    p.add_argument("--arch", choices=ARCHS, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", help="a tokenizer directory (e.g. the GPT-2 tokenizer)")
    p.add_argument("--train-on", nargs="+", metavar="FILE", help="train a byte-level BPE on these files instead")
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if bool(args.tokenizer) == bool(args.train_on):
        p.error("give exactly one of --tokenizer DIR and --train-on FILE")
    tok = load_tokenizer(args.tokenizer) if args.tokenizer else \
        train_tokenizer([t for f in args.train_on for t in _texts(f)], args.vocab_size)
    model = build_tiny(args.arch, tok, TinyShape(hidden=args.hidden, layers=args.layers, heads=4,
                                                 intermediate=4 * args.hidden, max_positions=1024), seed=args.seed)
    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"{args.out}: {args.arch}, {sum(p.numel() for p in model.parameters()):,} parameters, vocabulary {len(tok):,}")


if __name__ == "__main__":
    main()
