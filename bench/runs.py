"""Runs from the result store as one DataFrame: every run.json of a suite one row, and the keys that say
which runs belong together (same configuration, same settings, bit-identical replicates).

The leaderboard and the pairwise comparisons (bench/report.py) and the claims (bench/claims.py) read runs
through this module. Which epoch a row reports is a stated rule: the last evaluated epoch
(`epoch="last"`). Failed, running and corrupt runs are rows too, with their status, never zeros.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from bench import robustness
from bench.errors import BenchError, unknown
from bench.sequential import label_base
from bench.spec import Hyperparams, RunSpec, parse_run_id, run_id_model
from bench.store import UNKNOWN_SETTINGS, Absent, ResultStore
from methods import training_code
from suites import SUITES

if TYPE_CHECKING:  # pandas loads when a table is built, not for `bench status` (a CLI command under 1 s)
    import pandas as pd


def choose_epoch(record: dict, rule: str, higher_is_better: dict[str, bool]) -> tuple[int | None, dict]:
    """The epoch a table reports, by a stated rule: `last` (default), a number, or `select:METRIC`
    (the epoch that is best on METRIC, which must not be a reported column)."""
    evaluated = [e for e in record.get("epochs", []) if e.get("metrics") and e.get("epoch", 0) > 0]
    if not evaluated:
        return None, {}
    if rule == "last":
        chosen = evaluated[-1]
    elif rule.startswith("select:"):
        metric = rule.split(":", 1)[1]
        sign = 1 if higher_is_better.get(metric, True) else -1
        scored = [e for e in evaluated if isinstance(e["metrics"].get(metric), (int, float))]
        chosen = max(scored, key=lambda e: sign * e["metrics"][metric]) if scored else None
    else:
        chosen = next((e for e in evaluated if e["epoch"] == int(rule)), None)
    return (chosen["epoch"], chosen["metrics"]) if chosen else (None, {})


def check_epoch_rule(rule: str, suite_name: str) -> str:
    """`rule` if it is a valid --epoch rule for the suite (`last`, an epoch number, or `select:METRIC` with a metric
    of the suite that is not a reported column), else a one-line BenchError saying what is valid."""
    suite = SUITES[suite_name]
    if rule == "last" or rule.isdigit():
        return rule
    if rule.startswith("select:"):
        metric = rule.split(":", 1)[1]
        names = [m.name for m in suite.metrics]
        if metric not in names:
            raise unknown(f"metric of suite {suite_name}", metric, names)
        if metric in suite.headline:
            raise BenchError(f"--epoch select:{metric} would choose the epoch on a reported number; "
                             f"select on another metric (reported: {', '.join(suite.headline)})")
        return rule
    raise BenchError(f"bad epoch rule '{rule}' (expected last, an epoch number, or select:METRIC)")


def check_epoch_available(rule: str, suite: str, store: ResultStore) -> None:
    """An epoch number that no finished run evaluated, or a `select:METRIC` that no finished run recorded per
    epoch (a metric measured once after the last epoch), is a one-line BenchError naming what there is (a
    table of empty cells would read as missing results)."""
    if rule == "last":
        return
    available, per_epoch = set(), set()
    for _, record, _ in store.iter_records(suite):
        if record and record.get("status") == "finished":
            for e in record.get("epochs", []):
                if e.get("metrics") and e.get("epoch", 0) > 0:
                    available.add(e["epoch"])
                    per_epoch |= {k for k, v in e["metrics"].items() if isinstance(v, (int, float))}
    if rule.startswith("select:"):
        metric = rule.split(":", 1)[1]
        if available and metric not in per_epoch:
            raise BenchError(f"--epoch {rule}: no finished run of suite {suite} recorded {metric} per epoch (measured "
                             f"after the last epoch only, or not by these runs); select on one of: {', '.join(sorted(per_epoch))}")
        return
    if int(rule) not in available:
        listed = ", ".join(map(str, sorted(available))) or "none"
        raise BenchError(f"--epoch {rule}: no finished run of suite {suite} evaluated epoch {rule} (epochs evaluated: "
                         f"{listed}; or --epoch last)")


def spec_chain(spec: dict) -> tuple[str, ...]:
    """The splits of a spec's sequence of requests (`RunSpec.previous`), the first first: ("news",) for a run from
    the start model, ("news", "news-sust2") for the request after it."""
    return (*spec_chain(spec["previous"]), spec["split"]) if spec.get("previous") else (spec["split"],)


def _without_seed(spec: dict) -> dict:
    """The spec without its seed, nor the seeds of the requests before it (they are its seed)."""
    rest = {k: v for k, v in spec.items() if k != "seed"}
    if spec.get("previous"):
        rest["previous"] = _without_seed(spec["previous"])
    return rest


def _config_key(spec: dict) -> str:
    """Runs that differ only by seed share this key; anything else is a different leaderboard row."""
    rest = _without_seed(spec)
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:6]


def replicate_key(record: dict) -> str:
    """What a replicate produced: every epoch's metrics. Two runs with the same key are bit-identical (the
    seed changed nothing): one observation, never two (bench/claims.py, the leaderboard's n)."""
    produced = [e.get("metrics") for e in record.get("epochs", [])]
    return hashlib.sha256(json.dumps(produced, sort_keys=True, default=str).encode()).hexdigest()[:16]


# options that only add measurements after the last epoch and change none of the others (epoch_metrics changes
# what the epochs before the last record, so its runs are labelled apart: never two observations of one run)
ADDS_ONLY = ("robustness", "lm_eval_extra")


def run_settings(spec: dict) -> str:
    """A run's settings other than its method (objective, adapter, rank), model, split and seed, as text
    (`lr=0.001 epochs=2`, "" = the suite's defaults): every hyperparameter that differs from what the suite
    gives its method on its model, and every option that differs from the suite's default. Comparisons,
    claims and table rows pair or pool only runs whose settings agree (`unlike_settings`)."""
    kind = SUITES[spec["suite"]]
    given = Hyperparams(**spec["hparams"])
    try:
        default = kind.objective_hparams(spec["model"], spec["objective"], spec["adapter"])
    except Exception:  # an objective this checkout no longer has: every value counts as given
        default = None
    parts = [f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}" for name, value in given.items()
             if default is None or value != getattr(default, name)]
    options = kind.all_options()
    parts += [f"{k}={v}" for k, v in sorted(spec.get("options", {}).items())
              if k not in ADDS_ONLY and options.get(k, object()) != v]
    return " ".join(parts)


def unlike_settings(ra: pd.DataFrame, rb: pd.DataFrame) -> str:
    """"" when every run of `ra` and `rb` has the same settings (`run_settings`), else what differs:
    `A: lr=0.001 epochs=2 vs B: (defaults)`."""
    a, b = sorted(set(ra["settings"])), sorted(set(rb["settings"]))
    if a == b and len(a) == 1:
        return ""
    show = lambda values: " | ".join(v or "(defaults)" for v in values)
    return f"A: {show(a)} vs B: {show(b)}"


def calibration(record: dict, metrics) -> dict:
    """`<metric>_ref`: the calibrating model's value of each calibrated metric on this run's items, the level
    an attack AUC reaches without membership: TOFU's retain-only model (suite_records.reference_metrics),
    TDEC's Reference-attack model (suite_records.mia_calibration, LOSS only)."""
    extra = record.get("suite_records", {})
    known = {**extra.get("mia_calibration", {}), **extra.get("reference_metrics", {})}
    return {f"{m.name}_ref": known[m.name] for m in metrics
            if m.calibrated and isinstance(known.get(m.name), (int, float))}


def _spec_columns(spec: dict) -> dict:
    """What a run's spec puts in its `load_runs` row: model, split, method label `objective[+adapter-rRANK]`, lr,
    config, settings, objective, max_epochs, adapter, rank, seed and chain."""
    label = spec["objective"] if spec["adapter"] == "full" else f"{spec['objective']}+{spec['adapter']}-r{spec['rank']}"
    return {
        # request k >= 2 of a sequence: `news-sust2@2`, as its run id says, never the run of its split alone
        "model": spec["model"], "split": spec["split"] if not spec.get("previous") else f"{spec['split']}@{len(spec_chain(spec))}",
        "method": label, "lr": spec["hparams"]["lr"],
        "config": _config_key(spec), "settings": run_settings(spec), "objective": spec["objective"],
        "max_epochs": spec["hparams"]["epochs"], "adapter": spec["adapter"], "rank": spec["rank"], "seed": spec["seed"],
        # the forget splits of the requests that led to this run, its own last (bench/axes.py)
        "chain": spec_chain(spec),
    }


def _run_row(record: dict, kind, epoch: str, direction: dict) -> dict:
    """One run's row of `load_runs` (a record `bench.store.record_problem` accepted)."""
    at, metrics = choose_epoch(record, epoch, direction)
    metrics = {**metrics, **robustness.screened(record, kind.recovery_metric),
               **kind.derived_metrics(record), **calibration(record, kind.metrics)}
    timings = record.get("timings", {})
    return {
        "run_id": record["run_id"], "status": record["status"], "reason": record.get("reason"),
        **_spec_columns(record["spec"]), "replicate": replicate_key(record),
        # the runner puts `forgotten` among the final metrics only where the suite's stopping rule is forgetting
        # (TDEC): the run's last epoch is then the one it forgot at, or the cap's if it never did
        "stops_at_forgetting": "forgotten" in (record.get("final_metrics") or {}),
        "epoch": at,
        **metrics,
        # the run's own cost: shared references (`prepare`) are built once for many runs, and the opt-in
        # robustness stages are timed apart
        "wall_s": sum(v for k, v in timings.items() if k not in ("prepare",) + robustness.STAGES) if timings else None,
        "trainable_params": record.get("parameters", {}).get("trainable"),
        "peak_mem_mb": record.get("peak_memory_mb"),
        "trajectory": [(e["epoch"], e["metrics"]) for e in record.get("epochs", []) if e.get("metrics")],
        "forget_tokens": record.get("forget_size", {}).get("tokens"),  # its forget set's size
        "environment": record.get("environment", {}),
    }


def absent_reason(away: Absent) -> str:
    """Why a run reads `absent` (ResultStore.absent): its directory is gone and a copy holds it."""
    return (f"its directory {away.home} is absent; {away.copy} holds it (`mv {away.copy} {away.home}` puts it back, "
            f"or the next `run` starts it anew)")


OTHER_CODE = "computed by other code than this checkout's (its inputs' code/evaluator or code/training); the next " \
             "`run` of its spec recomputes it"


def evaluated_by_other_code(record: dict) -> bool:
    """Whether a finished run's record names other code fingerprints than this checkout's for its spec: the
    evaluator's (Suite.evaluator_code) or the method's training code (methods.training_code). Its numbers are the old
    code's, and `bench run` would recompute it (bench.runner.changed_inputs). False for a record without them (from
    before fingerprints) or of an unreadable spec, objective or adapter."""
    recorded = record.get("inputs") or {}
    if record.get("status") != "finished" or not recorded.get("code/evaluator"):
        return False
    try:
        spec = RunSpec.from_dict(record["spec"])
        if SUITES[spec.suite].evaluator_code(spec) != recorded["code/evaluator"]:
            return True
        # a record from before code/training existed: `run` recomputes it too (its inputs lack the key)
        return recorded.get("code/training") != training_code(spec.objective, spec.adapter)
    except (KeyError, TypeError, ValueError, AttributeError, BenchError, ModuleNotFoundError):
        return False


def load_runs(suite: str, store: ResultStore, epoch: str = "last") -> pd.DataFrame:
    """One row per run directory of `suite` in `store`: status (finished, failed, running, interrupted, pending,
    corrupt with its reason; an unreadable one placed by `_with_owners`; `absent`, a run renamed away whose copy
    `ResultStore.absent` finds), the spec's keys (model, split, method label `objective[+adapter-rRANK]`, lr, seed,
    ...), the
    metrics of the epoch `epoch` chooses (`choose_epoch`) with the suite's derived and calibration columns and
    the robustness stages' screened values, the run's cost (wall_s in seconds, trainable_params, peak_mem_mb
    in MiB) and its per-epoch `trajectory`. Unknown suite: BenchError with a did-you-mean."""
    import pandas as pd

    # submitit loads when a table is built, not for `status`
    from bench.dispatch import INTERRUPTED, NEVER_STARTED, slurm_run_jobs, slurm_states, slurm_status

    kind = SUITES[suite]
    direction = {m.name: m.higher_is_better for m in kind.metrics}
    submitted = slurm_run_jobs(store, suite)  # whether these live is SLURM's to say (`bench status` asks it)
    rows, specs = [], {}
    for run_dir, record, error in store.iter_records(suite):
        if error:
            rows.append({"run_id": run_dir.name, "status": "corrupt", "reason": error})
            continue
        if record is None:
            rows.append({"run_id": run_dir.name, "status": "pending"})
            continue
        try:
            row = _run_row(record, kind, epoch, direction)
            row["other_code"] = evaluated_by_other_code(record)
            # a record says `running` also after its process was killed: as `bench status` does, no live process
            # holding its lock says it is interrupted
            if row["status"] == "running" and row["run_id"] not in submitted and not store.is_claimed(run_dir):
                row.update(status="interrupted", reason=INTERRUPTED)
            rows.append(row)
            specs[row["run_id"]] = record["spec"]
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # JSON of another shape deeper than the store checks
            rows.append({"run_id": run_dir.name, "status": "corrupt",
                         "reason": f"{run_dir / 'run.json'}: not a run record ({type(e).__name__}: {e})"})
    for run_id, away in store.absent(suite).items():  # moved away: its row counts it, as not present
        rows.append({"run_id": run_id, "status": "absent", "reason": absent_reason(away)})
        if away.record is not None:  # else `_with_owners` places it by its run id, as a damaged run
            rows[-1].update(**_spec_columns(away.record["spec"]), replicate=replicate_key(away.record))
            specs[run_id] = away.record["spec"]
    # a SLURM job killed at its time limit leaves a record saying running: as `bench status`, ask the scheduler
    jobs = {r["run_id"]: submitted[r["run_id"]] for r in rows  # a damaged or failed record says more than its job
            if r["run_id"] in submitted and r["status"] in ("running", "pending")}
    states = slurm_states(sorted(set(jobs.values())))
    for r in rows:
        if r["run_id"] in jobs:
            stored, r["status"] = r["status"], slurm_status(r["status"], states.get(jobs[r["run_id"]]))
            if r["status"] == "interrupted":
                r["reason"] = NEVER_STARTED if stored == "pending" else INTERRUPTED
    return _with_owners(pd.DataFrame(rows), specs)


def _respecified(spec: dict, split: str, seed: int) -> dict:
    """`spec` at another forget split and seed (every request of a sequence carries the seed; a sequence keeps its
    splits)."""
    out = {**spec, "seed": seed}
    if spec.get("previous"):
        out["previous"] = _respecified(spec["previous"], spec["previous"]["split"], seed)
    else:
        out["split"] = split
    return out


def _with_owners(frame: pd.DataFrame, specs: dict[str, dict]) -> pd.DataFrame:
    """`frame` with each run that has no readable record (corrupt, or pending before its first write) placed in the
    row it belongs to. Its directory name (`bench.spec.parse_run_id`) gives its split, method, seed and the hash of
    its spec; the spec is the readable run's (`specs`, by run id) of that method whose spec, at this split and seed,
    hashes to it. So a method with one seed's record damaged reads `2/3` with `1 corrupt` and competes on nothing, as
    with a failed run, rather than `2/2 ok`. A run of settings no readable run has goes to the method's row of unknown
    settings (UNKNOWN_SETTINGS). A copy of a run's directory and a directory of another name are no run's
    (`ResultStore.iter_records` leaves them out)."""
    import pandas as pd

    readable = frame["method"].notna() if "method" in frame else pd.Series(False, index=frame.index)
    unknown_rows = frame.index[~readable]
    if not len(unknown_rows):
        return frame
    by_method: dict[str, dict[str, dict]] = {}  # method -> config -> one spec of it
    for run_id, method, config in frame.loc[readable, ["run_id", "method", "config"]].itertuples(index=False) \
            if readable.any() else ():
        by_method.setdefault(method, {}).setdefault(config, specs[run_id])
    models: dict[str, set] = {}  # a model as run ids write it -> the models of readable runs written so
    for model in frame.loc[readable, "model"].unique() if readable.any() else ():
        models.setdefault(run_id_model(model), set()).add(model)
    placed = []
    for i in unknown_rows:
        row = frame.loc[i].dropna().to_dict()
        said = parse_run_id(str(row["run_id"]))
        if said is None:  # not reached while the store leaves such directories out; a row of no method, no crash
            placed.append(row)
            continue
        owner = None
        for spec in by_method.get(said["method"], {}).values():
            if (not spec.get("previous")) != ("@" not in said["split"]):  # a sequence's request, or not
                continue
            trial = _respecified(spec, said["split"], said["seed"])
            try:
                same = RunSpec.from_dict(trial).hash[:10] == said["hash"]
            except (KeyError, TypeError, ValueError, AttributeError, BenchError):  # a spec this checkout cannot build
                continue
            if same:
                owner = trial
                break
        if owner is not None:
            placed.append({**row, **_spec_columns(owner)})
        else:
            known = models.get(said["model"], set())
            placed.append({**row, **{k: said[k] for k in ("split", "method", "seed")},
                           "model": next(iter(known)) if len(known) == 1 else said["model"],
                           "settings": UNKNOWN_SETTINGS, "config": UNKNOWN_SETTINGS})
    together = pd.concat([frame.drop(index=unknown_rows), pd.DataFrame(placed)], ignore_index=True)
    return together.sort_values("run_id", kind="stable", ignore_index=True)  # directory order, as iter_records gives


def reference_rows(suite: str, store: ResultStore) -> pd.DataFrame:
    """The target (before unlearning) and reference rows the tables carry, labelled `(target)` and
    `(<suite.reference_role>)` (TOFU's `(retain)`, MUSE's `(retrained)`): one per distinct model (several when
    references are fine-tuned per seed, which tables then summarise)."""
    import pandas as pd

    rows, seen = [], set()
    for _, record, _ in store.iter_records(suite):
        if not record or "suite_records" not in record:
            continue
        if record["spec"].get("previous"):  # a later request starts from an earlier one's model, not the target
            continue
        spec, extra, inputs = record["spec"], record["suite_records"], record.get("inputs") or {}
        for role, key, path in (("target", "target_metrics", "target"),
                                (SUITES[suite].reference_role, "reference_metrics", "reference")):
            # one row per reference model, told apart by its weights' fingerprint (the run's input `model/<role>`):
            # a results directory copied or moved, then extended, names the same model by another path
            model = inputs.get(f"model/{path}") or inputs.get(f"model/{role}") or extra.get(path)
            ident = (spec["model"], spec["split"], role, model)
            if key in extra and ident not in seen:
                seen.add(ident)
                rows.append({"model": spec["model"], "split": spec["split"], "method": f"({role})",
                             "status": "reference", **extra[key]})
    return pd.DataFrame(rows)


def first_requests(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` without the later requests of sequences (chains longer than one, bench/axes.py): what claims,
    comparisons and paper tables pair and pool are runs from the suite's start model. A later request starts
    from another run's model, so it is neither another replicate of its split nor comparable with one; the
    leaderboard lists it as `split@k` and its axis table reports it."""
    if runs.empty or "chain" not in runs:
        return runs
    # a run without a readable record has no chain: its split (`news-sust2@2`, from its run id) says it
    return runs[[(not isinstance(c, tuple) or len(c) <= 1) and "@" not in str(split)
                 for c, split in zip(runs["chain"], runs["split"])]]


def method_base(labels: pd.Series) -> pd.Series:
    """`ihl+fila-r4` -> `ihl+fila`: the method as a user types it, without the rank (bench.sequential.label_base
    on each label)."""
    return labels.map(label_base)


def select_method(runs: pd.DataFrame, name: str, suite: str, results: str | None = None) -> pd.DataFrame:
    """Finished runs of the method `name`: a full label (`ihl+fila-r4`) or a method (`ihl+fila`, any rank)
    that must then denote one configuration, optionally with its settings as the tables label them
    (`ihl+fila[lr=0.5]`, `ihl+fila-r4 [defaults]`). Without settings, a method run at the suite's defaults and at
    other settings means its runs at the defaults (what the suite's claims are about). BenchError when it has no
    finished run (its hint names `results`, the runs' results directory, where given), or names several ranks or
    several non-default settings."""
    base, _, qualifier = name.partition("[")
    base = base.strip()
    wanted = None if not qualifier else settings_key(qualifier.rstrip().removesuffix("]"))
    finished = runs[runs["status"] == "finished"]
    chosen = finished[(finished["method"] == base) | (method_base(finished["method"]) == base)]
    listed = runs[runs["method"].notna()] if "method" in runs else runs.iloc[0:0]
    unfinished = listed[(listed["method"] == base) | (method_base(listed["method"]) == base)]
    if chosen.empty and len(unfinished):  # a method of the grid whose runs all failed, are running or unreadable
        once = unfinished.drop_duplicates("run_id")  # a run without a record may be listed under several settings
        counts = ", ".join(f"{n} {status}" for status, n in sorted(once["status"].value_counts().items()))
        raise BenchError(f"method '{base}' has no finished run in suite {suite} ({counts}; `python -m bench status "
                         f"--suite {suite} --results {results or 'DIR'}` gives their reasons)")
    if chosen.empty:
        raise unknown(f"method with finished runs in suite {suite}", base, sorted(set(finished["method"])))
    configs = sorted(set(zip(chosen["method"], chosen["settings"])))
    shown = lambda c: f"{c[0]} [{c[1] or 'defaults'}]"
    if wanted is not None:  # a default typed out (`ga[lr=0.001]` where 0.001 is ga's) is what the runs leave unwritten
        chosen = chosen[[settings_key(s) == _without_defaults(wanted, suite, m, o, ad) for s, m, o, ad in
                         zip(chosen["settings"], chosen["model"], chosen["objective"], chosen["adapter"])]]
        if chosen.empty:
            asked = qualifier.rstrip(" ]") or "defaults"
            raise BenchError(f"'{name}': no finished run of {base} has the settings [{asked}] (it has: "
                             f"{', '.join(shown(c) for c in configs)})")
        configs = sorted(set(zip(chosen["method"], chosen["settings"])))
    elif len({m for m, _ in configs}) == 1 and sum(not c for _, c in configs) == 1:
        chosen, configs = chosen[chosen["settings"] == ""], [(configs[0][0], "")]  # the defaults, as claims mean
    if len(configs) > 1:
        ranks = len({m for m, _ in configs}) > 1  # the rank tells them apart; otherwise only their settings do
        raise BenchError(f"'{name}' matches {len(configs)} configurations ({', '.join(map(shown, configs))}); "
                         + (f"name one with its rank, e.g. {configs[0][0]}" if ranks else
                            f"name one with its settings, e.g. {base}[{configs[0][1] or 'defaults'}]"))
    return chosen


def settings_key(text: str) -> tuple[str, ...]:
    """Settings as `run_settings` writes them, or as a user types them (`lr=0.5 epochs=2`, any order, a number in
    any spelling `run_settings` reads alike: 2e-3 is lr=0.002; `defaults` or nothing for the suite's defaults),
    compared as a set."""
    return tuple(sorted(_setting_token(t) for t in str(text).split() if t != "defaults"))


def _setting_token(t: str) -> str:
    """`name=value` with a number written as `run_settings` writes it (:g)."""
    name, eq, value = t.partition("=")
    try:
        return f"{name}={float(value):g}" if eq else t
    except ValueError:
        return t


def _without_defaults(key: tuple[str, ...], suite: str, model: str, objective: str, adapter: str) -> tuple[str, ...]:
    """`key` (settings_key) without the settings that equal what `suite` gives `objective` with `adapter` on
    `model`: `run_settings` leaves those out."""
    kind = SUITES[suite]
    try:
        default = kind.objective_hparams(model, objective, adapter)
    except Exception:  # an objective this checkout no longer has: as run_settings, every value counts as given
        return key
    given = {**dict(default.items()), **{k: v for k, v in kind.all_options().items() if k not in ADDS_ONLY}}
    said = {_setting_token(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
            for name, value in given.items()}
    return tuple(t for t in key if t not in said)
