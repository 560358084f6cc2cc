"""Leaderboards from the result store: every run.json into one DataFrame, then tables.

Which epoch a table reports is a stated rule: the last evaluated epoch (`epoch="last"`). Failed,
running and corrupt runs appear as such, never as zeros and never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.store import ResultStore, write_json_atomic
from suites import SUITES

COST = ("wall_s", "trainable_params", "peak_mem_mb")


def _metrics_at(record: dict, epoch: str = "last") -> tuple[int | None, dict]:
    evaluated = [e for e in record.get("epochs", []) if e.get("metrics") and e.get("epoch", 0) > 0]
    if not evaluated:
        return None, {}
    chosen = evaluated[-1] if epoch == "last" else next((e for e in evaluated if e["epoch"] == int(epoch)), None)
    return (chosen["epoch"], chosen["metrics"]) if chosen else (None, {})


def _config_key(spec: dict) -> str:
    """Runs that differ only by seed share this key; anything else is a different leaderboard row."""
    rest = {k: v for k, v in spec.items() if k != "seed"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:6]


def load_runs(suite: str, store: ResultStore, epoch: str = "last") -> pd.DataFrame:
    rows = []
    for run_dir, record, error in store.iter_records(suite):
        if error:
            rows.append({"run_id": run_dir.name, "status": "corrupt", "reason": error})
            continue
        if record is None:
            rows.append({"run_id": run_dir.name, "status": "pending"})
            continue
        spec = record["spec"]
        label = spec["objective"] if spec["adapter"] == "full" else f"{spec['objective']}+{spec['adapter']}-r{spec['rank']}"
        at, metrics = _metrics_at(record, epoch)
        metrics = {**metrics, **record.get("final_metrics", {})}
        timings = record.get("timings", {})
        rows.append({
            "run_id": record["run_id"], "status": record["status"], "reason": record.get("reason"),
            "model": spec["model"], "split": spec["split"], "method": label, "lr": spec["hparams"]["lr"],
            "config": _config_key(spec), "objective": spec["objective"],
            "adapter": spec["adapter"], "rank": spec["rank"], "seed": spec["seed"], "epoch": at,
            **metrics,
            "wall_s": sum(timings.values()) if timings else None,
            "trainable_params": record.get("parameters", {}).get("trainable"),
            "peak_mem_mb": record.get("peak_memory_mb"),
        })
    return pd.DataFrame(rows)


def reference_rows(suite: str, store: ResultStore) -> pd.DataFrame:
    """The target (before unlearning) and reference (retain-only) rows TOFU tables carry."""
    rows, seen = [], set()
    for _, record, _ in store.iter_records(suite):
        if not record or "suite_records" not in record:
            continue
        spec, extra = record["spec"], record["suite_records"]
        for role, key in (("target", "target_metrics"), ("retain", "reference_metrics")):
            ident = (spec["model"], spec["split"], role)
            if key in extra and ident not in seen:
                seen.add(ident)
                rows.append({"model": spec["model"], "split": spec["split"], "method": f"({role})",
                             "status": "reference", **extra[key]})
    return pd.DataFrame(rows)


def leaderboard(suite_name: str, store: ResultStore, epoch: str = "last") -> pd.DataFrame:
    suite = SUITES[suite_name]
    runs = load_runs(suite_name, store, epoch)
    if runs.empty:
        return runs
    keys = ["model", "split", "method", "lr", "config"]
    finished = runs[runs["status"] == "finished"]
    table = []
    metric_cols = [m for m in suite.headline if m in runs.columns]
    extra_cols = [m.name for m in suite.metrics if m.name in runs.columns and m.name not in metric_cols]
    for key, group in runs.groupby(keys, dropna=False, sort=True):
        done = finished.merge(group[["run_id"]], on="run_id")
        row = dict(zip(keys, key))
        row["runs"] = f"{len(done)}/{len(group)}"
        statuses = sorted(set(group["status"]) - {"finished"})
        row["status"] = "ok" if not statuses else ",".join(statuses)
        if "forgotten" in done and len(done):  # TDEC: how many runs reached the thresholds within the cap
            row["forgotten"] = f"{int(done['forgotten'].fillna(False).astype(bool).sum())}/{len(done)}"
        for col in metric_cols + extra_cols[:4] + list(COST):
            values = done[col].dropna() if col in done else pd.Series(dtype=float)
            row[col] = values.mean() if len(values) else None
            if col in metric_cols:
                row[col + "_std"] = values.std(ddof=1) if len(values) > 1 else None
        table.append(row)
    frame = pd.DataFrame(table)
    refs = reference_rows(suite_name, store)
    if not refs.empty:
        refs = refs[[c for c in refs.columns if c in frame.columns or c in ("model", "split", "method", "status")]]
        frame = pd.concat([refs, frame], ignore_index=True)
    return frame


def _format(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f" or col in COST:
            out[col] = out[col].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.3g}")
    return out.fillna("")


def print_leaderboard(suite: str, store: ResultStore) -> None:
    frame = leaderboard(suite, store)
    if frame.empty:
        print(f"no runs of suite {suite} in {store.root}")
        return
    print(tabulate(_format(frame), headers="keys", tablefmt="github", showindex=False))


def write_report(suite: str, store: ResultStore) -> list[Path]:
    frame = leaderboard(suite, store)
    out = store.suite_dir(suite)
    out.mkdir(parents=True, exist_ok=True)
    if frame.empty:
        print(f"no runs of suite {suite} in {store.root}")
        return []
    shown = _format(frame)
    md = tabulate(shown, headers="keys", tablefmt="github", showindex=False)
    print(md)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.tex"]
    paths[0].write_text(f"# {suite} leaderboard (last epoch of each run)\n\n{md}\n")
    frame.to_csv(paths[1], index=False)
    paths[2].write_text(tabulate(shown, headers="keys", tablefmt="latex_booktabs", showindex=False) + "\n")
    return paths


def _status(stored: str, slurm: str | None) -> str:
    """The store says what a run reached; SLURM says whether its job is still alive."""
    if slurm in ("CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED") and stored != "finished":
        return slurm.lower()
    if slurm == "FAILED" and stored != "finished":
        return "failed"
    if slurm in ("PENDING", "REQUEUED") and stored != "finished":
        return "pending" if stored in ("pending", "missing") else f"{stored} (requeued)"
    return stored


def status_table(suite: str | None, results: str) -> str:
    store = ResultStore(results)
    suites = [suite] if suite else sorted(p.name for p in Path(results).iterdir() if p.is_dir()) if Path(results).is_dir() else []
    from bench.dispatch import slurm_states, sweeps

    rows = []
    for s in suites:
        SUITES[s]
        runs = load_runs(s, store)
        jobs = {j["run_id"]: j["job_id"] for sw in sweeps(store, s) if sw["launcher"] == "slurm"
                for j in sw["jobs"] if j["kind"] == "run"}  # newest sweep wins
        states = slurm_states(list(jobs.values()))
        seen = set()
        for _, r in runs.iterrows():
            seen.add(r["run_id"])
            job = jobs.get(r["run_id"])
            rows.append({"suite": s, "run": r["run_id"], "status": _status(r["status"], states.get(job)),
                         "epoch": "" if pd.isna(r.get("epoch")) else int(r["epoch"]),
                         "slurm": f"{job} {states.get(job, '')}".strip() if job else "",
                         "reason": r.get("reason") if isinstance(r.get("reason"), str) else ""})
        for run_id, job in jobs.items():  # submitted, not started yet
            if run_id not in seen:
                rows.append({"suite": s, "run": run_id, "status": _status("pending", states.get(job)), "epoch": "",
                             "slurm": f"{job} {states.get(job, '')}".strip(), "reason": ""})
    if not rows:
        return f"no runs in {results}"
    counts = pd.DataFrame(rows)["status"].value_counts().to_dict()
    return tabulate(rows, headers="keys", tablefmt="github") + "\n" + ", ".join(f"{n} {k}" for k, n in counts.items())
