"""Claims, comparisons, derived TOFU metrics and the HTML page, from a fixed set of run.json files with
three seeds per method: every verdict is known in advance."""

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench import claims
from bench.cli import main
from bench.grid import expand
from bench.report import compare_methods, load_runs
from bench.store import ResultStore, new_record, write_json_atomic
from suites import SUITES

TARGET = {"forget_quality": 1e-6, "model_utility": 0.5, "forget_rouge": 1.0}
RETAIN = {"forget_quality": 1.0, "model_utility": 0.55, "forget_rouge": 0.4}


def record(spec, epochs):
    """epochs: [(forget_quality, model_utility, forget_rouge)] for epochs 1..n; epoch 0 is the target."""
    r = new_record(spec)
    r.update(status="finished", environment={"cpu_model": "Test CPU 9000", "cpu_capability": "AVX2",
                                             "torch_threads": 1, "packages": {"torch": "2.13.0"}},
             suite_records={"target_metrics": TARGET, "reference_metrics": RETAIN},
             epochs=[{"epoch": 0, "metrics": TARGET}] + [
                 {"epoch": i + 1, "metrics": {"forget_quality": fq, "model_utility": mu, "forget_rouge": rouge}}
                 for i, (fq, mu, rouge) in enumerate(epochs)])
    return r


# per method, per seed: a trajectory of (FQ, MU, forget ROUGE). ihl+fila forgets at epoch 2 with utility
# intact; ga+lora never forgets; ga+fila forgets at epoch 1 but collapses; ihl+lora is noisy.
RUNS = {
    "ihl+fila": [[(1e-3, 0.49, 0.6), (0.2, 0.48, 0.35)], [(2e-3, 0.50, 0.5), (0.3, 0.47, 0.30)],
                 [(1e-3, 0.49, 0.7), (0.25, 0.49, 0.38)]],
    "ga+lora": [[(1e-6, 0.50, 0.99), (2e-6, 0.49, 0.98)], [(1e-6, 0.50, 0.99), (1e-6, 0.50, 0.97)],
                [(2e-6, 0.50, 0.99), (3e-6, 0.49, 0.99)]],
    "ga+fila": [[(0.5, 0.2, 0.1), (0.9, 0.0, 0.0)], [(0.4, 0.15, 0.2), (0.8, 0.0, 0.0)],
                [(0.6, 0.25, 0.3), (0.7, 0.0, 0.0)]],
    "ihl+lora": [[(1e-5, 0.5, 0.9), (1e-2, 0.45, 0.8)], [(1e-5, 0.5, 0.9), (1e-6, 0.48, 0.9)],
                 [(1e-5, 0.5, 0.9), (1e-4, 0.47, 0.85)]],
}


@pytest.fixture
def store(tmp_path):
    store = ResultStore(tmp_path)
    for method, seeds in RUNS.items():
        for seed, epochs in enumerate(seeds):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    return store


def test_derived_metrics_follow_their_stated_rules(store):
    runs = load_runs("tofu-mini", store).set_index(["method", "seed"])
    ihl = runs.loc[("ihl+fila-r4", 0)]
    assert ihl["fq_constrained"] == 0.2 and ihl["fq_constrained_epoch"] == 2  # MU 0.48 >= 0.9 x 0.5
    assert ihl["epochs_to_forget"] == 2 and ihl["mu_at_forget"] == 0.48 and ihl["forgotten"]
    collapsed = runs.loc[("ga+fila-r4", 0)]
    assert collapsed["fq_constrained"] == 1e-6 and collapsed["fq_constrained_epoch"] == 0  # only the target qualifies
    assert collapsed["epochs_to_forget"] == 1 and collapsed["mu_at_forget"] == 0.2
    never = runs.loc[("ga+lora-r4", 1)]
    assert not never["forgotten"] and never["epochs_to_forget_or_cap"] == 3 and pd.isna(never["mu_at_forget"])


def test_the_papers_claims_get_the_verdicts_the_numbers_support(store):
    results = {r.id: r for r in claims.evaluate_file(claims.suite_claims_path("tofu-mini"), "tofu-mini",
                                                     load_runs("tofu-mini", store))}
    assert results["ga-lora-trades-poorly"].verdict == "holds"  # FQ@MU ~0.25 vs ~2e-6, every seed
    stable = results["ihl-more-stable-than-ga"]
    assert [k.verdict for k in stable.checks] == ["no data", "holds"]  # ga+lora never forgot
    assert stable.checks[1].interval.startswith("[0.1")  # family-wise: each of 2 intervals at 97.5%
    assert stable.verdict == "inconclusive"
    faster = {k.a: k for k in results["fila-forgets-faster"].checks}
    assert {a: k.verdict for a, k in faster.items()} == {
        "ga+fila": "inconclusive", "ihl+fila": "inconclusive", "gd+fila": "no data", "kl+fila": "no data",
        "npo+fila": "no data"}  # 1 and 2 epochs against never (cap + 1 = 3) on every seed: equal differences
    # the sign test at 1 - 0.05 / 5 needs 2 * 0.5^n <= 0.01: 8 replicates, where a t-interval would claim [-2, -2]
    assert faster["ga+fila"].needed == "8" and faster["ga+fila"].p == "0.25" and faster["ga+fila"].interval == "–"
    # what --until-decided needs instead: a plan's last look spends 0.01 / N, so 2 * 0.5^N <= 0.01 / N: a cap of 12
    planned = claims.evaluate_file(claims.suite_claims_path("tofu-mini"), "tofu-mini", load_runs("tofu-mini", store),
                                   sequential=True)
    assert {k.a: k.needed for k in planned[2].checks}["ga+fila"] == "12"
    assert results["fila-forgets-faster"].verdict == "inconclusive"
    best = {k.b: k.verdict for k in results["ihl-fila-best-tradeoff"].checks}
    assert best == {"ga+lora-r4": "holds", "ga+fila-r4": "holds", "ihl+lora-r4": "inconclusive"}  # noisy seeds
    assert results["ihl-fila-best-tradeoff"].verdict == "inconclusive"


def test_a_claim_that_contradicts_the_data_does_not_hold(store, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("claims:\n  - id: lora-keeps-utility\n    metric: model_utility\n    better: ga+fila\n"
                    "    than: ga+lora\n    margin: 0.02\n")
    [result] = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store))
    assert result.verdict == "does not hold" and result.checks[0].pairs == 3


def test_bad_claims_files_are_one_line_errors(store, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    for text, message in (("claims: [", "is not valid YAML"), ("other: 1", "has no list `claims`"),
                          ("claims:\n  - id: x\n    metric: model_utility\n", "claim 'x'"),
                          ("claims:\n  - {id: x, metric: model_utility, better: a, than: b}\n",
                           "no margin (a claim states its practical margin, a number > 0"),
                          ("claims:\n  - {id: x, metric: utility, better: ga, than: gd, margin: 0.02}\n", "did you mean 'model_utility'"),
                          ("claims: [hello]\n", "claim #1"),
                          ("claims:\n  - {id: x, metric: model_utility, better: '{objectiv}+lora', than: ga, margin: 0.02, "
                           "for_each: {objective: [ga]}}\n", "placeholder 'objectiv'"),
                          ("claims:\n  - {id: x, metric: model_utility, better: '{o}', than: ga, margin: 1, for_each: {o: []}}\n",
                           "non-empty list"),
                          ("claims:\n  - {id: x, metric: model_utility, better: ga, than: ga, margin: 1}\n", "with itself"),
                          ("claims:\n  - {id: x, metric: model_utility, better: ga, than: gd, marign: 1}\n", "did you mean 'margin'"),
                          ("margins: {model_utilty: 0.02}\nclaims:\n  - {id: x, metric: model_utility, better: ga, than: gd}\n",
                           "unknown metric under margins of claims file"),
                          ("claims:\n  - {id: x, metric: model_utility, better: ga, than: gd, margin: 1}\n"
                           "  - {id: x, metric: model_utility, better: gd, than: ga, margin: 1}\n", "appears twice")):
        bad.write_text(text)
        assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    bad.write_bytes(b"\xff\xfe")  # not text, and a directory: one line each, not a traceback
    for path, message in ((bad, f"claims file {bad} is not UTF-8 text"), (tmp_path, f"claims file {tmp_path} cannot be read")):
        assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(path)]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: {message}"), line


def test_pairwise_comparison_pairs_seeds(store):
    comparison = compare_methods("tofu-mini", load_runs("tofu-mini", store), "ihl+fila", "ga+fila")
    mu = next(r for r in comparison.rows if r["metric"] == "model_utility")
    assert mu["n"] == 3 and mu["diff"] == pytest.approx((0.48 + 0.47 + 0.49) / 3)
    assert mu["verdict"] == "ihl+fila-r4 better"
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--compare", "ihl+fila,nope"]) == 2


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_html_leaderboard_reads_in_a_real_browser(store):
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--compare", "ihl+fila,ga+lora"]) == 0
    page = store.suite_dir("tofu-mini") / "index.html"
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell, self.classes = {}, None, []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "table":
                self.current = self.tables.setdefault(a.get("id"), [])
            elif tag == "tr":
                self.current.append([])
            elif tag in ("td", "th"):
                self.cell = ""
                self.classes.append(a.get("class") or "")

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.current[-1].append((self.cell.strip(), self.classes.pop()))
                self.cell = None

    parser = Tables()
    parser.feed(dom)
    header, *rows = parser.tables["paper"]
    names = [h for h, _ in header]
    mu = names.index("forget10 MU last")
    by_method = {r[0][0]: r for r in rows}
    assert set(by_method) >= {"(target)", "(retain)", "ihl+fila-r4", "ga+lora-r4"}
    # MU 0.493 (ga+lora) best, ihl+fila's interval [0.455, 0.505] reaches it: tied; ga+fila collapsed to 0
    assert by_method["ga+lora-r4"][mu][1] == by_method["ihl+fila-r4"][mu][1] == "best"
    assert by_method["ga+fila-r4"][mu][1] == ""
    assert "[" in by_method["ihl+fila-r4"][mu][0]  # an interval, not a bare number
    assert {"claims", "leaderboard", "provenance", "compare-0"} <= set(parser.tables)
    [prov_header, prov] = parser.tables["provenance"]
    assert ("Test CPU 9000", "") in prov and (str(len(RUNS) * 3), "") in prov
    verdicts = {r[0][0]: r[1][0] for r in parser.tables["claims"][1:]}
    assert verdicts["ga-lora-trades-poorly"] == "holds"

    # the page's own sorting, run by the browser: model utility ascending puts the collapsed GA+FILA first
    sorted_dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                                 page.as_uri() + "#sort=paper:forget10%20MU%20last"],
                                capture_output=True, text=True, timeout=120).stdout
    again = Tables()
    again.feed(sorted_dom)
    order = [r[0][0] for r in again.tables["paper"][1:]]
    assert order != [r[0][0] for r in rows] and order[0] == "ga+fila-r4"


def test_agreement_between_two_result_sets(store, tmp_path, capsys):
    other = ResultStore(tmp_path / "other")
    flipped = {**RUNS, "ihl+fila": RUNS["ga+fila"], "ga+fila": RUNS["ihl+fila"]}  # another "machine" disagrees
    for method, seeds in flipped.items():
        for seed, epochs in enumerate(seeds):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            rec = record(spec, epochs)
            rec["environment"]["cpu_capability"] = "DEFAULT"
            write_json_atomic(other.run_dir(spec) / "run.json", rec)
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--against", str(store.root)]) == 0
    same = (store.suite_dir("tofu-mini") / "agreement.md").read_text()
    assert "reversed" not in same and "same, separated" in same and "| no " not in same.lower()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--against", str(other.root)]) == 0
    text = (store.suite_dir("tofu-mini") / "agreement.md").read_text()
    mu = next(l for l in text.splitlines() if "| model_utility " in l and "ihl+fila-r4 | ga+fila-r4" in l)
    assert mu.rstrip(" |").endswith("reversed, separated")
    assert "| ihl-more-stable-than-ga | inconclusive | does not hold | NO" in text
    origins = text.split("## Where each set came from")[1].split("##")[0]  # what differed between the two sets
    assert [line.split("|")[5].strip() for line in origins.splitlines() if line.startswith(("| A ", "| B "))] == \
        ["AVX2", "DEFAULT"]
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--against", str(tmp_path / "none")]) == 2
    # a damaged B says so, on stderr and in the file: its summaries are over the runs that finished
    [damaged] = expand("tofu-mini", "ga+fila", seeds="0", hparams={"epochs": 2})
    (other.run_dir(damaged) / "run.json").write_text("{")
    shutil.copytree(other.run_dir(damaged), other.run_dir(damaged).with_name("backup"))
    capsys.readouterr()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--against", str(other.root)]) == 0
    err = capsys.readouterr().err
    assert f"--against {other.root}: 1 of {sum(map(len, RUNS.values()))} runs did not finish (1 corrupt), left out" in err
    assert f"--against {other.root}: {other.run_dir(damaged).with_name('backup')}: not counted" in err
    text = (store.suite_dir("tofu-mini") / "agreement.md").read_text()
    assert (f"B: 1 of {sum(map(len, RUNS.values()))} runs did not finish (1 corrupt), left out; 1 directory of runs/ "
            f"not counted: {other.run_dir(damaged).with_name('backup')}.") in text


def test_bit_identical_replicates_are_one_observation(tmp_path):
    store = ResultStore(tmp_path)
    same = [(0.5, 0.2, 0.1), (0.9, 0.0, 0.0)]  # the seed changed nothing: three copies of one run
    for method, seeds in {"ga+fila": [same] * 3, "ga+lora": RUNS["ga+lora"]}.items():
        for seed, epochs in enumerate(seeds):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    runs = load_runs("tofu-mini", store)
    from bench.report import leaderboard

    row = leaderboard("tofu-mini", store, runs=runs).set_index("method").loc["ga+fila-r4"]
    assert row["n"] == 1 and row["runs"] == "3/3 (1 distinct)" and pd.isna(row["model_utility_lo"])
    # so in the paper table (no zero-width interval) and in signal.md (no seed spread of zero)
    from bench.signal import signal_table
    from suites.tofu_report import tofu_rows

    rows, _ = tofu_rows(runs, runs.iloc[0:0], SUITES["tofu-mini"].metrics, ("model_utility",))
    paper = next(r for r in rows if r["method"] == "ga+fila-r4")
    assert paper["runs"] == "3/3 (1 distinct)" and paper["forget10:model_utility"].n == 1
    assert not paper["forget10:model_utility"].has_interval
    assert signal_table("tofu-mini", runs) == []  # ga+fila is one observation: no two methods with a spread
    from bench.agreement import separated_pairs  # nor does agreement.md count copies as a separation

    pairs = separated_pairs(runs, runs, SUITES["tofu-mini"].metrics)
    assert not [p for p in pairs if "ga+fila-r4" in (p["better"], p["worse"])]
    path = tmp_path / "c.yaml"
    path.write_text("claims:\n  - {id: c, metric: model_utility, better: ga+lora, than: ga+fila, margin: 0.02}\n")
    [result] = claims.evaluate_file(path, "tofu-mini", runs)
    [check] = result.checks
    assert check.verdict == "inconclusive" and check.pairs == 1 and check.interval == "–"
    assert "ga+fila-r4's 3 replicates hold 1 distinct run" in check.reason
    comparison = compare_methods("tofu-mini", runs, "ga+lora", "ga+fila")
    assert next(r for r in comparison.rows if r["metric"] == "model_utility")["n"] == 1
    assert "Bit-identical replicates counted once (ga+fila-r4's 3 replicates hold 1 distinct run)" in comparison.markdown()


def test_a_row_none_of_whose_runs_forgot_is_never_best_on_a_capped_epoch_count(tmp_path):
    """Every run of ga+lora and ihl+lora never forgot within 2 epochs: both show 3, the cap + 1, which is the
    cap's number, not a speed; neither is bold on epochs_to_forget_or_cap, while utility still ranks them.
    A cell over the runs that forgot competes only when all did: npo+lora's one survivor (MU 0.6 at forgetting,
    1 of 3 seeds) is not bold against npo+fila's 0.48 from 3 of 3, in the leaderboard and the paper table."""
    from bench.report import leaderboard

    store = ResultStore(tmp_path)
    for method in ("ga+lora", "ihl+lora"):
        for seed, epochs in enumerate(RUNS["ga+lora"]):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    forgets = [(1e-3, 0.5, 0.9), (0.2, 0.48, 0.3)]  # npo+lora forgets at epoch 2 in seed 0 only; npo+fila in all
    survivor = [(1e-3, 0.5, 0.9), (0.2, 0.6, 0.3)]
    for method, trajectories in (("npo+lora", [survivor] + RUNS["ga+lora"][1:]), ("npo+fila", [forgets] * 3)):
        for seed, epochs in enumerate(trajectories):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    table = leaderboard("tofu-mini", store).set_index("method")
    rows = table.loc[["ga+lora-r4", "ihl+lora-r4"]]
    assert list(rows["epochs_to_forget_or_cap"]) == [3, 3] and not rows["epochs_to_forget_or_cap_best"].any()
    assert rows["model_utility_best"].all()
    # epochs_to_forget averages the runs that forgot: npo+lora's 2 is one seed's of three, so only npo+fila competes
    assert table.loc["npo+lora-r4", "epochs_to_forget"] == table.loc["npo+fila-r4", "epochs_to_forget"] == 2
    assert table.loc["npo+fila-r4", "epochs_to_forget_best"] and not table.loc["npo+lora-r4", "epochs_to_forget_best"]
    assert table.loc["npo+lora-r4", "mu_at_forget"] == pytest.approx(0.6)
    assert table.loc["npo+fila-r4", "mu_at_forget_best"] and not table.loc["npo+lora-r4", "mu_at_forget_best"]
    from bench.tables import cells
    from suites.tofu_report import tofu_rows

    runs = load_runs("tofu-mini", store)
    rows, columns = tofu_rows(runs, runs.iloc[0:0], SUITES["tofu-mini"].metrics, ("model_utility", "mu_at_forget"))
    shown = {line["method"]: line for line in cells(rows, columns, ["method"])}
    header = columns[f"{runs['split'].iloc[0]}:mu_at_forget"][0]
    assert shown["npo+fila-r4"][header].startswith("**") and shown["npo+lora-r4"][header] == "0.6"
    from bench.leaderboard import leaderboard_note

    assert "a row none of whose runs forgot is never bold" in leaderboard_note(SUITES["tofu-mini"])


def test_a_method_whose_runs_did_not_all_finish_is_never_best_and_its_claims_say_so(store, tmp_path):
    """ihl+fila's seed 3 failed (a diverging method fails): its row speaks for the runs that survived, so it is
    bold nowhere, in the leaderboard and the paper table; a claim on it says the failed run is left out."""
    from bench.leaderboard import leaderboard
    from bench.tables import cells
    from suites.tofu_report import tofu_rows

    before = leaderboard("tofu-mini", store).set_index("method")
    assert before.loc["ihl+fila-r4", "model_utility_best"]
    [spec] = expand("tofu-mini", "ihl+fila", seeds="3", hparams={"epochs": 2})
    failed = record(spec, RUNS["ihl+fila"][0])
    failed.update(status="failed", reason="non-finite loss")
    write_json_atomic(store.run_dir(spec) / "run.json", failed)
    table = leaderboard("tofu-mini", store).set_index("method")
    assert table.loc["ihl+fila-r4", "status"] == "failed"
    assert not table.loc["ihl+fila-r4", [c for c in table if c.endswith("_best")]].any()
    runs = load_runs("tofu-mini", store)
    rows, columns = tofu_rows(runs, runs.iloc[0:0], SUITES["tofu-mini"].metrics, ("model_utility", "mu_at_forget"))
    line = next(l for l in cells(rows, columns, ["method"]) if l["method"] == "ihl+fila-r4")
    assert not any(str(v).startswith("**") for v in line.values())
    path = tmp_path / "c.yaml"
    path.write_text("claims:\n  - {id: c, metric: model_utility, better: ihl+fila, than: ga+lora, margin: 0.02}\n")
    [check] = claims.evaluate_file(path, "tofu-mini", runs)[0].checks
    assert check.pairs == 3 and check.reason.endswith("ihl+fila-r4 has 1 run not finished (1 failed: seed 3), left out")


def test_margins_decide_equivalence(store, tmp_path):
    path = tmp_path / "eq.yaml"  # ihl+fila vs ga+lora on model utility: 0.48/0.47/0.49 against 0.49/0.50/0.49
    path.write_text("claims:\n  - {id: wide, metric: model_utility, better: ihl+fila, than: ga+lora, margin: 0.1}\n"
                    "  - {id: narrow, metric: model_utility, better: ihl+fila, than: ga+lora, margin: 0.001}\n")
    wide, narrow = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store))
    assert wide.verdict == "equivalent" and narrow.verdict == "inconclusive"
    # diffs -0.01, -0.03, 0: mean -0.0133, sd 0.0153; to show the sign at 95 % with power 0.8 takes 13 replicates
    from bench.decide import replicates_needed

    assert narrow.checks[0].needed == str(replicates_needed(-0.04 / 3, 0.015275, 0.001)) == "13"


def test_a_sequential_plan_spends_alpha_per_look_and_freezes_decided_comparisons(store, tmp_path):
    from bench.sequential import Plan

    path = tmp_path / "two.yaml"
    path.write_text("claims:\n  - {id: mu, metric: model_utility, better: ihl+fila, than: ga+fila, margin: 0.02}\n"
                    "  - {id: noisy, metric: fq_constrained, better: ihl+lora, than: ga+lora, margin: 1}\n")
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    mu, noisy = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert mu.checks[0].level == f"{1 - 0.05 * 3 / 10:.4g}" and mu.verdict == "holds"  # 3 of 10 replicates: 0.015
    assert noisy.verdict == "inconclusive"
    plan.save()
    # the same data again is no new look: same levels, nothing more spent
    again = Plan.open(store.suite_dir("tofu-mini"))
    assert claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store), again)[1].checks[0].level == noisy.checks[0].level
    # three more seeds in which ga+fila keeps its utility: the decided claim keeps its verdict
    for seed in (3, 4, 5):
        for method, epochs in (("ihl+fila", RUNS["ihl+fila"][0]), ("ga+fila", RUNS["ihl+fila"][1]),
                               ("ihl+lora", RUNS["ihl+lora"][0]), ("ga+lora", RUNS["ga+lora"][0])):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            epochs = [(fq * (1 + seed / 100), mu, rouge) for fq, mu, rouge in epochs]  # distinct replicates
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    later = Plan.open(store.suite_dir("tofu-mini"))
    mu2, noisy2 = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store), later)
    assert mu2.verdict == "holds" and mu2.checks[0].pairs == 3
    assert noisy2.checks[0].level == f"{1 - 0.05 * 3 / 10:.4g}" and noisy2.checks[0].pairs == 6  # looks at 3, then 6
    with pytest.raises(Exception, match="planned with at most 10"):
        Plan.open(store.suite_dir("tofu-mini"), n_max=12)
    # the refusal names the plan's --max-seeds, not a sum left to the user (two splits: 10 / 2)
    with pytest.raises(Exception, match="give --max-seeds 5, the plan's; a new plan over the same runs") as refused:
        Plan.open(store.suite_dir("tofu-mini"), n_max=12, per_seed=2)
    assert "delete" not in str(refused.value)
    # the same id with another metric is another comparison: no verdict carried over from the plan
    edited = tmp_path / "edited.yaml"
    edited.write_text("claims:\n  - {id: mu, metric: forget_quality, better: ihl+fila, than: ga+fila, margin: 1}\n")
    [mu3] = claims.evaluate_file(edited, "tofu-mini", load_runs("tofu-mini", store), Plan.open(store.suite_dir("tofu-mini")))
    assert mu3.checks[0].pairs == 6 and mu3.checks[0].level == f"{1 - 0.05 * 6 / 10:.4g}"


def test_a_claim_naming_no_method_is_an_error_and_a_method_without_runs_is_no_data(store, tmp_path, capsys):
    """A misspelt or non-existent method is a one-line error with a did-you-mean; a real method that simply
    has no runs here leaves its comparisons `no data`, saying which method has none."""
    bad = tmp_path / "bad.yaml"
    for method, suggestion in (("ihl+filla", "ihl+fila"), ("gaa", "ga"), ("ga+lora-rx", "ga+lora")):
        bad.write_text(f"claims:\n  - {{id: x, metric: model_utility, better: {method}, than: ga, margin: 0.02}}\n")
        assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"unknown method in claim 'x'" in err and f"'{method}'" in err
        assert f"did you mean '{suggestion}'?" in err
    bad.write_text("claims:\n  - {id: y, kind: best, metric: model_utility, method: npo+fla, margin: 0.02}\n")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(bad)]) == 2
    assert "did you mean 'npo+fila'?" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("claims:\n  - {id: z, metric: model_utility, better: ceu+fila, than: ihl+fila-r4, margin: 0.02}\n")
    from bench.claims import evaluate_file

    [result] = evaluate_file(good, "tofu-mini", load_runs("tofu-mini", store))
    assert result.verdict == "no data" and result.checks[0].reason == "no finished run of ceu+fila"


def test_a_best_claim_compares_only_the_objectives_its_source_compared(store, tmp_path, capsys):
    """`among` restricts a best claim to methods of the listed objectives: a method the paper never ran is
    not one of its comparisons (nor one more Bonferroni share); an objective that does not exist is a
    one-line error naming the valid ones."""
    runs = load_runs("tofu-mini", store)
    path = tmp_path / "best.yaml"
    path.write_text("claims:\n  - {id: b, kind: best, metric: fq_constrained, method: ihl+fila, margin: 1, among: [ga]}\n")
    [result] = claims.evaluate_file(path, "tofu-mini", runs)
    assert sorted(k.b for k in result.checks) == ["ga+fila-r4", "ga+lora-r4"]  # not ihl+lora-r4
    assert [k.level for k in result.checks] == ["0.975", "0.975"]  # 2 comparisons share the 5%
    assert result.note == ""  # every objective of among has runs
    path.write_text("claims:\n  - {id: b, kind: best, metric: fq_constrained, method: ihl+fila, margin: 1, "
                    "among: [ga, gd]}\n")
    [partial] = claims.evaluate_file(path, "tofu-mini", runs)
    assert sorted(k.b for k in partial.checks) == ["ga+fila-r4", "ga+lora-r4"]
    assert partial.note == ("compared with 2 methods; no finished run of gd (of among: ga, gd) was there to compare "
                            "with, so the verdict covers only the methods compared")
    claims.write_markdown([partial], "tofu-mini", tmp_path / "claims.md")
    text = (tmp_path / "claims.md").read_text()  # in the summary table as in the claim's section
    assert f"| b       | {partial.verdict} (partial family) |" in text and "**Partial family:** compared with 2 methods" in text
    path.write_text("claims:\n  - {id: b, kind: best, metric: fq_constrained, method: npo+fila, margin: 1, among: [ga, gd]}\n")
    assert claims.evaluate_file(path, "tofu-mini", runs)[0].note == ""  # npo+fila has no run: no data, not a family
    for among, message in (("[gaa]", "unknown objective in `among` of claim 'b'"), ("ga", "among must be a non-empty list")):
        path.write_text(f"claims:\n  - {{id: b, kind: best, metric: fq_constrained, method: ihl+fila, margin: 1, "
                        f"among: {among}}}\n")
        assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


def test_agreement_pools_forget_sets_where_they_are_replicates():
    """TDEC's five forget sets are replicates (one seed each): per set no method has an interval and nothing
    can be separated; pooled over the sets, as the paper table pools them, the pair is separated."""
    from bench import agreement
    from suites import SUITES

    metrics = [m for m in SUITES["tdec-mini"].metrics if m.name == "ma"]
    rows = [{"model": "m", "split": f"set{i}", "method": method, "status": "finished", "settings": "", "ma": value + d}
            for method, value in (("ga", 0.1), ("ihl", 0.5)) for i, d in enumerate((0.0, 0.01, -0.01, 0.02, -0.02))]
    runs = pd.DataFrame(rows)
    assert SUITES["tdec-mini"].splits_are_replicates and not SUITES["tofu-mini"].splits_are_replicates
    assert agreement.separated_pairs(runs, runs, metrics) == []
    [pair] = agreement.separated_pairs(runs, runs, metrics, pool_splits=True)
    assert pair["split"] == "all sets" and pair["in B"] == "same, separated"
    flipped = runs.assign(method=runs["method"].map({"ga": "ihl", "ihl": "ga"}))
    assert agreement.separated_pairs(runs, flipped, metrics, pool_splits=True)[0]["in B"] == "reversed, separated"


def test_agreement_separates_only_summaries_over_all_their_runs():
    """A one-run summary in B is no point to be separated from ("no interval in B", never "same, separated"),
    and a summary over the runs that forgot (some values missing) separates nothing in A, as it is never best in
    the tables."""
    from bench import agreement
    from suites import SUITES

    [ma] = [m for m in SUITES["tdec-mini"].metrics if m.name == "ma"]
    rows = lambda values: pd.DataFrame([{"model": "m", "split": "s", "method": method, "seed": seed, "status": "finished",
                                         "settings": "", "ma": v} for method, vs in values.items()
                                        for seed, v in enumerate(vs)])
    a = rows({"ga": [0.10, 0.11, 0.09], "ihl": [0.50, 0.52, 0.48]})
    [same] = agreement.separated_pairs(a, a, [ma])
    assert same["in B"] == "same, separated"
    [one] = agreement.separated_pairs(a, rows({"ga": [0.10], "ihl": [0.50, 0.52, 0.48]}), [ma])
    assert one["in B"] == "same order, no interval in B"
    [back] = agreement.separated_pairs(a, rows({"ga": [0.90], "ihl": [0.50, 0.52, 0.48]}), [ma])
    assert back["in B"] == "reversed, no interval in B"
    survivors = rows({"ga": [0.10, 0.11, float("nan"), float("nan")], "ihl": [0.50, 0.52, 0.48, 0.49]})
    assert agreement.separated_pairs(survivors, survivors, [ma]) == []
    [part] = agreement.separated_pairs(a, survivors, [ma])
    assert part["in B"] == "same order, no interval in B"
    # an epoch count with runs the 20-epoch cap cut off (21) is a bound: no smaller count, the larger may be one
    [epochs] = [m for m in SUITES["tdec-mini"].metrics if m.name == "epochs_to_forget_or_cap"]
    counts = lambda values: pd.DataFrame([{"model": "m", "split": "s", "method": method, "seed": seed,
                                           "status": "finished", "settings": "", "max_epochs": 20,
                                           "epochs_to_forget_or_cap": v}
                                          for method, vs in values.items() for seed, v in enumerate(vs)])
    bound_low = counts({"x": [2, 3] * 7 + [2, 21], "y": [7, 8] * 8})
    assert agreement.separated_pairs(bound_low, bound_low, [epochs]) == []
    bound_high = counts({"x": [2, 3] * 8, "y": [20, 21] * 8})
    [capped] = agreement.separated_pairs(bound_high, bound_high, [epochs])
    assert (capped["better"], capped["in B"]) == ("x", "same, separated")
    [flipped] = agreement.separated_pairs(bound_high, counts({"x": [20, 21] * 8, "y": [2, 3] * 8}), [epochs])
    assert flipped["in B"] == "reversed, separated"  # y's count is a value below x's bound
    [unsure] = agreement.separated_pairs(bound_high, counts({"x": [2, 3] * 7 + [2, 21], "y": [20, 21] * 8}), [epochs])
    assert unsure["in B"] == "same order, no interval in B"  # x's smaller count holds a bound in B


def test_an_adhoc_claims_file_neither_reads_nor_writes_the_suites_plan(store, tmp_path, capsys):
    """`bench report --claims FILE` is a fixed-sample analysis: a claim of FILE with the id and methods of one of
    the suite's planned comparisons is tested at the full family-wise level, and results/<suite>/sequential.json
    stays byte for byte as it was."""
    from bench.sequential import Plan

    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    claims.evaluate_file(claims.suite_claims_path("tofu-mini"), "tofu-mini", load_runs("tofu-mini", store), plan)
    plan.save()
    planned = (store.suite_dir("tofu-mini") / "sequential.json").read_bytes()
    assert "ga-lora-trades-poorly: ihl+fila vs ga+lora" in planned.decode()
    mine = tmp_path / "mine.yaml"
    mine.write_text("claims:\n  - {id: ga-lora-trades-poorly, metric: fq_constrained, better: ihl+fila, than: ga+lora, "
                    "margin: 1}\n")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(mine)]) == 0
    assert (store.suite_dir("tofu-mini") / "sequential.json").read_bytes() == planned
    assert "is not the suite's claims file: its comparisons are tested at the fixed-sample level" in capsys.readouterr().err
    assert not (store.suite_dir("tofu-mini") / "claims.md").exists()  # the suite's own verdicts are not replaced
    text = (store.suite_dir("tofu-mini") / "claims-mine.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ihl+fila "))
    assert [c.strip() for c in row.split("|")][7] == "0.95"  # level: one comparison at 1 - 0.05, not the 1 - 0.05 * 3 / 10 the plan spent


def test_a_plan_key_names_the_family_a_comparison_was_levelled_in(store):
    """The same id and methods with another `among` (or another comparison count) is another family, tested at
    another level: its looks are its own, not the level recorded for the other family."""
    from bench.sequential import Plan

    runs = load_runs("tofu-mini", store)
    best = {"id": "b", "kind": "best", "metric": "fq_constrained", "method": "ihl+fila", "margin": 1.0}
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    [two] = claims.evaluate([{**best, "among": ["ga"]}], "tofu-mini", runs, plan)  # ga+fila, ga+lora
    assert {k.level for k in two.checks} == {f"{1 - 0.05 / 2 * 3 / 10:.4g}"}
    [three] = claims.evaluate([{**best, "among": ["ga", "ihl"]}], "tofu-mini", runs, plan)  # and ihl+lora
    assert len(three.checks) == 3 and {k.level for k in three.checks} == {f"{1 - 0.05 / 3 * 3 / 10:.4g}"}
    keys = {claims.comparison_key({**best, "among": among}, "ihl+fila", "ga+fila-r4", k)
            for among, k in ((["ga"], 2), (["ga", "ihl"], 3), (["ga", "ihl"], 2), (["ihl", "ga"], 2))}
    assert len(keys) == 3  # among's order names no other family


def legacy_plan(path, n_max, entries):
    """A plan as written before keys named `among` and the comparison count (results/tofu-mini/sequential.json
    as committed): no version, keys `<id>: A vs B [sha256 of metric, margin, scale, only_forgotten]`."""
    import hashlib
    import json

    def key(c, a, b):
        test = {k: c.get(k) for k in ("metric", "margin", "scale", "only_forgotten")}
        return f"{c['id']}: {a} vs {b} [{hashlib.sha256(json.dumps(test, sort_keys=True).encode()).hexdigest()[:8]}]"

    write_json_atomic(path, {"n_max": n_max, "comparisons": {key(c, a, b): e for (c, a, b), e in entries}})


def test_a_plan_under_the_old_keys_keeps_its_looks(store, tmp_path):
    """A plan written under the old keys: a comparison decided there keeps its verdict, one still open takes its
    next look at the share the new replicates spend (not a first look at the full share), and an entry whose
    levels were spent at another alpha (another family) is not adopted."""
    from bench.sequential import Plan

    mu = {"id": "mu", "metric": "model_utility", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02}
    noisy = {"id": "noisy", "metric": "fq_constrained", "better": "ihl+lora", "than": "ga+lora", "margin": 1.0}
    other = {"id": "other", "metric": "fq_constrained", "better": "ihl+fila", "than": "ga+lora", "margin": 1.0}
    frozen = {"a": "ihl+fila", "b": "ga+fila", "verdict": "holds", "a_value": "x", "b_value": "y", "diff": "0.5",
              "interval": "[0.1, 0.9]", "p": "0.01", "pairs": 2, "margin": "0.02", "level": "0.99", "needed": "–",
              "reason": ""}
    suite_dir = store.suite_dir("tofu-mini")
    legacy_plan(suite_dir / "sequential.json", 10, [
        ((mu, "ihl+fila", "ga+fila"), {"looks": [{"n": 2, "level": 0.99}], "last": "holds", "decided": True,
                                       "check": frozen}),
        ((noisy, "ihl+lora", "ga+lora"), {"looks": [{"n": 2, "level": 0.99}], "last": "inconclusive"}),
        ((other, "ihl+fila", "ga+lora"), {"looks": [{"n": 2, "level": 0.995}], "last": "inconclusive"})])  # 0.05 / 2
    plan = Plan.open(suite_dir)
    got = {r.id: r for r in claims.evaluate([mu, noisy, other], "tofu-mini", load_runs("tofu-mini", store), plan)}
    assert got["mu"].checks[0].interval == "[0.1, 0.9]" and got["mu"].checks[0].pairs == 2  # the frozen check
    assert got["noisy"].checks[0].level == f"{1 - 0.05 * (3 - 2) / 10:.4g}"  # second look: one new replicate
    assert got["other"].checks[0].level == f"{1 - 0.05 * 3 / 10:.4g}"  # levelled afresh: k = 1, not 2
    plan.save()
    saved = Plan.open(suite_dir)
    assert [look["n"] for look in saved.comparisons[claims.comparison_key(noisy, "ihl+lora", "ga+lora", 1)]["looks"]] == [2, 3]
    assert list(saved.legacy) == [next(iter(saved.legacy))] and next(iter(saved.legacy)).startswith("other: ")


@pytest.mark.parametrize("claim, message", [
    ("{id: b, kind: best, metric: fq_constrained, method: ihl+fila, margin: 1, among: null}",
     "claim 'b' in {path}: among must be a non-empty list of objectives, got None (valid: ceu, ga, gd,"),
    ("{id: b, kind: best, metric: fq_constrained, method: ihl+fila, margin: 1, among: []}",
     "among must be a non-empty list of objectives, got []"),
    ("{id: b, kind: best, metric: fq_constrained, method: ihl+fila, margin: 1, among: [ga, gd, ga]}",
     "claim 'b' in {path}: objective 'ga' appears twice in among ['ga', 'gd', 'ga'] (expected each objective once)"),
    ("{id: c, metric: fq_constrained, better: ihl+fila, than: ga+lora, margin: 1, among: [ga]}",
     "claim 'c' in {path}: `among` is read only by `kind: best` claims (a better claim reads better, than, for_each)"),
    ("{id: d, kind: best, metric: fq_constrained, method: ihl+fila, than: ga, margin: 1}",
     "claim 'd' in {path}: `than` is read only by `kind: better` claims (a best claim reads method, among)"),
    ("{id: f, metric: fq_constrained, better: '{o}+fila', than: '{o}+lora', for_each: {o: [ga, ga]}, margin: 1}",
     "claim 'f' in {path}: 'ga' appears twice in for_each o: ['ga', 'ga'] (expected each value once)"),
    ("{id: g, metric: fq_constrained, better: ihl+fila, than: ga, margin: .inf}", "margin inf is not a finite number > 0"),
    ("{id: h, metric: fq_constrained, better: ihl+fila, than: ga, margin: 1, only_forgotten: 'no'}",
     "claim 'h' in {path}: bad only_forgotten 'no' (expected true or false)"),
    ("{id: [a, b], metric: fq_constrained, better: ihl+fila, than: ga, margin: 1}",
     "bad id ['a', 'b'] (expected a name such as fila-forgets-faster)"),
])
def test_claims_that_would_be_misread_are_one_line_errors(store, tmp_path, capsys, claim, message):
    """Keys a claim's kind does not read, an `among` that is null, empty or repeats an objective, a repeated
    for_each value: each would silently change what is compared (or how many shares of 5 % there are)."""
    path = tmp_path / "bad.yaml"
    path.write_text(f"claims:\n  - {claim}\n")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.format(path=path) in err
    assert not (store.suite_dir("tofu-mini") / "claims.md").exists()  # nothing written


def test_a_missing_margin_does_not_hide_the_other_errors(store, tmp_path, capsys):
    """Every fault of the file, in file order, on one line: a claim without a margin, then the misspelt method
    and the misspelt metric after it are all named."""
    path = tmp_path / "bad.yaml"
    path.write_text("claims:\n  - {id: x, metric: model_utility, better: ga+fila, than: ga+lora}\n"
                    "  - {id: y, metric: model_utility, better: ihl+filla, than: ga+lora, margin: 0.02}\n"
                    "  - {id: z, metric: utility, better: ihl+fila, than: ga+lora, margin: 0.02}\n")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--claims", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    named = [err.index(part) for part in ("claim 'x' in", "no margin (a claim states its practical margin", "'ihl+filla'; did you mean "
                                          "'ihl+fila'?", "unknown metric of claim 'z'", "did you mean 'model_utility'?")]
    assert named == sorted(named)


def test_a_best_claim_labels_its_method_as_it_labels_the_others(store, tmp_path):
    """claims.md names A as its runs are named, like every B (ihl+fila-r4 against ga+lora-r4), also for a
    comparison decided at an earlier look of a plan; a better claim keeps the names it states for both."""
    from bench.sequential import Plan

    runs = load_runs("tofu-mini", store)
    best = {"id": "b", "kind": "best", "metric": "fq_constrained", "method": "ihl+fila", "margin": 1.0, "among": ["ga"]}
    [result] = claims.evaluate([best], "tofu-mini", runs)
    assert [(k.a, k.b) for k in result.checks] == [("ihl+fila-r4", "ga+fila-r4"), ("ihl+fila-r4", "ga+lora-r4")]
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=3)  # 3 of 3 replicates: the whole 5 % at once
    [first] = claims.evaluate([best], "tofu-mini", runs, plan)
    assert {k.verdict for k in first.checks} == {"holds"}
    [again] = claims.evaluate([best], "tofu-mini", runs, plan)  # both frozen in the plan now
    assert [k.a for k in again.checks] == ["ihl+fila-r4"] * 2
    assert all(c["check"]["a"] == "ihl+fila" for c in plan.comparisons.values())  # the plan keeps the claim's name
    [better] = claims.evaluate([{"id": "x", "metric": "fq_constrained", "better": "ihl+fila", "than": "ga+lora",
                                 "margin": 1.0}], "tofu-mini", runs)
    assert (better.checks[0].a, better.checks[0].b) == ("ihl+fila", "ga+lora")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    text = (store.suite_dir("tofu-mini") / "claims.md").read_text()
    section = text[text.index("## ihl-fila-best-tradeoff"):]
    assert "| ihl+fila-r4 | ga+lora-r4 " in section and "| ihl+fila " not in section


def _reported_under_a_plan(store) -> Path:
    """The suite's claims looked at once under a plan capped at 10 replicates, then `bench report`: its directory."""
    from bench.sequential import Plan

    suite_dir = store.suite_dir("tofu-mini")
    plan = Plan.open(suite_dir, n_max=10)
    claims.evaluate_file(claims.suite_claims_path("tofu-mini"), "tofu-mini", load_runs("tofu-mini", store), plan)
    plan.save()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    return suite_dir


def test_a_report_on_a_plan_under_the_old_keys_writes_the_same_claims_md(store):
    """`bench report` with the suite's claims on a plan whose keys are the old ones (as the committed
    results/tofu-mini/sequential.json has them) writes claims.md byte for byte as on the same plan under the
    new keys, and leaves the plan as it was, under the new keys."""
    import json

    suite_dir = _reported_under_a_plan(store)
    planned, written = (suite_dir / "sequential.json").read_bytes(), (suite_dir / "claims.md").read_bytes()
    data = json.loads(planned)
    # the comparisons with data: 1 + 1 (ga+lora never forgot) + 2 (ga+fila, ihl+fila vs LoRA) + 3 (best: the others)
    assert data["version"] == 2 and len(data["comparisons"]) == 1 + 1 + 2 + 3
    by_id = {c["id"]: c for c in claims.load(claims.suite_claims_path("tofu-mini"))}
    old = {}
    for key, entry in data["comparisons"].items():
        claim_id, methods = key.split(": ", 1)
        a, b = methods.rsplit(" [", 1)[0].split(" vs ")
        old[claims.legacy_comparison_key(by_id[claim_id], a, b)] = entry
    write_json_atomic(suite_dir / "sequential.json", {"n_max": 10, "comparisons": old})
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    assert (suite_dir / "claims.md").read_bytes() == written
    assert (suite_dir / "sequential.json").read_bytes() == planned


def test_a_decided_verdict_stands_only_for_the_runs_it_was_decided_on(store):
    """A plan's decided verdict is about the runs of its looks: once runs are deleted, or runs of other settings
    take their place, the comparison is undecided with the reason (restore them or delete the plan) and no look
    is taken, never the old verdict shown on other data; where runs of two settings now match a method, the
    comparison says so (no data)."""
    from dataclasses import asdict

    from bench.errors import BenchError
    from bench.sequential import Plan

    claim = [{"id": "mu", "metric": "model_utility", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02}]
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    [first] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    key = next(iter(plan.comparisons))
    plan.comparisons[key].update(decided=True, check={**asdict(first.checks[0]), "verdict": "holds"})
    [again] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert again.checks[0].verdict == "holds"  # the same runs: the decision stands

    # runs of the same methods at another setting, next to the old ones: two configurations, no data
    for method, seeds in RUNS.items():
        for seed, epochs in enumerate(seeds):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 3})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    [mixed] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert mixed.checks[0].verdict.startswith("no data") and "configurations" in mixed.checks[0].verdict

    # the old runs deleted: only the epochs=3 runs remain, as many pairs as before, other settings
    for d in store.suite_dir("tofu-mini").glob("runs/*"):
        if json.loads((d / "run.json").read_text())["spec"]["hparams"]["epochs"] == 2:
            shutil.rmtree(d)
    looks = json.dumps(plan.comparisons, sort_keys=True)
    [other] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert other.verdict == "inconclusive" and other.checks[0].needed == "the settings of its looks"
    assert "looked at runs of other settings" in other.checks[0].reason and "verdict on them: holds" in other.checks[0].reason
    assert json.dumps(plan.comparisons, sort_keys=True) == looks  # no look taken on the other runs


def test_runs_of_other_settings_that_never_forgot_are_other_settings_not_missing_runs(store):
    """A comparison of the runs that forgot, after a look, whose method's runs are replaced by runs of another
    setting none of which forgets: it waits on the settings of its looks (more seeds of the new setting cannot
    bring the old runs back), not on "the runs of its looks", to which `--until-decided` would add seeds."""
    from bench.decide import SETTINGS_NEEDED
    from bench.sequential import Plan

    claim = [{"id": "s", "metric": "mu_at_forget", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02,
              "only_forgotten": True}]
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    [first] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert first.checks[0].pairs == 3 and plan.comparisons  # a look taken at 3 pairs
    for d in store.suite_dir("tofu-mini").glob("runs/*ga+fila*"):
        shutil.rmtree(d)
    for seed, epochs in enumerate(RUNS["ga+lora"]):  # ga+fila at 3 epochs, never forgetting
        [spec] = expand("tofu-mini", "ga+fila", seeds=str(seed), hparams={"epochs": 3})
        write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs + epochs[-1:]))
    [other] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert other.verdict == "inconclusive" and other.checks[0].needed == SETTINGS_NEEDED


def test_a_look_at_an_equal_count_of_other_pairs_is_not_taken(tmp_path):
    """A method whose seeds reproduce one run (copies) pairs once, with the earliest seed's run. A seed added
    below the looked-at ones keeps the count but changes the pair tested; testing it at the last look's level
    would spend that level twice, so no look is taken until a replicate is added, and the plan is unchanged."""
    from bench.sequential import Plan

    store = ResultStore(tmp_path)
    copy = [(1e-3, 0.49, 0.6), (0.2, 0.48, 0.35)]
    for seed in (1, 2, 3):
        for method, epochs in (("ihl+fila", copy), ("ga+fila", [(0.5, 0.2, 0.1), (0.9, 0.1 + seed / 100, 0.0)])):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    claim = [{"id": "mu", "metric": "model_utility", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02}]
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    [first] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    key = next(iter(plan.comparisons))
    assert first.checks[0].pairs == 1 and plan.comparisons[key]["looks"][-1]["tested"] == ["tiny-llama/forget10/1"]
    looks = json.dumps(plan.comparisons, sort_keys=True)
    for method, epochs in (("ihl+fila", copy), ("ga+fila", [(0.5, 0.2, 0.1), (0.9, 0.3, 0.0)])):
        [spec] = expand("tofu-mini", method, seeds="0", hparams={"epochs": 2})
        write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    [again] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert again.checks[0].pairs == 1 and again.checks[0].verdict == "inconclusive"
    assert "its pairs are other runs than at its plan's last look, at the same count" in again.checks[0].reason
    assert json.dumps(plan.comparisons, sort_keys=True) == looks


def test_a_verdict_decided_at_an_earlier_look_says_its_numbers_are_that_looks(store):
    """claims.md shows a decided comparison with the numbers of the look that decided it; where the runs now give
    more pairs (seeds added for other comparisons), its reason says so."""
    from bench.sequential import Plan

    claim = [{"id": "mu", "metric": "model_utility", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02}]
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=4)
    [first] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    assert first.verdict == "holds" and first.checks[0].pairs == 3 and first.checks[0].reason == ""
    for method, epochs in (("ihl+fila", [(1e-3, 0.48, 0.6), (0.2, 0.46, 0.3)]), ("ga+fila", [(0.5, 0.2, 0.1), (0.8, 0.01, 0.0)])):
        [spec] = expand("tofu-mini", method, seeds="3", hparams={"epochs": 2})
        write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    [again] = claims.evaluate(claim, "tofu-mini", load_runs("tofu-mini", store), plan)
    check = again.checks[0]
    assert (again.verdict, check.pairs, check.diff) == ("holds", 3, first.checks[0].diff)
    assert "decided at its plan's look at 3 pairs, whose numbers these are; the runs now give 4" in check.reason


def test_a_plan_that_looked_at_other_values_of_the_same_runs_is_not_theirs(store):
    """The same runs rebuilt on another machine (same run ids, other float rounding, so other values): a verdict the
    plan decided on the old values is not shown for them, and a pair its look used that is now unusable (a run that
    no longer forgets) is not waited for as if deleted; both read `a plan of these runs' own` with the `mv` that
    starts one, and no look is taken."""
    from bench.decide import PLAN_NEEDED
    from bench.sequential import Plan

    decided = {"id": "mu", "metric": "model_utility", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02}
    forgot = {"id": "eq", "metric": "mu_at_forget", "better": "ihl+fila", "than": "ga+fila", "margin": 0.02,
              "only_forgotten": True}
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    first = claims.evaluate([decided, forgot], "tofu-mini", load_runs("tofu-mini", store), plan)
    assert first[0].verdict == "holds" and first[1].checks[0].pairs == 3
    looks = json.dumps(plan.comparisons, sort_keys=True)
    for seed, epochs in enumerate(RUNS["ihl+fila"]):  # rebuilt elsewhere: utility a little lower, seed 2 never forgets
        [spec] = expand("tofu-mini", "ihl+fila", seeds=str(seed), hparams={"epochs": 2})
        rouge = (lambda r: 0.99) if seed == 2 else (lambda r: r)
        write_json_atomic(store.run_dir(spec) / "run.json",
                          record(spec, [(fq, mu * 0.97, rouge(r)) for fq, mu, r in epochs]))
    mu, eq = claims.evaluate([decided, forgot], "tofu-mini", load_runs("tofu-mini", store), plan)
    for result in (mu, eq):
        check = result.checks[0]
        assert (result.verdict, check.needed) == ("inconclusive", PLAN_NEEDED)
        assert "give other values here" in check.reason and f"`mv {plan.path} {plan.path}.other`" in check.reason
    assert "at its deciding look's level, not " + first[0].checks[0].diff in mu.checks[0].reason
    assert "tiny-llama/forget10/2" in eq.checks[0].reason and "did not forget here" in eq.checks[0].reason
    assert json.dumps(plan.comparisons, sort_keys=True) == looks  # no look taken, none recorded
    from bench.sequential import undecided_methods
    assert not undecided_methods([mu, eq])  # no seed decides them: `--until-decided` adds none


def test_a_look_is_never_retaken_on_other_runs_or_in_another_family(store):
    """A plan's look names the runs it matched: the same count of other runs (seeds replaced), no run left of a
    method (no data), or a best claim whose family shrank when a method's runs went are each undecided with the
    reason, and no look is taken (a reused or fresh level on runs already looked at would be a free look)."""
    from bench.sequential import Plan

    better = {"id": "mu", "metric": "model_utility", "better": "ihl+lora", "than": "ga+lora", "margin": 0.02}
    best = {"id": "b", "kind": "best", "metric": "model_utility", "method": "ihl+fila", "margin": 0.02,
            "among": ["ga", "ihl"]}
    plan = Plan.open(store.suite_dir("tofu-mini"), n_max=10)
    first = claims.evaluate([better, best], "tofu-mini", load_runs("tofu-mini", store), plan)
    assert first[0].verdict == "inconclusive"
    assert [k.b for k in first[1].checks] == ["ga+fila-r4", "ga+lora-r4", "ihl+lora-r4"]
    looks = json.dumps(plan.comparisons, sort_keys=True)
    assert all(look["keys"] for c in plan.comparisons.values() for look in c["looks"])
    [pending] = expand("tofu-mini", "kl+lora", seeds="7", hparams={"epochs": 2})  # a run with no record yet
    store.run_dir(pending).mkdir(parents=True)
    (store.run_dir(pending) / "lock").touch()
    same = claims.evaluate([better, best], "tofu-mini", load_runs("tofu-mini", store), plan)
    assert [[k.needed for k in r.checks] for r in same] == [[k.needed for k in r.checks] for r in first]
    shutil.rmtree(store.run_dir(pending))

    def replace_seed(method, old, new):  # seed `old` of `method` becomes seed `new`, with slightly other numbers
        [gone] = expand("tofu-mini", method, seeds=str(old), hparams={"epochs": 2})
        shutil.rmtree(store.run_dir(gone))
        [spec] = expand("tofu-mini", method, seeds=str(new), hparams={"epochs": 2})
        epochs = [(fq, mu * 1.01, rouge) for fq, mu, rouge in RUNS[method][old]]
        write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))

    for method in ("ihl+lora", "ga+lora"):
        replace_seed(method, 2, 7)  # still 3 pairs, one of them new
    [mu, _] = claims.evaluate([better, best], "tofu-mini", load_runs("tofu-mini", store), plan)
    assert (mu.verdict, mu.checks[0].pairs, mu.checks[0].needed) == ("inconclusive", 3, "the runs of its looks")
    assert "1 of the 3 runs its plan" in mu.checks[0].reason and "tiny-llama/forget10/2" in mu.checks[0].reason
    for d in store.suite_dir("tofu-mini").glob("runs/*ga+lora*"):  # ga+lora gone: no data, and a family of two
        shutil.rmtree(d)
    [gone, shrunk] = claims.evaluate([better, best], "tofu-mini", load_runs("tofu-mini", store), plan)
    assert (gone.verdict, gone.checks[0].needed) == ("inconclusive", "the runs of its looks")
    assert [(k.b, k.verdict, k.needed) for k in shrunk.checks] == [
        (b, "inconclusive", "the family its plan looked at") for b in ("ga+fila-r4", "ihl+lora-r4")]
    assert json.dumps(plan.comparisons, sort_keys=True) == looks  # no look taken, none recorded


def test_a_report_on_fewer_runs_than_its_plan_looked_at_still_writes_every_table(store, capsys):
    """Runs deleted (or failed) after a look: `bench report` writes the leaderboard, tables and claims.md, shows
    the comparison undecided with the reason on stderr and in claims.md, and leaves the plan's looks as they
    were; a report once the runs are back shows the plan's verdict again."""
    suite_dir = _reported_under_a_plan(store)
    planned, before = (suite_dir / "sequential.json").read_bytes(), (suite_dir / "claims.md").read_text()
    [spec] = expand("tofu-mini", "ihl+fila", seeds="2", hparams={"epochs": 2})
    gone, kept = store.run_dir(spec), store.root / "moved-away"
    gone.rename(kept)
    for name in ("leaderboard.md", "claims.md"):
        (suite_dir / name).unlink()
    capsys.readouterr()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    err = capsys.readouterr().err
    assert "claim comparisons left undecided, no look taken: runs their plan's last look matched are missing" in err
    assert (suite_dir / "leaderboard.md").exists()
    text = (suite_dir / "claims.md").read_text()
    assert "the runs of its looks" in text and "restore them" in text
    assert (suite_dir / "sequential.json").read_bytes() == planned
    kept.rename(gone)
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    assert (suite_dir / "claims.md").read_text() == before


@pytest.mark.parametrize("text, says", [
    ('{"n_max": 10, "comp', "cannot be read as a sequential plan (JSONDecodeError"),
    ("[]", "is not a sequential plan (expected a JSON object, got list)"),
    ('{"n_max": "abc", "comparisons": {}}', "n_max 'abc' is not an integer >= 1"),
    ('{"version": 99, "n_max": 10, "comparisons": {}}', "has plan version 99; this harness reads version 2"),
    ('{"version": 2, "n_max": 10, "comparisons": []}', "comparisons is not a mapping of comparisons to their looks"),
])
def test_a_damaged_plan_is_a_one_line_error_naming_it(store, text, says, capsys):
    """A sequential.json that is not what Plan.save writes is refused before any level is read from it (the
    report and `--until-decided` open it alike), and left as it was."""
    path = store.suite_dir("tofu-mini") / "sequential.json"
    path.write_text(text)
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert says in line and str(path) in line
    assert path.read_text() == text


def test_an_only_forgotten_comparison_says_how_often_each_method_forgot(store, tmp_path):
    [spec] = expand("tofu-mini", "ihl+lora", seeds="0", hparams={"epochs": 2})  # seed 0 now forgets at epoch 2
    write_json_atomic(store.run_dir(spec) / "run.json", record(spec, [(1e-5, 0.5, 0.9), (1e-2, 0.45, 0.3)]))
    path = tmp_path / "forgot.yaml"
    path.write_text("claims:\n  - {id: s, metric: mu_at_forget, better: ihl+fila, than: ihl+lora, margin: 0.02, "
                    "only_forgotten: true}\n")
    [result] = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store))
    [check] = result.checks
    assert check.verdict == "inconclusive" and check.pairs == 1
    assert check.reason.endswith("a pair needs both runs to have forgotten: ihl+fila forgot in 3 of 3 runs, "
                                 "ihl+lora in 1 of 3")
    # seed 1 forgets too: 2 pairs in 3 seeds, so the 4 pairs a power calculation asks for take 6 seeds, whose
    # Binomial(6, 2/3) pairs decide with the stated power (bench.decide.replicates_at_rate)
    [spec] = expand("tofu-mini", "ihl+lora", seeds="1", hparams={"epochs": 2})
    write_json_atomic(store.run_dir(spec) / "run.json", record(spec, [(1e-5, 0.5, 0.9), (1e-2, 0.42, 0.3)]))
    [check] = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store))[0].checks
    from bench import decide

    diffs = [0.48 - 0.45, 0.47 - 0.42]  # ihl+fila's utility at forgetting minus ihl+lora's, seeds 0 and 1
    pairs_needed = decide.replicates_needed(sum(diffs) / 2, 0.02 ** 0.5 / 10, 0.02, 0.95)
    assert check.verdict == "inconclusive" and check.pairs == 2 and pairs_needed > 2
    assert pairs_needed == 4 and check.needed == "6"
    assert decide.replicates_at_rate(decide._t_power(0.04, 0.02 ** 0.5 / 10, 0.02), 2 / 3, lambda n: 0.05) == 6
    assert check.reason.endswith("replicates needed counts replicates, which gave pairs at the rate of 2 in 3")


def test_pairs_the_epoch_cap_cut_off_decide_nothing_the_cap_made(store, tmp_path):
    """A pair where neither run forgot ties only because the cap cut both off: it is left out. A pair with one
    run cut off holds a bound, which cannot show two methods equivalent: that waits on a larger --epochs, and
    `--until-decided` does not spend seeds on it."""
    from bench.decide import EPOCHS_NEEDED
    from bench.sequential import undecided_methods

    for seed, epochs in enumerate(RUNS["ga+lora"]):  # ihl+lora now never forgets either, as ga+lora
        [spec] = expand("tofu-mini", "ihl+lora", seeds=str(seed), hparams={"epochs": 2})
        write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    for seed in range(6):  # npo+fila forgets at epoch 2 every time; npo+lora too, but for seed 5, which never does
        forgets = [(1e-3 * (seed + 1), 0.5, 0.9), (0.2, 0.48, 0.3)]
        for method, epochs in (("npo+fila", forgets), ("npo+lora", forgets if seed < 5 else forgets[:1] * 2)):
            [spec] = expand("tofu-mini", method, seeds=str(seed), hparams={"epochs": 2})
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, epochs))
    for seed in range(6):  # kl+lora never forgets: with npo+lora, seed 5 is a tie the cap made
        [spec] = expand("tofu-mini", "kl+lora", seeds=str(seed), hparams={"epochs": 2})
        write_json_atomic(store.run_dir(spec) / "run.json", record(spec, [(1e-3 * (seed + 1), 0.5, 0.9)] * 2))
    path = tmp_path / "cap.yaml"
    path.write_text("claims:\n  - {id: c, metric: epochs_to_forget_or_cap, better: ihl+lora, than: ga+lora, margin: 1}\n"
                    "  - {id: d, metric: epochs_to_forget_or_cap, better: ihl+fila, than: ga+lora, margin: 1}\n"
                    "  - {id: e, metric: epochs_to_forget_or_cap, better: npo+lora, than: npo+fila, margin: 1}\n"
                    "  - {id: f, metric: epochs_to_forget_or_cap, better: npo+lora, than: kl+lora, margin: 1}\n")
    tied, separated, bound, partly = claims.evaluate_file(path, "tofu-mini", load_runs("tofu-mini", store))
    [check] = partly.checks  # the A and B values summarise the 5 pairs compared, not the tie left out
    assert check.pairs == 5 and check.a_value == "2 [2, 2]" and check.b_value == "3 [3, 3]" and check.diff == "-1"
    assert "; 1 of 6 pairs left out: neither run forgot" in check.reason
    [check] = tied.checks  # 3 vs 3 in every pair: no pair is left
    assert check.verdict == "no data" and check.reason == (
        "3 of 3 pairs left out: neither run forgot within the 2-epoch cap (both count 3), a tie the cap made, which "
        "says nothing about which method forgets faster; a larger --epochs gives them values")
    [check] = separated.checks  # ihl+fila forgot in every run: 2 against ga+lora's cut-off 3, a bound in A's favour
    assert check.verdict == "inconclusive" and check.pairs == 3 and "3 of 3 pairs have one run" in check.reason
    # differences 0, 0, 0, 0, 0, -1: the t-interval [-0.6, 0.26] lies inside +-1, but seed 5's -1 is only a bound
    [check] = bound.checks
    assert check.pairs == 6 and check.verdict == "inconclusive" and check.needed == EPOCHS_NEEDED
    assert "1 of 6 pairs have one run that never forgot within the cap: their difference is only a bound" in check.reason
    assert claims.most_needed(bound) == EPOCHS_NEEDED
    assert undecided_methods([bound]) == set() and undecided_methods([separated]) == {"ihl+fila", "ga+lora"}


def test_the_summary_names_what_deciding_every_comparison_of_a_claim_would_take(store):
    checks = [claims.Check("a", "b", "inconclusive", needed="12"), claims.Check("a", "c", "inconclusive", needed="300"),
              claims.Check("a", "d", "holds"), claims.Check("a", "e", "inconclusive", needed="–")]
    # a comparison with one pair has no spread to plan with: counted as unknown, not as nothing needed
    assert claims.most_needed(claims.ClaimResult("x", "", "m", "inconclusive", checks)) == "300 (+1 unknown)"
    assert claims.most_needed(claims.ClaimResult("x", "", "m", "inconclusive", checks[3:])) == "unknown"
    checks.append(claims.Check("a", "f", "inconclusive", needed="> 10,000"))
    assert claims.most_needed(claims.ClaimResult("x", "", "m", "inconclusive", checks)) == "> 10,000 (+1 unknown)"
    # one comparison that does not hold settles the claim: its inconclusive ones need nothing more
    assert claims.most_needed(claims.ClaimResult("x", "", "m", "does not hold", checks)) == "–"
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    summary = (store.suite_dir("tofu-mini") / "claims.md").read_text().split("\n## ")[0]
    assert "| replicates needed " in summary
    row = next(line for line in summary.splitlines() if line.startswith("| fila-forgets-faster "))
    # equal differences (1 and 2 epochs against never forgetting): the suite's own claims name the cap of a plan
    assert row.split("|")[5].strip() == "12"


def test_seed_inert_reads_every_finished_run_not_only_the_new_ones():
    """A method is inert when two of its seeds on one model and split gave bit-identical runs, whether those runs
    were just computed or found finished (a rerun over existing seeds adds none and must not mark anything)."""
    from bench.sequential import seed_inert

    rows = [("ga", "m", "set0", 0, "x"), ("ga", "m", "set0", 1, "x"),  # the seed changed nothing
            ("ga+lora-r8", "m", "set0", 0, "a"), ("ga+lora-r8", "m", "set0", 1, "b"),
            ("gd", "m", "set0", 0, "c"), ("gd", "m", "set1", 0, "c"),  # same key on two splits: no seed involved
            ("ihl", "m", "set0", 0, "d")]
    done = pd.DataFrame(rows, columns=["method", "model", "split", "seed", "replicate"])
    assert seed_inert(done) == {"ga"}
    assert seed_inert(done.iloc[2:]) == set() and seed_inert(done.iloc[0:0]) == set()


def test_agreement_compares_both_sets_by_the_fixed_sample_test_when_a_has_a_plan(store):
    """Under a plan A's looks spend the 5 %; B, a rerun without A's looks, is tested at the fixed-sample level: the
    agreement compares both at that level and shows claims.md's planned verdict beside them."""
    from bench.sequential import Plan

    Plan.open(store.suite_dir("tofu-mini"), n_max=10_000).save()  # this look spends 3 / 10,000 of the 5 %
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--against", str(store.root)]) == 0
    text = (store.suite_dir("tofu-mini") / "agreement.md").read_text()
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip("|").split("|")[1:]] for l in text.splitlines()
            if l.startswith("| ") and (" | yes" in l or " | NO" in l)}
    assert rows["ga-lora-trades-poorly"] == ["inconclusive", "holds", "holds", "yes"]
    assert "both tested at the fixed-sample level" in text


def test_two_sets_without_data_for_a_claim_are_not_said_to_agree(tmp_path):
    from bench import agreement

    a = [claims.ClaimResult("x", "", "m", "no data"), claims.ClaimResult("y", "", "m", "holds")]
    b = [claims.ClaimResult("x", "", "m", "no data"), claims.ClaimResult("y", "", "m", "holds")]
    text = agreement.write("tofu-mini", tmp_path / "agreement.md", [], a, b, "B").read_text()
    assert "| x       | no data | no data | –               |" in text and "| y       | holds   | holds   | yes" in text
