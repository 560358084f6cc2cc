"""TOFU (Maini et al. 2024): unlearn fictitious authors from a model fine-tuned on all of them.

Data: the locuslab/TOFU hub dataset, one config per file, or a local directory holding the same
`<config>.json` files (`--data-dir`). The model to unlearn is the *target* (fine-tuned on `full`);
forget quality compares its forget-set truth ratios after unlearning with those of the *reference*
model fine-tuned on the matching retain split only. Both are produced by
`python -m bench finetune --suite tofu --model M --split full|retain99|retain95|retain90`, or named
with `--option target=...` / `--option reference=...` (a directory, a hub id, or `published`).
"""

from __future__ import annotations

import functools
import math
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from bench import fingerprint
from bench.errors import BenchError, unknown
from bench.fingerprint import base_record, check_fine_tune, digest, file_fingerprint, model_fingerprint
from bench.metrics import EPOCHS, UNIT, Metric
from bench.models import (hub_reachable, load_model, load_tokenizer, local_model_path, recipe_of, same_tokenizer,
                          split_named)
from bench.phases import phase
from bench.spec import Hyperparams, RunSpec, fit_micro_batch
from bench.store import json_artefact, publish_once, read_json, write_json_atomic
from suites.base import (LATE_OPTIONS, SCORING_MODULES, Context, Evaluation, MissingReference, Prepared, Robustness,
                         Suite)
from bench.robustness import parse, robustness_metrics
from suites.privacy import ATTACKS, attack_metrics, memorisation_metrics, privleak, reference_auc
from suites.tofu_data import check_rows, read_config_file

if TYPE_CHECKING:
    from suites.tofu_eval import EvalSet, QAFormat

HUB_DATASET = "locuslab/TOFU"
RETAIN_OF = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
FINETUNE_SPLITS = ("full", "retain99", "retain95", "retain90")

# Fine-tuned TOFU checkpoints published on the hub (not pinned to a revision by their authors;
# pass a directory or `--option target=org/name` to pin your own copy).
PUBLISHED = {
    ("phi-1.5", "full"): "locuslab/tofu_ft_phi-1.5",
    ("llama2-7b", "full"): "open-unlearning/tofu_Llama-2-7b-chat-hf_full",
    ("llama2-7b", "retain90"): "open-unlearning/tofu_Llama-2-7b-chat-hf_retain90",
    ("llama2-7b", "retain95"): "open-unlearning/tofu_Llama-2-7b-chat-hf_retain95",
    ("llama2-7b", "retain99"): "open-unlearning/tofu_Llama-2-7b-chat-hf_retain99",
}

METRICS = (
    Metric("forget_quality", True, "KS-test p-value of forget-set truth ratios vs the retain-only model", log_scale=True, bounds=UNIT),
    Metric("model_utility", True, "harmonic mean of probability, ROUGE-L recall and truth ratio on retain, real authors, world facts", bounds=UNIT),
    Metric("forget_prob", False, "mean P(answer) on the forget set", bounds=UNIT),
    Metric("forget_rouge", False, "ROUGE-L recall of greedy answers on the forget set", bounds=UNIT),
    Metric("forget_truth_ratio", True, "mean min(R, 1/R) on the forget set", bounds=UNIT),
    Metric("forget_ks_stat", False, "KS statistic behind forget quality", bounds=UNIT),
) + tuple(Metric(f"{s}_{m}", True, f"{m} on {s}", bounds=UNIT) for s in ("retain", "real_authors", "world_facts")
          for m in ("prob", "rouge", "truth_ratio"))

METRICS += attack_metrics("the holdout authors") + memorisation_metrics()
# what each robustness stage re-measures (bench/robustness.py), and those stages' metrics
FORGETTING = ("forget_quality", "forget_prob", "forget_rouge", "forget_truth_ratio", "privleak", "mia_min_k",
              "model_utility")
METRICS += robustness_metrics(METRICS, FORGETTING, probed=("forget_prob", "forget_rouge"), recovery="forget probability")

# Report-time rules over a run's epochs (suite.derived_metrics); each table says which rule a column uses.
UTILITY_FLOOR = 0.9  # utility-constrained forget quality: epochs whose MU >= this fraction of the target's
DERIVED = (
    Metric("fq_constrained", True, f"best forget quality over epochs (0 = the target) whose model utility is at "
           f"least {UTILITY_FLOOR:g} x the target's", log_scale=True, bounds=UNIT),
    Metric("epochs_to_forget", False, "first epoch whose forget ROUGE-L is at most the retain-only model's",
           bounds=EPOCHS, cap_offset=0),
    Metric("epochs_to_forget_or_cap", False, "epochs to forget; a run that never forgot counts as cap + 1",
           bounds=EPOCHS, cap_offset=1),
    Metric("mu_at_forget", True, "model utility at the epoch the run forgot (equal forgetting)", bounds=UNIT),
)


def _seeded(split: str, seed: int) -> str:
    """The directory of a reference fine-tuned with `seed` (seed 0 keeps the plain split name)."""
    return split if seed == 0 else f"{split}-s{seed}"


def finetune_command(suite: str, model: str, split: str, seed: int, ctx: Context) -> str:
    """The `bench finetune` command that makes the reference a run looks for, with every runtime setting
    of this invocation that it needs (data directory, results, device, remote code), quoted for a shell."""
    args = ["python", "-m", "bench", "finetune", "--suite", suite, "--model", model, "--split", split]
    args += ["--seed", str(seed)] if seed else []
    args += ["--results", str(ctx.store.root)]
    args += ["--data-dir", str(ctx.data_dir)] if ctx.data_dir else []
    args += ["--device", ctx.device] if ctx.device != "cpu" else []
    args += ["--trust-remote-code"] if ctx.trust_remote_code else []
    return shlex.join(args)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.rstrip("/").split("/")[-1])


def _recipe_prompt(model: str) -> str | None:
    """The prompt format `model`'s registry recipe fixes (phi: qa, llama2-chat), None where the tokenizer decides."""
    info = recipe_of(model)[0]
    return {"phi": "qa", "llama2-chat": "llama2-chat"}.get(info.family if info else None)


@functools.lru_cache(maxsize=None)
def _tokenizer_prompt(source: str) -> str | None:
    """The format `qa_format` picks from the tokenizer of a local model directory `source` (chat-template where it has
    a chat template, else qa); None for anything else (a hub id, a keyword, a directory without a loadable
    tokenizer): the run reads it when it starts, and a format given for it stays as given."""
    path = local_model_path(source)
    if not path or not (Path(path) / "config.json").is_file():
        return None
    try:
        tokenizer = load_tokenizer(path)
    except (BenchError, OSError, ValueError):
        return None
    return "chat-template" if getattr(tokenizer, "chat_template", None) else "qa"


class Tofu(Suite):
    name = "tofu"
    summary = "TOFU forget 1/5/10 % on Phi-1.5 and Llama-2-7B-chat (GPU)"
    models = ("phi-1.5", "llama2-7b")
    splits = ("forget01", "forget05", "forget10")
    default_splits = splits
    default_adapters = ("lora", "fila")
    default_ranks = (4, 8, 16, 32)
    claims = "tofu"  # suites/claims/tofu.yaml: the paper's claims as comparisons
    # the paper table's columns per split; every metric stays in run.json and the leaderboard
    paper_columns = ("forget_quality", "model_utility", "fq_constrained", "mu_at_forget")
    metrics = METRICS + DERIVED
    robustness_columns = ("forget_quality", "forget_prob", "model_utility")  # robustness.md, first one plotted
    recovery_metric = "forget_prob"  # what the relearning recovery is a share of
    headline = ("forget_quality", "model_utility")
    default_seeds = (0, 1, 2)
    options = {
        "max_items": 0,  # 0 = every item (open-unlearning); 300 = the original TOFU code
        "generation": "new:200",  # `new:N` new tokens, or `total:N` tokens with the prompt (original TOFU)
        "reference_split": "standard",  # standard: retain99/95/90 for forget01/05/10; or a fixed retainXX
        "target": "",  # "" = our fine-tuned artefact; a directory, a hub id, or `published`
        "reference": "",
        "max_length": 512,
        "prompt": "auto",  # auto | qa | llama2-chat | chat-template
        # shared: every seed unlearns the same target (fine-tuned with seed 0); run: the target and retain-only
        # models are fine-tuned with the run's seed, so intervals also cover how the references vary
        "reference_seed": "shared",
    }
    option_valid = {**Suite.option_valid, "max_length": "an integer >= 2"}
    model_options = {"target": ("", "published"), "reference": ("", "published")}
    # privleak's attack: one of suites.privacy.ATTACKS; eval_limit: items per task of --lm-eval-tasks (0 = all)
    late_options = {**LATE_OPTIONS, "privleak_attack": "min_k", "eval_limit": 0}

    def check_options(self, given: dict) -> tuple:
        """See Suite.check_options. Also raises BenchError for an unknown `privleak_attack`, a `generation` other than
        new:N / total:N (N >= 1), or a bad `reference_split`, `prompt` or `reference_seed`, before any model is built.
        """
        options = super().check_options(given)
        attack = dict(options).get("privleak_attack", "min_k")
        if attack not in ATTACKS:
            raise BenchError(f"bad option privleak_attack={attack!r} (expected one of {', '.join(ATTACKS)})")
        generation = str(dict(options).get("generation", self.all_options().get("generation")))
        kind, _, limit = generation.partition(":")
        if kind not in ("new", "total") or not limit.isdigit() or int(limit) < 1:
            raise BenchError(f"bad option generation={generation!r} (expected new:N or total:N with N >= 1)")
        # one spelling per setting (new:03 and new:3 are one run), as integer options are
        values = dict(options)
        if "generation" in values:
            values["generation"] = f"{kind}:{int(limit)}"
            options = tuple(sorted(values.items()))
        # values read only once references are being evaluated: checked here, before any is built
        if values["reference_split"] != "standard" and values["reference_split"] not in FINETUNE_SPLITS[1:]:
            raise BenchError(f"bad option reference_split={values['reference_split']!r} (expected standard, "
                             f"{', '.join(FINETUNE_SPLITS[1:])})")
        if values["prompt"] not in ("auto", "qa", "llama2-chat", "chat-template"):
            raise BenchError(f"bad option prompt={values['prompt']!r} (expected auto, qa, llama2-chat or chat-template)")
        if values["reference_seed"] not in ("shared", "run"):
            raise BenchError(f"bad option reference_seed={values['reference_seed']!r} (expected shared or run)")
        if int(values["max_length"]) < 2:  # a prompt token and an answer token at least
            raise BenchError(f"bad option max_length={values['max_length']} (expected {self.option_valid['max_length']})")
        return options

    def derived_metrics(self, record: dict) -> dict:
        """Utility-constrained forget quality, and when (and with what utility) the run forgot: the
        first epoch whose forget ROUGE-L recall is no higher than the retain-only model's."""
        refs = record.get("suite_records", {})
        target, retain = refs.get("target_metrics", {}), refs.get("reference_metrics", {})
        epochs = [e for e in record.get("epochs", []) if e.get("metrics")]
        out: dict = {}
        mu0 = target.get("model_utility")
        if isinstance(mu0, (int, float)):
            ok = [e for e in epochs if isinstance(e["metrics"].get("forget_quality"), (int, float))
                  and e["metrics"].get("model_utility", -1) >= UTILITY_FLOOR * mu0]
            if ok:
                best = max(ok, key=lambda e: e["metrics"]["forget_quality"])
                out.update(fq_constrained=best["metrics"]["forget_quality"], fq_constrained_epoch=best["epoch"])
        bar = retain.get("forget_rouge")
        if isinstance(bar, (int, float)) and record.get("status") == "finished":
            hit = next((e for e in epochs if e["epoch"] > 0 and e["metrics"].get("forget_rouge", math.inf) <= bar), None)
            cap = record["spec"]["hparams"]["epochs"]
            out.update(forgotten=hit is not None, epochs_to_forget=hit and hit["epoch"],
                       epochs_to_forget_or_cap=hit["epoch"] if hit else cap + 1,
                       mu_at_forget=hit and hit["metrics"].get("model_utility"))
        return out

    # -- report sections (suites/tofu_report.py); imported when a report is written, so that pandas and the
    # table code stay out of `import suites` (the fast CLI's list / show-config) ----------------------------
    def paper_table(self, runs, refs):
        """See Suite.paper_table: the TOFU table of suites/tofu_report.py (Maini et al. 2024's columns)."""
        from suites.tofu_report import paper_table

        return paper_table(self, runs, refs)

    def plots(self, runs, refs, out_dir: Path) -> list[Path]:
        """See Suite.plots: TOFU's plots (suites/tofu_report.py)."""
        from suites.tofu_report import plots

        return plots(self, runs, refs, out_dir)

    # -- settings ------------------------------------------------------------------------------
    def hparams(self, model: str) -> Hyperparams:
        """See Suite.hparams. TOFU's unlearning recipe (Maini et al. 2024): the registry's unlearning lr (else 1e-4), 5
        epochs, batch 4 x 8 accumulation = 32, one warm-up epoch, weight decay 0.01.
        """
        info = recipe_of(model)[0]
        lr = info.unlearn_lr if info else 1e-4
        return Hyperparams(lr=lr, epochs=5, batch_size=4, effective_batch=32, warmup_epochs=1.0, weight_decay=0.01)

    def finetune_hparams(self, model: str) -> Hyperparams:
        """TOFU's fine-tuning recipe for the target and retain-only models: the registry's fine-tuning lr (else 1e-5),
        otherwise as `hparams`.
        """
        info = recipe_of(model)[0]
        lr = info.finetune_lr if info and info.finetune_lr else 1e-5
        return Hyperparams(lr=lr, epochs=5, batch_size=4, effective_batch=32, warmup_epochs=1.0, weight_decay=0.01)

    def reference_split(self, spec: RunSpec) -> str:
        """The retain split the run's retain-only (reference) model is fine-tuned on: the forget split's standard one
        (RETAIN_OF) or the option `reference_split`. Raises BenchError for another value.
        """
        choice = spec.option("reference_split", "standard")
        if choice == "standard":
            return RETAIN_OF[spec.split]
        if choice not in FINETUNE_SPLITS[1:]:
            raise BenchError(f"bad reference_split '{choice}' (expected standard, retain99, retain95 or retain90)")
        return choice

    def auto_prompt(self, model: str, options: dict | None = None) -> str | None:
        """The format `prompt=auto` picks for every model a run of `model` (with the run's `options`) scores, as
        qa_format does: its recipe's (phi: qa, llama2-chat), else that of the tokenizers of the target and the
        retain-only model -- those the user names (`--option target=DIR`, `reference=DIR`), else the suite's own
        (own_reference_prompt) -- when they agree; None where they differ or cannot be known before the run (a hub
        id)."""
        recipe = _recipe_prompt(model)
        if recipe:
            return recipe
        # `auto` resolves per model scored (qa_format on each one's tokenizer): the target and the retain-only model,
        # each the user's named one or else fine-tuned from `model` (its tokenizer); one format only if they agree
        sources = {str((options or {}).get(role) or "") for role in ("target", "reference")}
        formats = {self.own_reference_prompt(model) if source in self.model_options["target"] else _tokenizer_prompt(source)
                   for source in sources}
        return formats.pop() if len(formats) == 1 else None

    def own_reference_prompt(self, model: str) -> str | None:
        """The `auto` format of a target or retain-only model this suite fine-tunes from `model`: its tokenizer's,
        when `model` is a local directory (None for a hub id: known when the run starts)."""
        return _tokenizer_prompt(split_named(model)[1])

    def options_for_split(self, split: str, options: tuple) -> tuple:
        """See Suite.options_for_split: `reference_split` naming the split's standard retain set (retain90 on
        forget10) is `standard`."""
        values = dict(options)
        if values.get("reference_split") == RETAIN_OF.get(split):
            return tuple(sorted({**values, "reference_split": "standard"}.items()))
        return options

    def options_for_model(self, model: str, options: tuple) -> tuple:
        """See Suite.options_for_model: `prompt=qa` for a model whose auto format is qa is `prompt=auto`."""
        values = dict(options)
        if values.get("prompt", "auto") != "auto" and values["prompt"] == self.auto_prompt(model, values):
            return tuple(sorted({**values, "prompt": "auto"}.items()))
        return options

    def qa_format(self, model: str, tokenizer, choice: str = "auto") -> QAFormat:
        """The prompt format of `model` (registry family, else the tokenizer's chat template, else Q/A)."""
        # scipy, torch load when this runs, not when the CLI imports suites.tofu
        from suites.tofu_eval import FORMATS, QAFormat

        if choice == "auto":
            choice = _recipe_prompt(model) or ("chat-template" if getattr(tokenizer, "chat_template", None) else "qa")
        if choice == "chat-template":
            if not getattr(tokenizer, "chat_template", None):
                raise BenchError(f"bad option prompt=chat-template: the tokenizer of '{model}' has no chat template "
                                 f"(expected auto, qa or llama2-chat for it)")
            return QAFormat("chat-template", "", " {a}", chat_tokenizer=tokenizer)
        if choice not in FORMATS:
            raise BenchError(f"bad prompt format '{choice}' (expected auto, qa, llama2-chat or chat-template)")
        return FORMATS[choice]

    # -- data ----------------------------------------------------------------------------------
    def data_dir(self, ctx: Context) -> str | None:
        """The directory the TOFU JSON files are read from (--data-dir), or None to load them from the hub."""
        return ctx.data_dir

    def config_path(self, config: str, ctx: Context) -> Path | None:
        """The local file of a config, None when it comes from the hub."""
        local = self.data_dir(ctx)
        return Path(local) / f"{config}.json" if local else None

    def load_config(self, config: str, ctx: Context) -> list[dict]:
        """The rows of one TOFU configuration, schema-checked (suites/tofu_data.py)."""
        path = self.config_path(config, ctx)
        if path is not None:
            if not path.is_file():
                raise BenchError(f"missing data file {path} (a TOFU data directory holds {config}.json and the other configs)")
            return read_config_file(path, config)
        # datasets loads when this runs, not when the CLI imports suites.tofu
        from datasets import load_dataset

        if not hub_reachable() and os.environ.get("HF_DATASETS_OFFLINE", "0") in ("0", ""):
            raise BenchError(f"the Hugging Face hub cannot be reached to load {HUB_DATASET}; download its JSON files "
                             f"(full.json, forget10.json, ...) elsewhere and pass --data-dir DIR, and the models as "
                             f"--models NAME=DIR (bench run) / --model NAME=DIR (bench finetune) or --option target=DIR")
        try:
            rows = list(load_dataset(HUB_DATASET, config, split="train"))
        except Exception as e:  # datasets raises many types when offline and uncached
            raise BenchError(f"could not load {HUB_DATASET}/{config} ({type(e).__name__}); pass --data-dir DIR "
                             f"holding {config}.json") from None
        return check_rows(rows, config, f"{HUB_DATASET}/{config}")

    def configs_of(self, spec: RunSpec) -> tuple[str, ...]:
        """Every configuration a run of `spec` reads: training, evaluation and membership data."""
        return (spec.split, RETAIN_OF[spec.split], f"{spec.split}_perturbed", "retain_perturbed", "real_authors_perturbed",
                "world_facts_perturbed", "holdout" + spec.split.removeprefix("forget"))

    def check_data(self, spec: RunSpec, ctx: Context) -> None:
        """Read and schema-check every file the run needs, before any model is loaded or trained."""
        for config in self.configs_of(spec):
            self.load_config(config, ctx)

    def eval_sets(self, spec: RunSpec, ctx: Context) -> list[EvalSet]:
        """The four evaluation sets (forget, retain, real authors, world facts), each cut to `max_items` (0 = all), with
        the answer field the truth ratio compares against.
        """
        # scipy, torch load when this runs, not when the CLI imports suites.tofu
        from suites.tofu_eval import EvalSet

        cap = int(spec.option("max_items", 0))

        def take(config):
            items = self.load_config(config, ctx)
            return items[:cap] if cap else items

        return [EvalSet("forget", take(f"{spec.split}_perturbed"), "paraphrased_answer", False),
                EvalSet("retain", take("retain_perturbed"), "paraphrased_answer", False),
                EvalSet("real_authors", take("real_authors_perturbed"), "answer", True),
                EvalSet("world_facts", take("world_facts_perturbed"), "answer", True)]

    def finetune_items(self, split: str, ctx: Context) -> list[dict]:
        """The QA rows the `split` model is fine-tuned on (full or a retain split)."""
        return self.load_config(split, ctx)

    def finetune_configs(self, split: str) -> tuple[str, ...]:
        """The configs `finetune_items` reads."""
        return (split,)

    def finetune_data(self, split: str, ctx: Context) -> dict[str, str]:
        """Fingerprints of the files a fine-tune on `split` reads ({} for hub data)."""
        paths = {f"{c}.json": self.config_path(c, ctx) for c in self.finetune_configs(split)}
        return {name: file_fingerprint(path) for name, path in paths.items() if path is not None}

    def check_fine_tuned(self, out: Path, split: str, ctx: Context) -> None:
        """A reference fine-tuned on other data than the data directory holds now, or from a local base model whose
        weights have changed since (another checkpoint saved at the same path), is never reused."""
        check_fine_tune(out, split, self.finetune_data(split, ctx))

    def privacy_items(self, spec: RunSpec, ctx: Context) -> tuple[list[dict], list[dict]]:
        """Members and non-members of the membership attacks: the forget split's QA pairs and the matching
        holdout config (holdout01/05/10: authors of the same distribution that no model trains on)."""
        cap = int(spec.option("max_items", 0))
        members = self.load_config(spec.split, ctx)
        non_members = self.load_config("holdout" + spec.split.removeprefix("forget"), ctx)
        return (members[:cap], non_members[:cap]) if cap else (members, non_members)

    # -- what a run reads (fingerprinted into run.json) ---------------------------------------------
    evaluator_modules = ("suites.tofu", "suites.tofu_data") + SCORING_MODULES

    def run_configs(self, spec: RunSpec) -> tuple[str, ...]:
        """Every config a run of `spec` reads: training sets, evaluation sets, membership non-members."""
        return (spec.split, RETAIN_OF[spec.split], f"{spec.split}_perturbed", "retain_perturbed",
                "real_authors_perturbed", "world_facts_perturbed", "holdout" + spec.split.removeprefix("forget"))

    def input_files(self, spec: RunSpec, ctx: Context) -> dict[str, Path]:
        """See Suite.input_files: each TOFU config file a run reads that is a local file (none for hub data)."""
        paths = {f"{c}.json": self.config_path(c, ctx) for c in self.run_configs(spec)}
        return {name: path for name, path in paths.items() if path is not None}

    def inputs(self, spec: RunSpec, ctx: Context) -> dict[str, str]:
        """See Suite.inputs. Also raises BenchError (check_fine_tuned) when a reference this harness fine-tuned was
        trained on other data than the data directory holds now, as a run that would build on it does: a finished
        run on that reference is not reused either."""
        for role, split in (("target", "full"), ("reference", self.reference_split(spec))):
            path = Path(self.reference_location(spec, role, split, ctx))
            if not (path / "recipe.json").exists():
                continue
            made_on = read_json(path / "recipe.json").get("split", split)
            if spec.option(role, "") and made_on != split:  # a model the user named: is it one of the right kind?
                raise BenchError(f"option {role}={spec.option(role)} names a model this harness fine-tuned on {made_on} "
                                 f"(its recipe.json), not on {split} (expected the {split} model)")
            if not spec.option(role, ""):
                self.check_fine_tuned(path, split, ctx)
        return super().inputs(spec, ctx)

    def input_models(self, spec: RunSpec, ctx: Context) -> dict[str, str]:
        """See Suite.input_models: where the target and the retain-only model are (not built here)."""
        # where they are, not built: fingerprinting must not train (under torchrun rank 0 does it alone)
        return {"target": self.reference_location(spec, "target", "full", ctx),
                "reference": self.reference_location(spec, "reference", self.reference_split(spec), ctx)}

    # -- reference models ------------------------------------------------------------------------
    def artefact_model_dir(self, model: str, split: str, ctx: Context, seed: int = 0, recipe: Hyperparams | None = None
                           ) -> Path:
        """Where the fine-tuned `split` model of `model` is stored: named by the model and a digest of the recipe, then
        the split (and `seed` when not 0).
        """
        recipe = recipe or self.finetune_hparams(model)
        return ctx.store.artefact_dir(self.name) / "models" / f"{_slug(model)}-{digest([model, recipe.record()])}" / \
            _seeded(split, seed)

    def base_model(self, model: str, ctx: Context) -> str:
        """What fine-tuning starts from."""
        return model

    def reference_model(self, spec: RunSpec, role: str, split: str, ctx: Context) -> str:
        """The target (role `target`, split `full`) or retain-only model (role `reference`)."""
        named = spec.option(role, "")
        if named == "published":
            info = recipe_of(spec.model)[0]
            if info is None or (info.name, split) not in PUBLISHED:
                raise MissingReference(f"no published TOFU {split} checkpoint for '{spec.model}' "
                                       f"(published: {', '.join(f'{m}/{s}' for m, s in PUBLISHED)})")
            return PUBLISHED[(info.name, split)]
        if named:
            return named
        seed = self.reference_seed(spec)
        path = self.artefact_model_dir(spec.model, split, ctx, seed)
        if not (path / "config.json").exists():
            self.missing_reference(spec, split, seed, path, ctx)
        self.check_fine_tuned(path, split, ctx)
        return str(path)

    def check_prompt_of_references(self, spec: RunSpec, prompt: str, paths: dict[str, str], tokenizer) -> None:
        """Raises BenchError when a reference this harness fine-tuned learnt its answers in another prompt format than
        the run's (option `prompt`): it would be scored, and unlearned, on prompts it never saw. Its recipe.json
        names the format; one without the field was fine-tuned in the model's `auto` format."""
        for role, path in paths.items():
            recipe = Path(path) / "recipe.json"
            if spec.option(role, "") or not recipe.exists():  # a model the user named: its format is theirs to know
                continue
            learnt = read_json(recipe).get("prompt") or self.qa_format(spec.model, tokenizer).name
            if learnt != prompt:
                raise BenchError(f"option prompt={spec.option('prompt', 'auto')} scores in the {prompt} format, but the "
                                 f"{role} model at {path} was fine-tuned in the {learnt} format; leave prompt at auto, or "
                                 f"pass --option {role}=DIR with a model fine-tuned in the {prompt} format")

    def reference_location(self, spec: RunSpec, role: str, split: str, ctx: Context) -> str:
        """Where `reference_model` finds the model, without building or checking it (for fingerprints)."""
        named = spec.option(role, "")
        if named == "published":
            return PUBLISHED.get((spec.model, split), "published")
        return named or str(self.artefact_model_dir(spec.model, split, ctx, self.reference_seed(spec)))

    def reference_seed(self, spec: RunSpec) -> int:
        """The seed of the reference models a run uses: 0 (`shared`) or the run's own seed (`run`).
        Raises BenchError for another value.
        """
        choice = spec.option("reference_seed", "shared")
        if choice not in ("shared", "run"):
            raise BenchError(f"bad reference_seed '{choice}' (expected shared or run)")
        return spec.seed if choice == "run" else 0

    def missing_reference(self, spec: RunSpec, split: str, seed: int, path: Path, ctx: Context) -> None:
        """Raise MissingReference (a BenchError) naming the missing model, where it was looked for and the
        `bench finetune` command that makes it (or `--option ...=published` where a published model exists).
        """
        info = recipe_of(spec.model)[0]
        hint = f" or --option {'target' if split == 'full' else 'reference'}=published" \
            if info and (info.name, split) in PUBLISHED else ""
        raise MissingReference(f"no {split} model of {spec.model} for suite {self.name} at {path}; produce it with: "
                               f"{finetune_command(self.name, spec.model, split, seed, ctx)}{hint}")

    def finetune(self, model: str, split: str, ctx: Context, seed: int = 0, overrides: dict | None = None) -> Path:
        """Fine-tune `model` on `split` with the paper's recipe (`overrides`: hyperparameters changed from it);
        cached by (model, recipe, split)."""
        # torch loads when this runs, not when the CLI imports suites.tofu
        from bench.finetune import finetune

        if split not in FINETUNE_SPLITS:
            raise unknown("fine-tune split", split, FINETUNE_SPLITS)
        hp = fit_micro_batch(self.finetune_hparams(model).replace(**(overrides or {})), overrides or {})
        out = self.artefact_model_dir(model, split, ctx, seed, hp)
        if (out / "config.json").exists():
            self.check_fine_tuned(out, split, ctx)
            return out
        data = self.finetune_data(split, ctx)  # what it is trained on, checked whenever it is reused
        base = self.base_model(model, ctx)
        started_from = base_record(base)  # checked whenever it is reused, as the data are
        net, tokenizer = load_model(base, dtype=hp.dtype, trust_remote_code=ctx.trust_remote_code, device=ctx.device)
        fmt = self.qa_format(model, tokenizer)
        examples = [fmt.example(tokenizer, it["question"], it["answer"], int(self.options["max_length"]))
                    for it in self.finetune_items(split, ctx)]
        ctx.log(f"fine-tuning {model} on {self.name}/{split}: {len(examples)} examples, {hp.epochs} epochs")
        finetune(net, examples, hp, pad_id=tokenizer.pad_token_id, seed=seed, progress=ctx.log)

        def save(tmp: Path) -> None:
            net.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json_atomic(tmp / "recipe.json", {"model": model, "split": split, "hparams": hp.record(), "seed": seed,
                                                    "data": data, "prompt": fmt.name, "base": started_from})

        return publish_once(out, save)

    def evaluation_key(self, model_path: str, spec: RunSpec, sets, privacy) -> str:
        """What a stored evaluation was computed from: the model's weights, every item it scored, the
        options that change scores, the prompt format, and the evaluator's code."""
        options = {k: v for k, v in spec.options if k in ("max_items", "generation", "max_length", "prompt")}
        return digest([model_fingerprint(model_path), spec.model, options, [(s.name, list(s.items), s.base, s.normalised_probability)
                                                                           for s in sets], privacy,
                       fingerprint.code_fingerprint(*SCORING_MODULES)])

    def evaluation_of(self, model_path: str, spec: RunSpec, ctx: Context) -> Evaluation:
        """Evaluation of a fixed model on this spec's eval sets, computed once and stored as JSON."""
        # scipy, torch load when this runs, not when the CLI imports suites.tofu
        from suites.tofu_eval import evaluate_sets

        options = {k: v for k, v in spec.options if k in ("max_items", "generation", "max_length", "prompt")}
        sets, privacy = self.eval_sets(spec, ctx), self.privacy_items(spec, ctx)
        path = ctx.store.artefact_dir(self.name) / "evals" / f"{self.evaluation_key(model_path, spec, sets, privacy)}.json"

        def compute() -> dict:
            net, tokenizer = load_model(model_path, trust_remote_code=ctx.trust_remote_code, device=ctx.device)
            metrics, items = evaluate_sets(net, tokenizer, sets, self.qa_format(spec.model, tokenizer, spec.option("prompt", "auto")),
                                           spec.option("generation"), int(spec.option("max_length")), ctx.eval_batch_size,
                                           privacy=privacy)
            return {"model": model_path, "split": spec.split, "options": options, "metrics": metrics, "items": items}

        stored = json_artefact(path, compute)
        return Evaluation(stored["metrics"], stored["items"])

    # -- one run -------------------------------------------------------------------------------
    def prepare(self, spec: RunSpec, ctx: Context) -> Prepared:
        """See Suite.prepare. Finds the target and retain-only models (MissingReference names the `bench finetune`
        command), checks the data and evaluates both before training; the evaluations give TOFU's metrics per epoch
        and forget quality (KS test against the retain-only model's truth ratios, Maini et al. 2024), privleak and the
        attacks at the end. Raises BenchError when the two models' tokenizers differ, the forget set is empty or the
        paraphrase stage has no paraphrased questions.
        """
        # scipy, torch load when this runs, not when the CLI imports suites.tofu
        from suites.tofu_eval import evaluate_sets, forget_quality

        target = self.reference_model(spec, "target", "full", ctx)
        ref_split = self.reference_split(spec)
        reference = self.reference_model(spec, "reference", ref_split, ctx)

        with phase("check_data"):
            self.check_data(spec, ctx)  # a bad file fails here, not after minutes of reference evaluation
        # both models resolved before any evaluation; the retain-only model scores the Reference attack
        # and the truth ratios on the unlearned model's token ids, so it must share its tokenizer
        tokenizer = load_tokenizer(target, ctx.trust_remote_code, offline_hint="pass --option target=DIR")
        if not same_tokenizer(load_tokenizer(reference, ctx.trust_remote_code, offline_hint="pass --option reference=DIR"),
                              tokenizer):
            raise BenchError(f"the retain-only model '{reference}' has another tokenizer than the target '{target}'; "
                             f"the Reference attack compares NLLs of the same token ids: pass --option reference=DIR "
                             f"with a model fine-tuned from the same base")
        fmt = self.qa_format(spec.model, tokenizer, spec.option("prompt", "auto"))  # before minutes of evaluation
        self.check_prompt_of_references(spec, fmt.name, {"target": target, "reference": reference}, tokenizer)
        with phase("reference_evaluation"):  # stored: computed by the first run that needs it
            ref_eval = self.evaluation_of(reference, spec, ctx)
        ref_ratios = ref_eval.items["forget"]["truth_ratio"]
        max_length = int(spec.option("max_length"))

        def encode(items):
            return [fmt.example(tokenizer, it["question"], it["answer"], max_length) for it in items]

        forget = encode(self.load_config(spec.split, ctx))
        retain = encode(self.load_config(RETAIN_OF[spec.split], ctx))
        if not forget:
            raise BenchError(f"the forget set {spec.split} is empty")
        sets, privacy = self.eval_sets(spec, ctx), self.privacy_items(spec, ctx)
        attack = spec.option("privleak_attack", "min_k")

        def against_references(metrics: dict, items: dict) -> dict:
            """What needs the retain-only model: forget quality, and with the attacks' scores the Reference
            attack and privleak."""
            out = dict(metrics)
            out["forget_quality"], out["forget_ks_stat"] = forget_quality(items["forget"]["truth_ratio"], ref_ratios)
            if "mia" in items:
                out["mia_reference"] = reference_auc(items["mia"], ref_eval.items["mia"]["nll"])
                out["privleak"] = privleak(out[f"mia_{attack}"], ref_auc[attack])
            return out

        # the retain-only model's AUCs (its Reference scores are all 0: AUC 0.5), so its own privleak is 0
        ref_auc = {**{a: ref_eval.metrics[f"mia_{a}"] for a in ATTACKS if a != "reference"}, "reference": 0.5}
        ref_metrics = against_references(ref_eval.metrics, ref_eval.items)

        from suites.tofu_eval import encoding_cache

        encoded = encoding_cache(target, fmt)  # the eval sets' tokenised candidates, reused by every epoch and run

        def per_epoch(model, tok) -> Evaluation:
            """What the columns and derived metrics read at every epoch: forget quality, model utility and
            forget ROUGE (fq_constrained, epochs_to_forget, mu_at_forget); the attacks only at the last."""
            metrics, items = evaluate_sets(model, tok, sets, fmt, spec.option("generation"), max_length,
                                           ctx.eval_batch_size, cache=encoded)
            return Evaluation(against_references(metrics, items), items)

        def complete(model, tok, evaluation: Evaluation) -> Evaluation:
            # scipy, torch load when this runs, not when the CLI imports suites.tofu
            from suites.tofu_eval import privacy_scores

            metrics, mia = privacy_scores(model, tok, privacy, fmt, max_length, ctx.eval_batch_size, encoded)
            items = {**evaluation.items, "mia": mia}
            return Evaluation(against_references({**evaluation.metrics, **metrics}, items), items)

        def evaluate(model, tok) -> Evaluation:
            return complete(model, tok, per_epoch(model, tok))

        with phase("target_evaluation"):
            target_eval = self.evaluation_of(target, spec, ctx)
        target_metrics = against_references(target_eval.metrics, target_eval.items)

        if "paraphrase" in parse(spec.option("robustness", "none")) and \
                not all(it.get("paraphrased_question") for it in sets[0].items):  # fail before training, not after
            raise BenchError(f"the {spec.split}_perturbed items carry no paraphrased_question; the paraphrase "
                             "stage needs them (--option robustness=relearn,quant leaves it out)")

        def probe(model, tok) -> dict:
            # scipy, torch load when this runs, not when the CLI imports suites.tofu
            from suites.tofu_eval import paraphrase_probe

            return paraphrase_probe(model, tok, sets[0].items, fmt, spec.option("generation"), max_length,
                                    ctx.eval_batch_size)

        robustness = Robustness(
            forgetting_metrics=FORGETTING, relearn_hparams=self.finetune_hparams(spec.model),
            recovery_items=lambda ev: ev.items["forget"]["prob"],
            target_evaluation=lambda load, tok: Evaluation(target_metrics, target_eval.items), probe=probe)
        return Prepared(model_path=target, forget=forget, retain=retain, evaluate=evaluate, should_stop=None,
                        per_epoch=per_epoch, complete=complete,
                        format_answer=fmt.answer, max_length=max_length, robustness=robustness,
                        records={"target": target, "reference": reference, "reference_split": ref_split,
                                 "target_metrics": target_metrics, "reference_metrics": ref_metrics,
                                 "eval_items": {s.name: len(s.items) for s in sets}})
