"""A grid on this machine's cores: `bench run --workers N` runs N runs at a time, one process each.

Tiny models do not speed up with more torch threads (2 threads ran the mini suites 3-8x slower than 1
on a shared 2-core machine), but independent runs do with more processes. What the runs of one
(suite, model, split, seed) share -- references, thresholds, FILA's Fisher row weights -- is prepared
by one task, in order; the tasks go first, side by side, and each one's runs are queued as soon as it is
done, so no core waits for references it does not need; a request of a sequence (a suite's `requests` axis,
`RunSpec.previous`) is queued when the run whose model it starts from has ended. Two tasks may build an artefact they both need
(a mini suite's base model) at the same time: every artefact is published atomically and the first copy
kept (bench/store.py artefact / publish / write_json_atomic), and a core that would otherwise wait
spends the time. Each run is claimed in the store as in one process (bench/store.py), so a second
`bench run` on the same results is safe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Sequence

from tqdm import tqdm

from bench.dispatch import Runtime, _artefact_specs, _groups
from bench.quiet import quiet_libraries
from bench.spec import RunSpec, kept_models
from bench.store import ResultStore

MAX_AUTO_WORKERS = 8  # each process holds the stack (about 0.7 GB): a big login node must not start 64

_ctx = None  # the worker's Context, built once per process


def auto_workers(device: str, threads: int, runs: int) -> int:
    """`--workers auto`: on CPU, as many processes as the cores this process may use hold `threads` threads
    each (at most MAX_AUTO_WORKERS and the number of runs); on a GPU one, the device is not shared."""
    if device != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores // max(threads, 1), MAX_AUTO_WORKERS, runs))


def _exit_with(parent: int) -> None:
    """A worker whose grid process is gone (killed, not interrupted) stops too, as a killed run does: its
    record then reads `interrupted`, not a run some orphan goes on writing after the user stopped the grid."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _init(runtime: Runtime, level: int) -> None:
    global _ctx
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    quiet_libraries(verbose=level <= logging.DEBUG)  # as the grid's own process does
    _ctx = runtime.context()


def _prepare(specs: list[dict]) -> None:
    """One seed's shared artefacts, in order: its references first, then what builds on them (FILA's Fisher)."""
    # torch loads when this runs, not when the CLI imports bench.pool
    from bench.runner import prepare_artefacts

    for spec in specs:
        prepare_artefacts(RunSpec.from_dict(spec), _ctx)


def _run(spec: dict, force: bool, keep_model: bool = False) -> str:
    # torch loads when this runs, not when the CLI imports bench.pool
    from bench.runner import run_one

    return run_one(RunSpec.from_dict(spec), _ctx, force=force, keep_model=keep_model)


def run_grid_parallel(specs: Sequence[RunSpec], runtime: Runtime, workers: int, force: bool = False,
                      show_progress: bool = True):
    """run_grid's outcome for `specs`, computed by `workers` processes. A bad input (BenchError) in any run
    stops the grid: runs not started are not started, and the error is raised here. A request of a sequence
    (`RunSpec.previous`) starts only after the run it starts from has ended."""
    # torch loads when this runs, not when the CLI imports bench.pool
    from bench.runner import GridOutcome

    store = ResultStore(runtime.results)
    store.check_writable()
    outcome = GridOutcome()
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-use
    level = logging.getLogger().getEffectiveLevel()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init,
                             initargs=(runtime, level)) as pool:
        try:
            # one preparation per (group, seed), its specs in order (two of one seed would build its references
            # twice side by side); a group-seed's runs start as soon as its own preparation is done
            key = lambda s: (s["suite"], s["model"], s["split"], s["seed"])
            shared: dict[tuple, list[dict]] = {}
            for group in _groups(specs).values():
                for s in _artefact_specs(group):
                    shared.setdefault(key(s), []).append(s)
            waiting: dict[tuple, list[RunSpec]] = {}
            for spec in specs:
                waiting.setdefault(key(spec.to_dict()), []).append(spec)
            keep = kept_models(specs)
            in_grid = {s.run_id for s in specs}
            ended: set[str] = set()  # runs of this grid that have ended (a later request may start)
            held: list[RunSpec] = []  # prepared, waiting for the run they start from

            def submit_ready(specs_now: list[RunSpec]) -> None:
                for spec in specs_now:
                    if spec.previous is not None and spec.previous.run_id in in_grid and spec.previous.run_id not in ended:
                        held.append(spec)
                        continue
                    run = pool.submit(_run, spec.to_dict(), force, spec.run_id in keep)
                    running[run] = spec
                    pending.add(run)

            start = time.perf_counter()
            preparing = {pool.submit(_prepare, task): k for k, task in shared.items()}
            running: dict = {}
            pending = set(preparing)
            bar = tqdm(total=len(specs), desc="grid", unit="run", disable=not show_progress)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if future in preparing:
                        future.result()  # a failure stops the grid here
                        submit_ready(waiting.pop(preparing[future], []))
                        if not any(f in preparing for f in pending):
                            outcome.artefact_seconds = time.perf_counter() - start
                        continue
                    spec, status = running[future], future.result()
                    ended.add(spec.run_id)
                    released = [s for s in held if s.previous.run_id == spec.run_id]
                    held[:] = [s for s in held if s.previous.run_id != spec.run_id]
                    submit_ready(released)
                    bar.update()
                    bar.set_postfix_str(f"{spec.split} {spec.method_label} s{spec.seed}")
                    if status == "failed":
                        outcome.failed.append((spec.run_id, store.reason(spec)))
                    else:
                        getattr(outcome, status).append(spec.run_id)
            bar.close()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # runs already started finish; no new one starts
            raise
    return outcome

