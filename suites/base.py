"""What a suite is: data, models, the references it needs, an evaluator and a stopping rule."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench import fingerprint
from bench.errors import BenchError, parse_list, unknown
from bench.fingerprint import file_fingerprint, model_fingerprint
from bench.metrics import UNIT, Metric  # the kernel's metric definitions; suites import them from bench.metrics
from bench.models import canonical_model_option, check_model_name, on_meta, resolve
from bench.robustness import RECIPE_VALID, canonical, check_recipe, parse
from bench.spec import Hyperparams, RunSpec
from bench.store import ResultStore
from methods import OBJECTIVES
from methods.refusals import SHIPPED


@dataclass
class Context:
    """Runtime settings that do not change results, so they stay out of the RunSpec."""

    store: ResultStore
    log: Callable[[str], None] = print
    data_dir: str | None = None  # local copies of the suite's data files instead of the hub
    device: str = "cpu"
    trust_remote_code: bool = False
    eval_batch_size: int = 64
    checkpoints: bool = True  # save one after every epoch, so killed runs resume
    lm_eval_include: str | None = None  # a directory of local lm-eval task YAMLs
    save_models: bool = False  # export each unlearned model to <run dir>/model


@dataclass
class Evaluation:
    """One evaluation of one model: aggregate metrics (flat name -> number) and per-item values."""

    metrics: dict[str, float]
    items: dict[str, list] = field(default_factory=dict)


@dataclass
class Robustness:
    """What bench/robustness.py needs from a suite for one spec."""

    forgetting_metrics: tuple[str, ...]  # the metrics each stage re-measures
    relearn_hparams: Hyperparams  # the relearning attack's optimiser settings (epochs from the option)
    recovery_items: Callable[[Evaluation], list[float]]  # per forget item: the recovery metric's value
    target_evaluation: Callable[[Callable[[], Any], Any], Evaluation]  # (target loader, tokenizer) -> its evaluation
    probe: Callable[[Any, Any], dict]  # the paraphrase probe: (model, tokenizer) -> metrics


@dataclass
class Prepared:
    """Everything the runner needs for one spec, built by the suite."""

    model_path: str  # the model to unlearn (TOFU: the target fine-tuned on `full`)
    forget: list[dict]  # tokenised examples: input_ids, labels (-100 = not counted)
    retain: list[dict]
    evaluate: Callable[[Any, Any], Evaluation]  # (model, tokenizer) -> Evaluation: every metric
    # the cheaper split of `evaluate` the runner uses after every epoch but the last (option epoch_metrics=read):
    # `per_epoch` computes what a column, a derived metric or the stopping rule reads at every epoch;
    # `complete(model, tokenizer, its evaluation)` adds the rest, at the epoch the run ends. None: no split
    per_epoch: Callable[[Any, Any], Evaluation] | None = None
    complete: Callable[[Any, Any, Evaluation], Evaluation] | None = None
    should_stop: Callable[[dict], bool] | None = None  # the suite's stopping rule on an epoch's metrics
    final_evaluate: Callable[[Any, Any], dict] | None = None  # costly utility, once after the last epoch
    format_answer: Callable[[str], str] | None = None  # how an answer is written after the prompt (IdkDPO's refusals)
    max_length: int | None = None  # the suite's sequence limit, which IdkDPO's refusal examples keep too (None: none)
    robustness: Robustness | None = None  # the robustness stages' hooks (None: the suite has none)
    records: dict = field(default_factory=dict)  # settings and references to write into run.json


AXIS_KINDS = ("sizes", "requests")


@dataclass(frozen=True)
class Axis:
    """A grid axis a suite declares (`Suite.axes`, `bench run --axis NAME`): for each base forget split (what
    `--splits` names with the axis), the splits along the axis in order. Point 1 may be the base split itself (the
    axis then reuses the suite's ordinary run of it) or a split of its own.

    kind `sizes`: every point is unlearned from the suite's start model (MUSE's scalability: forget sets of growing
    size). kind `requests`: point k starts from the final model of point k-1 of the same method, settings and seed
    (MUSE's sustainability: successive unlearning requests; `RunSpec.previous`). `metrics`: what the axis's table
    and plot show (empty: the suite's headline). `title` heads the table; `source` says where the protocol is from."""

    kind: str
    points: dict[str, tuple[str, ...]]
    title: str
    metrics: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self):
        if self.kind not in AXIS_KINDS:
            raise ValueError(f"axis kind {self.kind!r} (expected one of {', '.join(AXIS_KINDS)})")
        for base, points in self.points.items():
            if len(points) < 2 or len(set(points)) != len(points):
                raise ValueError(f"axis points of {base!r} must name two or more splits, each once: {points}")


# Options every suite has that were added after results existed: a spec records them only when set, so
# runs made before them keep their ids (read them with spec.option(name, LATE_OPTIONS[name])).
LATE_OPTIONS: dict[str, Any] = {
    "idk_answers": "",  # IdkDPO's refusals: "" = methods/idk_answers.txt, or a file with one per line
    "robustness": "none",  # robustness stages after the last epoch: none | all | relearn,quant,paraphrase
    "relearn_fraction": 0.5,  # the relearning attack's share of the forget set
    "relearn_epochs": 3,  # the relearning attack's epochs
    # read: after each epoch only what a column, a derived metric or the stopping rule reads (every metric at
    # the last epoch, which the tables report); all: every metric after every epoch (for per-epoch curves)
    "epoch_metrics": "read",
}

# options whose value is a comma list of names (lm-eval tasks, dialogue sets)
LIST_OPTIONS = ("lm_eval_tasks", "lm_eval_extra", "dialogue")

# WMDP's RMU preset trains 3 of 32 blocks' MLP output projections; on a 2-block model that leaves one
# projection (1,856 LoRA parameters on tofu-mini: forget probability 0.997 -> 0.99 after 5 epochs), so the
# mini suites let RMU train what the adapter trains (-> 0.65 LoRA / 0.23 FILA; 3 seeds, docs/methods.md)
MINI_OBJECTIVE_OVERRIDES: dict[str, dict[str, Any]] = {"rmu": {"rmu_params": "all"}}

# the modules every suite's evaluation computes its numbers with (scoring, generation, attacks, extraction, the
# model's body / head split, prompt building and cutting): part of each suite's `evaluator_modules`, so a change
# in any of them recomputes finished runs (tests/test_fingerprint.py checks what evaluators import is covered)
SCORING_MODULES = ("suites.tofu_eval", "suites.privacy", "suites.extraction", "methods.losses", "bench.data",
                   "bench.truncation", "bench.models", "bench.tokenizer")


class Suite(ABC):
    name: str
    summary: str
    models: tuple[str, ...]  # defaults for --models
    splits: tuple[str, ...]  # every forget split the suite knows
    default_splits: tuple[str, ...]
    default_adapters: tuple[str, ...]  # what `--methods all` pairs every objective with
    default_ranks: tuple[int, ...]
    metrics: tuple[Metric, ...]
    headline: tuple[str, ...]  # metric names for leaderboards, most important first
    options: dict[str, Any] = {}  # suite settings that change results; recorded in the RunSpec
    default_seeds: tuple[int, ...] = (0,)  # what `run` uses without --seeds
    claims: str = ""  # name of the claims file in suites/claims/ ("" = none)
    late_options: dict[str, Any] = LATE_OPTIONS  # options added after results existed: recorded only when set
    # what an option with a narrower range than its type's accepts: text that is no value of the type gets the
    # words its range check uses (relearn_epochs=abc and relearn_epochs=0 both expect "a positive integer")
    option_valid: dict[str, str] = RECIPE_VALID
    # options that name a model, each with the words it takes that are not one (`none`): a local path is checked
    # and written one way (bench.models.canonical_model_option), so `./m` and `m/` are one run
    model_options: dict[str, tuple[str, ...]] = {}
    robustness_columns: tuple[str, ...] = ()  # robustness.md's metrics (bench/robustness.py)
    recovery_metric: str | None = None  # what the relearning recovery is a share of
    # the tables' name for the model trained without the forget set: TOFU's retain-only model, MUSE's retrained one
    reference_role: str = "retain"
    reads_data_dir: bool = True  # False: the suite builds its own data and never reads --data-dir
    # True: the suite's own lm-eval tasks (option lm_eval_tasks) are looked up in --lm-eval-include first (tdec)
    reads_lm_eval_include: bool = False
    # True: the forget splits are replicates of one task (TDEC's five sets, which the paper averages), so
    # summaries across result sets (agreement.md) pool them; False: each split is its own task (TOFU's 1/5/10 %)
    splits_are_replicates: bool = False
    # `--until-decided` without --max-seeds: at most this many seeds per method (where splits are replicates, it
    # first adds the suite's forget splits the grid left out; the cap of matched replicates is seeds x splits)
    default_max_seeds: int = 10
    # grid axes over forget splits (`bench run --axis NAME`, Axis above); none by default
    axes: dict[str, Axis] = {}

    def check_split(self, split: str) -> str:
        """Return `split` when the suite knows it. Raises BenchError (via `unknown`) naming the valid splits."""
        if split not in self.splits:
            raise unknown(f"split of suite {self.name}", split, self.splits)
        return split

    def all_options(self) -> dict[str, Any]:
        """Every option a run of this suite can set, with its default: the suite's, `lm_eval_extra`, the late ones."""
        # lm_eval_extra: lm-eval tasks added to any suite's final evaluation (`--lm-eval-tasks a,b`)
        return {**self.options, "lm_eval_extra": "", **self.late_options}

    def check_options(self, given: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        """Validate `--option` values against `all_options` and return the spec's options as sorted (key, value) pairs.

        Each value is converted to its default's type; late options equal to their default are left out, so
        specs (and run ids) made before they existed stay the same. Raises BenchError for an unknown key, a value
        of the wrong type, a negative count, a bad `epoch_metrics`, list entry or robustness stage / recipe.
        """
        merged = self.all_options()
        for key, value in given.items():
            if key not in merged:
                raise unknown(f"option of suite {self.name}", key, merged)
            try:
                merged[key] = type(merged[key])(value)
            except ValueError:  # the wording of the range checks: `max_items=abc` and `max_items=-5` alike
                valid = self.option_valid.get(key) or ("an integer >= 0" if type(merged[key]) is int else "a number")
                raise BenchError(f"bad option {key}={value!r} (expected {valid})") from None
            if type(merged[key]) is int and merged[key] < 0:  # counts and lengths: a negative one would slice from the end
                raise BenchError(f"bad option {key}={value!r} (expected {self.option_valid.get(key) or 'an integer >= 0'})")
        if merged.get("epoch_metrics", "read") not in ("read", "all"):
            raise BenchError(f"bad option epoch_metrics={merged['epoch_metrics']!r} (expected read or all)")

        defaults = self.all_options()
        for key in LIST_OPTIONS:  # a repeated or empty entry is a typo, and would give the same runs another id
            if key in given and str(merged[key]) not in ("", "auto", "none"):
                # one spelling per set of names (each is evaluated on its own, whatever the order): the default's
                # when it is the default's set, else sorted
                names, default = parse_list(str(merged[key]), f"option {key} name"), str(defaults.get(key, ""))
                same = sorted(names) == sorted(default.split(","))
                merged[key] = default if same else ",".join(sorted(names))

        for key, keywords in self.model_options.items():  # given values only: a default means what it says
            if key in given:
                merged[key] = canonical_model_option(key, str(merged[key]), keywords)
        if "robustness" in merged:  # a bad stage name fails before any run; one spelling per stage set
            merged["robustness"] = canonical(merged["robustness"])
        check_recipe(merged)
        late = self.late_options
        return tuple(sorted((k, v) for k, v in merged.items() if k not in late or v != late[k]))

    def options_for_model(self, model: str, options: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
        """`options` (check_options' sorted pairs) as the runs of `model` record them: a value that means, for this
        model, what the default means is written as the default, so both are one run id. The default: unchanged."""
        return options

    def options_for_split(self, split: str, options: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
        """As `options_for_model`, for what a value means on forget split `split`. The default: unchanged."""
        return options

    def unread_option(self, name: str, spec: RunSpec) -> str | None:
        """Why a run of `spec` does not read option `name`, or None when it does. A --option that no run
        of a grid reads is an error; a run that does not read it keeps the spec (and id) it has without it."""
        if name == "idk_answers" and not OBJECTIVES[spec.objective].needs_alternate:
            readers = [o for o in OBJECTIVES.names() if OBJECTIVES[o].needs_alternate]
            return f"only objectives trained towards refusals read it ({', '.join(readers)})"
        if name in ("relearn_fraction", "relearn_epochs"):
            if "relearn" not in parse(spec.option("robustness", LATE_OPTIONS["robustness"])):
                return "only the relearning stage reads it (--option robustness=relearn or all)"
        return None

    @abstractmethod
    def hparams(self, model: str) -> Hyperparams:
        """The published (or, for mini suites, measured) unlearning settings for `model`."""

    @abstractmethod
    def prepare(self, spec: RunSpec, ctx: Context) -> Prepared:
        """Build data, make sure references exist (or fail naming the command that makes them)."""

    # the code that turns a model into this suite's numbers: its fingerprint goes into every run.json
    evaluator_modules: tuple[str, ...] = ("methods.losses", "bench.data", "bench.truncation")

    def input_files(self, spec: RunSpec, ctx: Context) -> dict[str, Path]:
        """The data files a run of `spec` reads, by name (none for data from the hub)."""
        return {}

    def input_models(self, spec: RunSpec, ctx: Context) -> dict[str, str]:
        """The models a run of `spec` reads, by role: the one it unlearns and every reference."""
        return {}

    @staticmethod
    def context_limit(model: str, ctx: Context) -> int | None:
        """The model's positional limit in tokens (its config's max_position_embeddings / n_positions / n_ctx); None
        when its config cannot be read here (offline without a copy: the model's own loading says what to pass)."""
        # transformers loads when this runs, not when the CLI imports the suite
        from transformers import AutoConfig

        source, revision = resolve(model)
        try:
            config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=ctx.trust_remote_code)
        except Exception:  # offline without a cached copy, or not a model
            return None
        return next((v for v in (getattr(config, n, None) for n in ("max_position_embeddings", "n_positions", "n_ctx"))
                     if isinstance(v, int) and v > 0), None)

    def reads_lm_eval_include_for(self, spec: RunSpec) -> bool:
        """True when a run of `spec` looks tasks up in --lm-eval-include: its extra tasks (--lm-eval-tasks), or the
        suite's own lm-eval tasks where the suite reads the directory for them (`reads_lm_eval_include`)."""
        return bool(spec.option("lm_eval_extra")) or (self.reads_lm_eval_include and bool(spec.option("lm_eval_tasks", "")))

    def inputs(self, spec: RunSpec, ctx: Context) -> dict[str, str]:
        """Fingerprints of everything a run of `spec` reads besides its spec: data files (SHA-256), model
        weights (bench.fingerprint.model_fingerprint) and the evaluator's code. run.json records them;
        a finished run whose inputs differ now is recomputed, not reused (bench/runner.py)."""
        files = dict(self.input_files(spec, ctx))
        if OBJECTIVES[spec.objective].needs_alternate:
            files["idk_answers"] = Path(spec.option("idk_answers", "") or SHIPPED)
        if self.reads_lm_eval_include_for(spec) and ctx.lm_eval_include:
            files.update({f"lm_eval_include/{p.name}": p for p in sorted(Path(ctx.lm_eval_include).glob("*"))
                          if p.is_file()})
        out = {f"data/{name}": file_fingerprint(path) for name, path in files.items()}
        out.update({f"model/{role}": model_fingerprint(path) for role, path in self.input_models(spec, ctx).items()})
        out["code/evaluator"] = self.evaluator_code(spec)
        return out

    def evaluator_code(self, spec: RunSpec) -> str:
        """`inputs`' code/evaluator: the fingerprint of the source of every module that evaluates a run of `spec`, with
        every module of the project they import (bench.fingerprint.code_closure: the robustness stages' relearning
        trains with bench.finetune and bench.loop); nothing is imported, so `bench status` can compare it."""
        modules = list(self.evaluator_modules)
        if spec.option("lm_eval_extra"):
            modules.append("bench.lm_eval_bridge")
        if parse(spec.option("robustness", LATE_OPTIONS["robustness"])):
            modules.append("bench.robustness")
        return fingerprint.code_fingerprint(*fingerprint.code_closure(*dict.fromkeys(modules)))

    # per-objective settings of this suite over the objective's own defaults, e.g. {"rmu": {"lr": 1e-3}}
    objective_overrides: dict[str, dict[str, Any]] = {}
    # per-adapter settings of this suite over its per-model ones, e.g. {"lora": {"lr": 2e-4}}
    adapter_hparams: dict[str, dict[str, Any]] = {}

    def objective_hparams(self, model: str, objective: str, adapter: str = "full") -> Hyperparams:
        """The suite's settings for `model`, then its settings for `adapter`, then the objective's defaults,
        then this suite's overrides for the objective."""
        return self.hparams(model).replace(**self.adapter_hparams.get(adapter, {})).replace(
            **OBJECTIVES[objective].defaults, **self.objective_overrides.get(objective, {}))

    def derived_metrics(self, record: dict) -> dict:
        """Per-run numbers computed from a finished run.json's epochs (the report's rules, not the run's)."""
        return {}

    def model_structure(self, spec: RunSpec, ctx: Context):
        """The model a run of `spec` adapts, built from its config on the meta device (modules and shapes, no
        weights), for the checks made before anything is built (bench/preflight.py); None when its config
        cannot be read on this machine (the run's own loading then says what to pass). A TOFU target is a
        fine-tune of `spec.model`: the same structure."""
        # transformers loads when this runs, not when the CLI imports suites.base
        from transformers import AutoConfig

        source, revision = resolve(spec.model)
        try:
            config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=ctx.trust_remote_code)
        except Exception:  # offline without a cached copy, or not a model: not this check's to report
            return None
        from transformers import AutoModelForCausalLM

        return on_meta(lambda: AutoModelForCausalLM.from_config(config, trust_remote_code=ctx.trust_remote_code))

    def check_model(self, model: str) -> None:
        """Raises BenchError when `model` is neither a registered model nor a hub id / local path (bench.models)."""
        check_model_name(model)

    # ---- report sections: bench/report.py writes the leaderboard, robustness table, claims (the `claims` file
    # above), signal and comparisons for every suite, then asks the suite for its own sections. Override these
    # to give a suite its paper-style table and plots; the defaults give none. ----

    def paper_table(self, runs, refs):
        """This suite's paper-style table, a bench.tables.PaperTable (rows, columns, key columns, caption), from
        `runs` (a DataFrame, bench.runs.load_runs: one row per run) and `refs` (a DataFrame,
        bench.runs.reference_rows: the target and reference models' rows); None = no paper table
        (paper_table.md is not written). pandas is not imported here: `import suites` stays light."""
        return None

    def plots(self, runs, refs, out_dir: Path) -> list[Path]:
        """This suite's plots, written into `out_dir` (the suite's results directory) as PNGs; returns their
        paths in the order the HTML page shows them. Default: none."""
        return []


class MissingReference(BenchError):
    pass
