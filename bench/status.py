"""`bench status`: every run with its status as the store sees it and, for SLURM sweeps, as SLURM sees it."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from tabulate import tabulate

from bench.dispatch import INTERRUPTED, NEVER_STARTED, slurm_run_jobs, slurm_states, slurm_status
from bench.errors import BenchError
from bench.runs import OTHER_CODE, absent_reason, choose_epoch, evaluated_by_other_code
from bench.sequential import FILE as PLAN_FILE
from bench.store import ResultStore, suite_dir_hint
from suites import SUITES

log = logging.getLogger("bench")


def stored_runs(suite: str, store: ResultStore) -> list[dict]:
    """Every run directory of `suite` as the store sees it: run_id, status (a record's, `pending` without one,
    `corrupt` when it cannot be read), the last evaluated epoch (None before the first) and the reason it gives.
    Reads the records only: no pandas, no metrics (`bench status` answers in under a second)."""
    rows = []
    for run_dir, record, error in store.iter_records(suite):
        if error or record is None:
            rows.append({"run_id": run_dir.name, "status": "corrupt" if error else "pending", "epoch": None,
                         "reason": error})
            continue
        rows.append({"run_id": record["run_id"], "status": record["status"],
                     "epoch": choose_epoch(record, "last", {})[0],
                     "reason": OTHER_CODE if evaluated_by_other_code(record) else record.get("reason")})
    return rows


def status_table(suite: str | None, results: str) -> str:
    """Every run of `suite` (or of every suite in `results`) with its status as the store and SLURM see it, its
    last epoch and its job, as a GitHub-Markdown table with counts per status."""
    store = ResultStore(results)
    suites = [suite] if suite is not None else \
        sorted(p.name for p in Path(results).iterdir() if p.is_dir()) if Path(results).is_dir() else []
    if suite is not None:
        SUITES[suite]  # a named suite that does not exist (`--suite ""` too): a one-line error with a did-you-mean
    else:  # every directory of `results` that is a suite; another directory (a backup, an unloaded plug-in's) is named
        unknown = [s for s in suites if s not in SUITES]
        if unknown and not suite_dir_hint(Path(results), None, "--results", SUITES):  # a suite's own directory: hinted below
            log.warning(f"skipped {', '.join(unknown)} in {results}: not a suite (a plug-in's needs UNLEARNING_BENCH_PLUGINS)")
        suites = [s for s in suites if s in SUITES]
    rows = []
    for s in suites:
        runs = stored_runs(s, store)
        jobs = slurm_run_jobs(store, s)
        states = slurm_states(list(jobs.values()))
        seen = set()
        for r in runs:
            seen.add(r["run_id"])
            job = jobs.get(r["run_id"])
            status = slurm_status(r["status"], states.get(job))
            if status == "running" and not job and not store.is_claimed(store.suite_dir(s) / "runs" / r["run_id"]):
                status = "interrupted"
            if status == "interrupted" and not r["reason"]:
                r["reason"] = NEVER_STARTED if r["status"] == "pending" else INTERRUPTED
            rows.append({"suite": s, "run": r["run_id"], "status": status,
                         "epoch": "" if r["epoch"] is None else r["epoch"],
                         "slurm": f"{job} {states.get(job, '')}".strip() if job else "",
                         # one table row per run: a reason's newlines and pipes would break the table
                         "reason": " ".join(r["reason"].replace("|", "/").split())
                         if isinstance(r["reason"], str) else ""})
        for run_id, away in store.absent(s).items():  # moved away (`mv X X.bak`): listed, as not present
            seen.add(run_id)
            rows.append({"suite": s, "run": run_id, "status": "absent", "epoch": "", "slurm": "",
                         "reason": absent_reason(away)})
        for run_id, job in jobs.items():  # submitted, not started yet
            if run_id not in seen:
                status = slurm_status("pending", states.get(job))
                rows.append({"suite": s, "run": run_id, "status": status, "epoch": "",
                             "slurm": f"{job} {states.get(job, '')}".strip(),
                             "reason": NEVER_STARTED if status == "interrupted" else ""})
    strays = "".join(f"\n{why}" for s in suites for why in store.strays(s))  # in runs/, no run's: never counted
    if not rows:
        # a fresh clone: the committed plan records looks at runs that are not here yet
        planned = [s for s in suites if (store.suite_dir(s) / PLAN_FILE).is_file()]
        where = "" if Path(results).resolve() == Path("results").resolve() else f" --results {results}"
        hint = suite_dir_hint(Path(results), suite, "--results", SUITES)
        if hint:  # a suite's own directory given for the results directory: an error, as `report` says it
            raise BenchError(f"no runs in {results}{hint}" + strays)
        return f"no runs in {results}" + "".join(
            f"\n{store.suite_dir(s) / PLAN_FILE} holds a sequential plan whose looks wait for their runs: "
            f"`python -m bench run --suite {s} --methods all{where}`, then the suite's `--until-decided` command in "
            f"results/README.md (with the plan's --max-seeds{', and' + where if where else ''}), rebuild them"
            for s in planned) + strays
    counts = Counter(r["status"] for r in rows).most_common()
    return (tabulate(rows, headers="keys", tablefmt="github") + "\n" + ", ".join(f"{n} {k}" for k, n in counts)
            + strays)
