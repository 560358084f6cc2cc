"""Reports from a fixed set of run.json files: golden tables; failed, running and corrupt runs are
shown as such, never as zeros, never dropped."""

import json
import math

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.grid import expand
from bench.report import check_epoch_rule, load_runs
from bench.store import UNKNOWN_SETTINGS, ResultStore, new_record, write_json_atomic


def tofu_record(spec, fq, mu, status="finished", reason=None):
    record = new_record(spec)
    metrics = [{"forget_quality": f, "model_utility": m} for f, m in zip(fq, mu)]
    record.update(status=status, reason=reason,
                  epochs=[{"epoch": i + 1, "metrics": m} for i, m in enumerate(metrics)],
                  timings={"prepare": 100.0, "train": 10.0, "evaluate": 2.0},
                  parameters={"trainable": 1000, "total": 5000}, peak_memory_mb=50.0,
                  suite_records={"target_metrics": {"forget_quality": 1e-5, "model_utility": 0.5},
                                 "reference_metrics": {"forget_quality": 1.0, "model_utility": 0.55}})
    return record


@pytest.fixture
def store(tmp_path):
    store = ResultStore(tmp_path)
    fixed = [("ihl+fila", 0, [0.01, 0.2], [0.48, 0.47]), ("ihl+fila", 1, [0.01, 0.4], [0.46, 0.45]),
             ("ga+lora", 0, [0.001, 0.05], [0.3, 0.1])]
    for method, seed, fq, mu in fixed:
        [spec] = expand("tofu-mini", method, seeds=str(seed))
        write_json_atomic(store.run_dir(spec) / "run.json", tofu_record(spec, fq, mu))
    [failed] = expand("tofu-mini", "npo+lora", seeds="0")
    write_json_atomic(store.run_dir(failed) / "run.json",
                      tofu_record(failed, [0.1], [0.4], status="failed", reason="loss is nan at epoch 2, step 1"))
    [running] = expand("tofu-mini", "kl+lora", seeds="0")
    write_json_atomic(store.run_dir(running) / "run.json", tofu_record(running, [], [], status="running"))
    [corrupt] = expand("tofu-mini", "npo+lora", seeds="1")
    store.run_dir(corrupt).mkdir(parents=True)
    (store.run_dir(corrupt) / "run.json").write_text("{not json")
    return store


GOLDEN = """\
| method      | runs   | status              | forgot   | forget10 FQ last       | forget10 MU last        | forget10 MU@forgot   | wall s          | trainable   | peak MB   |
|-------------|--------|---------------------|----------|------------------------|-------------------------|----------------------|-----------------|-------------|-----------|
| (target)    |        | reference           |          | 1.00e-05               | 0.5                     | –                    | –               | –           | –         |
| (retain)    |        | reference           |          | 1                      | 0.55                    | –                    | –               | –           | –         |
| ga+lora-r4  | 1/1    | ok                  | –        | **0.05**               | 0.1                     | –                    | **12**          | **1,000**   | **50**    |
| ihl+fila-r4 | 2/2    | ok                  | –        | **0.283 [0.00346, 1]** | **0.46 [0.333, 0.587]** | –                    | **12 [12, 12]** | **1,000**   | **50**    |
| kl+lora-r4  | 0/1    | 1 interrupted       | –        | –                      | –                       | –                    | –               | –           | –         |
| npo+lora-r4 | 0/2    | 1 corrupt, 1 failed | –        | –                      | –                       | –                    | –               | –           | –         |"""


def test_paper_table_matches_the_golden_table(store):
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    table = (store.suite_dir("tofu-mini") / "paper_table.md").read_text()
    # by hand: FQ geometric mean sqrt(0.2 x 0.4) = 0.283, log10 interval -0.548 +- 12.71 x 0.213 / sqrt(2),
    # clipped to 1; MU 0.46 +- 12.71 x 0.01414 / sqrt(2); ga+lora's single 0.05 lies in ihl+fila's FQ
    # interval, so both are marked best (tied). tofu-mini's table leaves FQ@MU out (no signal there)
    assert table.splitlines()[4:] == [l.rstrip() for l in GOLDEN.splitlines()]
    assert (store.suite_dir("tofu-mini") / "tradeoff_forget10.png").stat().st_size > 10_000


def test_failed_running_and_corrupt_runs_are_shown_as_such(store):
    """A record that says `running` is running while a process holds its lock, and interrupted (its process was
    killed) when none does, as `bench status` says."""
    import fcntl

    [running] = expand("tofu-mini", "kl+lora", seeds="0")
    with open(store.run_dir(running) / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the runner holds it
        runs = load_runs("tofu-mini", store)
    by_status = runs.groupby("status")["run_id"].count().to_dict()
    assert by_status == {"finished": 3, "failed": 1, "running": 1, "corrupt": 1}
    assert load_runs("tofu-mini", store).groupby("status")["run_id"].count().to_dict()["interrupted"] == 1
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    assert "| interrupted" in board and "| corrupt,failed" in board
    failed_line = next(l for l in board.splitlines() if "npo+lora" in l)
    assert " 0 " not in failed_line  # no metric shown as zero


def test_epoch_rules(store):
    assert load_runs("tofu-mini", store, "1").query("method == 'ga+lora-r4'")["model_utility"].item() == 0.3
    assert load_runs("tofu-mini", store, "select:forget_truth_ratio").shape[0] == 6
    with pytest.raises(BenchError, match="would choose the epoch on a reported number"):
        check_epoch_rule("select:model_utility", "tofu-mini")
    with pytest.raises(BenchError, match="bad epoch rule 'best'"):
        check_epoch_rule("best", "tofu-mini")


def test_runs_of_different_configs_never_share_a_row(store):
    from suites.tofu_report import tofu_rows

    [other] = expand("tofu-mini", "ihl+fila", hparams={"lr": 3e-2}, seeds="0")
    write_json_atomic(store.run_dir(other) / "run.json", tofu_record(other, [0.9], [0.1]))
    rows, _ = tofu_rows(load_runs("tofu-mini", store), load_runs("tofu-mini", store).iloc[0:0])
    ihl = [r for r in rows if r["method"].startswith("ihl+fila-r4")]
    assert len(ihl) == 2 and all("[" in r["method"] for r in ihl)
    assert sorted(r["runs"] for r in ihl) == ["1/1", "2/2"]


def test_unlike_runs_are_never_compared_paired_or_pooled(store, tmp_path):
    """The issue's case: ga (full) made with --lr 1e-3 --epochs 2 against ga+lora at the suite's defaults
    (another learning rate and epochs cap). A comparison refuses naming both settings, a claim says `not
    comparable`, and a table row never averages them with runs of another setting."""
    from bench.claims import evaluate
    from bench.report import compare_methods, run_settings
    from suites.tofu_report import tofu_rows

    [fast] = expand("tofu-mini", "ga", hparams={"lr": "1e-3", "epochs": "2"}, seeds="0")
    write_json_atomic(store.run_dir(fast) / "run.json", tofu_record(fast, [0.3, 0.5], [0.4, 0.3]))
    [lora] = expand("tofu-mini", "ga+lora", seeds="0")
    assert run_settings(fast.to_dict()) == "lr=0.001 epochs=2" and run_settings(lora.to_dict()) == ""
    runs = load_runs("tofu-mini", store)
    with pytest.raises(BenchError, match=r"cannot compare ga with ga\+lora-r4: .*A: lr=0.001 epochs=2 vs B: \(defaults\)"):
        compare_methods("tofu-mini", runs, "ga", "ga+lora")
    [claim] = evaluate([{"id": "lora-trades-poorly", "metric": "model_utility", "better": "ga", "than": "ga+lora",
                         "margin": 0.02}],
                       "tofu-mini", runs)
    assert claim.verdict == "not comparable" and "lr=0.001 epochs=2" in claim.checks[0].verdict
    # the same method at two settings: two rows, each named by what it was given
    [fast_ihl] = expand("tofu-mini", "ihl+fila", hparams={"epochs": "2"}, seeds="0")
    write_json_atomic(store.run_dir(fast_ihl) / "run.json", tofu_record(fast_ihl, [0.9, 0.9], [0.1, 0.1]))
    runs = load_runs("tofu-mini", store)
    rows, _ = tofu_rows(runs, runs.iloc[0:0])
    labels = sorted(r["method"] for r in rows if r["method"].startswith("ihl+fila"))
    assert labels == ["ihl+fila-r4 [defaults]", "ihl+fila-r4 [epochs=2]"]
    # a bare name means the defaults, what the suite's claims are about; settings name the other configuration
    for same in (("ihl+fila", "ihl+fila[defaults]"), ("ihl+fila-r4", "ihl+fila [ ]")):
        with pytest.raises(BenchError, match=r"both name the runs of ihl\+fila-r4 \[defaults\], a method compared"):
            compare_methods("tofu-mini", runs, *same)
    assert compare_methods("tofu-mini", runs, "ihl+fila", "ga+lora").a == "ihl+fila-r4 [defaults]"
    from suites import SUITES
    lr = SUITES["tofu-mini"].objective_hparams(fast_ihl.model, "ihl", "fila").lr  # a default typed out is the default
    with pytest.raises(BenchError, match=r"both name the runs of ihl\+fila-r4 \[defaults\]"):
        compare_methods("tofu-mini", runs, "ihl+fila", f"ihl+fila[lr={lr:e}]")
    from bench.runs import select_method
    assert list(select_method(runs, f"ihl+fila[epochs=2 lr={lr}]", "tofu-mini")["run_id"]) == [fast_ihl.run_id]
    [claim] = evaluate([{"id": "ihl-keeps-utility", "metric": "model_utility", "better": "ihl+fila", "than": "ga+lora",
                         "margin": 0.02}], "tofu-mini", runs)  # a variant run leaves the claim on the defaults
    assert claim.checks[0].pairs == 1 and claim.checks[0].a_value == "0.47"
    named = tmp_path / "named.yaml"  # a claims file names a setting as --compare does
    named.write_text("claims:\n  - id: fast-ihl\n    metric: model_utility\n    better: ihl+fila[epochs=2]\n"
                     "    than: ga+lora\n    margin: 0.02\n")
    from bench.claims import evaluate_file
    [claim] = evaluate_file(named, "tofu-mini", runs)
    assert claim.verdict == "not comparable" and "A: epochs=2 vs B: (defaults)" in claim.checks[0].verdict
    [same] = evaluate([{"id": "self", "metric": "model_utility", "better": "ga+lora", "than": "ga+lora[defaults]",
                        "margin": 0.02}], "tofu-mini", runs)
    assert same.checks[0].verdict == "not comparable (A and B name the same runs)"
    [fast_ga] = expand("tofu-mini", "ga+lora", hparams={"epochs": "2"}, seeds="0")  # a best claim at one setting
    write_json_atomic(store.run_dir(fast_ga) / "run.json", tofu_record(fast_ga, [0.5, 0.5], [0.2, 0.2]))
    [best] = evaluate([{"id": "fast-best", "kind": "best", "metric": "model_utility", "method": "ihl+fila[epochs=2.0]",
                        "margin": 0.02}], "tofu-mini", load_runs("tofu-mini", store))
    assert [k.b for k in best.checks] == ["ga+lora-r4[epochs=2]"] and best.checks[0].pairs == 1
    assert best.checks[0].a == "ihl+fila-r4[epochs=2]"  # A is named with its setting as the tables write it, as B is
    [alone] = evaluate([{"id": "lr-best", "kind": "best", "metric": "model_utility", "method": "ihl+fila[lr=3]",
                         "margin": 0.02}], "tofu-mini", load_runs("tofu-mini", store))
    assert alone.verdict == "no data" and alone.checks[0].reason == (
        "no finished run of ihl+fila at [lr=3] (a setting none of its runs has)")
    [none] = evaluate([{"id": "kl-best", "kind": "best", "metric": "model_utility", "method": "ihl+fila[epochs=2]",
                        "among": ["kl"], "margin": 0.02}], "tofu-mini", load_runs("tofu-mini", store))
    assert none.checks[0].reason == ("no other method of among (kl) has finished runs at [epochs=2] to compare "
                                     "ihl+fila[epochs=2] with")
    with pytest.raises(BenchError, match=r"scale: log10 on model_utility, whose values in \(0.0, 1.0\) can be 0"):
        evaluate([{"id": "log-mu", "metric": "model_utility", "better": "ihl+fila", "than": "ga+lora", "margin": 0.1,
                   "scale": "log10"}], "tofu-mini", runs)
    with pytest.raises(BenchError, match=r"cannot compare ihl\+fila-r4 \[epochs=2\] with ga\+lora-r4: .*A: epochs=2"):
        compare_methods("tofu-mini", runs, "ihl+fila[epochs=2]", "ga+lora")
    with pytest.raises(BenchError, match=r"no finished run of ihl\+fila-r4 has the settings \[lr=2\] \(it has: "
                                         r"ihl\+fila-r4 \[defaults\], ihl\+fila-r4 \[epochs=2\]\)"):
        compare_methods("tofu-mini", runs, "ihl+fila-r4 [lr=2]", "ga+lora")
    [slow_ihl] = expand("tofu-mini", "ihl+fila", hparams={"epochs": "3"}, seeds="0")  # two settings, neither default
    write_json_atomic(store.run_dir(slow_ihl) / "run.json", tofu_record(slow_ihl, [0.9] * 3, [0.1] * 3))
    ihl_only = load_runs("tofu-mini", store).query("settings != ''")
    with pytest.raises(BenchError, match=r"matches 2 configurations .*name one with its settings, e.g. ihl\+fila\[epochs=2\]"):
        compare_methods("tofu-mini", ihl_only, "ihl+fila", "ihl+fila[epochs=3]")


def test_forget_sets_of_one_setting_pool_into_one_tdec_row(tmp_path):
    """TDEC's table averages over forget sets and seeds: runs on set0 and set1 with the same settings are one
    row (before, the split made each set its own configuration); a second learning rate is a second row."""
    from suites.tdec_report import tdec_rows

    store = ResultStore(tmp_path)
    specs = expand("tdec-mini", "ga", splits="set0,set1", seeds="0") + expand("tdec-mini", "ga", splits="set0",
                                                                              seeds="0", hparams={"lr": "1e-2"})
    for spec, ppl in zip(specs, (10.0, 20.0, 99.0)):
        record = new_record(spec)
        record.update(status="finished", epochs=[{"epoch": 1, "metrics": {"ma": 0.1, "el10": 0.01}}],
                      final_metrics={"ppl_heldout": ppl, "epochs_to_forget": 1, "forgotten": True})
        write_json_atomic(store.run_dir(spec) / "run.json", record)
    runs = load_runs("tdec-mini", store)
    runs["ppl_heldout"] = [r for r in runs["run_id"].map(lambda i: {s.run_id: p for s, p in zip(specs, (10.0, 20.0, 99.0))}[i])]
    rows, _ = tdec_rows(runs)
    by_label = {r["method"]: r for r in rows}
    assert set(by_label) == {"ga [defaults]", "ga [lr=0.01]"}
    assert by_label["ga [defaults]"]["runs"] == "2/2" and by_label["ga [defaults]"]["ppl_heldout"].mean == 15.0


def test_a_tdec_row_whose_runs_did_not_all_forget_has_no_bold_utility(tmp_path):
    """TDEC measures utility at the stopping epoch: for a run the epoch cap stopped, that is utility forgetting
    never cost. satimp never forgot (held-out PPL 4.6) and ga forgot once in two (5.0): in the paper table (over
    the forget sets) only ihl, which forgot in both runs (PPL 6.0), competes, and is bold although its perplexity
    is the worst; so in the leaderboard (per forget set) for every last-epoch column."""
    from bench.tables import cells
    from suites.tdec_report import tdec_rows

    store = ResultStore(tmp_path)
    outcomes = {"satimp": [(4.6, None), (4.6, None)], "ga": [(5.0, 3), (5.0, None)], "ihl": [(6.0, 4), (6.0, 5)]}
    for method, runs in outcomes.items():
        for split, (ppl, epochs) in zip(("set0", "set1"), runs):
            [spec] = expand("tdec-mini", method, splits=split, seeds="0")
            record = new_record(spec)
            record.update(status="finished", epochs=[{"epoch": 1, "metrics": {"ma": 0.1, "el10": 0.01}}],
                          final_metrics={"ppl_heldout": ppl, "epochs_to_forget": epochs, "forgotten": epochs is not None},
                          parameters={"trainable": 100}, timings={"train": ppl})  # the cap-stopped are fastest
            write_json_atomic(store.run_dir(spec) / "run.json", record)
    rows, columns = tdec_rows(load_runs("tdec-mini", store), shown=("epochs_to_forget", "ppl_heldout"))
    lines = cells(rows, columns, ["method"])
    bold = {line["method"] for line in lines if line["held-out PPL"].startswith("**")}
    assert bold == {"ihl"}
    assert {line["method"] for line in lines if line["trainable"].startswith("**")} == {"satimp", "ga", "ihl"}
    assert {line["method"] for line in lines if line["wall s"].startswith("**")} == {"ihl"}
    # the leaderboard, per forget set: on set0 satimp's last epoch is the cap's, so only ga (5.0) and ihl (6.0),
    # which stopped when they forgot, compete, on utility and on every other last-epoch column
    from bench.leaderboard import leaderboard, leaderboard_note
    from suites import SUITES

    table = leaderboard("tdec-mini", store).set_index(["split", "method"])
    assert list(table.loc[("set0", ["satimp", "ga", "ihl"]), "ppl_heldout_best"]) == [False, True, False]
    assert list(table.loc[("set0", ["satimp", "ga", "ihl"]), "ma_best"]) == [False, True, True]
    assert list(table.loc[("set1", ["satimp", "ga", "ihl"]), "ma_best"]) == [False, False, True]
    assert "a row some of whose runs the epoch cap stopped" in leaderboard_note(SUITES["tdec-mini"], True)
    assert "the epoch cap stopped" not in leaderboard_note(SUITES["tofu-mini"])


def test_an_epoch_no_run_evaluated_a_self_comparison_and_a_corrupt_record_are_named(store, capsys):
    """`--epoch 7` on runs of two epochs names the epochs there are; `--compare A,A` is refused; a corrupt
    run.json is named by its path, as `status` names it, and the report goes on."""
    root = store.root
    assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--epoch", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: --epoch 7: no finished run of suite tofu-mini evaluated epoch 7 (epochs evaluated: 1, 2; "
                   "or --epoch last)")
    assert not (store.suite_dir("tofu-mini") / "leaderboard.md").exists()  # nothing written
    # a metric the runs record only after the last epoch cannot choose an epoch
    assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--epoch", "select:forget_rouge"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --epoch select:forget_rouge: no finished run of suite tofu-mini recorded forget_rouge per epoch (measured "
        "after the last epoch only, or not by these runs); select on one of: forget_quality, model_utility")
    for compare in ("ga+lora,ga+lora", "ga+lora,ihl+fila;ihl+fila,ga+lora", "ga+lora,,ihl+fila", "ga+lora,", "",
                    "ga+lora[lr=0.005 lr=0.001],ihl+fila", "ga+lora[defaults lr=0.001],ihl+fila", "ga+lora[lr=0.005,ihl+fila",
                    "ga+lora]lr=0.001[,ihl+fila", "ga+lora[lr=0.001]x,ihl+fila", "ga+lora[lr],ihl+fila"):
        assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--compare", compare]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: bad --compare") and "\n" not in err
    assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--compare", "ga+lora,ihl+fila;"]) == 2
    assert "bad --compare 'ga+lora,ihl+fila;': an empty pair between semicolons" in capsys.readouterr().err  # the value
    for compare, message in (("", "bad --compare '': no pair given"), (" ", "bad --compare ' ': no pair given"),
                             ("ga+lora,ihl+fila;ga+lora", "bad --compare 'ga+lora,ihl+fila;ga+lora': pair 'ga+lora' ("),
                             ("ga+lora,ihl+fila;c\nd", "pair 'c\\nd' (")):  # a newline in the value: still one line
        assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--compare", compare]) == 2
        assert message in capsys.readouterr().err
    for typed, meant in (("GA+LORA", "ga+lora-r4"), ("ihl", "ihl+fila-r4")):  # another case, a prefix: a suggestion
        assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--compare", f"{typed},npo+lora"]) == 2
        assert f"unknown method with finished runs in suite tofu-mini '{typed}'; did you mean '{meant}'?" in \
            capsys.readouterr().err
    assert main(["report", "--suite", "tofu-mini", "--results", str(root), "--epoch", "2"]) == 0
    corrupt = [l for l in capsys.readouterr().err.splitlines() if l.startswith("corrupt run record")]
    [spec] = expand("tofu-mini", "npo+lora", seeds="1")
    assert corrupt == [f"corrupt run record {store.run_dir(spec) / 'run.json'}: "
                       "Expecting property name enclosed in double quotes: line 1 column 2 (char 1) (listed as "
                       "corrupt; the next `run` of its spec recomputes it)"]


def test_leaderboard_rows_split_by_setting_say_which_settings_differ(store):
    """Two ga+lora configurations (the default lr and lr=0.001 with 2 epochs) are two rows, each labelled with
    its settings as the paper table labels them (bench.tables.row_labels); other methods keep their names."""
    [other] = expand("tofu-mini", "ga+lora", seeds="0", hparams={"lr": "1e-3", "epochs": "2"})
    write_json_atomic(store.run_dir(other) / "run.json", tofu_record(other, [0.02, 0.03], [0.2, 0.25]))
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    methods = [line.split("|")[3].strip() for line in board.splitlines() if line.startswith("| tiny-llama")]
    assert methods == ["(target)", "(retain)", "ga+lora-r4 [defaults]", "ga+lora-r4 [lr=0.001 epochs=2]",
                       "ihl+fila-r4", "kl+lora-r4", "npo+lora-r4"]
    paper = (store.suite_dir("tofu-mini") / "paper_table.md").read_text()
    assert "| ga+lora-r4 [defaults]" in paper and "| ga+lora-r4 [lr=0.001 epochs=2]" in paper


def test_status_of_every_suite_skips_a_directory_that_is_no_suite(tmp_path, capsys, caplog):
    """`bench status` without --suite lists the suites of the results directory; another directory there (a
    backup, the folder of a plug-in that is not loaded) is named in a warning, not an error that hides the rest."""
    import logging

    from bench.cli import main
    from bench.grid import expand
    from bench.store import ResultStore, new_record, write_json_atomic

    store = ResultStore(tmp_path)
    [spec] = expand("tofu-mini", "ga+lora", seeds="0")
    write_json_atomic(store.run_dir(spec) / "run.json", {**new_record(spec), "status": "finished"})
    (tmp_path / "old-backup").mkdir()
    with caplog.at_level(logging.WARNING, logger="bench"):
        assert main(["status", "--results", str(tmp_path)]) == 0
    assert spec.run_id in capsys.readouterr().out and "skipped old-backup" in caplog.text
    assert main(["status", "--suite", "old-backup", "--results", str(tmp_path)]) == 2


def test_a_reference_model_is_one_row_wherever_its_results_directory_has_moved(tmp_path):
    """Reference rows are told apart by the model's fingerprint, not its path: runs made before and after a
    results directory was copied elsewhere name one target by two paths and make one row, while references
    with other weights (fine-tuned per seed) stay rows of their own. MUSE's reference is `(retrained)`."""
    from bench.runs import reference_rows

    store = ResultStore(tmp_path)
    made = [("/old/results/target", "fp-target", "/old/results/retrained", "fp-retrained"),
            ("/new/results/target", "fp-target", "/new/results/retrained", "fp-retrained"),
            ("/new/results/target", "fp-target", "/new/results/retrained-s1", "fp-retrained-s1")]
    for seed, (target, target_fp, retrained, retrained_fp) in enumerate(made):
        [spec] = expand("muse-mini", "ga", seeds=str(seed))
        record = new_record(spec)
        record.update(status="finished", epochs=[{"epoch": 1, "metrics": {"knowmem_f": 0.5}}],
                      inputs={"model/target": target_fp, "model/retrained": retrained_fp},
                      suite_records={"target": target, "reference": retrained,
                                     "target_metrics": {"knowmem_f": 0.9}, "reference_metrics": {"knowmem_f": 0.1}})
        write_json_atomic(store.run_dir(spec) / "run.json", record)
    rows = reference_rows("muse-mini", store)
    assert sorted(rows["method"]) == ["(retrained)", "(retrained)", "(target)"]


def test_a_run_whose_record_is_unreadable_counts_against_its_row(store, capsys):
    """One seed's run.json damaged (unparseable text; valid JSON the runner never writes): the run is placed in its
    row by its directory name, whose hash is that of the method's spec at its seed, so ihl+fila reads 2/4 with
    `2 corrupt` and is bold on nothing, as with a failed run, never `2/2 ok`; a second setting of the method does not
    get them, nor does a run of settings no readable run has, which is a row of its own; comparing a method none of
    whose runs finished says so, not "unknown method"."""
    for seed, damage in ((2, "text"), (3, "status")):
        [spec] = expand("tofu-mini", "ihl+fila", seeds=str(seed))
        if damage == "text":
            store.run_dir(spec).mkdir(parents=True)
            (store.run_dir(spec) / "run.json").write_text('{"status": "finis')
        else:
            write_json_atomic(store.run_dir(spec) / "run.json", {**tofu_record(spec, [0.9], [0.9]), "status": "done"})
    runs = load_runs("tofu-mini", store)
    damaged = runs[(runs["status"] == "corrupt") & (runs["method"] != "npo+lora-r4")].set_index("run_id")  # (the fixture's)
    assert sorted(damaged["seed"].dropna().astype(int)) == [2, 3]
    assert set(damaged["method"].dropna()) == {"ihl+fila-r4"} and (damaged["lr"].dropna() == 1e-2).all()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    paper = (store.suite_dir("tofu-mini") / "paper_table.md").read_text()
    row = next(line for line in paper.splitlines() if line.startswith("| ihl+fila-r4"))
    assert "| 2/4 " in row and "2 corrupt" in row and "**" not in row
    ga = next(line for line in paper.splitlines() if line.startswith("| ga+lora-r4"))
    assert "| **0.1** " in ga  # MU: ihl+fila's higher mean no longer competes, so ga+lora's is the best
    [other] = expand("tofu-mini", "ihl+fila", seeds="0", hparams={"epochs": "2"})  # a second setting
    write_json_atomic(store.run_dir(other) / "run.json", tofu_record(other, [0.3, 0.2], [0.4, 0.4]))
    [pending] = expand("tofu-mini", "ihl+fila", seeds="3", hparams={"lr": "0.5"})  # settings of no readable run
    store.run_dir(pending).mkdir(parents=True)
    runs = load_runs("tofu-mini", store)
    listed = runs[runs["status"].isin(["corrupt", "pending"]) & (runs["method"] != "npo+lora-r4")]
    assert sorted(zip(listed["seed"], listed["settings"])) == [(2, ""), (3, ""), (3, UNKNOWN_SETTINGS)]
    capsys.readouterr()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    assert sum(line.startswith("corrupt run record") for line in capsys.readouterr().err.splitlines()) == 3
    paper = (store.suite_dir("tofu-mini") / "paper_table.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in paper.splitlines() if line.startswith("| ihl+fila")}
    assert "| 2/4 " in rows["ihl+fila-r4 [defaults]"] and "| 1/1 " in rows["ihl+fila-r4 [epochs=2]"]
    assert "| 0/1 " in rows[f"ihl+fila-r4 [{UNKNOWN_SETTINGS}]"]
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--compare", "npo+lora,ga+lora"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: method 'npo+lora' has no finished run in suite tofu-mini (1 corrupt, 1 failed;")


def test_a_comparison_names_the_runs_it_leaves_out_unfinished(store):
    """--compare pairs finished runs only; a method with a failed seed is compared on its survivors, and compare.md
    says which runs those leave out, as claims.md does."""
    [spec] = expand("tofu-mini", "ihl+fila", seeds="2")
    write_json_atomic(store.run_dir(spec) / "run.json",
                      tofu_record(spec, [0.1], [0.4], status="failed", reason="loss is nan at epoch 2, step 1"))
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--compare", "ihl+fila,ga+lora"]) == 0
    text = (store.suite_dir("tofu-mini") / "compare.md").read_text()
    assert "ihl+fila-r4 has 1 run not finished (1 failed: seed 2), left out." in text


def test_a_later_report_rewrites_compare_md_from_the_runs_as_they_are(store, capsys):
    """compare.md is never left stale: a `report` without --compare redoes the comparisons that wrote it (a run
    failed since reads so), and removes it, saying why, when they no longer run (the method's runs are gone)."""
    compare_md = store.suite_dir("tofu-mini") / "compare.md"
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--compare", "ihl+fila,ga+lora"]) == 0
    assert "left out" not in compare_md.read_text()
    [spec] = expand("tofu-mini", "ihl+fila", seeds="2")
    write_json_atomic(store.run_dir(spec) / "run.json",
                      tofu_record(spec, [0.1], [0.4], status="failed", reason="loss is nan at epoch 2, step 1"))
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    assert "ihl+fila-r4 has 1 run not finished (1 failed: seed 2), left out." in compare_md.read_text()
    import shutil
    for run_dir in (store.suite_dir("tofu-mini") / "runs").glob("*ihl+fila*"):
        shutil.rmtree(run_dir)
    capsys.readouterr()
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    assert not compare_md.exists()
    assert f"{compare_md} removed: its `--compare ihl+fila,ga+lora` no longer runs on these runs" in capsys.readouterr().err


def test_a_comparison_shows_a_b_and_their_difference_over_the_same_pairs(store):
    """fq_constrained exists only where some epoch kept 90 % of the target's utility: ga+lora's seed 0 never did, so
    the one pair is seed 1's, and A is ihl+fila's seed-1 value (0.4), not its mean over both seeds (0.283)."""
    from bench.report import compare_methods

    [spec] = expand("tofu-mini", "ga+lora", seeds="1")
    write_json_atomic(store.run_dir(spec) / "run.json", tofu_record(spec, [0.2, 0.3], [0.5, 0.5]))
    rows = {r["metric"]: r for r in compare_methods("tofu-mini", load_runs("tofu-mini", store), "ihl+fila",
                                                    "ga+lora").rows}
    row = rows["fq_constrained (log10 ratio)"]
    assert (row["a"], row["b"], row["n"]) == ("0.4", "0.3", 1)
    assert row["diff"] == pytest.approx(math.log10(0.4 / 0.3))


def test_a_damaged_later_request_is_no_run_of_its_split(store):
    """The record of a sequence's second request (`forget10@2`, starting from the forget10 run's model) damaged:
    it belongs to the `forget10@2` row of the leaderboard, never to the forget10 row the paper table and claims pair."""
    from dataclasses import replace

    [first] = expand("tofu-mini", "ga+lora", seeds="0")
    later = replace(first, previous=first)
    store.run_dir(later).mkdir(parents=True)
    (store.run_dir(later) / "run.json").write_text("{bad")
    assert later.run_id.startswith("forget10@2__ga+lora-r4__")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    paper = (store.suite_dir("tofu-mini") / "paper_table.md").read_text()
    assert next(line for line in paper.splitlines() if line.startswith("| ga+lora-r4")).startswith("| ga+lora-r4  | 1/1    | ok")
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    assert any("forget10@2" in line and "ga+lora-r4" in line and "corrupt" in line for line in board.splitlines())


def test_a_damaged_tdec_run_is_named_by_its_forget_set(tmp_path):
    """On TDEC's suites the forget sets are the replicates: a damaged record of one set counts against its method's
    row, and the comparisons that leave it out name it by set and seed."""
    store = ResultStore(tmp_path)
    for method, ma in (("ga+fila", 0.1), ("ga+lora", 0.2)):
        for spec in expand("tdec-mini", method, splits="set0,set1,set2", seeds="0"):
            record = new_record(spec)
            record.update(status="finished", epochs=[{"epoch": 1, "metrics": {"ma": ma + int(spec.split[-1]) / 100,
                                                                               "el10": 0.01}}],
                          final_metrics={"ppl_heldout": 10.0, "epochs_to_forget": 1, "forgotten": True})
            write_json_atomic(store.run_dir(spec) / "run.json", record)
    [damaged] = expand("tdec-mini", "ga+fila", splits="set1", seeds="0")
    (store.run_dir(damaged) / "run.json").write_text("{bad")
    assert main(["report", "--suite", "tdec-mini", "--results", str(tmp_path), "--compare", "ga+fila,ga+lora"]) == 0
    paper = (store.suite_dir("tdec-mini") / "paper_table.md").read_text()
    assert "2/3" in next(line for line in paper.splitlines() if "ga+fila" in line)
    compare = (store.suite_dir("tdec-mini") / "compare.md").read_text()
    assert "ga+fila-r8 has 1 run not finished (1 corrupt: set1 seed 0), left out" in compare


def test_a_copy_of_a_run_directory_is_counted_nowhere_and_named(store, capsys):
    """A run directory copied (`X.bak`) or moved under another run's name carries X's run id in its run.json: it is
    no run of its own, so tables, claims and `bench status` count X once, and the report and status name the copy;
    so is a directory whose name is no run id and which holds no readable record."""
    import shutil

    from bench.status import status_table

    [spec] = expand("tofu-mini", "ihl+fila", seeds="0")
    copy = store.run_dir(spec).with_name(spec.run_id + ".bak")
    shutil.copytree(store.run_dir(spec), copy)
    [moved] = expand("tofu-mini", "ihl+fila", seeds="5")  # a name of the right shape, holding seed 0's record
    shutil.copytree(store.run_dir(spec), store.run_dir(moved))
    (store.suite_dir("tofu-mini") / "runs" / "scratch").mkdir()
    [edited] = expand("tofu-mini", "ihl+fila", seeds="6")  # a copy whose run id was edited to its new name
    record = json.loads((store.run_dir(spec) / "run.json").read_text())
    write_json_atomic(store.run_dir(edited) / "run.json", {**record, "run_id": edited.run_id})
    odd = store.suite_dir("tofu-mini") / "runs" / "mine"  # a name of no run, its record naming it
    write_json_atomic(odd / "run.json", {**record, "run_id": "mine", "spec": {**record["spec"], "options": []}})
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    err = capsys.readouterr().err
    assert f"{store.run_dir(edited)}: not counted, its run.json's spec is not the one its run id names" in err
    assert f"{odd}: not counted, its name is no run id" in err.splitlines()
    said = (f": not counted, its run.json is run {spec.run_id}'s, which counts only in the directory of its run id (a "
            f"copy, or a renamed directory to move back)")
    assert f"{copy}{said}" in err.splitlines() and f"{store.run_dir(moved)}{said}" in err.splitlines()
    assert f"{store.suite_dir('tofu-mini') / 'runs' / 'scratch'}: not counted, its name is no run id" in err.splitlines()
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    [ihl] = [line for line in board.splitlines() if "| ihl+fila-r4" in line]
    assert "| 2/2 " in ihl and "distinct" not in ihl
    status = status_table("tofu-mini", str(store.root))
    assert sum(f"| {spec.run_id} " in line for line in status.splitlines()) == 1  # counted once, copies named
    assert f"{copy}{said}" in status.splitlines()
    assert "3 finished" in status and f"| {moved.run_id} " not in status
    alone = ResultStore(store.root / "alone")  # nothing but a directory of no run: the error says why, names it
    (alone.suite_dir("tofu-mini") / "runs" / "scratch").mkdir(parents=True)
    assert main(["report", "--suite", "tofu-mini", "--results", str(alone.root)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{alone.suite_dir('tofu-mini') / 'runs' / 'scratch'}: not counted, its name is no run id"
    assert len(err) == 2


def test_a_run_directory_renamed_away_counts_in_its_row_as_absent(store, capsys):
    """`mv X X.bak` leaves run X absent: its row reads 1/2 with `1 absent` (never a complete `1/1 ok`) and competes
    on nothing, `bench status` lists X as absent, and the copy's line says how to put it back."""
    from bench.status import status_table

    [spec] = expand("tofu-mini", "ihl+fila", seeds="0")
    copy = store.run_dir(spec).with_name(spec.run_id + ".bak")
    store.run_dir(spec).rename(copy)
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert (f"{copy}: not counted, its run.json is run {spec.run_id}'s, whose own directory is absent: `mv {copy} "
            f"{store.run_dir(spec)}` puts it back (its row counts it as absent; the next `run` starts it anew)") in err
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    [ihl] = [line for line in board.splitlines() if "| ihl+fila-r4" in line]
    assert "| 1/2 " in ihl and "| absent" in ihl and "**" not in ihl
    status = status_table("tofu-mini", str(store.root))
    [line] = [line for line in status.splitlines() if f"| {spec.run_id} " in line]
    assert "| absent " in line and f"`mv {copy} {store.run_dir(spec)}` puts it back" in line
    assert "1 absent" in status.splitlines()[-2]
    assert not store.run_dir(spec).exists()  # reading never moves anything back


@pytest.mark.parametrize("away", ["other-suite.bak", "other-suite", "damaged.bak"])
def test_a_run_moved_into_another_suite_or_damaged_on_the_way_counts_as_absent(store, capsys, away):
    """A run moved into another suite's runs/ (under its own name or as X.bak), or renamed X.bak with its run.json
    damaged, is absent from its row all the same (never `1/1 ok`), and the copy's line gives the `mv` back into its
    own suite's runs/."""
    from bench.status import status_table

    [spec] = expand("tofu-mini", "ihl+fila", seeds="0")
    home = store.run_dir(spec)
    if away == "damaged.bak":
        copy = home.with_name(spec.run_id + ".bak")
        home.rename(copy)
        (copy / "run.json").write_text((copy / "run.json").read_text()[:300])  # cut short: no record to read
    else:
        copy = store.suite_dir("tdec-mini") / "runs" / (spec.run_id + (".bak" if away.endswith(".bak") else ""))
        copy.parent.mkdir(parents=True)
        home.rename(copy)
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    [ihl] = [line for line in board.splitlines() if "| ihl+fila-r4" in line]
    assert "| 1/2 " in ihl and "| absent" in ihl and "**" not in ihl
    status = status_table(None, str(store.root))
    assert f"`mv {copy} {home}` puts it back" in status
    [line] = [line for line in status.splitlines() if f"| {spec.run_id} " in line]
    assert "| tofu-mini " in line and "| absent " in line
    if away == "damaged.bak":
        assert "its run.json is damaged" in status
    copy.rename(home)  # the printed mv restores the run (a damaged one then reads corrupt, in its own row)
    assert "absent" not in status_table("tofu-mini", str(store.root))


def test_an_unreadable_run_is_never_counted_twice_nor_read_as_default_settings(store):
    """A damaged record next to a readable copy of its directory (`X.bak`, which carries X's run id) is that run,
    damaged: the copy is no run (bench.store.stray_reason) and never stands in for it; a pending run of a method with no readable run is labelled as of unknown settings, alone in its row; a
    readable record whose spec cannot be rebuilt (a damaged `previous`) does not stop the report."""
    import shutil

    [spec] = expand("tofu-mini", "ihl+fila", seeds="0")
    shutil.copytree(store.run_dir(spec), store.run_dir(spec).with_name(spec.run_id + ".bak"))
    (store.run_dir(spec) / "run.json").write_text("{")
    [pending] = expand("tofu-mini", "rmu+lora", seeds="0")
    store.run_dir(pending).mkdir(parents=True)
    [odd] = expand("tofu-mini", "ga+lora", seeds="1")
    write_json_atomic(store.run_dir(odd) / "run.json", {**tofu_record(odd, [0.1], [0.4]),
                                                         "spec": {**odd.to_dict(), "previous": {}}})
    [waiting] = expand("tofu-mini", "ga+lora", seeds="2", hparams={"epochs": "3"})
    store.run_dir(waiting).mkdir(parents=True)
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root)]) == 0
    board = (store.suite_dir("tofu-mini") / "leaderboard.md").read_text()
    ihl = [line for line in board.splitlines() if "| ihl+fila-r4" in line]
    assert len(ihl) == 1 and "| 1/2 " in ihl[0] and "| corrupt" in ihl[0]  # seed 0 damaged, seed 1: no third run
    assert any(f"| rmu+lora-r4 [{UNKNOWN_SETTINGS}]" in line and "| 0/1 " in line for line in board.splitlines())


def test_a_suite_directory_given_for_the_results_directory_gets_a_hint(store, capsys):
    """`--results results/tofu-mini` or `--against results/tofu-mini` (the suite's own directory) says which
    directory to pass, not only that there are no runs."""
    suite_dir = store.suite_dir("tofu-mini")
    assert main(["report", "--suite", "tofu-mini", "--results", str(suite_dir)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"({suite_dir} looks like a suite directory: pass the results directory that holds it, --results {store.root})")
    assert main(["report", "--suite", "tofu-mini", "--results", str(store.root), "--against", str(suite_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"--against {store.root})")
    assert main(["status", "--results", str(suite_dir)]) == 2  # `status` says so as an error, as `report` does
    assert capsys.readouterr().err.strip().endswith(f"--results {store.root})")
    assert main(["status", "--results", str(suite_dir / "runs")]) == 2  # its runs/ directory
    assert capsys.readouterr().err.strip().endswith(f"looks like a suite's runs/ directory: pass the results directory "
                                                    f"that holds it, --results {store.root})")
    fresh = store.root / "clone" / "tofu-mini"  # as a fresh clone has it: committed reports, no runs/
    fresh.mkdir(parents=True)
    (fresh / "claims.md").write_text("# tofu-mini: claims\n")
    assert main(["status", "--results", str(fresh)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"--results {fresh.parent})")
    import shutil
    renamed = shutil.copytree(suite_dir, store.root / "elsewhere" / "tofu-copy")  # not under the suite's name
    assert main(["report", "--suite", "tofu-mini", "--results", str(renamed)]) == 2
    assert capsys.readouterr().err.strip().endswith("holding it under the name tofu-mini/, as `bench run --results "
                                                    "DIR` writes it)")
    assert main(["report", "--suite", "muse-mini", "--results", str(renamed)]) == 2  # another suite's runs
    assert capsys.readouterr().err.strip().endswith("looks like the directory of suite tofu-mini's runs, not muse-mini's)")
    moved = shutil.copytree(suite_dir, store.root / "mixed" / "muse-mini")  # tofu-mini runs filed as muse-mini's
    assert main(["report", "--suite", "muse-mini", "--results", str(moved.parent)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "whose own directory is absent" in err[0] and f"{moved.parent / 'tofu-mini' / 'runs'}" in err[0]  # the mv back
    assert err[-1].startswith("error: no readable run")

