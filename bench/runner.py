"""Run one RunSpec end to end, and a grid of them: prepare -> adapt -> unlearn -> evaluate -> store."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import resource
import shutil
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from bench.data import paired_batches
from bench.environment import environment, machine_name, slurm_job_id
from bench.errors import BenchError
from bench import checkpoint, distributed, fingerprint, lm_eval_bridge, phases, robustness
from bench.fingerprint import digest, model_fingerprint
from bench.lm_eval_bridge import check_tasks
from bench.loop import EpochStats, LoopState, NonFiniteLoss, make_optimizer, train
from bench.models import count_parameters, load_model
from bench.preflight import check_stages
from bench.spec import RunSpec, in_request_order, kept_models
from bench.store import Run, new_record, publish, read_json, write_json_atomic
from methods import ADAPTERS, OBJECTIVES, AdapterInputs, fila, refusals, training_code
from methods.lora import target_linear_names
from suites import SUITES, Context
from suites.base import LATE_OPTIONS


class NonFiniteMetric(RuntimeError):
    pass


class FinalStageFailed(RuntimeError):
    """The epochs finished but the final evaluation did not; the unlearned model is checkpointed."""


@dataclass
class GridOutcome:
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # claimed by another process
    failed: list[tuple[str, str]] = field(default_factory=list)
    # until what runs share (references, thresholds, Fisher) was built; ~0 when cached (runs may overlap it)
    artefact_seconds: float = 0.0


def artefact_entries(store, suite: str) -> set[str]:
    """The suite's shared artefacts (reference models, Fisher tensors, thresholds, generated data), as paths
    up to three levels below results/<suite>/artefacts (tofu-mini: models/<recipe>/<split-seed>); stored
    evaluations (`evals/`) are left out: they are not what "with references cached" is about, and a change
    of evaluator code recomputes them."""
    root = store.artefact_dir(suite)
    if not root.exists():
        return set()

    def below(path, depth):
        yield path
        if depth > 1 and path.is_dir():
            for child in path.iterdir():
                yield from below(child, depth - 1)

    return {str(p.relative_to(root)) for top in root.iterdir() if top.name != "evals" for p in below(top, 3)}


def record_grid(store, suite: str, started: float, outcome: GridOutcome, workers: int, run_ids: Sequence[str],
                built: Sequence[str] = (), device: str = "cpu") -> None:
    """Append this `bench run`'s wall time to results/<suite>/grids.json: what `bench perf` reports as a
    sweep's time, cold (with the shared artefacts built: `built` names them, `artefact_entries`) and without
    building them. `grid` (a digest of the sorted run ids) says which grid it was: perf counts only the
    suite's default sweep. `machine`: the CPU and torch's kernels, and the GPU on `device` cuda (CPU hosts of one kind
    differ by 1.5-2x between AVX2 and AVX512 kernels)."""
    path = store.suite_dir(suite) / "grids.json"
    grids = read_json(path) if path.exists() else []
    grids.append({"grid": digest(sorted(run_ids)), "runs": len(run_ids), "started_at": started,
                  "finished_at": time.time(), "workers": workers,
                  "finished": len(outcome.finished), "skipped": len(outcome.skipped), "failed": len(outcome.failed),
                  "artefact_seconds": outcome.artefact_seconds, "built": sorted(built), "machine": machine_name(device)})
    write_json_atomic(path, grids)


def fisher_cache(ctx: Context, suite: str, key: str, forget, retain, batch_size: int, pad_id: int
                 ) -> Callable[[torch.nn.Module, list[str]], dict[str, torch.Tensor]]:
    """FILA's row weights for (model, forget data): computed once, stored as safetensors, reused
    by every rank and every objective."""
    # safetensors loads when this runs, not on import of bench.runner
    from safetensors.torch import load_file, save_file

    def row_weights(model, names):
        path = ctx.store.artefact_dir(suite) / "fisher" / f"{key}.safetensors"
        if path.exists():
            cached = load_file(path)
            if set(cached) == set(names):
                return cached
        ctx.log(f"FILA: Fisher pass over {len(forget)} forget examples (cached at {path})")
        weights = fila.row_weights(*fila.fisher_diagonals(
            model, names, paired_batches(forget, retain, batch_size, pad_id, seed=0)))
        # a file of other rows (another model structure under the same key) is replaced
        publish(path, lambda tmp: save_file({n: w.contiguous().cpu() for n, w in weights.items()}, str(tmp)))
        return weights

    return row_weights


def peak_memory_mb(device: str, recorder: phases.PhaseRecorder | None = None) -> float:
    """The run's peak: the largest of its phases' where the recorder resets the high-water mark per phase
    (bench/phases.py), else the process's."""
    if recorder is not None and recorder.phases and recorder.gauge.exact:
        return recorder.peak_mb()
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; process-wide high-water mark


def _check_finite(metrics: dict, epoch: int) -> None:
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise NonFiniteMetric(f"metric {name} is {value} at epoch {epoch}")


def run_one(spec: RunSpec, ctx: Context, force: bool = False, keep_model: bool = False) -> str:
    """Run `spec` unless it is finished from unchanged inputs (or `force`). Returns finished | skipped |
    busy | failed. Under torchrun every rank calls it; rank 0 claims the run and decides, the others
    follow (bench/distributed.py). A BenchError (bad input) leaves the store as it was: a run that had no
    record is removed, one that had keeps its record.

    `keep_model`: a later request of a sequence starts from this run's final model (`RunSpec.previous`), so it is
    exported to `<run dir>/model` (`model_dir`), and a finished run without it is recomputed. A request whose
    previous one has not finished with its model fails at once, naming it."""
    main = distributed.is_main()
    with (ctx.store.claim(spec) if main else contextlib.nullcontext()) as run:
        decision = None
        if main:
            try:
                decision = _decide(spec, ctx, run, force, keep_model)
            except BenchError as e:
                decision = {"status": "error", "message": str(e)}
                if run is not None and not run.existed:
                    ctx.store.discard(run)
        try:
            decision = distributed.share(decision)
        except distributed.RankLost:
            if main and run is not None and not run.existed:
                ctx.store.discard(run)
            raise
        if decision["status"] == "error":
            raise BenchError(decision["message"])
        if decision["status"] == "blocked":
            if main:
                _fail(run, decision["message"])
                ctx.log(f"{spec.run_id}: FAILED: {decision['message']}")
            return "failed"
        if decision["status"] != "run":
            return decision["status"]
        previous = copy.deepcopy(run.record) if main and run.existed else None
        resume_from = decision["resume_from"]
        if main:
            if force or resume_from is None:  # a fresh start keeps nothing of an earlier attempt
                checkpoint.remove_all(run.dir)
                # the earlier attempt's exported model goes aside, not away: an input error below restores it
                # with the record it belongs to; anything else (a new result, a failure) discards it
                checkpoint.set_aside(run.dir / MODEL_DIR)
                run.record = new_record(spec)
                run.record["started_at"] = time.time()
            else:
                ctx.log(f"{spec.run_id}: resuming after epoch {resume_from[0]} ({resume_from[1]})")
                run.record.setdefault("resumed_after_epoch", []).append(resume_from[0])
            run.record.update(status="running", reason=None, host=socket.gethostname(), pid=os.getpid(),
                              slurm_job_id=slurm_job_id(), world_size=distributed.world_size())
            run.save()
        shared = distributed.share(run if main else None)
        if not main:  # trains alongside rank 0; the store is rank 0's
            run = Run(shared.dir, shared.record, existed=shared.existed, writes=False)
        try:
            try:
                with phases.recording(ctx.device):  # time and peak memory per phase -> run.json "phases"
                    _execute(spec, ctx, run, resume_from, keep_model)
            except BenchError:
                if main and previous is not None:
                    checkpoint.put_back(run.dir / MODEL_DIR)  # with the record it belongs to, restored below
                raise
            finally:
                if main:
                    checkpoint.drop_set_aside(run.dir / MODEL_DIR)
        except (NonFiniteLoss, NonFiniteMetric, FinalStageFailed) as e:  # every rank raises these together
            _fail(run, str(e))
            ctx.log(f"{spec.run_id}: FAILED: {e}")
            return "failed"
        except BenchError:
            if main and previous is None:
                ctx.store.discard(run)
            elif main:  # the record as it was, byte for byte
                write_json_atomic(run.dir / "run.json", previous)
            raise
        except Exception as e:
            _fail(run, f"{type(e).__name__}: {e}")
            if run.writes:
                (run.dir / "traceback.txt").write_text(traceback.format_exc())
            ctx.log(f"{spec.run_id}: FAILED: {type(e).__name__}: {e} (traceback in {run.dir / 'traceback.txt'})")
            if distributed.active():
                raise  # the other ranks cannot know: stop this process, and torchrun or the timeouts stop them
            return "failed"
        ctx.log(f"{spec.run_id}: finished -> {run.dir / 'run.json'}")
        return "finished"


def _decide(spec: RunSpec, ctx: Context, run: Run | None, force: bool, keep_model: bool = False) -> dict:
    """Rank 0's decision for a claimed run: busy, skipped, blocked (a request whose previous one has no final
    model), or run (fresh, or resumed from a checkpoint)."""
    if run is None:
        ctx.log(f"{spec.run_id}: being computed by another process, skipped")
        return {"status": "busy"}
    if spec.previous is not None:
        missing = previous_missing(spec, ctx)
        if missing:
            return {"status": "blocked", "message": missing}
    if force:
        return {"status": "run", "resume_from": None}
    changed = changed_inputs(spec, ctx, run.record) if run.status in ("finished", "running", "failed") else []
    if run.status == "finished":
        if changed:
            ctx.log(f"{spec.run_id}: finished, but from other inputs than today's ({', '.join(changed)}); recomputing")
            return {"status": "run", "resume_from": None}
        if (keep_model or ctx.save_models) and not final_model(ctx.store.run_dir(spec)):
            why = "a later request starts from its model" if keep_model else "--save-models asks for its model"
            ctx.log(f"{spec.run_id}: finished, but {why}, which was not kept; recomputing")
            return {"status": "run", "resume_from": None}
        ctx.log(f"{spec.run_id}: finished already, skipped ({run.dir}; --force recomputes)")
        return {"status": "skipped"}
    resume_from = None
    if run.status in ("running", "failed") and run.record.get("epochs") and not changed:
        resume_from = checkpoint.latest(run.dir, at_most=run.record["epochs"][-1]["epoch"])
    return {"status": "run", "resume_from": resume_from}


MODEL_DIR = "model"  # <run dir>/model: the exported final model (--save-models, or a later request's start)


def final_model(run_dir) -> str | None:
    """The run's exported final model directory, or None when it has none (complete: its config.json is there)."""
    path = Path(run_dir) / MODEL_DIR
    return str(path) if (path / "config.json").is_file() else None


def previous_missing(spec: RunSpec, ctx: Context) -> str | None:
    """Why request `spec` cannot start yet (its previous request is not finished, or finished without its final
    model), or None when it can."""
    previous = spec.previous
    status = ctx.store.status(previous)
    if status == "finished" and final_model(ctx.store.run_dir(previous)):
        return None
    state = "finished without its final model" if status == "finished" else status
    return (f"request {spec.request} starts from the final model of request {previous.request} ({previous.run_id}), "
            f"which is {state}: run the sequence again (its earlier requests go first)")


def run_inputs(spec: RunSpec, ctx: Context) -> dict[str, str]:
    """Fingerprints of what a run of `spec` reads besides its spec (Suite.inputs), and for a request of a sequence
    the weights of the model it starts from: a recomputed earlier request with other weights invalidates it."""
    inputs = SUITES[spec.suite].inputs(spec, ctx)
    inputs["code/training"] = training_code(spec.objective, spec.adapter)  # an edited objective is another run
    if spec.previous is not None:
        start = final_model(ctx.store.run_dir(spec.previous))
        inputs["model/previous_request"] = model_fingerprint(start) if start else "missing"
    return inputs


def changed_inputs(spec: RunSpec, ctx: Context, record: dict) -> list[str]:
    """The inputs (data files, model weights, evaluator code, the previous request's model) whose fingerprints
    differ from those `record` was computed from. A record from before fingerprints were recorded has none to
    compare."""
    recorded = record.get("inputs")
    if recorded is None:
        return []
    current = run_inputs(spec, ctx)
    return sorted(k for k in recorded.keys() | current.keys() if recorded.get(k) != current.get(k))


def _fail(run: Run, reason: str) -> None:
    run.record.update(status="failed", reason=reason, finished_at=time.time())
    run.save()


def _preflight(spec: RunSpec, ctx: Context) -> None:
    """What the final stage will need beyond the suite's own (checked in its prepare), resolved before the
    first step so that nothing fails after the last: the extra lm-eval tasks with their data, and the
    quantisation library of the robustness stage."""
    extra = [t for t in str(spec.option("lm_eval_extra", "")).split(",") if t]
    if extra:
        check_tasks(extra, ctx.lm_eval_include)

    check_stages([spec])


def _execute(spec: RunSpec, ctx: Context, run: Run, resume_from: tuple[int, object] | None,
             keep_model: bool = False) -> None:
    suite, objective, adapter = SUITES[spec.suite], OBJECTIVES[spec.objective], ADAPTERS[spec.adapter]
    timings: dict[str, float] = {}
    recorder = phases.current()
    run.record["phases"] = recorder.phases  # filled in as the run goes (bench/phases.py)
    t0 = time.perf_counter()
    with recorder.phase("prepare"):
        prepared = suite.prepare(spec, ctx)
        if spec.previous is not None:  # a later request: it unlearns the model the previous one left
            prepared.model_path = final_model(ctx.store.run_dir(spec.previous))
            run.record["start_model"] = {"request": spec.request, "previous_run_id": spec.previous.run_id,
                                         "dir": prepared.model_path}
    timings["prepare"] = time.perf_counter() - t0
    run.record["inputs"] = run_inputs(spec, ctx)  # a finished run is reused only while these hold
    # the forget set's size: the scalability axis's x (bench/axes.py)
    run.record["forget_size"] = {"examples": len(prepared.forget),
                                 "tokens": sum(len(e["input_ids"]) for e in prepared.forget)}
    run.record["suite_records"] = prepared.records
    _preflight(spec, ctx)
    run.record["environment"] = environment(ctx.device, spec.hparams.dtype, spec.seed)

    t0 = time.perf_counter()
    torch.manual_seed(spec.seed)
    with recorder.phase("load"):
        model, tokenizer = load_model(prepared.model_path, dtype=spec.hparams.dtype,
                                      trust_remote_code=ctx.trust_remote_code, device=ctx.device)
        wants_reference = objective.wants_reference(spec.hparams)
        reference = copy.deepcopy(model).eval().requires_grad_(False) if wants_reference else None
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with recorder.phase("adapter"):
        row_weights = _fisher_for(spec, prepared, ctx, tokenizer.pad_token_id)
        model = adapter.apply(model, AdapterInputs(rank=spec.rank, fisher_row_weights=row_weights))
        if objective.prepare is not None:
            objective.prepare(model, spec.hparams)
    timings["adapter"] = time.perf_counter() - t0
    alternate = None
    if objective.needs_alternate:
        answers_file = spec.option("idk_answers", LATE_OPTIONS["idk_answers"])
        alternate = refusals.alternates(prepared.forget, tokenizer, refusals.load(answers_file), spec.seed,
                                        prepared.format_answer, prepared.max_length)
        run.record["alternate_answers"] = refusals.describe(answers_file)
    run.record["parameters"] = count_parameters(model)

    state, start_epoch = None, 0
    if resume_from is not None:
        state = LoopState(*make_optimizer(model, spec.hparams, len(prepared.forget)))
        start_epoch = checkpoint.restore(resume_from[1], model, state.optimizer, state.scheduler)
    last_recorded = max((e["epoch"] for e in run.record.get("epochs", [])), default=0)
    epochs: list[dict] = [e for e in run.record.get("epochs", []) if e["epoch"] <= start_epoch]
    if not epochs:  # epoch 0: the model before unlearning
        with recorder.phase("evaluate-0"):
            # the suite's stored evaluation of its start model; a later request's start model is evaluated here
            stored = prepared.records.get("target_metrics") if spec.previous is None else None
            before = stored or prepared.evaluate(model, tokenizer).metrics
        epochs.append({"epoch": 0, "metrics": before})
    run.record["epochs"] = epochs
    eval_seconds = 0.0
    # option epoch_metrics=read: every metric only at the epoch the run ends; before it, what is read per epoch
    split_evaluation = prepared.per_epoch is not None and spec.option("epoch_metrics", LATE_OPTIONS["epoch_metrics"]) == "read"

    def evaluate_epoch(model, tokenizer, last: bool):
        if not split_evaluation or last:
            return prepared.evaluate(model, tokenizer)
        return prepared.per_epoch(model, tokenizer)

    items_dir = run.dir / "items"
    last_evaluation = None  # the robustness stages compare against it

    def on_epoch_end(stats: EpochStats, state: LoopState) -> bool:
        nonlocal eval_seconds, last_evaluation
        recorder.end()  # the epoch's training
        t = time.perf_counter()
        # every rank evaluates its (identical) model; rank 0's numbers steer all of them
        last = stats.epoch >= spec.hparams.epochs
        with recorder.phase(f"evaluate-{stats.epoch}"):
            view = checkpoint.for_evaluation(model)  # adapters merged into a copy
            evaluation = distributed.share(evaluate_epoch(view, tokenizer, last))
            stop = bool(prepared.should_stop and prepared.should_stop(evaluation.metrics))
            if stop and not last and split_evaluation:  # the run ends here: this epoch is the one the tables report
                evaluation = distributed.share(prepared.complete(view, tokenizer, evaluation))
            del view
        last_evaluation = evaluation
        eval_seconds += time.perf_counter() - t
        entry = {"epoch": stats.epoch, "train": {"loss": stats.loss, **stats.parts, "steps": stats.steps,
                                                  "seconds": stats.seconds},
                 "metrics": evaluation.metrics, "eval_seconds": time.perf_counter() - t}
        epochs.append(entry)
        if run.writes:
            write_json_atomic(items_dir / f"epoch-{stats.epoch}.json", evaluation.items)
        run.save()
        _check_finite(evaluation.metrics, stats.epoch)
        if stop:
            run.record["stopped_at_epoch"] = stats.epoch
        elif stats.epoch < spec.hparams.epochs and ctx.checkpoints and run.writes:
            checkpoint.save(run.dir, stats.epoch, model, state.optimizer, state.scheduler)
        if not stop and stats.epoch < spec.hparams.epochs:
            recorder.begin(f"train-{stats.epoch + 1}")
        return stop

    t0 = time.perf_counter()
    # a run whose epochs all finished but whose final stage failed resumes straight into that stage
    trained = bool(resume_from is not None and run.record.get("training_complete") and start_epoch == last_recorded)
    run.record["training_complete"] = False
    try:
        if trained:
            ctx.log(f"{spec.run_id}: unlearning finished earlier; computing only the final evaluation")
        else:
            recorder.begin(f"train-{start_epoch + 1}")
            state = train(model, objective, prepared.forget, prepared.retain, spec.hparams, pad_id=tokenizer.pad_token_id,
                          seed=spec.seed, reference=reference, alternate=alternate, on_epoch_end=on_epoch_end,
                          start_epoch=start_epoch, state=state,
                          progress=lambda msg: ctx.log(f"  {spec.method_label} {spec.split}: {msg}"))
    finally:
        recorder.end()  # an epoch cut short by an error
        if trained:  # the epochs' times are those of the attempt that ran them
            earlier = run.record.get("timings", {})
            timings.update(train=earlier.get("train", 0.0), evaluate=earlier.get("evaluate", 0.0))
        else:
            timings["train"] = time.perf_counter() - t0 - eval_seconds
            timings["evaluate"] = eval_seconds
        run.record["timings"] = timings
        run.record["peak_memory_mb"] = peak_memory_mb(ctx.device, recorder)
    run.record["training_complete"] = True
    try:
        final = distributed.share(_final_stage(spec, ctx, run, prepared, model, tokenizer, timings, last_evaluation))
        if (ctx.save_models or keep_model) and run.writes:  # published whole by one rename (bench.store.publish)
            exported = publish(run.dir / MODEL_DIR, lambda tmp: checkpoint.export_model(model, tokenizer, tmp))
            run.record["model_dir"] = str(exported)
    except Exception as e:
        # keep the unlearned model: the next `run` of the same spec computes only this stage
        if run.writes:
            checkpoint.save(run.dir, epochs[-1]["epoch"], model, state.optimizer, state.scheduler)
        reason = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
        raise FinalStageFailed(f"the final evaluation failed after unlearning ({reason}); the unlearned model is kept "
                               f"in {run.dir}: fix the cause and run the same command again to compute only the "
                               f"final evaluation, without retraining") from e
    run.record["final_metrics"] = final
    run.record.update(status="finished", finished_at=time.time())
    run.save()
    if run.writes:
        checkpoint.remove_all(run.dir)


def _final_stage(spec: RunSpec, ctx: Context, run: Run, prepared, model, tokenizer, timings: dict,
                 last_evaluation) -> dict:
    """What a run measures once, after its last epoch: the suite's utility, the extra lm-eval tasks and
    the robustness stages. `last_evaluation` is None when a resumed run enters here directly."""
    epochs = run.record["epochs"]
    final = {}
    if prepared.should_stop is not None:
        final["epochs_to_forget"] = run.record.get("stopped_at_epoch")  # None: not forgotten within the cap
        final["forgotten"] = final["epochs_to_forget"] is not None
    if prepared.final_evaluate is not None:
        t0 = time.perf_counter()
        with phases.phase("utility"):
            final.update(prepared.final_evaluate(checkpoint.for_evaluation(model), tokenizer))
        timings["utility"] = time.perf_counter() - t0
        final = distributed.share(final)
        _check_finite(final, epochs[-1]["epoch"])
    extra = [t for t in str(spec.option("lm_eval_extra", "")).split(",") if t]
    if extra:
        t0 = time.perf_counter()
        counts: dict = {}
        scores = lm_eval_bridge.run_tasks(checkpoint.for_evaluation(model), tokenizer, extra, ctx.lm_eval_include,
                                          include_defaults=True, device=ctx.device,
                                          limit=int(spec.option("eval_limit", 0)) or None, items=counts)
        final.update({f"lm_eval/{t}": v for t, v in scores.items()})
        final.update({f"lm_eval_items/{t}": n for t, n in counts.items()})
        timings["lm_eval_extra"] = time.perf_counter() - t0
        run.record["lm_eval_include"] = ctx.lm_eval_include
    stages = robustness.parse(spec.option("robustness", LATE_OPTIONS["robustness"]))
    if stages:
        target = functools.cache(lambda: load_model(prepared.model_path, dtype=spec.hparams.dtype,
                                                    trust_remote_code=ctx.trust_remote_code, device=ctx.device)[0])
        final.update(robustness.run_stages(stages, model, tokenizer, prepared, spec, ctx, target, timings, last_evaluation))
        run.record["robustness"] = robustness.describe(stages, spec, prepared)
        final = distributed.share(final)
        _check_finite(final, epochs[-1]["epoch"])
    return final


def fisher_key(spec: RunSpec, prepared) -> str:
    """What FILA's row weights are computed from: the model's weights, every forget and retain example
    the Fisher pass reads, its batch size and dtype, and the code of the pass."""
    return digest([model_fingerprint(prepared.model_path), prepared.forget, prepared.retain, spec.hparams.batch_size,
                   spec.hparams.dtype, fingerprint.code_fingerprint("methods.fila", "methods.losses", "bench.data")])


def _fisher_for(spec: RunSpec, prepared, ctx: Context, pad_id: int):
    return fisher_cache(ctx, spec.suite, fisher_key(spec, prepared), prepared.forget, prepared.retain,
                        spec.hparams.batch_size, pad_id)


def prepare_artefacts(spec: RunSpec, ctx: Context) -> None:
    """Build what runs of `spec`'s group share (references, thresholds, FILA's Fisher) without training. A later
    request's Fisher pass reads the model the previous request leaves, which does not exist yet: its run makes it."""
    prepared = SUITES[spec.suite].prepare(spec, ctx)
    if spec.adapter == "fila" and spec.previous is None:
        model, tokenizer = load_model(prepared.model_path, dtype=spec.hparams.dtype,
                                      trust_remote_code=ctx.trust_remote_code, device=ctx.device)
        _fisher_for(spec, prepared, ctx, tokenizer.pad_token_id)(model, target_linear_names(model))


def run_grid(specs: Sequence[RunSpec], ctx: Context, force: bool = False, show_progress: bool = True) -> GridOutcome:
    """Run each spec in turn with `run_one` (skipping finished ones unless `force`; the requests of a sequence
    after the earlier ones) and return what happened.

    The outcome lists run ids by status (finished, skipped, busy) and (run id, reason) for failed runs, plus
    the seconds spent building shared artefacts. Raises BenchError when the result store is not writable.
    """
    outcome = GridOutcome()
    ctx.store.check_writable()
    keep = kept_models(specs)
    bar = tqdm(in_request_order(specs), desc="grid", unit="run", disable=not show_progress or not distributed.is_main())
    for spec in bar:
        bar.set_postfix_str(f"{spec.split} {spec.method_label} s{spec.seed}")
        status = run_one(spec, ctx, force=force, keep_model=spec.run_id in keep)
        if status == "finished" and distributed.is_main():  # one process: a run builds what runs share in its prepare
            outcome.artefact_seconds += (ctx.store.load(ctx.store.run_dir(spec)) or {}).get("timings", {}).get("prepare", 0.0)
        if status == "failed":
            outcome.failed.append((spec.run_id, ctx.store.reason(spec)))
        else:
            getattr(outcome, status).append(spec.run_id)
    return outcome
