"""Does the forgetting survive? Robustness stages run after the last epoch on the unlearned model.

`--option robustness=none|relearn|quant|paraphrase|all` (or a comma list) switches them on; the
option is recorded in the spec only when set, so runs without it keep their ids. Each stage writes its
forgetting metrics into run.json's `final_metrics` as `<variant>/<metric>`, and its wall time into
`timings`. LoRA / FILA runs are attacked on the merged model (W + s B A), so every adapter faces the
same attack as full fine-tuning.

- relearn (Deeb & Roger 2024, "Do unlearning methods remove information from language model weights?";
  Hu et al. 2024, "Jogging the memory of unlearned LLMs through targeted relearning attacks"):
  fine-tune a copy with plain NLL for `relearn_epochs` epochs (TOFU suites: their fine-tuning recipe's
  learning rate and batch size; TDEC suites: their unlearning settings) on
  (a) `relearn_forget`: a `relearn_fraction` of the forget set drawn by the run's seed; the forgetting
  metrics are measured on the whole forget set, and the *recovery* on the forget items it did not
  train on (knowledge that returns without being shown); (b) `relearn_retain`: as many retain
  examples, never a forget one. recovery = (m_after - m_unlearned) / (m_target - m_unlearned) for the
  suite's recovery metric (TOFU: forget probability; TDEC: memorisation accuracy): 0 = nothing came
  back, 1 = back to the model before unlearning.
- quant (Zhang et al. 2024, "Catastrophic failure of LLM unlearning via quantization"): the merged
  model's Linear weights quantised to 8 and 4 bits with optimum-quanto (weight-only, symmetric,
  per-output-channel int8 / group-wise int4; activations stay in float), evaluated as they are
  (`quant8/...`, `quant4/...`); the target (the model before unlearning) quantised the same way is
  the baseline (`target_quant8/...`, `target_quant4/...`), so the table shows what quantisation alone
  changes.
- paraphrase: the suite's probe of the same knowledge asked differently (TOFU: the forget questions
  paraphrased; TDEC: the forget sequences with their first tokens dropped, `paraphrase/...`).
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from importlib.metadata import version
from typing import Callable

from bench.errors import BenchError
from bench.fingerprint import code_fingerprint, digest, model_fingerprint
from bench.metrics import UNIT, Metric
from bench.store import json_artefact

STAGES = ("relearn", "quant", "paraphrase")
VARIANTS = {"relearn": ("relearn_forget", "relearn_retain"), "quant": ("quant8", "quant4", "target_quant8", "target_quant4"),
            "paraphrase": ("paraphrase", "target_paraphrase")}
DESCRIPTIONS = {"relearn_forget": "after relearning on part of the forget set", "relearn_retain": "after relearning on retain data",
                "quant8": "with 8-bit weights", "quant4": "with 4-bit weights",
                "target_quant8": "of the target with 8-bit weights", "target_quant4": "of the target with 4-bit weights",
                "paraphrase": "on the paraphrase probe", "target_paraphrase": "of the target on the paraphrase probe"}
QUANT_BITS = {"quant8": 8, "quant4": 4}
# the relearning attack's recipe (a suite option each, recorded in the spec when changed)
RECIPE = {"relearn_fraction": 0.5, "relearn_epochs": 3}


def robustness_metrics(metrics: tuple, forgetting: tuple[str, ...], probed: tuple[str, ...], recovery: str,
                       stopping_rule: bool = False) -> tuple:
    """The suite Metrics of every stage: each forgetting metric per variant (same direction, range and
    scale), the probe's metrics, the relearning recovery, and (suites with a stopping rule) whether the
    run still meets it."""
    by_name = {m.name: m for m in metrics}
    out = []
    for variant, desc in DESCRIPTIONS.items():
        for name in (probed if "paraphrase" in variant else forgetting):
            out.append(dataclasses.replace(by_name[name], name=f"{variant}/{name}", summary=f"{by_name[name].summary}, {desc}"))
        if stopping_rule and "paraphrase" not in variant:
            out.append(Metric(f"{variant}/forgotten", True, f"share of runs still meeting the suite's forgetting rule "
                              f"{desc}", bounds=UNIT))
    for variant in VARIANTS["relearn"]:
        out.append(Metric(f"{variant}/recovery", False, f"share of the {recovery} lost to unlearning that comes back "
                          f"{DESCRIPTIONS[variant]}, on forget items it did not train on (0 = none, 1 = all)"))
    return tuple(out)


def parse(value: str) -> tuple[str, ...]:
    """`none` -> (); `all` -> every stage; `relearn,quant` -> those. Unknown names raise one line."""
    value = str(value).strip()
    if value in ("", "none"):
        return ()
    if value == "all":
        return STAGES
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in STAGES]
    if bad or not names:
        raise BenchError(f"bad option robustness={value!r} (expected none, all, or a comma list of {', '.join(STAGES)})")
    return tuple(dict.fromkeys(names))


def canonical(value: str) -> str:
    """The one spelling of a stage list, so that lists running the same stages share a run id: `none` for
    none (also ""), `all`, or the named stages once each in STAGES order (`quant,relearn,relearn` ->
    `relearn,quant`). `all` stays itself: it names every stage of the harness that made the run."""
    stages = parse(value)
    if not stages:
        return "none"
    return "all" if str(value).strip() == "all" else ",".join(s for s in STAGES if s in stages)


def merged_copy(model):
    """A plain model computing what `model` computes: adapters folded into the weights."""
    from bench.checkpoint import merged  # torch: this module is imported by `bench report`, which never loads it

    clone = merged(model)
    return (copy.deepcopy(clone) if clone is model else clone).eval()


def quantized(model, bits: int):
    """A copy of `model` with every Linear weight quantised by optimum-quanto (weight-only)."""
    from optimum.quanto import freeze, qint4, qint8, quantize  # torch, as above

    clone = copy.deepcopy(model)
    quantize(clone, weights={8: qint8, 4: qint4}[bits])
    freeze(clone)
    return clone.eval()


# what the relearning options accept, in the words of every message about them (Suite.option_valid)
RECIPE_VALID = {"relearn_fraction": "a number between 0 and 1, exclusive", "relearn_epochs": "a positive integer"}


def check_recipe(options: dict) -> None:
    """The relearning recipe's options, checked before any run."""
    fraction, epochs = options.get("relearn_fraction", RECIPE["relearn_fraction"]), options.get("relearn_epochs", 1)
    if not 0 < float(fraction) < 1:
        raise BenchError(f"bad option relearn_fraction={fraction} (expected {RECIPE_VALID['relearn_fraction']})")
    if int(epochs) < 1:
        raise BenchError(f"bad option relearn_epochs={epochs} (expected {RECIPE_VALID['relearn_epochs']})")


def relearn_split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(indices relearned on, indices held out), drawn by the run's seed."""
    check_recipe({"relearn_fraction": fraction})
    order = list(range(n))
    random.Random(seed * 7_919 + 1).shuffle(order)
    k = max(1, min(n - 1, round(fraction * n)))
    return sorted(order[:k]), sorted(order[k:])


# recovery is a share of what unlearning removed: undefined when it removed less than this (in the
# metric's units, on the whole forget set), where a ratio of two small differences is noise
MIN_REMOVED = 0.05


def recovery(after: float | None, unlearned: float | None, target: float | None) -> float | None:
    """(after - unlearned) / (target - unlearned): the share of what unlearning removed that came back (0 =
    nothing, 1 = all; Deeb & Roger 2024); None when a value is missing or unlearning removed nothing."""
    if None in (after, unlearned, target) or abs(target - unlearned) < 1e-9:
        return None
    return (after - unlearned) / (target - unlearned)


def removed(record: dict, metric: str | None) -> float | None:
    """How much unlearning lowered `metric` on the whole forget set: epoch 0 (the target) - the last epoch."""
    epochs = [e for e in record.get("epochs", []) if e.get("metrics")]
    if not metric or len(epochs) < 2:
        return None
    before, after = epochs[0]["metrics"].get(metric), epochs[-1]["metrics"].get(metric)
    return None if before is None or after is None else before - after


def screened(record: dict, metric: str | None) -> dict:
    """`final_metrics` with each relearning recovery dropped where unlearning removed less than MIN_REMOVED."""
    final = dict(record.get("final_metrics", {}))
    gone = removed(record, metric)
    if gone is not None and gone < MIN_REMOVED:
        for variant in VARIANTS["relearn"]:
            final.pop(f"{variant}/recovery", None)
    return final


def target_cache(spec, prepared, ctx) -> Callable[[str, Callable[[], dict]], dict]:
    """Numbers of the target under an attack are the same for every run that shares its target, data,
    references and options: computed once, stored under the suite's artefacts."""
    key = digest([model_fingerprint(prepared.model_path), spec.suite, spec.model, spec.split, dict(spec.options),
                  spec.hparams.dtype, prepared.records, code_fingerprint("bench.robustness", "suites.tofu_eval",
                                                                        "suites.privacy", "suites.extraction",
                                                                        "bench.truncation")])

    def cached(name: str, compute: Callable[[], dict]) -> dict:
        return json_artefact(ctx.store.artefact_dir(spec.suite) / "robustness" / f"{key}-{name}.json", compute)

    return cached


def run_stages(stages: tuple[str, ...], model, tokenizer, prepared, spec, ctx, target_loader: Callable,
               timings: dict, unlearned=None) -> dict:
    """Every stage in `stages` on `model` (the unlearned model), as `<variant>/<metric>` numbers.
    `unlearned` is the model's last evaluation (computed again when not given)."""
    from bench.finetune import finetune  # torch, as above

    suite = prepared.robustness
    if suite is None:
        raise BenchError(f"suite {spec.suite} has no robustness stages (--option robustness=none)")

    def keep(metrics: dict) -> dict:
        kept = {k: v for k, v in metrics.items() if k in suite.forgetting_metrics}
        if prepared.should_stop is not None:  # TDEC: are the thresholds still met?
            kept["forgotten"] = float(prepared.should_stop(metrics))
        return kept

    out: dict = {}
    merged = merged_copy(model)
    cached = target_cache(spec, prepared, ctx)
    if "relearn" in stages:
        t0 = time.perf_counter()
        base_eval = unlearned or prepared.evaluate(merged, tokenizer)
        fraction = float(spec.option("relearn_fraction", RECIPE["relearn_fraction"]))
        epochs = int(spec.option("relearn_epochs", RECIPE["relearn_epochs"]))
        trained, held_out = relearn_split(len(prepared.forget), fraction, spec.seed)
        target_items = cached("recovery_items", lambda: {
            "values": suite.recovery_items(suite.target_evaluation(target_loader, tokenizer))})["values"]
        hp = suite.relearn_hparams.replace(epochs=epochs)
        partners = random.Random(spec.seed).sample(range(len(prepared.retain)), min(len(trained), len(prepared.retain)))
        data = {"relearn_forget": [prepared.forget[i] for i in trained],
                "relearn_retain": [prepared.retain[i] for i in partners]}
        for variant, examples in data.items():
            attacked = copy.deepcopy(merged).train().requires_grad_(True)  # adapters froze the base weights
            finetune(attacked, examples, hp, pad_id=tokenizer.pad_token_id, seed=spec.seed)
            evaluation = prepared.evaluate(attacked.eval(), tokenizer)
            out.update({f"{variant}/{k}": v for k, v in keep(evaluation.metrics).items()})
            after = suite.recovery_items(evaluation)
            # the evaluation scores forget example i as its item i, but a capped one (TOFU's max_items) only the
            # first items: the recovery reads the held-out examples it scored
            scored = [i for i in held_out if i < len(after or [])]
            held = lambda values: _mean_at(values, scored)
            out[f"{variant}/recovery"] = recovery(held(after), held(suite.recovery_items(base_eval)), held(target_items))
        out["relearn/examples"] = len(trained)
        out["relearn/held_out_scored"] = len(scored)
        timings["relearn"] = time.perf_counter() - t0
    if "quant" in stages:
        t0 = time.perf_counter()
        for variant, bits in QUANT_BITS.items():
            out.update({f"{variant}/{k}": v for k, v in keep(prepared.evaluate(quantized(merged, bits), tokenizer).metrics).items()})
            target = cached(variant, lambda: keep(prepared.evaluate(quantized(target_loader(), bits), tokenizer).metrics))
            out.update({f"target_{variant}/{k}": v for k, v in target.items()})
        timings["quant"] = time.perf_counter() - t0
    if "paraphrase" in stages:
        t0 = time.perf_counter()
        out.update({f"paraphrase/{k}": v for k, v in suite.probe(merged, tokenizer).items()})
        target = cached("paraphrase", lambda: suite.probe(target_loader(), tokenizer))
        out.update({f"target_paraphrase/{k}": v for k, v in target.items()})
        timings["paraphrase"] = time.perf_counter() - t0
    return out


def describe(stages: tuple[str, ...], spec, prepared) -> dict:
    """What run.json records of the stages: which ran, the relearning recipe, the quantisation library."""
    out: dict = {"stages": list(stages)}
    if "relearn" in stages:
        hp = prepared.robustness.relearn_hparams
        out["relearn"] = {"fraction": float(spec.option("relearn_fraction", RECIPE["relearn_fraction"])),
                          "epochs": int(spec.option("relearn_epochs", RECIPE["relearn_epochs"])), "lr": hp.lr,
                          "batch_size": hp.batch_size, "effective_batch": hp.effective_batch, "objective": "NLL",
                          "on": "the merged model"}
    if "quant" in stages:
        out["quant"] = {"library": f"optimum-quanto {version('optimum-quanto')}",
                        "scheme": "weight-only qint8 (per output channel) and qint4 (group-wise), every Linear; "
                                  "activations in float"}
    return out


def _mean_at(values: list[float] | None, idx: list[int]) -> float | None:
    if not values or not idx:
        return None
    return sum(values[i] for i in idx) / len(idx)
