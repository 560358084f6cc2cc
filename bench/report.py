"""`bench report`: the report of one suite, assembled from its sections under results/<suite>/.

Every suite gets the leaderboard (bench/leaderboard.py), robustness (bench/tables.py), claims (bench/claims.py),
the signal table (bench/signal.py), pairwise comparisons (bench/compare.py), agreement with another result set
(bench/agreement.py) and the HTML page (bench/html.py); the suite adds its own paper table and plots
(`Suite.paper_table`, `Suite.plots`: suites/tofu_report.py, suites/tdec_report.py), and every grid axis it
declares gets its table and plots (bench/axes.py). Runs are read once, by
bench/runs.py. This module names no suite. Failed, running and corrupt runs appear as such, never as zeros and
never silently dropped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench import agreement, axes, claims, html, plots, tables
from bench.compare import COMPARE_NOTE, compare_methods, parse_compare
from bench.decide import CLAIM_NEEDED, PLAN_NEEDED, RUNS_NEEDED, SETTINGS_NEEDED
from bench.errors import BenchError
from bench.leaderboard import format_leaderboard, leaderboard, leaderboard_note, print_leaderboard
from bench.runs import (check_epoch_available, check_epoch_rule, first_requests, load_runs, method_base, reference_rows,
                        run_settings)
from bench.sequential import Plan
from bench.signal import SIGNAL_NOTE, signal_table
from bench.status import status_table
from bench.store import ResultStore, suite_dir_hint
from suites import SUITES

# what bench/cli.py and the tests import from here; each lives in the module its import names
__all__ = ["write_report", "provenance", "leaderboard", "print_leaderboard", "compare_methods", "load_runs",
           "check_epoch_rule", "method_base", "run_settings", "status_table"]


def write_report(suite: str, store: ResultStore, epoch: str = "last", compare: str | None = None,
                 claims_file: str | None = None, against: str | None = None) -> list[Path]:
    """Leaderboard (.md/.csv/.tex), paper-style table (.md/.tex), plots, claims, comparisons and the
    HTML page under results/<suite>/."""
    epoch = check_epoch_rule(epoch, suite)
    out = store.suite_dir(suite)
    earlier = compare is None and given_compare(out / "compare.md")
    if earlier:  # an earlier --compare's file is rewritten from the runs as they are now, never left stale
        compare = earlier
    pairs = parse_compare(compare) if compare is not None else []  # a malformed one ("" too) is refused before any run is read
    runs = load_runs(suite, store, epoch)
    strays = {"A": store.strays(suite)}
    for why in strays["A"]:  # a copy of a run's directory would count it twice: named, counted nowhere
        print(why, file=sys.stderr)
    if runs.empty:
        hint = suite_dir_hint(store.root, suite, "--results", SUITES)
        raise BenchError(f"no runs of suite {suite} in {store.root}: nothing to report" + (hint or (
                         f" (run `python -m bench run --suite {suite}` first, or pass --results DIR)")))
    check_epoch_available(epoch, suite, store)
    if "other_code" in runs and runs["other_code"].eq(True).any():  # numbers of another checkout: said, not hidden
        n = runs.loc[runs["other_code"].eq(True), "run_id"].nunique()
        print(f"{n} finished run{'s were' if n > 1 else ' was'} evaluated by other code than this checkout's: the "
              f"tables show {'their' if n > 1 else 'its'} numbers as computed then; `python -m bench status --suite "
              f"{suite} --results {store.root}` names {'them' if n > 1 else 'it'}, and the next `run` of the grid recomputes "
              f"{'them' if n > 1 else 'it'}", file=sys.stderr)
    corrupt = runs[runs["status"] == "corrupt"].drop_duplicates("run_id")  # (a run may be listed in several rows)
    for reason in corrupt["reason"] if "reason" in corrupt else ():  # named, as `status` names them
        print(f"corrupt run record {reason} (listed as corrupt; the next `run` of its spec recomputes it)",
              file=sys.stderr)
    if "replicate" not in runs:  # every record corrupt or not written yet (no readable record): nothing to tabulate
        raise BenchError(f"no readable run of suite {suite} in {store.root} ({len(runs)} corrupt or pending: `python -m "
                         f"bench status --suite {suite} --results {store.root}` names them): nothing to report; the "
                         f"next `python -m bench run` of their specs recomputes them")
    try:
        comparisons = [compare_methods(suite, runs, *pair, results=str(store.root)) for pair in pairs]
        seen: dict[frozenset, str] = {}
        for (a, b), c in zip(pairs, comparisons):  # one pair under two spellings (`a,b;b[defaults],a`)
            both = frozenset((c.a, c.b))
            if both in seen:
                raise BenchError(f"bad --compare {compare!r}: {seen[both]} and {a},{b} compare {c.a} with {c.b} twice")
            seen[both] = f"{a},{b}"
    except BenchError as e:
        if not earlier:
            raise
        (out / "compare.md").unlink()  # stale: its comparisons no longer run on these runs
        print(f"{out / 'compare.md'} removed: its `--compare {earlier}` no longer runs on these runs ({e})",
              file=sys.stderr)
        comparisons = []
    other = None
    if against:
        other = load_runs(suite, ResultStore(against), epoch)
        strays["B"] = ResultStore(against).strays(suite)
        for why in strays["B"]:
            print(f"--against {against}: {why}", file=sys.stderr)
        if other.empty or "status" not in other or not (other["status"] == "finished").any():
            raise BenchError(f"--against {against}: no finished runs of suite {suite} there"
                             f"{suite_dir_hint(Path(against), suite, '--against', SUITES)}")
    claims_path = Path(claims_file) if claims_file else claims.suite_claims_path(suite)
    # a sequential plan (bench run --until-decided) levels the suite's own claims, this report being one of its
    # looks; another claims file is a fixed-sample analysis that neither reads nor writes it
    own = claims_path.resolve() == claims.suite_claims_path(suite).resolve()
    plan = Plan.open(out) if own else None
    # the suite's own claims go to claims.md; another file's to claims-<its name>.md, beside them, not over them
    claims_md = out / ("claims.md" if own else f"claims-{claims_path.stem}.md")
    claim_list = claims.load(claims_path, suite) if claims_file or claims_path.exists() else []  # errors first
    if not own and claim_list and (out / "sequential.json").exists():
        print(f"{claims_path} is not the suite's claims file: its comparisons are tested at the fixed-sample level, "
              f"outside the sequential plan {out / 'sequential.json'} (left as it is)", file=sys.stderr)
    claim_results = claims.evaluate(claim_list, suite, runs, plan, sequential=own) if claim_list else []
    if plan is not None and claim_results:
        plan.save()
    for needed, why in ((RUNS_NEEDED, "runs their plan's last look matched are missing (deleted, failed or unfinished "
                                      "since; rerunning their seeds, or `--until-decided`, restores them)"),
                        (SETTINGS_NEEDED, "runs of other settings than their plan looked at"),
                        (CLAIM_NEEDED, "their plan looked at them in a family of another size (the claim's other methods "
                                       "with runs changed)"),
                        (PLAN_NEEDED, "their plan looked at other values of these runs (runs rebuilt on another machine "
                                      "or software): move the plan aside to decide on these with a plan of their own")):
        stale = [f"{k.a} vs {k.b}" for r in claim_results for k in r.checks if k.needed == needed]
        if stale:  # said where it is seen, as corrupt runs are
            print(f"{len(stale)} claim comparison{'s' * (len(stale) > 1)} left undecided, no look taken: {why} "
                  f"({', '.join(stale)}); {claims_md} gives each reason", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    # before its last epoch a run records what is read per epoch (option epoch_metrics=read): not the attacks
    rule = {"last": "the last epoch of each run"}.get(
        epoch, f"epoch rule `{epoch}`; at epochs before a run's last, the membership attacks (and TDEC's EL_n while MA "
               f"is above its threshold) are blank unless it was made with --option epoch_metrics=all")
    refs = reference_rows(suite, store)  # one more pass over every run.json, shared by the tables below
    frame = leaderboard(suite, store, epoch, runs, refs)
    shown = format_leaderboard(frame, suite)
    md = tabulate(shown, headers="keys", tablefmt="github", showindex=False)
    print(md)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.tex"]
    stops = epoch == "last" and bool(runs.get("stops_at_forgetting", pd.Series(dtype=bool)).fillna(False).any())
    note = leaderboard_note(SUITES[suite], stops)
    paths[0].write_text(f"# {suite} leaderboard ({rule})\n\n{note}.\n\n{md}\n")
    frame.to_csv(paths[1], index=False)
    paths[2].write_text(tabulate(format_leaderboard(frame, suite, tex=True), headers="keys", tablefmt="latex_raw",
                                 showindex=False) + "\n")

    kind = SUITES[suite]
    # the suite's own sections (Suite.paper_table / Suite.plots; none by default), on runs from its start model:
    # the later requests of a sequence have their axis's section
    single = first_requests(runs)
    paper = kind.paper_table(single, refs)
    figures = list(kind.plots(single, refs, out))
    table_md = ""
    if paper is not None:
        table_md = tables.render(paper.rows, paper.columns, paper.keys, tex=False)
        (out / "paper_table.md").write_text(f"# {suite}: paper-style table ({rule})\n\n{paper.caption}\n\n{table_md}\n")
        (out / "paper_table.tex").write_text(tables.render(paper.rows, paper.columns, paper.keys, tex=True) + "\n")
        paths += [out / "paper_table.md", out / "paper_table.tex"]
    # the suite's grid axes (Suite.axes: scalability, sustainability), each against its points
    axis_md, axis_figures, axis_sections = axes.write(kind, runs, out)
    paths += axis_md
    figures += axis_figures
    robustness = None
    if any("/" in c and c.split("/")[0] in tables.ROBUSTNESS_VARIANTS for c in runs.columns):
        r_rows, r_columns = tables.robustness_rows(single, refs, kind.metrics, kind.robustness_columns)
        robustness = (r_rows, r_columns, ["method", "runs"])
        r_md = tables.render(*robustness, tex=False)
        (out / "robustness.md").write_text(f"# {suite}: does the forgetting survive? ({rule})\n\n"
                                           f"{tables.ROBUSTNESS_CAPTION}\n\n{r_md}\n")
        paths.append(out / "robustness.md")
        figures += plots.robustness(single, out, kind.robustness_columns[0], kind.metrics)
    paths += figures
    if claim_results:
        paths.append(claims.write_markdown(claim_results, suite, claims_md))
    elif claims_md.exists():  # no claims this time: an earlier report's verdicts must not stand in
        claims_md.unlink()
    signal = signal_table(suite, single)
    if signal:
        (out / "signal.md").write_text(f"# {suite}: which columns carry signal ({rule})\n\n{SIGNAL_NOTE}\n\n"
                                       + tabulate(signal, headers="keys", tablefmt="github") + "\n")
        paths.append(out / "signal.md")
    if other is not None:
        other_claims = claims.evaluate_file(claims_path, suite, other) if claim_results else []
        # B has no plan of A's looks: both sets are compared by the fixed-sample test
        fixed = claims.evaluate(claim_list, suite, runs) if claim_results and plan is not None else None
        pairs = agreement.separated_pairs(single, first_requests(other), kind.metrics, kind.splits_are_replicates)
        # where the finished runs came from; the runs that did not finish are left out, and said so
        origins = [{"set": name, **row} for name, frame in (("A", runs), ("B", other))
                   for row in provenance(frame[frame["status"] == "finished"])]
        left = {name: agreement.unfinished(frame, strays[name]) for name, frame in (("A", runs), ("B", other))}
        if left["B"]:  # A's are named above and in its tables; B's only here
            print(f"--against {against}: {left['B']} (`python -m bench status --suite {suite} --results {against}` "
                  f"names them)", file=sys.stderr)
        paths.append(agreement.write(suite, out / "agreement.md", pairs, claim_results, other_claims, against,
                                     getattr(kind, "paper_columns", ()), fixed, origins, left))
    if comparisons:
        text = "\n\n".join(c.markdown() for c in comparisons)
        print(text)
        (out / "compare.md").write_text(f"# {suite}: pairwise comparisons ({rule})\n\n{GIVEN_COMPARE}{json.dumps(compare)}"
                                        f"{GIVEN_COMPARE_END}\n\n{COMPARE_NOTE}\n\n{text}\n")
        paths.append(out / "compare.md")
    paths.append(html.write_page(suite, out / "index.html", shown, rule, note, table_md and paper.caption,
                                 paper and paper.rows and (paper.rows, paper.columns, paper.keys), figures,
                                 claim_results, comparisons, provenance(runs), robustness, axis_sections))
    return paths


GIVEN_COMPARE = "Of `bench report --compare "  # compare.md names its comparisons, so that a later report redoes them
GIVEN_COMPARE_END = "`; every later `report` rewrites it from the runs as they are then."


def given_compare(path: Path) -> str | None:
    """The `--compare` text that wrote the compare.md at `path` (its GIVEN_COMPARE line), None without one."""
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(GIVEN_COMPARE) and line.endswith(GIVEN_COMPARE_END):
            try:
                given = json.loads(line[len(GIVEN_COMPARE):-len(GIVEN_COMPARE_END)])
            except json.JSONDecodeError:
                return None
            return given if isinstance(given, str) else None
    return None


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


