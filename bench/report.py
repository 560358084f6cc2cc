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

from bench.store import ResultStore
from suites import SUITES

COST = ("wall_s", "trainable_params", "peak_mem_mb")


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
    from bench.errors import BenchError, unknown

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


def _config_key(spec: dict) -> str:
    """Runs that differ only by seed share this key; anything else is a different leaderboard row."""
    rest = {k: v for k, v in spec.items() if k != "seed"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:6]


def load_runs(suite: str, store: ResultStore, epoch: str = "last") -> pd.DataFrame:
    direction = {m.name: m.higher_is_better for m in SUITES[suite].metrics}
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
        at, metrics = choose_epoch(record, epoch, direction)
        metrics = {**metrics, **record.get("final_metrics", {})}
        timings = record.get("timings", {})
        rows.append({
            "run_id": record["run_id"], "status": record["status"], "reason": record.get("reason"),
            "model": spec["model"], "split": spec["split"], "method": label, "lr": spec["hparams"]["lr"],
            "config": _config_key(spec), "objective": spec["objective"], "max_epochs": spec["hparams"]["epochs"],
            "adapter": spec["adapter"], "rank": spec["rank"], "seed": spec["seed"], "epoch": at,
            **metrics,
            # the run's own cost: shared references (`prepare`) are built once for many runs
            "wall_s": sum(v for k, v in timings.items() if k != "prepare") if timings else None,
            "trainable_params": record.get("parameters", {}).get("trainable"),
            "peak_mem_mb": record.get("peak_memory_mb"),
            "trajectory": [(e["epoch"], e["metrics"]) for e in record.get("epochs", []) if e.get("metrics")],
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


def leaderboard(suite_name: str, store: ResultStore, epoch: str = "last", runs: pd.DataFrame | None = None) -> pd.DataFrame:
    suite = SUITES[suite_name]
    runs = load_runs(suite_name, store, epoch) if runs is None else runs
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


def write_report(suite: str, store: ResultStore, epoch: str = "last") -> list[Path]:
    """Leaderboard (.md/.csv/.tex), the paper-style table (.md/.tex) and plots under results/<suite>/."""
    from bench import plots, tables
    from suites.tdec import Tdec
    from suites.tofu import Tofu

    epoch = check_epoch_rule(epoch, suite)
    runs = load_runs(suite, store, epoch)
    out = store.suite_dir(suite)
    if runs.empty:
        print(f"no runs of suite {suite} in {store.root}")
        return []
    out.mkdir(parents=True, exist_ok=True)
    rule = {"last": "the last epoch of each run"}.get(epoch, f"epoch rule `{epoch}`")
    frame = leaderboard(suite, store, epoch, runs)
    shown = _format(frame)
    md = tabulate(shown, headers="keys", tablefmt="github", showindex=False)
    print(md)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.tex"]
    paths[0].write_text(f"# {suite} leaderboard ({rule})\n\n{md}\n")
    frame.to_csv(paths[1], index=False)
    paths[2].write_text(tabulate(shown, headers="keys", tablefmt="latex_booktabs", showindex=False) + "\n")

    kind = SUITES[suite]
    if isinstance(kind, Tofu):
        rows, columns = tables.tofu_rows(runs, reference_rows(suite, store))
        keys = ["method", "runs", "status"]
        figures = plots.tofu_tradeoff(runs, reference_rows(suite, store), out)
        caption = "forget quality (FQ) and model utility (MU), mean ± std over seeds"
    elif isinstance(kind, Tdec):
        rows, columns = tables.tdec_rows(runs)
        keys = ["model", "method", "runs", "status", "forgotten"]
        figures = plots.tdec_epochs_vs_rank(runs, out)
        caption = ("mean ± std over forget sets and seeds; epochs to forget over the runs that forgot "
                   "(`forgotten` counts them); – = not measured")
    else:
        return paths
    md_table = tables.render(rows, columns, keys, tex=False)
    (out / "paper_table.md").write_text(f"# {suite}: paper-style table ({rule}; {caption}; best in bold)\n\n{md_table}\n")
    (out / "paper_table.tex").write_text(tables.render(rows, columns, keys, tex=True) + "\n")
    return paths + [out / "paper_table.md", out / "paper_table.tex"] + figures


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
