"""Run by tests/test_distributed.py under `accelerate launch --cpu --num_processes 2`:
a short unlearning of a tiny model (GD, or the objective named by argv[2]); each process writes its final
parameters. The loop builds its own Accelerator, as a `bench run` does."""

import copy
import os
import sys

import torch
from bench.data import qa_example
from bench.loop import train
from bench.spec import Hyperparams
from bench.tiny import TinyShape, build_tiny, train_tokenizer
from methods import OBJECTIVES

out = sys.argv[1]
torch.set_num_threads(1)
words = ["kalo", "mine", "ruto", "sapequa", "dorfen", "gil", "zupe", "nesa", "tovi", "lomi"]
tokenizer = train_tokenizer([" ".join(words[i:] + words[:i]) for i in range(10)] * 20, vocab_size=300)
# answers of different lengths: a micro-batch's token-mean loss depends on which examples it groups
forget = [qa_example(tokenizer, f"Question: who is {w}?\nAnswer:", f" {w} is a kalo mine" + " gil zupe" * (i % 4), 64)
          for i, w in enumerate(words[:8])]
retain = [qa_example(tokenizer, f"Question: where is {w}?\nAnswer:", f" in {w} vi", 64) for w in words]
objective = OBJECTIVES[sys.argv[2] if len(sys.argv) > 2 else "gd"]
model = build_tiny("llama", tokenizer, TinyShape(hidden=32, layers=4 if objective.name == "rmu" else 2, heads=2,
                                                 intermediate=64), seed=0)
hp = Hyperparams(lr=1e-3, epochs=2, batch_size=2, effective_batch=8, warmup_epochs=0).replace(**objective.defaults)
if sys.argv[2:] == ["rmu"]:  # all parameters trainable: the blocks above RMU's layer get no gradient
    hp = hp.replace(rmu_params="all", rmu_layer=1)
reference = copy.deepcopy(model).eval().requires_grad_(False) if objective.wants_reference(hp) else None
if objective.prepare is not None:
    objective.prepare(model, hp)
train(model, objective, forget, retain, hp, pad_id=tokenizer.pad_token_id, seed=0, reference=reference)
torch.save({n: p.detach().clone() for n, p in model.named_parameters()}, f"{out}/params-{os.environ.get('RANK', '0')}.pt")
