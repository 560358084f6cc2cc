"""`python -m bench`: list, show-config, run, finetune, status, report."""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

from bench import distributed
from bench.dispatch import Runtime, cancel, load_profile, submit
from bench.distributed import RankLost
from bench.errors import BenchError
from bench.grid import add_setting, expand, parse_assignments
from bench.models import MODELS, canonical_model, recipe_of
from bench.pool import auto_workers, run_grid_parallel
from bench.preflight import check_device, check_grid, check_specs
from bench.quiet import quiet_libraries
from bench.decide import CLAIM_NEEDED, EPOCHS_NEEDED, PLAN_NEEDED, RUNS_NEEDED, SETTINGS_NEEDED
from bench.sequential import Plan, label_base, seed_inert, undecided_methods
from bench.spec import LOOP, fit_micro_batch
from bench.store import ResultStore
from methods import ADAPTERS, OBJECTIVES
from suites import SUITES, Context

log = logging.getLogger("bench")

EXAMPLES = {
    "list": "python -m bench list",
    "show-config": "python -m bench show-config --suite tofu-mini --methods ihl+fila,ga+lora --ranks 4,8",
    "run": "python -m bench run --suite tofu-mini --methods all",
    "finetune": "python -m bench finetune --suite tofu --model phi-1.5 --split full --data-dir ~/data/TOFU",
    "status": "python -m bench status --suite tofu-mini",
    "cancel": "python -m bench cancel --suite tdec --sweep 20261123-101500-4242",
    "report": "python -m bench report --suite tofu-mini --compare ihl+fila,ga+lora",
    "perf": "python -m bench perf --quick",
}


class _Parser(argparse.ArgumentParser):
    """argparse with the harness's one-line errors: a BenchError (`error: bad --threads 'abc' (expected an
    integer >= 1)`, exit 2) instead of the usage block (`--help` shows it)."""

    def error(self, message):
        # a value a type converter below refused already says which flag and what is valid
        raise BenchError(re.sub(r"^argument [^:]+: (?=bad --)", "", message))


def _integer(flag: str, low: int, high: int | None = None):
    """argparse type: an integer from `low` (to `high`); text that is none and a number outside say the same
    valid range: `bad --threads 'abc' (expected an integer >= 1)`, `bad --threads 0 (expected an integer >= 1)`."""
    valid = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad {flag} {text!r} (expected {valid})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"bad {flag} {value} (expected {valid})")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m bench", description="unlearning-bench: compare LLM unlearning methods.",
                                  epilog="example: " + EXAMPLES["run"])
    top.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=f"example: {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only warnings and errors")
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
        return p

    def results(p):
        p.add_argument("--results", default="results", metavar="DIR", type=_results_dir,
                       help="results directory (default: results/)")

    def grid(p):
        p.add_argument("--suite", required=True, help="suite name (see `list`)")
        p.add_argument("--methods", default="all",
                       help="comma-separated OBJECTIVE[+ADAPTER] (ihl+fila, gd+lora, npo), `all` (every objective "
                            "with the suite's default adapters), `paper` (GA, GD, IHL x full, LoRA, FILA) or "
                            "`baselines` (the literature's ten objectives, full fine-tuning); entries add up, each "
                            "method once (`all,ga` = all and GA with full fine-tuning)")
        p.add_argument("--models", help="comma-separated registry names, hub ids or directories; NAME=DIR gives a "
                                        "directory the registry recipe of NAME, e.g. phi-1.5=/models/phi-1_5 "
                                        "(default: the suite's)")
        p.add_argument("--splits", help="comma-separated forget splits, or `all` (default: the suite's); with --axis, "
                                        "the axis's base splits")
        p.add_argument("--axis", metavar="NAME",
                       help="a grid axis the suite declares (`list` names them): its forget splits in order, e.g. "
                            "MUSE's scal (forget sets of growing size, each from the target) or sust (successive "
                            "requests, each from the previous one's model)")
        p.add_argument("--ranks", help="LoRA / FILA ranks, e.g. 4,8,16,32 (default: the suite's)")
        p.add_argument("--seeds", help="comma-separated seeds (default: the suite's: 0,1,2 for tofu and tofu-mini, 0 for tdec and tdec-mini)")
        p.add_argument("--lr", help="learning rate (overrides the suite's per-model default)")
        p.add_argument("--epochs", help="unlearning epochs")
        p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                       help="any hyperparameter, e.g. --set retain_weight=0.5 (repeatable)")
        p.add_argument("--option", action="append", metavar="NAME=VALUE", default=[],
                       help="a suite option, e.g. --option max_items=300 (repeatable; `show-config` lists them)")
        p.add_argument("--lm-eval-tasks", metavar="A,B", help="lm-eval tasks added to the final evaluation of every run")

    def runtime(p):
        p.add_argument("--lm-eval-include", metavar="DIR", help="a directory of local lm-eval task YAMLs (for --lm-eval-tasks)")
        p.add_argument("--data-dir", metavar="DIR", help="local copies of the suite's data files (no hub access)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
        p.add_argument("--threads", type=_integer("--threads", 1), default=None, help="torch CPU threads (default: 1 on CPU; see README)")
        p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub (off by default)")

    command("list", "list suites, methods and models, one line each")
    p = command("show-config", "print the fully resolved run specs a command line would produce (hparams: what each "
                               "run reads; hparams_not_read: recorded in the spec for its id only), after the checks "
                               "`run` makes that need no weights")
    grid(p)
    results(p)
    p = command("run", "run a grid of unlearning runs; finished runs are skipped")
    grid(p)
    results(p)
    runtime(p)
    p.add_argument("--force", action="store_true", help="recompute runs that are already finished")
    p.add_argument("--save-models", action="store_true",
                   help="export every unlearned model (adapters merged) to <run dir>/model, loadable with from_pretrained")
    p.add_argument("--launcher", default="local", choices=("local", "local-jobs", "slurm"),
                   help="local: in this process (default); local-jobs: parallel processes through submitit; "
                        "slurm: one SLURM job per run, as job arrays")
    p.add_argument("--profile", metavar="YAML", help="cluster profile for --launcher slurm, e.g. slurm/a100.yaml")
    p.add_argument("--workers", default="auto", metavar="N",
                   help="--launcher local: runs at a time, one process each (default auto: one per CPU core, at most 8; "
                        "1 on a GPU and under torchrun)")
    p.add_argument("--until-decided", action="store_true",
                   help="after the grid, add replicates to the methods of every claim comparison still inconclusive "
                        "(where forget sets are replicates, the suite's other sets first; then one seed at a time), "
                        "until all are decided or --max-seeds (alpha spent per look: docs/statistics.md)")
    p.add_argument("--max-seeds", default=None, metavar="N",
                   help="with --until-decided: at most N seeds per method (default: the suite's; 10, 1 for tdec-mini)")
    p = command("finetune", "fine-tune a reference model (TOFU target on `full`, or retain-only)")
    p.add_argument("--suite", required=True)
    p.add_argument("--model", required=True, help="a registry name, hub id, directory, or NAME=DIR")
    p.add_argument("--split", required=True, help="full, retain99, retain95 or retain90")
    p.add_argument("--seed", type=_integer("--seed", 0, 2 ** 32 - 1), default=0, help="data-order seed (references per seed: --option reference_seed=run)")
    p.add_argument("--lr", help="learning rate (overrides the recipe of the model)")
    p.add_argument("--epochs", help="fine-tuning epochs")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="any fine-tuning hyperparameter, e.g. --set batch_size=8 (repeatable)")
    results(p)
    runtime(p)
    p = command("status", "show every run of a suite: pending, running, finished, failed")
    p.add_argument("--suite", help="only this suite")
    results(p)
    p = command("perf", "measure the performance targets side by side; writes results/perf.md")
    p.add_argument("--quick", action="store_true", help="one repetition on tiny random models (a smoke test)")
    p.add_argument("--real-data", metavar="DIR",
                   help="instead: time and peak memory per phase of real-shaped TDEC and TOFU runs on the real files in "
                        "DIR (tdec/, tofu/, gpt2-tokenizer/; as UNLEARNING_BENCH_DATA); writes results/perf-real.md")
    p.add_argument("--real-sequences", type=_integer("--real-sequences", 1, 32), default=8, metavar="N",
                   help="with --real-data: TDEC forget sequences scored (1-32; the cost of 32 is extrapolated)")
    p.add_argument("--real-items", type=_integer("--real-items", 0), default=0, metavar="N",
                   help="with --real-data: TOFU items per evaluation set (0 = the real counts)")
    p.add_argument("--real-limit", type=_integer("--real-limit", 1), default=64, metavar="N",
                   help="with --real-data: rows of each TDEC utility file (>= 1)")
    results(p)
    p = command("cancel", "cancel the SLURM jobs of a sweep (the newest, or --sweep ID)")
    p.add_argument("--suite", required=True)
    p.add_argument("--sweep", help="sweep id (see `status`)")
    results(p)
    p = command("report", "leaderboards, paper-style tables and plots from every run.json of a suite")
    p.add_argument("--suite", required=True)
    p.add_argument("--epoch", default="last",
                   help="which epoch a table reports: last (default), an epoch number, or select:METRIC (the epoch "
                        "best on METRIC, which must not be a reported column)")
    p.add_argument("--compare", metavar="A,B[;C,D]",
                   help="pairwise comparison over seeds: difference, 95%% interval, paired t-test (e.g. ihl+fila,ga+lora)")
    p.add_argument("--claims", metavar="YAML", help="a claims file to evaluate (default: the suite's own, if any)")
    p.add_argument("--against", metavar="DIR", help="another results directory (another machine, commit or thread count): "
                                                    "do its runs draw the same conclusions? writes agreement.md")
    results(p)
    return top


def _hparam_overrides(args) -> dict[str, str]:
    hp = parse_assignments(args.set, "--set")
    add_setting(hp, "lr", args.lr, "--lr", "--set")
    add_setting(hp, "epochs", args.epochs, "--epochs", "--set")
    return hp


def _specs(args):
    hp = _hparam_overrides(args)
    options = parse_assignments(args.option, "--option")
    add_setting(options, "lm_eval_extra", args.lm_eval_tasks or None, "--lm-eval-tasks", "--option")
    return expand(args.suite, args.methods, args.models, args.splits, args.ranks, args.seeds, hp, options, args.axis)


def _check_runtime(args, specs=()) -> None:
    """Runtime flags that nothing of this command would read are errors, not silent no-ops."""
    if getattr(args, "data_dir", None) and not SUITES[args.suite].reads_data_dir:
        raise BenchError(f"--data-dir is read by no run of suite {args.suite} (it generates its own data)")
    if getattr(args, "lm_eval_include", None) and not any(SUITES[s.suite].reads_lm_eval_include_for(s) for s in specs):
        readers = ", ".join(n for n, suite in SUITES.items() if suite.reads_lm_eval_include)
        raise BenchError(f"--lm-eval-include is read only with --lm-eval-tasks (the tasks it defines), or by the lm-eval "
                         f"tasks of suite {readers} (option lm_eval_tasks)")
    if getattr(args, "data_dir", None) and not Path(args.data_dir).is_dir():
        what = "not a directory" if Path(args.data_dir).exists() else "no such directory"
        raise BenchError(f"bad --data-dir {args.data_dir!r}: {what} (expected the directory of the suite's local data files)")
    if getattr(args, "profile", None) and getattr(args, "launcher", "local") == "local":
        raise BenchError("--profile is read only by --launcher slurm or local-jobs")
    if getattr(args, "max_seeds", None) is not None:  # errors quote the text typed
        text = args.max_seeds
        if not getattr(args, "until_decided", False):
            raise BenchError(f"--max-seeds {text} is read only with --until-decided")
        try:
            args.max_seeds = int(text)
        except ValueError:
            raise BenchError(f"bad --max-seeds {text!r} (expected an integer >= 1)") from None
        if args.max_seeds < 1:
            raise BenchError(f"bad --max-seeds {text} (expected an integer >= 1)")
        args.max_seeds_text = text
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise BenchError(f"bad --threads {args.threads} (expected an integer >= 1)")
    if getattr(args, "device", None):
        # torch loads when this runs, not when the CLI imports bench.cli
        import torch

        try:
            torch.device(args.device)
        except RuntimeError:
            raise BenchError(f"bad --device {args.device!r} (expected cpu, cuda, cuda:N, mps)") from None


def _results_dir(text: str) -> str:
    """--results as typed; an empty one (`--results ""`, an unset variable) would write into the working directory."""
    if not text:
        raise BenchError("bad --results '' (expected a directory; empty would write into the working directory)")
    return text


def _context(args):
    # torch loads when this runs, not when the CLI imports bench.cli
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and distributed.active():  # one device per rank
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    if device == "cpu":
        # Tiny models on a shared 2-core machine ran 3-8x slower with 2 threads than with 1.
        torch.set_num_threads(args.threads or 1)
    elif args.threads:
        torch.set_num_threads(args.threads)
    return Context(store=ResultStore(args.results), log=log.info, data_dir=args.data_dir, device=device,
                   trust_remote_code=args.trust_remote_code, lm_eval_include=args.lm_eval_include,
                   save_models=getattr(args, "save_models", False))


def cmd_list(args) -> int:
    """`bench list`: print the registered suites, objectives, adapters and models; return exit code 0."""
    for name, suite in SUITES.items():
        axes = "".join(f"; axis {a} ({x.kind}: {', '.join('>'.join(p) for p in x.points.values())})"
                       for a, x in suite.axes.items())
        print(f"suite      {name:14s} {suite.summary}; splits {','.join(suite.splits)}; models {','.join(suite.models)}{axes}")
    for name, obj in OBJECTIVES.items():
        print(f"objective  {name:14s} {obj.summary}")
    for name, ad in ADAPTERS.items():
        print(f"adapter    {name:14s} {ad.summary}")
    for name, info in MODELS.items():
        print(f"model      {name:14s} {info.hub_id} (unlearning lr {info.unlearn_lr:g}){'; ' + info.note if info.note else ''}")
    return 0


def cmd_show_config(args) -> int:
    """`bench show-config`: print the grid's run specs as JSON (with run id and model recipe); return 0.

    Raises BenchError for a bad grid (unknown suite, method, option or setting).
    """
    specs = _specs(args)
    # the checks of `run` that need no weights, data or device (ranks, RMU's layer, robustness libraries): a
    # config that `run` would refuse is not printed as if it were runnable
    check_specs(specs, Context(store=ResultStore(args.results), log=log.info), structure=_structure_given(args, specs))
    print(json.dumps([_shown(s) for s in specs], indent=1))
    print(f"# {len(specs)} runs", file=sys.stderr)
    return 0


def _structure_given(args, specs) -> bool:
    """Whether this command line gives what the structural checks check: models, ranks, or a setting of an
    objective with a structural check (RMU's layer). The suites' own models, ranks and settings pass them
    (tests/test_settings.py checks every suite's default grid), so show-config checks them without loading
    the model stack (a few seconds) only when a value could fail."""
    given = set(_hparam_overrides(args))
    return bool(args.models or args.ranks or any(
        OBJECTIVES[s.objective].check is not None and given & set(OBJECTIVES[s.objective].uses) for s in specs))


def _shown(spec) -> dict:
    """A spec as show-config prints it: `hparams` = every setting the run reads, by the rule `--set` applies
    (Objective.reads_hparam: the loop's, and its objective's under their conditions), at its value;
    `hparams_not_read` = what the spec records (and its id hashes) that the run does not read (npo_beta in a
    GA spec, a record the first results fixed); `model_recipe` = the registry recipe the model gets, and why."""
    shown = {"run_id": spec.run_id, **spec.to_dict()}
    reads = OBJECTIVES[spec.objective].reads_hparam
    shown["hparams"] = {name: value for name, value in spec.hparams.items() if reads(name, spec.hparams)}
    unread = {name: value for name, value in spec.to_dict()["hparams"].items() if name not in shown["hparams"]}
    if unread:
        shown["hparams_not_read"] = unread
    shown["options"] = shown.pop("options")  # keep the order the specs have always been printed in
    return {**shown, "model_recipe": _recipe_text(*recipe_of(spec.model))}


def cmd_run(args) -> int:
    """`bench run`: check the grid, then run it here (or under torchrun), dispatch it to SLURM, or run until decided.

    Returns the exit code: 0 when every run finished or was already done, 1 when any failed. Raises BenchError
    for a bad grid, bad --workers, or a launcher combination that cannot work, before any run starts.
    """
    distributed.timeout_seconds()  # a bad BENCH_DIST_TIMEOUT fails here, before anything is written or submitted
    specs = _specs(args)
    _check_runtime(args, specs)
    if args.workers != "auto" and (not args.workers.isdigit() or int(args.workers) < 1):
        raise BenchError(f"bad --workers {args.workers!r} (expected auto or an integer >= 1)")
    if args.workers != "auto" and args.launcher != "local":
        raise BenchError(f"--workers is read by --launcher local only; --launcher {args.launcher} runs one job per run")
    if args.until_decided:
        _check_until_decided(args, specs)
    # before anything is written: a bad value, or a key this launcher does not read, stops the command here
    profile = load_profile(args.profile, args.launcher) if args.profile else None

    # ranks, RMU's layer, lm-eval tasks, the device: before any reference, base model or run is built
    ctx = _context(args)
    ctx.store.check_writable()  # the checks may write the suite's generated task files into it
    check_grid(specs, ctx, device=args.launcher != "slurm")  # slurm's jobs run on other machines
    if args.until_decided:
        return _until_decided(args, specs)
    if args.launcher != "local":
        if distributed.active():
            raise BenchError(f"--launcher {args.launcher} submits jobs; under torchrun use --launcher local")
        return _dispatch(args, specs, profile)
    distributed.init()
    if not distributed.is_main():  # rank 0 reports; the others train alongside it quietly
        logging.getLogger().setLevel(logging.WARNING)
    log.info(f"{len(specs)} runs in suite {args.suite}; results in {ctx.store.suite_dir(args.suite)}"
             + (f"; {distributed.world_size()} processes" if distributed.active() else ""))
    outcome = _run_local(args, specs, ctx)
    distributed.finish()
    if not distributed.is_main():
        return 1 if outcome.failed else 0
    print(f"{len(outcome.finished)} finished, {len(outcome.skipped)} already done, {len(outcome.busy)} busy elsewhere, "
          f"{len(outcome.failed)} failed; results in {ctx.store.suite_dir(args.suite) / 'runs'}")
    for run_id, reason in outcome.failed:
        print(f"failed: {run_id}: {reason}")
    # pandas loads when this runs, not when the CLI imports bench.cli
    from bench.report import print_leaderboard

    print_leaderboard(args.suite, ctx.store)
    return 1 if outcome.failed else 0


def _check_until_decided(args, specs):
    """What --until-decided needs, checked before anything runs or is built: one local process, claims that
    compare methods of the grid, and a --max-seeds cap the grid's seeds fit under. Returns the claims file."""
    # pandas loads when this runs, not when the CLI imports bench.cli
    from bench.claims import suite_claims_path

    if distributed.active():  # each look reads every rank's finished runs: one process decides
        raise BenchError("--until-decided runs in one process; under torchrun run the grid, then `bench report`")
    if args.launcher != "local":
        raise BenchError(f"--until-decided runs locally (each look needs the previous one's results); with "
                         f"--launcher {args.launcher}, rerun `bench report` after each sweep instead")
    claims_path = suite_claims_path(args.suite)
    if not claims_path.exists():
        raise BenchError(f"suite {args.suite} has no claims ({claims_path}): nothing to decide")
    from bench.claims import load

    grid = {s.method for s in specs} | {s.method_label for s in specs}
    claims = load(claims_path, args.suite)
    decidable = [c["id"] for c in claims if (c["pairs"] and any(a in grid and b in grid for a, b in c["pairs"]))
                 or (c.get("kind") == "best" and c["method"] in grid and len({s.method for s in specs}) > 1)]
    if not decidable:
        raise BenchError(f"no claim of suite {args.suite} compares two methods of this grid ({', '.join(sorted({s.method for s in specs}))}); "
                         f"nothing to decide (the claims are in {claims_path})")
    cap = SUITES[args.suite].default_max_seeds
    typed = f"--max-seeds {args.max_seeds_text}" if args.max_seeds is not None else f"the suite's default --max-seeds {cap}"
    seeds = sorted({s.seed for s in specs})
    if len(seeds) > (cap if args.max_seeds is None else args.max_seeds):
        raise BenchError(f"{typed} is below the {len(seeds)} seeds the grid starts with "
                         f"({','.join(map(str, seeds))}); give at least {len(seeds)}")
    return claims_path


def _until_decided(args, specs) -> int:
    """Run the grid, then add replicates to the methods of the inconclusive claim comparisons and look again,
    until every comparison is decided or the replicates run out (bench/sequential.py). Where the suite's splits are
    replicates, the first addition is every split of the suite the grid left out (one look); after that, one seed
    at a time, up to --max-seeds."""
    # pandas loads when this runs, not when the CLI imports bench.cli
    from bench.claims import evaluate_file
    from bench.report import load_runs, write_report

    claims_path = _check_until_decided(args, specs)
    suite = SUITES[args.suite]
    args.max_seeds = suite.default_max_seeds if args.max_seeds is None else args.max_seeds
    seeds, splits = sorted({s.seed for s in specs}), [x for x in suite.splits if x in {s.split for s in specs}]
    # new forget sets are new data for every method (no run of one reproduces another): added all at once, so the
    # one look spends their whole share of alpha (docs/statistics.md)
    spare = [x for x in suite.splits if x not in splits] if suite.splits_are_replicates else []
    ctx = _context(args)
    per_seed = len({s.model for s in specs}) * (len(splits) + len(spare))  # matched replicates a seed adds
    plan = Plan.open(ctx.store.suite_dir(args.suite), args.max_seeds * per_seed, per_seed)
    plan.save()
    todo, failed = specs, 0
    while True:
        log.info(f"{len(todo)} runs (seeds {','.join(str(s) for s in sorted({x.seed for x in todo}))}; "
                 f"splits {','.join(x for x in suite.splits if x in {s.split for s in todo})})")
        failed += len(_run_local(args, todo, ctx).failed)
        write_report(args.suite, ctx.store)
        runs = load_runs(args.suite, ctx.store)
        inert = seed_inert(runs[runs["status"] == "finished"])
        for label in sorted(inert & {s.method for s in todo}):
            log.info(f"{label}: another seed reproduced an earlier run bit for bit; seeds change nothing for it")
        results = evaluate_file(claims_path, args.suite, runs, Plan.open(ctx.store.suite_dir(args.suite)))
        undecided = undecided_methods(results, set() if spare else inert)
        if undecided and spare:
            log.info(f"adding forget splits {','.join(spare)} to {len(undecided)} methods in undecided comparisons")
            todo = [s for s in _specs_with(args, seeds=seeds, splits=spare) if {s.method_label, s.method} & undecided]
            splits, spare = splits + spare, []
            continue
        no_data = [k for r in results for k in r.checks if k.verdict.startswith("no data")]
        # a new plan over these runs would look at them again: its levels would bound the error of neither plan
        spent = ("claims.md names the matched replicates each would need from the start of a plan (--max-seeds = "
                 f"that / {len(splits) * len({s.model for s in specs})}, the grid's splits x models); the looks taken "
                 f"here have spent the claims' 5 %, so only new data can decide them at that level")
        # comparisons no seed decides: they wait on the settings or family of their looks, or on a larger --epochs
        elsewhere = [k for r in results for k in r.checks if k.needed in (SETTINGS_NEEDED, CLAIM_NEEDED)]
        elsewhere = [f"{len(elsewhere)} claim comparisons wait on the runs their plan looked at (runs of other settings, or of "
                f"another family of the claim, are in the results now): claims.md names them and why"] if elsewhere else []
        other = [k for r in results for k in r.checks if k.needed == PLAN_NEEDED]
        elsewhere += [f"{len(other)} claim comparisons were looked at by their plan on other values of these runs (runs "
                      f"rebuilt on another machine or software): move {ctx.store.suite_dir(args.suite) / 'sequential.json'} "
                      f"aside and rerun this command to decide them on these runs; claims.md names them"] if other else []
        cut = [k for r in results for k in r.checks if k.verdict == "inconclusive" and k.needed == EPOCHS_NEEDED]
        elsewhere += [f"{len(cut)} claim comparisons wait on a larger --epochs, not on seeds: a run that never forgot "
                 f"within the epoch cap{f' ({args.epochs})' if args.epochs else ''} makes their difference a bound; "
                 f"claims.md names them"] if cut else []
        if not undecided:
            stuck = undecided_methods(results)
            told = [f"no more seeds can decide the comparisons still inconclusive: every seed reproduces the runs of "
                    f"{', '.join(sorted(inert))} bit for bit, so no seed adds a pair; " + spent] if stuck else []
            told += elsewhere
            told += [f"{len(no_data)} claim comparisons have no data (no finished run of a method, or none that "
                     f"forgot, or only pairs the epoch cap tied): replicates of the same settings add no pair to them; "
                     f"claims.md names them"] if no_data else []
            claims_md = ctx.store.suite_dir(args.suite) / "claims.md"
            print("; ".join(told) or f"every claim comparison is decided ({claims_md} gives each verdict with the "
                                     f"replicates and level it was decided at)")
            return 1 if failed else 0
        if len(seeds) >= args.max_seeds:
            named = sorted({label_base(m) for m in undecided})  # a best claim labels A with its rank
            inconclusive = [k for r in results for k in r.checks if k.verdict == "inconclusive"]
            waiting = [k for k in inconclusive if k.needed == RUNS_NEEDED]
            looked = [k for k in inconclusive
                      if k.needed not in (RUNS_NEEDED, SETTINGS_NEEDED, CLAIM_NEEDED, EPOCHS_NEEDED, PLAN_NEEDED)]
            told = ([spent] if looked else []) + elsewhere
            # runs of a look that failed or never finished: the plan waits for them and has spent nothing on them
            told += [f"{len(waiting)} claim {'comparison waits' if len(waiting) == 1 else 'comparisons wait'} on runs "
                     f"of {'its' if len(waiting) == 1 else 'their'} plan's looks that are not finished (failed, "
                     f"deleted or unreadable; claims.md says which): rerun them, no look is taken before"
                     ] if waiting else []
            print(f"{len(named)} methods still in undecided comparisons at the cap of {args.max_seeds} seeds on "
                  f"{len(splits)} splits ({', '.join(named)}); " + "; ".join(told))
            return 1 if failed else 0
        seeds.append(max(seeds) + 1)
        todo = [s for s in _specs_with(args, seeds=seeds[-1:], splits=splits) if {s.method_label, s.method} & undecided]


def _workers(args, ctx, runs: int) -> int:
    if args.workers == "auto":
        return 1 if distributed.active() else auto_workers(ctx.device, args.threads or 1, runs)
    if int(args.workers) > 1 and distributed.active():
        raise BenchError(f"--workers {args.workers} under torchrun: each rank is one process of one run (use --workers 1)")
    return int(args.workers)


def _run_local(args, specs, ctx):
    """The grid in this process, or with --workers N > 1 in N processes (bench/pool.py); its wall time goes
    into results/<suite>/grids.json (`bench perf`)."""
    # torch loads when this runs, not when the CLI imports bench.cli
    from bench.runner import artefact_entries, record_grid, run_grid

    before = artefact_entries(ctx.store, args.suite)
    started, workers = time.time(), _workers(args, ctx, len(specs))
    if workers == 1:
        outcome = run_grid(specs, ctx, force=args.force, show_progress=not args.quiet)
    else:
        log.info(f"{workers} worker processes, {args.threads or 1} torch thread(s) each")
        outcome = run_grid_parallel(specs, _runtime(args, args.threads or 1), workers, force=args.force,
                                    show_progress=not args.quiet)
    if distributed.is_main():
        record_grid(ctx.store, args.suite, started, outcome, workers, [s.run_id for s in specs],
                    sorted(artefact_entries(ctx.store, args.suite) - before), device=ctx.device)
    return outcome


def _runtime(args, threads: int):
    return Runtime(results=os.path.abspath(args.results), data_dir=args.data_dir and os.path.abspath(args.data_dir),
                   device=args.device, threads=threads, trust_remote_code=args.trust_remote_code,
                   lm_eval_include=args.lm_eval_include, save_models=getattr(args, "save_models", False))


def _specs_with(args, seeds: list[int], splits: list[str]):
    more = copy.copy(args)
    more.seeds, more.splits = ",".join(map(str, seeds)), ",".join(splits)
    return _specs(more)


def _recipe_text(info, why: str) -> str:
    return f"{info.name} ({why})" if info else why


def _dispatch(args, specs, profile) -> int:
    runtime = _runtime(args, args.threads or (profile.resources(specs[0].model).cpus if profile else 1))
    sweep = submit(specs, runtime, args.launcher, profile, force=args.force)
    runs = [j for j in sweep["jobs"] if j["kind"] == "run"]
    busy = f", {sweep['skipped_busy']} queued or running already" if sweep["skipped_busy"] else ""
    print(f"sweep {sweep['sweep_id']}: {len(runs)} run jobs submitted ({sweep['skipped_finished']} already finished{busy}); "
          f"follow with: python -m bench status --suite {args.suite} --results {args.results}")
    return 0


def cmd_perf(args) -> int:
    """`bench perf`: run benchmarks/perf.py (or perf_real.py with --real-data) and write its markdown table.

    Returns 0, or 1 when a full (non --quick) measurement misses one of its targets. Raises BenchError for a
    bad combination of the --real-* options (their ranges are checked as the command line is parsed).
    """
    # the benchmarks live beside the package (benchmarks/) and import torch: loaded only for this command
    from benchmarks import perf

    ResultStore(args.results).check_writable()  # before minutes of measuring, not at the end
    if args.real_data is not None:
        from benchmarks import perf_real

        if args.quick:
            raise BenchError("--quick and --real-data are two different measurements: give one")
        print(perf_real.run(args.real_data, args.results, args.real_sequences, args.real_items, args.real_limit))
        print(f"wrote {Path(args.results) / 'perf-real.md'}")
        return 0
    if (args.real_sequences, args.real_items, args.real_limit) != (8, 0, 64):
        raise BenchError("--real-sequences, --real-items and --real-limit go with --real-data DIR")
    rows = perf.run(args.results, quick=args.quick)
    out = Path(args.results) / ("perf-quick.md" if args.quick else "perf.md")
    print(perf.write(rows, out, args.quick))
    print(f"wrote {out}")
    return 0 if args.quick or all(r.ok is not False for r in rows) else 1


def cmd_cancel(args) -> int:
    """`bench cancel`: scancel the SLURM jobs of a sweep (the latest by default); return 0.

    Raises BenchError for an unknown suite or sweep id, or a --results path that is no directory.
    """
    SUITES[args.suite]
    ids = cancel(ResultStore(_results_to_read(args.results)), args.suite, args.sweep)
    print(f"cancelled {len(ids)} jobs" if ids else "no SLURM jobs to cancel")
    return 0


def cmd_finetune(args) -> int:
    """`bench finetune`: fine-tune the suite's target (split full) or reference model and print where it is.

    Returns 0. Raises BenchError when the suite has no reference models, for an unknown model, or a --set
    key that fine-tuning does not read (it reads the loop's settings only).
    """
    suite = SUITES[args.suite]
    if not hasattr(suite, "finetune"):
        raise BenchError(f"suite {args.suite} has no reference models to fine-tune")
    distributed.timeout_seconds()  # a bad BENCH_DIST_TIMEOUT fails here, before anything is written
    suite.check_model(args.model)
    args.model = canonical_model(args.model, suite.models)  # the reference is keyed by it: `./m` and `m/` are one model
    _check_runtime(args)
    overrides = _hparam_overrides(args)
    unread = sorted(set(overrides) - set(LOOP))
    if unread:  # fine-tuning is next-token training: no unlearning objective's setting applies
        raise BenchError(f"--set {unread[0]} is not read by fine-tuning (it reads {', '.join(LOOP)})")
    recipe = fit_micro_batch(suite.finetune_hparams(args.model).replace(**overrides), overrides)  # fails before loading
    ctx = _context(args)

    check_device(ctx.device)
    ctx.store.check_writable()
    # under torchrun every rank trains its share of each step (DDP) and rank 0 saves; joining the group here
    # puts BENCH_DIST_TIMEOUT on every collective, so a rank that dies or hangs stops the others with an error
    distributed.init()
    if not distributed.is_main():  # rank 0 reports; the others train alongside it quietly
        logging.getLogger().setLevel(logging.WARNING)
    try:
        out = suite.finetune(args.model, args.split, ctx, args.seed, overrides)
    except RuntimeError as e:  # under torchrun: a collective that failed or timed out, or this rank's own error
        if not distributed.active() or isinstance(e, RankLost):
            raise
        raise RankLost(f"fine-tuning stopped on rank {distributed.rank()} of {distributed.world_size()} "
                       f"(collectives wait BENCH_DIST_TIMEOUT={distributed.timeout_seconds():g} s): "
                       f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    distributed.finish()  # the others wait until rank 0 has published the model
    if not distributed.is_main():
        return 0
    print(f"{args.split} model of {args.model}: {out}")
    if overrides:  # runs look for the default recipe's model; name this one
        role = "target" if args.split == "full" else "reference"
        print(f"fine-tuned with lr {recipe.lr:g}, {recipe.epochs} epochs (not the default recipe); use it in runs with "
              f"--option {role}={out}")
    return 0


def _results_to_read(path: str) -> str:
    """`path` if it is a directory; else a BenchError: `status`, `report` and `cancel` only read, so a results directory that
    does not exist is a typo, not an empty one."""
    if not Path(path).is_dir():
        what = "not a directory" if Path(path).exists() else "no such directory"
        raise BenchError(f"bad --results {path!r}: {what} (expected the results directory `bench run` wrote)")
    return path


def cmd_status(args) -> int:
    """`bench status`: print the suite's run status table (finished / failed / running, SLURM jobs); return 0.
    Raises BenchError for a --results path that is no directory, or a suite's own directory holding no suite."""
    from bench.status import status_table  # not bench.report: importing pandas alone takes most of a second

    print(status_table(args.suite, _results_to_read(args.results)))
    return 0


def cmd_report(args) -> int:
    """`bench report`: write the suite's report files (markdown, plots, comparisons) and print their paths; return 0.

    Raises BenchError for an unknown suite, a --results path that is no directory or holds no run of the suite, a
    bad --epoch rule or --compare method, or an --against directory without finished runs of the suite.
    """
    # pandas loads when this runs, not when the CLI imports bench.cli
    from bench.report import write_report

    SUITES[args.suite]
    store = ResultStore(_results_to_read(args.results))
    for path in write_report(args.suite, store, args.epoch, args.compare, args.claims, args.against):
        print(f"wrote {path}")
    return 0


def _missing_dirs(results: str | None) -> list[Path]:
    """The directories the `--results` path would create that do not exist yet: every prefix of the path as typed
    (`new/../exist` makes `new`), normalised, so a `..` never makes an existing directory look new. The results
    directory itself, when new, comes last."""
    missing: list[Path] = []
    if results is None:
        return missing
    parts = Path(os.getcwd(), results).parts  # as typed: abspath would drop the `..`
    prefix = Path(parts[0])
    for part in parts[1:]:
        prefix = prefix / part
        path = Path(os.path.normpath(prefix))
        if not os.path.lexists(path) and path not in missing:
            missing.append(path)
    return missing


def _remove_if_empty(created: list[Path]) -> None:
    """The directories of `created` (`_missing_dirs` before the command ran) that the failed command left without
    a file, and the empty subdirectories it made inside a new results directory: removed, deepest first, so a bad
    input leaves nothing behind. Anything holding a file stays; a path another process removed first is skipped."""
    if not created:
        return
    inner = created[-1]
    if inner.is_dir() and not inner.is_symlink():
        for path in sorted(inner.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not path.is_symlink():
                with contextlib.suppress(OSError):  # not empty, or gone already
                    path.rmdir()
    for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()


def main(argv=None) -> int:
    """The `bench` command: parse `argv` (default sys.argv), run the subcommand, return the exit code.

    A bad command line (argparse's errors included) or a BenchError prints one `error:` line and returns 2, a
    lost distributed rank 1; Ctrl-C returns 130 and keeps finished runs.
    """
    try:
        args = _parser().parse_args(argv)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    level = logging.WARNING if getattr(args, "quiet", False) else logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    quiet_libraries(verbose=getattr(args, "verbose", False))
    handler = {"list": cmd_list, "show-config": cmd_show_config, "run": cmd_run, "finetune": cmd_finetune,
               "status": cmd_status, "cancel": cmd_cancel, "perf": cmd_perf, "report": cmd_report}[args.command]
    created = _missing_dirs(getattr(args, "results", None))
    try:
        return handler(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        _remove_if_empty(created)
        return e.exit_code
    except RuntimeError as e:
        if not isinstance(e, RankLost):
            raise
        print(f"error: {e}", file=sys.stderr)
        _remove_if_empty(created)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished runs are kept, unfinished ones resume on the next `run`", file=sys.stderr)
        return 130
