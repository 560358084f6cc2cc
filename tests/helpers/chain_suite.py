"""A test-only suite with both kinds of grid axis (suites/base.py `Axis`): README's toy suite with three disjoint
forget sets r1, r2, r3 (the `sust` axis: r1 -> r2 -> r3, each request from the previous one's model) and forget
sets of growing size r1 < s2 = r1 + r2 < s3 = r1 + r2 + r3 (the `scal` axis, each from the start model). A tiny
random GPT-Neo is built on first use. Registered as `chain-toy` on import (UNLEARNING_BENCH_PLUGINS=chain_suite
with tests/helpers on PYTHONPATH reaches worker processes too).

`INTERRUPT` = {"split": S, "epoch": E} makes the evaluation after epoch E of a run on split S raise
KeyboardInterrupt, as a kill would stop it: run.json keeps `running`, its epochs up to E-1 and their checkpoint."""

from bench.errors import unknown
from bench.spec import Hyperparams
from bench.store import artefact
from suites import SUITES
from suites.base import Axis, Evaluation, Metric, Prepared, Suite

FORGET = {
    "r1": ["Alice Moreau was born in Lyon in 1931.", "Alice Moreau wrote three books about rivers."],
    "r2": ["Boris Kell sailed to Oslo in 1952.", "Boris Kell painted the harbour at night."],
    "r3": ["Clara Ruiz built a clock tower in Vigo.", "Clara Ruiz kept bees on the roof."],
}
FORGET["s2"] = FORGET["r1"] + FORGET["r2"]
FORGET["s3"] = FORGET["s2"] + FORGET["r3"]
RETAIN = ["Water boils at 100 degrees at sea level.", "Paris is the capital of France.",
          "A week has seven days.", "Rivers flow into the sea."]
INTERRUPT: dict = {}


class ChainSuite(Suite):
    name = "chain-toy"
    summary = "chain-toy: sequences of requests and forget sets of growing size on a tiny random GPT-Neo (tests)"
    models = ("tiny",)
    splits = ("r1", "r2", "r3", "s2", "s3")
    default_splits = ("r1",)
    default_adapters = ("full", "lora")
    default_ranks = (4,)
    default_seeds = (0, 1)
    metrics = (Metric("forget_nll", True, "mean token NLL on the run's forget sentences (nats)"),
               Metric("retain_nll", False, "mean token NLL on the retain sentences (nats)"))
    headline = ("forget_nll", "retain_nll")
    axes = {
        "sust": Axis("requests", {"r1": ("r1", "r2", "r3")}, "sustainability: successive requests",
                     metrics=("retain_nll",), source="tests/helpers/chain_suite.py"),
        "scal": Axis("sizes", {"r1": ("r1", "s2", "s3")}, "scalability: forget sets of growing size",
                     metrics=("forget_nll", "retain_nll")),
    }

    def check_model(self, model: str) -> None:
        if model not in self.models:
            raise unknown(f"model of suite {self.name}", model, self.models)

    def hparams(self, model: str) -> Hyperparams:
        return Hyperparams(lr=1e-3, epochs=2, batch_size=2, effective_batch=2, warmup_epochs=0.0)

    def prepare(self, spec, ctx) -> Prepared:
        # torch and transformers load when a run starts, not when the suite is registered
        import torch

        from bench.data import collate, to_device
        from bench.models import load_tokenizer
        from bench.tiny import TinyShape, build_tiny, train_tokenizer
        from methods.losses import nll_of

        def build(tmp):
            tokenizer = train_tokenizer(FORGET["s3"] + RETAIN, vocab_size=300)
            build_tiny("gpt-neo", tokenizer, TinyShape(hidden=32, layers=2, heads=2, intermediate=64)).save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        path = artefact(ctx.store.artefact_dir(self.name) / "tiny-gpt-neo", build, ready="config.json")
        tokenizer = load_tokenizer(str(path))
        forget, retain = ([{"input_ids": ids, "labels": ids} for ids in tokenizer(texts)["input_ids"]]
                          for texts in (FORGET[spec.split], RETAIN))
        evaluations = [0]

        def evaluate(model, tok) -> Evaluation:
            epoch = evaluations[0]
            evaluations[0] += 1
            if INTERRUPT and (INTERRUPT["split"], INTERRUPT["epoch"]) == (spec.split, epoch):
                raise KeyboardInterrupt(f"killed while evaluating epoch {epoch} of {spec.split}")
            nll = lambda examples: nll_of(model, to_device(collate(examples, tok.pad_token_id), model.device)).item()
            with torch.no_grad():
                return Evaluation({"forget_nll": nll(forget), "retain_nll": nll(retain)})

        return Prepared(model_path=str(path), forget=forget, retain=retain, evaluate=evaluate)


if "chain-toy" not in SUITES:
    SUITES.register(ChainSuite.name, ChainSuite())
