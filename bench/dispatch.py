"""Grids as jobs: submitit to SLURM (`--launcher slurm --profile slurm/<cluster>.yaml`) or to
parallel local processes (`--launcher local-jobs`).

One job per run, submitted as job arrays, one per (suite, model, forget split). The reference
artefacts of a group (fine-tuned models, thresholds, FILA's Fisher row weights) are built first by
one job that the array depends on (afterok), so no two jobs build the same artefact. A request of a
sequence (a suite's `requests` axis) is a job of its own that also waits for the job of the request it
starts from (afterany; with local-jobs, which has no dependencies, the submission waits for it). Jobs are
Checkpointable: on preemption or a time limit submitit requeues them, and the rerun resumes from
the run's last epoch checkpoint. Every submission is written to `results/<suite>/sweeps/<id>.json`,
which `status` and `cancel` read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

# submitit's import runs logging.config.dictConfig, which closes every handler already configured: absl's
# (rouge-score's) closes the sys.stderr it was given, so a program that imported rouge first lost its stderr
os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")
import submitit  # noqa: E402  (after the line above)
import yaml

from bench.errors import BenchError, unknown
from bench.models import recipe_of
from bench.spec import RunSpec, in_request_order, kept_models
from bench.store import CorruptRun, ResultStore, read_json, write_json_atomic
from suites import Context

PROFILE_KEYS = {"partition", "account", "qos", "constraint", "setup", "array_parallelism", "default", "models",
                "signal_delay_s"}
RESOURCE_KEYS = {"gpus", "cpus", "mem_gb", "time_min"}


@dataclass(frozen=True)
class Resources:
    gpus: int = 0
    cpus: int = 1
    mem_gb: float = 4
    time_min: int = 60


@dataclass(frozen=True)
class Profile:
    name: str
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    array_parallelism: int = 64
    signal_delay_s: int = 120
    default: Resources = Resources()
    models: dict[str, Resources] = field(default_factory=dict)

    def resources(self, model: str) -> Resources:
        """The model's entry, else that of the registry model whose recipe it gets (`phi-1.5=DIR`), else the default."""
        if model in self.models:
            return self.models[model]
        info = recipe_of(model)[0]
        return self.models.get(info.name, self.default) if info else self.default


# what each profile value must be, and how an error says it: (check, "what is valid")
_INTEGER = {0: (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
            1: (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1")}
_NAME = (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty name")
_VALID = {
    "partition": _NAME, "account": _NAME, "qos": _NAME, "constraint": _NAME,
    "setup": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of shell commands"),
    "array_parallelism": _INTEGER[1],
    "signal_delay_s": _INTEGER[0],
    # resources: sbatch would truncate 1.7 CPUs to 1, or refuse 0, only after the sweep was set up
    "gpus": _INTEGER[0],
    "cpus": _INTEGER[1],
    "mem_gb": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
               "a number > 0"),
    "time_min": _INTEGER[1],
}
# what `--launcher local-jobs` reads of a profile: submitit's local executor takes a job's time limit and setup lines
# (not its memory, GPUs or signal delay), and a job's CPUs are its torch threads; SLURM's queue and account keys
# mean nothing on this machine
LOCAL_JOBS_KEYS = ("setup", "cpus", "time_min")


def _checked(path: str, where: str, value: Any) -> Any:
    """`value` of the profile key `where` (`cpus` of `default.cpus`), or a BenchError naming key, value and what is
    valid."""
    valid, expected = _VALID[where.rsplit(".", 1)[-1]]
    if not valid(value):
        shown = repr(value) if isinstance(value, str) else value
        raise BenchError(f"profile '{path}': bad {where} {shown} (expected {expected})")
    return value


def _resources(path: str, raw: Any, where: str) -> Resources:
    if not isinstance(raw, dict):
        raise BenchError(f"profile '{path}': '{where}' must be a mapping of {', '.join(sorted(RESOURCE_KEYS))}")
    bad = set(raw) - RESOURCE_KEYS
    if bad:
        raise BenchError(f"profile '{path}': unknown key(s) {', '.join(sorted(bad))} in '{where}' "
                         f"(valid: {', '.join(sorted(RESOURCE_KEYS))})")
    return Resources(**{k: _checked(path, f"{where}.{k}", v) for k, v in raw.items()})


def load_profile(path: str, launcher: str = "slurm") -> Profile:
    """Read a SLURM profile (YAML: partition, account, resources per model, setup commands, ...) for `launcher`
    (slurm or local-jobs).

    Raises BenchError when the file is missing, not YAML, not a mapping, has an unknown key, a value of the wrong
    type or range (`cpus: 0`, `array_parallelism: lots`: the error names key, value and what is valid), or, for
    local-jobs, a key that local-jobs does not read (LOCAL_JOBS_KEYS).
    """
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"profile '{path}' does not exist (see slurm/README.md; e.g. --profile slurm/local.yaml)")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise BenchError(f"profile '{path}' is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise BenchError(f"profile '{path}' must be a mapping of {', '.join(sorted(PROFILE_KEYS))}")
    bad = set(raw) - PROFILE_KEYS
    if bad:
        raise BenchError(f"profile '{path}': unknown key(s) {', '.join(sorted(bad))} (valid: {', '.join(sorted(PROFILE_KEYS))})")
    models = raw.get("models") or {}
    if not isinstance(models, dict):
        raise BenchError(f"profile '{path}': 'models' must map model names to resources")
    plain = {k: _checked(path, k, v) for k, v in raw.items() if k not in ("default", "models") and v is not None}
    given = [k for k in plain] + [f"default.{k}" for k in raw.get("default") or {}] \
        + [f"models.{m}.{k}" for m, r in models.items() if isinstance(r, dict) for k in r]
    profile = Profile(name=p.stem, **{k: tuple(v) if k == "setup" else v for k, v in plain.items()},
                      default=_resources(path, raw.get("default") or {}, "default"),
                      models={m: _resources(path, r, f"models.{m}") for m, r in models.items()})
    unread = [k for k in given if k.rsplit(".", 1)[-1] not in LOCAL_JOBS_KEYS]
    if launcher == "local-jobs" and unread:  # never silently ignored: the user would think them honoured
        raise BenchError(f"profile '{path}': --launcher local-jobs does not read {', '.join(unread)} (it reads "
                         f"{', '.join(LOCAL_JOBS_KEYS)}; the others are for --launcher slurm)")
    return profile


@dataclass
class Runtime:
    """What a job needs besides its spec; plain data, so it pickles."""

    results: str
    data_dir: str | None = None
    device: str | None = None
    threads: int = 1
    trust_remote_code: bool = False
    lm_eval_include: str | None = None
    save_models: bool = False

    def context(self):
        """The run Context of this runtime: result store, data dir, device (cuda if available unless given), and
        torch's thread count set to `threads`.
        """
        # torch loads when this runs, not when the CLI imports bench.dispatch
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch.set_num_threads(self.threads)
        return Context(store=ResultStore(self.results), log=logging.getLogger("bench").info, data_dir=self.data_dir,
                       device=device, trust_remote_code=self.trust_remote_code, lm_eval_include=self.lm_eval_include,
                       save_models=self.save_models)


def _job_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


class RunJob(submitit.helpers.Checkpointable):
    """One run. On preemption / timeout submitit calls checkpoint() (inherited: resubmit the same
    call) and requeues; run_one then resumes from the last epoch checkpoint. `keep_model`: a later request of
    a sequence starts from this run's final model (bench.runner.run_one). `force` (`run --force`): the job starts
    the run anew, even a finished one; the submission itself changes no record, so a refused one leaves them all
    as they were."""

    def __init__(self, spec: dict, runtime: Runtime, keep_model: bool = False, force: bool = False):
        self.spec, self.runtime, self.keep_model, self.force = spec, runtime, keep_model, force

    def __call__(self) -> str:
        # torch loads when this runs, not when the CLI imports bench.dispatch
        from bench.runner import run_one

        _job_logging()
        spec = RunSpec.from_dict(self.spec)
        status = run_one(spec, self.runtime.context(), force=self.force and not self._started_by_this_job(spec),
                         keep_model=self.keep_model)
        if status == "failed":  # so SLURM and sacct say FAILED too
            raise RuntimeError(f"run failed: {ResultStore(self.runtime.results).reason(spec)}")
        return status

    def _started_by_this_job(self, spec: RunSpec) -> bool:
        """Whether an earlier attempt of this job (requeued: same SLURM job id) started the run already: then it
        resumes from its checkpoint rather than start anew a second time."""
        # torch loads when this runs, not when the CLI imports bench.dispatch
        from bench.environment import slurm_job_id

        job = slurm_job_id()
        try:
            record = ResultStore(self.runtime.results).load(ResultStore(self.runtime.results).run_dir(spec))
        except CorruptRun:
            return False
        return bool(job) and record is not None and str(record.get("slurm_job_id")) == job


class PrepareJob(submitit.helpers.Checkpointable):
    """Builds the artefacts every run of a group shares, once."""

    def __init__(self, specs: list[dict], runtime: Runtime):
        self.specs, self.runtime = specs, runtime

    def __call__(self) -> str:
        # torch loads when this runs, not when the CLI imports bench.dispatch
        from bench.runner import prepare_artefacts

        _job_logging()
        ctx = self.runtime.context()
        for spec in self.specs:
            prepare_artefacts(RunSpec.from_dict(spec), ctx)
        return "prepared"


def _groups(specs: Sequence[RunSpec]) -> dict[tuple, list[RunSpec]]:
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault((s.suite, s.model, s.split), []).append(s)
    return groups


def _artefact_specs(group: list[RunSpec]) -> list[dict]:
    """The specs whose preparation builds every shared artefact, per seed (references may be fine-tuned
    per seed; otherwise the later seeds find them cached): the suite's references (any spec) and FILA's
    Fisher row weights (a FILA spec, if there is one)."""
    by_seed: dict[int, list[RunSpec]] = {}
    for s in group:
        by_seed.setdefault(s.seed, []).append(s)
    chosen = [spec for specs in by_seed.values() for spec in [specs[0]] + [s for s in specs if s.adapter == "fila"][:1]]
    return [s.to_dict() for s in dict.fromkeys(chosen)]


def _executor(launcher: str, folder: Path, profile: Profile | None, model: str, name: str, dependency: str | None = None):
    ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm" if launcher == "slurm" else "local")
    res = profile.resources(model) if profile else Resources()
    params: dict[str, Any] = dict(name=name, timeout_min=res.time_min, cpus_per_task=res.cpus, mem_gb=res.mem_gb)
    if profile and profile.setup:
        params["slurm_setup" if launcher == "slurm" else "local_setup"] = list(profile.setup)
    if launcher == "slurm":
        # held until every job of the sweep is accepted (`submit`): a refused one leaves none to run
        params.update(gpus_per_node=res.gpus, slurm_array_parallelism=profile.array_parallelism,
                      slurm_signal_delay_s=profile.signal_delay_s, slurm_additional_parameters={"hold": True})
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(profile, key):
                params[f"slurm_{key}"] = getattr(profile, key)
        if dependency:
            params["slurm_dependency"] = dependency
    ex.update_parameters(**params)
    return ex


def _done(spec: RunSpec, store: ResultStore, runtime: Runtime, keep_model: bool = False) -> bool:
    """Finished, from the inputs there are now (a run whose data, models or evaluator changed is submitted), and
    with its final model where a later request starts from it."""
    if store.status(spec) != "finished":
        return False
    # torch loads when this runs, not when the CLI imports bench.dispatch
    from bench.runner import changed_inputs, final_model

    if keep_model and not final_model(store.run_dir(spec)):
        return False
    return not changed_inputs(spec, runtime.context(), store.load(store.run_dir(spec)))


def dependency(prepared_by: str | None, after: str | None = None) -> str | None:
    """SLURM's `--dependency` of a run job: `afterok` on the job that builds its group's artefacts, and for a
    request of a sequence `afterany` on the job of the request it starts from (ended either way: a failed one
    makes this one fail at once naming it, bench.runner.run_one, rather than wait in the queue for ever).
    None where it waits for nothing."""
    parts = [f"afterok:{prepared_by}"] if prepared_by else []
    parts += [f"afterany:{after}"] if after else []
    return ",".join(parts) or None


def submit(specs: Sequence[RunSpec], runtime: Runtime, launcher: str, profile: Profile | None, force: bool = False) -> dict:
    """Submit every run that is not finished (with `force`, every run) and not queued or running already (a job of
    an earlier sweep still alive in SLURM, or a live process holding its lock); returns the sweep record (also
    written to disk).

    Raises BenchError for --launcher slurm without a profile, a results directory that is not writable, or a job that
    SLURM refuses. SLURM jobs are submitted held and released once all are accepted: after a refusal the accepted
    ones are cancelled before any started, the sweep's job folder is removed and no run record has changed.
    """
    if launcher == "slurm" and profile is None:
        raise BenchError("--launcher slurm needs --profile slurm/<cluster>.yaml (see slurm/README.md)")
    store = ResultStore(runtime.results)
    store.check_writable()
    keep = kept_models(specs)
    specs = in_request_order(specs)
    suite = specs[0].suite if specs else "none"
    live = live_run_jobs(store, suite)
    todo, submitted, busy = [], set(), {}
    for s in specs:  # in request order: a request after one that is submitted again runs again (it starts from it)
        if not (force or not _done(s, store, runtime, s.run_id in keep) or (s.previous and s.previous.run_id in submitted)):
            continue
        if s.run_id in live or store.is_claimed(store.run_dir(s)):  # a second job would find it busy and end at once
            busy[s.run_id] = f"job {live[s.run_id]}" if s.run_id in live else "a live process holds its lock"
            continue
        todo.append(s)
        submitted.add(s.run_id)
    if busy:
        logging.getLogger("bench").info(f"{len(busy)} runs not submitted again, queued or running already: "
                                        + ", ".join(f"{run} ({where})" for run, where in busy.items()))
    # a request runs after the job of the request it starts from (when that one is submitted too): on SLURM by a
    # dependency of its own, with --launcher local-jobs (no dependencies) by waiting for that job here
    chained = [s for s in todo if s.previous is not None and s.previous.run_id in submitted]
    chained_ids = {s.run_id for s in chained}
    job_of: dict[str, Any] = {}
    prep_of: dict[tuple, str] = {}
    sweep_id = time.strftime("%Y%m%d-%H%M%S") + f"-{uuid.uuid4().hex[:6]}"
    folder = store.suite_dir(suite) / "jobs" / sweep_id
    sweep = {"sweep_id": sweep_id, "suite": suite, "launcher": launcher, "profile": profile.name if profile else None,
             "created": time.time(), "skipped_finished": len(specs) - len(todo) - len(busy), "skipped_busy": len(busy),
             "jobs": []}
    try:
        for (s_name, model, split), group in _groups(todo).items():
            prep_ex = _executor(launcher, folder, profile, model, f"prep-{s_name}-{split}")
            prep = prep_ex.submit(PrepareJob(_artefact_specs(group), runtime))
            prep_of[(s_name, model, split)] = prep.job_id
            sweep["jobs"].append({"kind": "prepare", "job_id": prep.job_id, "group": [s_name, model, split]})
            if launcher != "slurm":
                prep.result()  # the local executor has no dependencies: wait
            free = [s for s in group if s.run_id not in chained_ids]
            if not free:
                continue
            run_ex = _executor(launcher, folder, profile, model, f"{s_name}-{split}",
                               dependency=dependency(prep.job_id) if launcher == "slurm" else None)
            with run_ex.batch():
                jobs = [run_ex.submit(RunJob(s.to_dict(), runtime, s.run_id in keep, force)) for s in free]
            for s, job in zip(free, jobs):
                job_of[s.run_id] = job
                sweep["jobs"].append({"kind": "run", "job_id": job.job_id, "run_id": s.run_id})
        for s in chained:  # in request order: the job each one waits for is submitted already
            before = job_of[s.previous.run_id]
            if launcher != "slurm":
                before.wait()  # finished or failed: the request itself says which (bench.runner.run_one)
            ex = _executor(launcher, folder, profile, s.model, f"{s.suite}-{s.split}@{s.request}",
                           dependency=dependency(prep_of[(s.suite, s.model, s.split)], before.job_id)
                           if launcher == "slurm" else None)
            job_of[s.run_id] = ex.submit(RunJob(s.to_dict(), runtime, s.run_id in keep, force))
            sweep["jobs"].append({"kind": "run", "job_id": job_of[s.run_id].job_id, "run_id": s.run_id,
                                  "after": before.job_id})
    except BaseException as e:  # Ctrl-C too: held jobs would wait in the queue for ever
        if launcher == "slurm":
            _withdraw(sweep, folder)
        else:
            _record(store, sweep)  # local jobs start at once: what was submitted stays visible to `status`
        if not isinstance(e, submitit.core.utils.FailedJobError):
            raise
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = next((line for line in lines if "error" in line.lower() and "sbatch" in line.lower()),
                      lines[-1] if lines else type(e).__name__)
        raise BenchError(f"the submission failed: {detail} (check the profile's partition, account and resources "
                         f"against this cluster; see slurm/README.md)") from None
    _record(store, sweep)
    if launcher == "slurm" and sweep["jobs"]:
        _release(sorted({j["job_id"].split("_")[0] for j in sweep["jobs"]}))  # an array's id releases all its jobs
    return sweep


def _release(held: list[str]) -> None:
    """Let the held jobs `held` of a sweep start; a BenchError saying how to start or cancel them where SLURM
    refuses."""
    done = subprocess.run(["scontrol", "release", *held], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"the sweep's jobs were submitted held and could not be released "
                         f"({(done.stderr.strip().splitlines() or ['scontrol failed'])[-1]}): "
                         f"`scontrol release {' '.join(held)}` starts them, `bench cancel` cancels them")


def _withdraw(sweep: dict, folder: Path) -> None:
    """Undo a SLURM submission that failed part-way: cancel the jobs it got accepted (held, so none has started)
    and remove its job folder (submission scripts, pickled jobs), leaving nothing of the sweep."""
    ids = [j["job_id"] for j in sweep["jobs"]]
    if ids:
        subprocess.run(["scancel", *ids], check=False, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # jobs/ of the suite, if this sweep was its first
        folder.parent.rmdir()


def _record(store: ResultStore, sweep: dict) -> None:
    if sweep["jobs"]:
        write_json_atomic(store.suite_dir(sweep["suite"]) / "sweeps" / f"{sweep['sweep_id']}.json", sweep)


def sweeps(store: ResultStore, suite: str) -> list[dict]:
    """Every sweep of `suite`, oldest first. A sweep file that cannot be read as one (truncated, edited) is skipped
    with a warning naming it: `status` and `cancel` still see the others."""
    d = store.suite_dir(suite) / "sweeps"
    found = []
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            sweep = read_json(path)
            if not (isinstance(sweep, dict) and isinstance(sweep.get("created"), (int, float))
                    and all(isinstance(sweep.get(k), str) for k in ("sweep_id", "launcher"))
                    and isinstance(sweep.get("jobs"), list)
                    and all(isinstance(j, dict) and isinstance(j.get("kind"), str) and isinstance(j.get("job_id"), str)
                            and (j["kind"] != "run" or isinstance(j.get("run_id"), str)) for j in sweep["jobs"])):
                raise ValueError("not a sweep record")
        except (ValueError, OSError) as e:  # json.JSONDecodeError is a ValueError
            logging.getLogger("bench").warning(f"skipped {path}: {e} (not a sweep file `bench run --launcher slurm` "
                                               "could have written)")
            continue
        found.append(sweep)
    return sorted(found, key=lambda s: s["created"])


def slurm_run_jobs(store: ResultStore, suite: str) -> dict[str, str]:
    """{run id: SLURM job id} of the runs `suite`'s SLURM sweeps submitted: whether such a run lives is the
    scheduler's to say, not its lock's. A run submitted by several sweeps (a duplicate finds it busy and ends at once)
    is the job's that SLURM still has queued or running, else the one's that its record says ran it last, else the
    newest one's."""
    submitted: dict[str, list[str]] = {}  # run id -> its jobs, oldest first
    for sw in sweeps(store, suite):
        if sw["launcher"] == "slurm":
            for j in sw["jobs"]:
                if j["kind"] == "run":
                    submitted.setdefault(j["run_id"], []).append(j["job_id"])
    # the scheduler is asked only where there is a choice: `report` reads this for every run
    live = _live_jobs([job for jobs in submitted.values() if len(jobs) > 1 for job in jobs])
    chosen = {}
    for run, jobs in submitted.items():
        alive = [job for job in jobs if job in live]
        recorded = _recorded_job(store, suite, run) if len(jobs) > 1 and not alive else None
        chosen[run] = alive[-1] if alive else recorded if recorded in jobs else jobs[-1]
    return chosen


def _recorded_job(store: ResultStore, suite: str, run_id: str) -> str | None:
    """The SLURM job that the run's record says ran it last (bench.environment.slurm_job_id), None without one."""
    try:
        record = store.load(store.suite_dir(suite) / "runs" / run_id) or {}
    except CorruptRun:
        return None
    return str(record["slurm_job_id"]) if record.get("slurm_job_id") else None


def live_run_jobs(store: ResultStore, suite: str) -> dict[str, str]:
    """{run id: SLURM job id} of the runs of `suite` whose job SLURM still has queued or running."""
    jobs = slurm_run_jobs(store, suite)
    live = _live_jobs(list(jobs.values()))
    return {run: job for run, job in jobs.items() if job in live}


def _live_jobs(job_ids: Sequence[str]) -> dict[str, str]:
    """{job id: state} of the jobs of `job_ids` that SLURM still has (queued, running, requeued, completing), from
    squeue: sacct lags behind a submission by seconds, and names a pending array's jobs only as one range
    (`168_[0-3]`). Empty where SLURM is not installed."""
    if not job_ids:
        return {}
    try:  # an id SLURM has forgotten is left out; where none is known squeue fails, with nothing to read
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    wanted = set(job_ids)
    return {job: state for job, _, state in (line.partition("|") for line in out.stdout.split()) if job in wanted}


# why a record saying `running` is interrupted: its process was killed, and none holds its lock
INTERRUPTED = "no process holds it; the next `run` resumes it"
# why a run whose SLURM job completed without its record is interrupted: nothing of it was written
NEVER_STARTED = "its job ended before the run wrote its record; the next `run` starts it"


def slurm_status(stored: str, slurm: str | None) -> str:
    """A run's status from its record's (`stored`) and its SLURM job's state: the store says what a run reached,
    SLURM whether its job is still alive (a job killed at its time limit leaves a record saying running). A record
    that says more (finished, failed, corrupt) keeps its status."""
    if stored not in ("running", "pending", "missing"):
        return stored
    if slurm == "COMPLETED":  # its job ended without the run writing its end (or its start)
        return "interrupted"
    if slurm in ("CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE", "BOOT_FAIL"):
        return slurm.lower()
    if slurm == "FAILED":
        return "failed"
    if slurm in ("PENDING", "REQUEUED"):
        return "pending" if stored in ("pending", "missing") else f"{stored} (requeued)"
    return stored


def slurm_states(job_ids: Sequence[str]) -> dict[str, str]:
    """{job id: SLURM state} from sacct, and squeue for the jobs it still has (empty where SLURM is not installed)."""
    if not job_ids:
        return {}
    states = {}
    try:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    for line in out.splitlines():
        if "|" in line:
            job, state = line.split("|", 1)
            states[job] = state.split()[0]
    return {**states, **_live_jobs(job_ids)}


def cancel(store: ResultStore, suite: str, sweep_id: str | None = None) -> list[str]:
    """scancel the SLURM jobs of sweep `sweep_id` (default: the latest sweep of the suite), and the job that runs each
    of its runs where an earlier sweep's job does (`slurm_run_jobs`); return the job ids.

    Raises BenchError (via `unknown`) when `sweep_id` names no sweep of the suite. Local sweeps have no jobs.
    """
    known = sorted(sweeps(store, suite), key=lambda s: s["created"])
    chosen = [s for s in known if s["sweep_id"] == sweep_id] if sweep_id else known[-1:]
    if sweep_id and not chosen:
        raise unknown(f"sweep of suite {suite}", sweep_id, [s["sweep_id"] for s in sweeps(store, suite)])
    chosen = [s for s in chosen if s["launcher"] == "slurm"]
    runs = slurm_run_jobs(store, suite) if chosen else {}
    ids = list(dict.fromkeys([j["job_id"] for s in chosen for j in s["jobs"]]
                             + [runs[j["run_id"]] for s in chosen for j in s["jobs"] if j["kind"] == "run"]))
    if ids:
        subprocess.run(["scancel", *ids], check=False)
    return ids
