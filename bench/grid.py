"""Expand a command line into the grid of RunSpecs it means."""

from __future__ import annotations

from typing import Any, Sequence

from bench import settings
from bench.errors import BenchError, parse_list, unknown
from bench.models import canonical_model
from bench.spec import RunSpec, fit_micro_batch, setting_names
from methods import ADAPTERS, OBJECTIVES, expand_methods, refusals
from suites import SUITES


INT_EXAMPLES = {"rank": "4,8,16,32", "seed": "0,1,2"}


def parse_ints(text: str | None, kind: str) -> list[int]:
    """Parse a comma-separated list of integers ("0,1,2" -> [0, 1, 2]) for the option named `kind`.

    Raises BenchError naming the bad item and an example for `kind`; empty or repeated entries fail in
    `parse_list`.
    """
    out = []
    for item in parse_list(text, kind):
        try:
            out.append(int(item))
        except ValueError:
            raise BenchError(f"bad {kind} '{item}' (expected integers separated by commas, e.g. "
                             f"{INT_EXAMPLES.get(kind, '1,2,3')})") from None
    return out


def parse_assignments(pairs: Sequence[str] | None, kind: str) -> dict[str, str]:
    """`NAME=VALUE` pairs of a repeatable flag as a dict. A name given twice is a one-line BenchError (which
    one was meant cannot be told, so neither wins silently)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise BenchError(f"bad {kind} '{pair}' (expected NAME=VALUE)")
        key, value = (x.strip() for x in pair.split("=", 1))
        if key in out:
            raise BenchError(f"{key} is given twice ({kind} {key}={out[key]} and {kind} {key}={value}); give it once")
        out[key] = value
    return out


def add_setting(settings: dict[str, str], key: str, value, flag: str, kind: str) -> None:
    """Put `flag`'s value into `settings` under `key` (e.g. --lr into the --set pairs), refusing a key that a
    `kind NAME=VALUE` pair already gives."""
    if value is None:
        return
    if key in settings:
        raise BenchError(f"{key} is given twice ({kind} {key}={settings[key]} and {flag} {value}); give it once")
    settings[key] = value


def axis_chains(suite, axis: str | None, splits: str | None) -> list[tuple[str, ...]]:
    """The forget splits of a grid as chains: without `axis`, each split alone (`--splits`, default the suite's);
    with a `sizes` axis, each point of each base alone; with a `requests` axis, each base's points as one chain
    (request k starts from request k-1's model). `splits` names the bases (default: the axis's bases among the
    suite's default splits, else all of them). BenchError for an axis the suite does not declare or a split that
    is no base of it."""
    split_list = parse_list(splits, "split")
    if axis is None:
        split_list = split_list or list(suite.default_splits)
        split_list = list(suite.splits) if split_list == ["all"] else [suite.check_split(s) for s in split_list]
        return [(s,) for s in split_list]
    if axis not in suite.axes:
        if not suite.axes:
            raise BenchError(f"--axis {axis}: suite {suite.name} declares no axis (suites with axes: "
                             f"{', '.join(n for n in SUITES.names() if SUITES[n].axes) or 'none'})")
        raise unknown(f"axis of suite {suite.name}", axis, list(suite.axes))
    declared = suite.axes[axis]
    bases = list(declared.points)
    if split_list == ["all"] or not split_list:
        split_list = ([b for b in bases if b in suite.default_splits] or bases) if not split_list else bases
    for point in (p for points in declared.points.values() for p in points):
        suite.check_split(point)  # an axis naming a split its suite does not know is the suite's error, said here
    for s in split_list:
        if s not in declared.points:
            at = next((b for b, points in declared.points.items() if s in points), None)
            where = f" ({s} is point {declared.points[at].index(s) + 1} of base {at})" if at else ""
            raise BenchError(f"--splits {s} is no base of axis {axis} of suite {suite.name}{where}; bases: {', '.join(bases)}")
    if declared.kind == "requests":
        return [declared.points[b] for b in split_list]
    return [(p,) for b in split_list for p in declared.points[b]]


def expand(suite_name: str, methods: str = "all", models: str | None = None, splits: str | None = None,
           ranks: str | None = None, seeds: str | None = None, hparams: dict[str, Any] | None = None,
           options: dict[str, Any] | None = None, axis: str | None = None) -> list[RunSpec]:
    """models x splits x methods x ranks x seeds, in that nesting order; with a `requests` axis (`axis_chains`),
    each seed's requests follow one another innermost, each spec's `previous` the one before it.

    A setting (hyperparameter, option, rank) that no run of the grid reads raises BenchError naming who
    does read it; a run that does not read a setting others read gets the spec it has without it.
    """
    suite = SUITES[suite_name]
    model_list, typed_as = [], {}
    for typed in parse_list(models, "model"):
        suite.check_model(typed)  # errors quote the model as typed
        model = canonical_model(typed, suite.models)
        if model in typed_as:  # `./m,m/`: one model written twice would name each of its runs twice
            raise BenchError(f"--models {models!r} names one directory twice: {typed_as[model]!r} and {typed!r} are both "
                             f"{model}")
        typed_as[model] = typed
        model_list.append(model)
    model_list = model_list or list(suite.models)
    chains = axis_chains(suite, axis, splits)
    rank_list = parse_ints(ranks, "rank") or list(suite.default_ranks)
    for r in rank_list:
        if r <= 0:
            raise BenchError(f"bad LoRA rank {r} (expected a positive integer such as 4, 8, 16 or 32)")
    seed_list = parse_ints(seeds, "seed") or list(suite.default_seeds)
    bad_seed = next((x for x in seed_list if not 0 <= x < 2 ** 32), None)  # what every RNG a run seeds accepts
    if bad_seed is not None:
        raise BenchError(f"bad seed {bad_seed} (expected an integer from 0 to {2 ** 32 - 1})")
    method_list = expand_methods(methods, suite.default_adapters)
    if parse_list(ranks) and not any(ADAPTERS[a].uses_rank for _, a in method_list):
        readers = ", ".join(n for n in ADAPTERS.names() if ADAPTERS[n].uses_rank)
        raise BenchError(f"--ranks {ranks} is read by none of this grid's adapters "
                         f"({', '.join(sorted({a for _, a in method_list}))}); adapters that read it: {readers}")
    given_hp, given_opts = dict(hparams or {}), dict(options or {})
    opts = suite.check_options(given_opts)
    if any(OBJECTIVES[o].needs_alternate for o, _ in method_list):  # a bad refusal file fails before any run

        refusals.load(dict(opts).get("idk_answers", ""))
    hp_readers: dict[str, set[str]] = {name: set() for name in given_hp}
    grid_reads: set[str] = set()  # the objectives' settings some run of the grid reads
    opt_readers: dict[str, set[str]] = {name: set() for name in given_opts}
    why_unread: dict[str, str] = {}
    specs = []
    for model in model_list:
        suite.check_model(model)
        model_opts = suite.options_for_model(model, opts)
        for chain in chains:
            for objective, adapter in method_list:
                base = suite.objective_hparams(model, objective, adapter)
                every = base.replace(**given_hp)  # checks every name and value, read or not
                grid_reads.update(n for n in OBJECTIVES[objective].uses if OBJECTIVES[objective].reads_hparam(n, every))
                read = {k: v for k, v in given_hp.items() if OBJECTIVES[objective].reads_hparam(k, every)}
                hp = fit_micro_batch(base.replace(**read), given_hp, fisher=ADAPTERS[adapter].name == "fila")
                for name in read:
                    hp_readers[name].add(objective)
                for rank in (rank_list if ADAPTERS[adapter].uses_rank else [0]):
                    for seed in seed_list:
                        previous = None
                        for split in chain:
                            spec = RunSpec(suite.name, model, split, objective, adapter, rank, seed, hp,
                                           suite.options_for_split(split, model_opts), previous)
                            unread = {k: suite.unread_option(k, spec) for k in given_opts}
                            unread = {k: why for k, why in unread.items() if why}
                            why_unread.update(unread)
                            for name in set(given_opts) - set(unread):
                                opt_readers[name].add(spec.method)
                            if unread:  # as without them
                                kept = {k: v for k, v in given_opts.items() if k not in unread}
                                spec = RunSpec(suite.name, model, split, objective, adapter, rank, seed, hp,
                                               suite.options_for_split(split, suite.options_for_model(
                                                   model, suite.check_options(kept))), previous)
                            specs.append(spec)
                            previous = spec
    grid_objectives = ", ".join(dict.fromkeys(o for o, _ in method_list))
    for name, readers in hp_readers.items():
        if not readers:
            raise unread_setting(name, given_hp[name], grid_objectives, grid_reads)
    for name, readers in opt_readers.items():
        if not readers:
            raise BenchError(f"--option {name}={given_opts[name]} is read by no run of this grid: {why_unread[name]}")
    return specs


def unread_setting(name: str, value: Any, grid_objectives: str, grid_reads: set[str] = frozenset()) -> BenchError:
    """`--set beta=0.5 is read by none of this grid's objectives (npo); objectives that read it: simnpo, ...;
    this grid reads, besides the loop's settings: npo_beta, retain_weight, retain_loss` (declaration order)."""
    readers = [o for o in OBJECTIVES.names() if name in OBJECTIVES[o].uses]
    condition = settings.SETTINGS[name].condition if name in settings.SETTINGS else ""
    note = f"; {name} is {condition}" if condition and readers else ""
    valid = [n for n in setting_names() if n in grid_reads]
    return BenchError(f"--set {name}={value} is read by none of this grid's objectives ({grid_objectives}); "
                      f"objectives that read it: {', '.join(readers) or 'none'}{note}; this grid reads, besides "
                      f"the loop's settings: {', '.join(valid) or 'none'}")
