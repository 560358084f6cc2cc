"""Reports from the result store: the leaderboard every suite gets, then the sections the suite supplies.

Runs are loaded by bench/runs.py (one row per run; which epoch a row reports is a stated rule, the last
evaluated epoch by default). This module computes the leaderboard (means and 95% intervals per
configuration, tied-best marks), the pairwise comparisons, the signal table and the SLURM status, and
assembles the report: leaderboard, the suite's paper table and plots (`Suite.paper_table`, `Suite.plots`),
robustness, claims (bench/claims.py) and the HTML page (bench/html.py). It names no suite: a new suite gets
every section by overriding those hooks. Failed, running and corrupt runs appear as such, never as zeros and
never silently dropped.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench import agreement, claims, html, plots, stats, tables
from bench.claims import distinct_pairs
from bench.dispatch import slurm_states, sweeps
from bench.errors import BenchError, unknown
from bench.runs import (load_runs, method_base, reference_rows, run_settings,  # noqa: F401 (method_base, run_settings:
                        select_method, unlike_settings)                  # bench/cli.py and tests read them from here)
from bench.sequential import Plan
from bench.store import ResultStore
from bench.tables import row_labels
from suites import SUITES

COST = ("wall_s", "trainable_params", "peak_mem_mb")


def check_epoch_rule(rule: str, suite_name: str) -> str:
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


GROUP = ["model", "split", "method", "lr", "config"]


def leaderboard_columns(suite_name: str, runs: pd.DataFrame) -> list[str]:
    """Headline metrics first, then the suite's other metrics that the runs have."""
    suite = SUITES[suite_name]
    names = list(suite.headline) + [m.name for m in suite.metrics if m.name not in suite.headline]
    return [n for n in names if n in runs.columns and pd.to_numeric(runs[n], errors="coerce").notna().any()]


def leaderboard(suite_name: str, store: ResultStore, epoch: str = "last", runs: pd.DataFrame | None = None,
                refs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (model, split, method, config): for every metric the mean over seeds and its 95%
    interval (`<m>`, `<m>_lo`, `<m>_hi`), `n` finished runs, and `<m>_best` = best or tied with it
    (interval overlaps the best one's) within the same model and split."""
    suite = SUITES[suite_name]
    runs = load_runs(suite_name, store, epoch) if runs is None else runs
    if runs.empty or "model" not in runs:
        return runs
    if "settings" in runs:  # rows that one method name would cover say which settings they differ in
        runs = runs.assign(method=row_labels(runs, ["model", "split", "method"]).fillna(runs["method"]))
    finished = runs[runs["status"] == "finished"]
    metric_cols = leaderboard_columns(suite_name, finished)
    metric_of = {m.name: m for m in suite.metrics}
    table, summaries = [], []
    for key, group in runs.groupby(GROUP, dropna=False, sort=True):
        done = finished.merge(group[["run_id"]], on="run_id")
        row = dict(zip(GROUP, key))
        row["runs"] = f"{len(done)}/{len(group)}"
        if "replicate" in done and done["replicate"].duplicated().any():  # bit-identical runs: one observation
            row["runs"] += f" ({done['replicate'].nunique()} distinct)"
            done = done.drop_duplicates("replicate")
        row["n"] = len(done)
        statuses = sorted(set(group["status"]) - {"finished"})
        row["status"] = "ok" if not statuses else ",".join(statuses)
        if "forgotten" in done and len(done):  # how many runs reached the forgetting rule within the cap
            row["forgotten"] = f"{int(done['forgotten'].fillna(False).astype(bool).sum())}/{len(done)}"
        sums = {}
        for col in metric_cols + list(COST):
            s = stats.summarize_metric(pd.to_numeric(done[col], errors="coerce"), metric_of.get(col)) if col in done else None
            sums[col] = s
            row[col] = s.mean if s else None
            if col in metric_cols:
                row[col + "_lo"], row[col + "_hi"] = (s.lo, s.hi) if s else (None, None)
            if col + "_ref" in done and metric_of.get(col) is not None and metric_of[col].calibrated:
                ref = pd.to_numeric(done[col + "_ref"], errors="coerce")
                if ref.notna().any():  # ranked by each run's distance to its own calibrating model's value
                    row[col + "_ref"] = float(ref.mean())
                    sums[col + "_gap"] = stats.summarize(pd.to_numeric(done[col], errors="coerce") - ref)
        table.append(row)
        summaries.append(sums)
    frame = pd.DataFrame(table)
    direction = {m.name: m.higher_is_better for m in suite.metrics}
    ideal = {m.name: m.ideal for m in suite.metrics}
    for col in metric_cols:
        frame[col + "_best"] = False
        for _, idx in frame.groupby(["model", "split"]).groups.items():
            idx = list(idx)
            if any(summaries[i].get(col + "_gap") for i in idx):  # calibrated: nearest the calibrating model
                tied = stats.best_and_tied([summaries[i].get(col + "_gap") for i in idx], False, 0.0)
            else:
                tied = stats.best_and_tied([summaries[i][col] for i in idx], direction[col], ideal.get(col))
            frame.loc[[idx[i] for i in tied], col + "_best"] = True
    refs = reference_rows(suite_name, store) if refs is None else refs
    if not refs.empty:  # one row per role, summarised like the methods when references vary by seed
        rows = []
        for (model, split, method), group in refs.groupby(["model", "split", "method"], sort=False):
            row = {"model": model, "split": split, "method": method, "status": "reference", "runs": f"{len(group)}"}
            for col in metric_cols:
                s = metric_of[col].summarize(pd.to_numeric(group[col], errors="coerce")) if col in group else None
                if s is not None:
                    row[col], row[col + "_lo"], row[col + "_hi"] = s.mean, s.lo, s.hi
            rows.append(row)
        frame = pd.concat([pd.DataFrame(rows), frame], ignore_index=True)
    return frame


def _format(frame: pd.DataFrame, suite_name: str, tex: bool = False) -> pd.DataFrame:
    """Readable leaderboard: `mean [lo, hi]` per metric, best and tied-best in bold."""
    metrics = [c for c in leaderboard_columns(suite_name, frame) if c + "_lo" in frame]
    keep = ["model", "split", "method", "runs", "status"] + (["forgotten"] if "forgotten" in frame else [])
    out = pd.DataFrame({k: frame[k] for k in keep if k in frame}).astype(object).where(lambda d: d.notna(), "")
    for col in metrics:
        cells = []
        for _, r in frame.iterrows():
            s = None if pd.isna(r.get(col)) else stats.Summary(
                r[col], None if pd.isna(r.get(col + "_lo")) else r[col + "_lo"],
                None if pd.isna(r.get(col + "_hi")) else r[col + "_hi"], 0)
            text = stats.fmt_summary(s) if s else ""
            ref = r.get(col + "_ref")
            if text and ref is not None and not pd.isna(ref):
                text += f" (ref {stats.fmt(ref)})"
            if text and r.get(col + "_best") is True:
                text = rf"\textbf{{{text}}}" if tex else f"**{text}**"
            cells.append(text)
        out[col] = cells
    for col in COST:
        if col in frame:
            out[col] = frame[col].map(lambda v: "" if v is None or pd.isna(v) else stats.fmt(v))
    return out


def print_leaderboard(suite: str, store: ResultStore) -> None:
    frame = leaderboard(suite, store)
    if frame.empty:
        print(f"no runs of suite {suite} in {store.root}")
        return
    print(tabulate(_format(frame, suite), headers="keys", tablefmt="github", showindex=False))


LEADERBOARD_NOTE = ("mean over seeds and its 95% Student-t interval [lo, hi]; forget-quality columns on a log "
                    "scale (geometric mean); bold = best mean or an interval overlapping the best one's (tied) "
                    "within a model and split (privleak: nearest 0; membership-inference AUCs: nearest the AUC of the "
                    "calibrating model on the same items, shown as (ref x) -- TOFU's retain-only model, TDEC's "
                    "Reference-attack model for LOSS -- else nearest 0.5); `runs` = finished / all")


def write_report(suite: str, store: ResultStore, epoch: str = "last", compare: str | None = None,
                 claims_file: str | None = None, against: str | None = None) -> list[Path]:
    """Leaderboard (.md/.csv/.tex), paper-style table (.md/.tex), plots, claims, comparisons and the
    HTML page under results/<suite>/."""
    epoch = check_epoch_rule(epoch, suite)
    runs = load_runs(suite, store, epoch)
    out = store.suite_dir(suite)
    if runs.empty:
        print(f"no runs of suite {suite} in {store.root}")
        return []
    check_epoch_available(epoch, suite, store)
    comparisons = [compare_methods(suite, runs, *pair) for pair in parse_compare(compare)] if compare else []
    for reason in runs.loc[runs["status"] == "corrupt", "reason"]:  # named, as `status` names them
        print(f"corrupt run record {reason} (listed as corrupt; the next `run` of its spec recomputes it)",
              file=sys.stderr)
    other = None
    if against:
        other = load_runs(suite, ResultStore(against), epoch)
        if other.empty or "status" not in other or not (other["status"] == "finished").any():
            raise BenchError(f"--against {against}: no finished runs of suite {suite} there")
    claims_path = Path(claims_file) if claims_file else claims.suite_claims_path(suite)
    plan = Plan.open(out)  # a sequential plan (bench run --until-decided): this report is one of its looks
    claim_results = claims.evaluate_file(claims_path, suite, runs, plan) if claims_file or claims_path.exists() else []
    if plan is not None and claim_results:
        plan.save()
    out.mkdir(parents=True, exist_ok=True)
    # before its last epoch a run records what is read per epoch (option epoch_metrics=read): not the attacks
    rule = {"last": "the last epoch of each run"}.get(
        epoch, f"epoch rule `{epoch}`; at epochs before a run's last, the membership attacks (and TDEC's EL_n while MA "
               f"is above its threshold) are blank unless it was made with --option epoch_metrics=all")
    refs = reference_rows(suite, store)  # one more pass over every run.json, shared by the tables below
    frame = leaderboard(suite, store, epoch, runs, refs)
    shown = _format(frame, suite)
    md = tabulate(shown, headers="keys", tablefmt="github", showindex=False)
    print(md)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.tex"]
    paths[0].write_text(f"# {suite} leaderboard ({rule})\n\n{LEADERBOARD_NOTE}.\n\n{md}\n")
    frame.to_csv(paths[1], index=False)
    paths[2].write_text(tabulate(_format(frame, suite, tex=True), headers="keys", tablefmt="latex_raw",
                                 showindex=False) + "\n")

    kind = SUITES[suite]
    # the suite's own sections (Suite.paper_table / Suite.plots; none by default)
    paper = kind.paper_table(runs, refs)
    figures = list(kind.plots(runs, refs, out))
    table_md = ""
    if paper is not None:
        table_md = tables.render(paper.rows, paper.columns, paper.keys, tex=False)
        (out / "paper_table.md").write_text(f"# {suite}: paper-style table ({rule})\n\n{paper.caption}\n\n{table_md}\n")
        (out / "paper_table.tex").write_text(tables.render(paper.rows, paper.columns, paper.keys, tex=True) + "\n")
        paths += [out / "paper_table.md", out / "paper_table.tex"]
    robustness = None
    if any("/" in c and c.split("/")[0] in tables.ROBUSTNESS_VARIANTS for c in runs.columns):
        r_rows, r_columns = tables.robustness_rows(runs, refs, kind.metrics, kind.robustness_columns)
        robustness = (r_rows, r_columns, ["method", "runs"])
        r_md = tables.render(*robustness, tex=False)
        (out / "robustness.md").write_text(f"# {suite}: does the forgetting survive? ({rule})\n\n"
                                           f"{tables.ROBUSTNESS_CAPTION}\n\n{r_md}\n")
        paths.append(out / "robustness.md")
        figures += plots.robustness(runs, out, kind.robustness_columns[0], kind.metrics)
    paths += figures
    if claim_results:
        paths.append(claims.write_markdown(claim_results, suite, out / "claims.md"))
    elif (out / "claims.md").exists():  # no claims this time: an earlier report's verdicts must not stand in
        (out / "claims.md").unlink()
    signal = signal_table(suite, runs)
    if signal:
        (out / "signal.md").write_text(f"# {suite}: which columns carry signal ({rule})\n\n{SIGNAL_NOTE}\n\n"
                                       + tabulate(signal, headers="keys", tablefmt="github") + "\n")
        paths.append(out / "signal.md")
    if other is not None:
        other_claims = claims.evaluate_file(claims_path, suite, other) if claim_results else []
        pairs = agreement.separated_pairs(runs, other, kind.metrics)
        paths.append(agreement.write(suite, out / "agreement.md", pairs, claim_results, other_claims, against,
                                     getattr(kind, "paper_columns", ())))
    if comparisons:
        text = "\n\n".join(c.markdown() for c in comparisons)
        print(text)
        (out / "compare.md").write_text(f"# {suite}: pairwise comparisons ({rule})\n\n{COMPARE_NOTE}\n\n{text}\n")
        paths.append(out / "compare.md")
    paths.append(html.write_page(suite, out / "index.html", shown, rule, LEADERBOARD_NOTE, table_md and paper.caption,
                                 paper and paper.rows and (paper.rows, paper.columns, paper.keys), figures,
                                 claim_results, comparisons, provenance(runs), robustness))
    return paths


def provenance(runs: pd.DataFrame) -> list[dict]:
    """Distinct machines and software the runs came from, with how many runs each."""
    counts: dict[tuple, int] = {}
    for env in runs.get("environment", pd.Series(dtype=object)).dropna():
        if not isinstance(env, dict) or not env:
            continue
        pk = env.get("packages", {})
        key = (env.get("harness_commit"), env.get("device_name"), env.get("cpu_model"), env.get("cpu_capability"),
               env.get("torch_threads"), pk.get("torch"), pk.get("transformers"), env.get("cuda"))
        counts[key] = counts.get(key, 0) + 1
    names = ("commit", "device", "cpu", "torch cpu capability", "threads", "torch", "transformers", "cuda")
    return [{**dict(zip(names, k)), "runs": n} for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]


SIGNAL_NOTE = ("Does a column separate methods? For each metric: the spread between methods (standard deviation of "
               "the method means) against the spread between seeds (pooled within-method standard deviation), both "
               "on the scale the tables use (log10 for forget quality). Ratio > 1: methods differ by more than seeds "
               "do; `separated pairs` counts method pairs whose 95% intervals do not overlap.")


def signal_table(suite: str, runs: pd.DataFrame) -> list[dict]:
    """Between-method vs seed-to-seed spread of every metric, per model and split."""

    kind = SUITES[suite]
    finished = runs[runs["status"] == "finished"] if "status" in runs else runs
    out = []
    for (model, split), block in finished.groupby(["model", "split"]):
        for metric in kind.metrics:
            if metric.name not in block:
                continue
            values = pd.to_numeric(block[metric.name], errors="coerce")
            if metric.log_scale:
                values = values.clip(lower=stats.FLOOR).map(math.log10)
            frame = pd.DataFrame({"method": row_labels(block, ["method"]), "v": values}).dropna()
            frame = frame[frame.groupby("method")["v"].transform("size") >= 2]  # a seed spread needs two runs
            groups = frame.groupby("method")["v"]
            if groups.ngroups < 2:
                continue
            between = float(groups.mean().std(ddof=1))
            within = math.sqrt(float(groups.var(ddof=1).mean()))
            summaries = [stats.summarize(g, False) for _, g in groups]
            separated = sum(1 for i in range(len(summaries)) for j in range(i + 1, len(summaries))
                            if not summaries[i].overlaps(summaries[j]))
            n_pairs = len(summaries) * (len(summaries) - 1) // 2
            out.append({"model": model, "split": split, "metric": metric.name + (" (log10)" if metric.log_scale else ""),
                        "between-method sd": stats.fmt(between), "seed sd": stats.fmt(within),
                        "ratio": stats.fmt(between / within) if within > 0 else ("inf" if between > 0 else "–"),
                        "separated pairs": f"{separated}/{n_pairs}", "methods": groups.ngroups,
                        "seeds": int(groups.size().min())})
    return out


COMPARE_NOTE = ("A minus B over runs paired by (model, split, seed); 95% t-interval of the mean difference and the "
                "paired t-test p-value (scipy.stats.ttest_rel); log-scale metrics compared as log10 ratios. A "
                "verdict needs the interval to exclude 0.")


def parse_compare(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(";"):
        names = [t.strip() for t in item.split(",") if t.strip()]
        if len(names) != 2:
            raise BenchError(f"bad --compare '{item}' (expected two methods, e.g. ihl+fila,ga+lora)")
        if names[0] == names[1]:
            raise BenchError(f"bad --compare '{item}': a method compared with itself (expected two methods, e.g. "
                             f"ihl+fila,ga+lora)")
        if tuple(names) in pairs or tuple(names[::-1]) in pairs:
            raise BenchError(f"bad --compare {text!r}: {names[0]} and {names[1]} are compared twice")
        pairs.append((names[0], names[1]))
    return pairs


@dataclass
class Comparison:
    a: str
    b: str
    rows: list[dict]

    def markdown(self) -> str:
        table = [{"metric": r["metric"], "A": r["a"], "B": r["b"], "A - B": stats.fmt(r["diff"]),
                  "95% interval": "–" if r["lo"] is None else f"[{stats.fmt(r['lo'])}, {stats.fmt(r['hi'])}]",
                  "paired t p": stats.fmt(r["p"]), "pairs": r["n"], "verdict": r["verdict"]} for r in self.rows]
        return f"## A = {self.a}, B = {self.b}\n\n" + tabulate(table, headers="keys", tablefmt="github")


def compare_methods(suite: str, runs: pd.DataFrame, a: str, b: str) -> Comparison:
    kind = SUITES[suite]
    ra, rb = select_method(runs, a, suite), select_method(runs, b, suite)
    a, b = ra["method"].iloc[0], rb["method"].iloc[0]
    differ = unlike_settings(ra, rb)
    if differ:
        raise BenchError(f"cannot compare {a} with {b}: their runs differ in settings other than the method "
                         f"({differ}); compare runs made with the same --lr/--epochs/--set/--option")
    keys = ["model", "split", "seed"]
    merged, _ = distinct_pairs(ra.merge(rb, on=keys, suffixes=("_a", "_b")))
    rows = []
    for metric in kind.metrics:
        if metric.name not in ra or metric.name not in rb:
            continue
        va = pd.to_numeric(merged[metric.name + "_a"], errors="coerce")
        vb = pd.to_numeric(merged[metric.name + "_b"], errors="coerce")
        result = stats.paired(list(va), list(vb), metric.log_scale)
        if result is None:
            continue
        verdict = result.verdict(metric.higher_is_better)
        verdict = {"A better": f"{a} better", "B better": f"{b} better"}.get(verdict, verdict)
        rows.append({"metric": metric.name + (" (log10 ratio)" if metric.log_scale else ""),
                     "a": stats.fmt_summary(metric.summarize(va)), "b": stats.fmt_summary(metric.summarize(vb)),
                     "diff": result.diff, "lo": result.lo, "hi": result.hi, "p": result.p_value, "n": result.n,
                     "verdict": verdict})
    return Comparison(a, b, rows)


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
            status = _status(r["status"], states.get(job))
            if status == "running" and not job and not store.is_claimed(store.suite_dir(s) / "runs" / r["run_id"]):
                status, r["reason"] = "interrupted", "no process holds it; the next `run` resumes it"
            rows.append({"suite": s, "run": r["run_id"], "status": status,
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
