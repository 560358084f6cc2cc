"""Issue 25 item 7: membership inference where chance is not 0.5. On TOFU the retain-only model, which saw
neither the forget nor the holdout authors, already reaches AUCs far from 0.5 (0.78 on real forget01 vs
holdout01); the leaderboard ranks each attack AUC by its distance to that model's AUC on the same items
and prints it next to the value."""

import math

import pytest

from bench.grid import expand
from bench.leaderboard import format_leaderboard
from bench.report import leaderboard, load_runs
from bench.store import ResultStore, new_record, write_json_atomic
from suites.privacy import auc, auc_null_halfwidth


def record(spec, mia_loss, ref_loss=0.78):
    r = new_record(spec)
    r.update(status="finished", epochs=[{"epoch": 1, "metrics": {"forget_quality": 0.5, "model_utility": 0.5,
                                                                  "mia_loss": mia_loss}}],
             suite_records={"target_metrics": {"forget_quality": 1e-5, "model_utility": 0.5, "mia_loss": 0.95},
                            "reference_metrics": {"forget_quality": 1.0, "model_utility": 0.5, "mia_loss": ref_loss}})
    return r


def test_attack_aucs_rank_by_distance_to_the_retain_only_models_auc(tmp_path):
    store = ResultStore(tmp_path)
    # near the retain-only model (0.78): as private as retraining; near 0.5: the old rule's winner
    values = {"ga+lora": (0.77, 0.79), "npo+lora": (0.51, 0.53)}
    for method, aucs in values.items():
        for seed, value in enumerate(aucs):
            [spec] = expand("tofu-mini", method, seeds=str(seed))
            write_json_atomic(store.run_dir(spec) / "run.json", record(spec, value))
    frame = leaderboard("tofu-mini", store, refs=load_runs("tofu-mini", store).iloc[0:0])
    best = dict(zip(frame["method"], frame["mia_loss_best"]))
    assert best == {"ga+lora-r4": True, "npo+lora-r4": False}
    assert frame.set_index("method").loc["ga+lora-r4", "mia_loss_ref"] == pytest.approx(0.78)
    shown = format_leaderboard(frame, "tofu-mini").set_index("method")
    assert "(ref 0.78)" in shown.loc["npo+lora-r4", "mia_loss"]
    # without a calibrating value the old rule stands: nearest 0.5
    store2 = ResultStore(tmp_path / "plain")
    for method, aucs in values.items():
        for seed, value in enumerate(aucs):
            [spec] = expand("tofu-mini", method, seeds=str(seed))
            r = record(spec, value)
            del r["suite_records"]["reference_metrics"]["mia_loss"]
            write_json_atomic(store2.run_dir(spec) / "run.json", r)
    frame = leaderboard("tofu-mini", store2, refs=load_runs("tofu-mini", store2).iloc[0:0])
    assert dict(zip(frame["method"], frame["mia_loss_best"])) == {"ga+lora-r4": False, "npo+lora-r4": True}


def test_the_null_spread_of_an_auc_matches_simulation():
    """auc_null_halfwidth against 4,000 AUCs of two samples from one distribution: the 95th percentile of
    |AUC - 0.5|. TOFU's forget01 vs holdout01 holds 2 authors per side: +-0.63, so its 0.78 is chance."""
    import numpy as np

    rng = np.random.default_rng(0)
    for n1, n2 in ((20, 20), (40, 40), (10, 30)):
        a, b = rng.normal(size=(4000, n1, 1)), rng.normal(size=(4000, 1, n2))
        aucs = (a > b).mean(axis=(1, 2))  # P(member > non-member), no ties with continuous draws
        assert auc_null_halfwidth(n1, n2) == pytest.approx(np.quantile(abs(aucs - 0.5), 0.95), abs=0.015)
    assert auc([0.9, 0.8], [0.1, 0.85]) == pytest.approx(0.75)  # the harness's AUC is the same statistic
    assert auc_null_halfwidth(2, 2) == pytest.approx(1.96 * math.sqrt(5 / 48))
    assert auc_null_halfwidth(0, 5) == math.inf


def test_comparisons_claims_and_agreement_read_a_metric_with_an_ideal_by_nearness(tmp_path):
    """privleak's ideal is 0 and an attack AUC's the retain-only model's AUC: a run at privleak 5 is better than
    one at -97, which `higher_is_better` alone (privleak: lower) would call better. `--compare`, claims and
    agreement.md compare each run's distance to the ideal, as the leaderboard ranks them."""
    import pandas as pd

    from bench import agreement, claims
    from bench.compare import compare_methods
    from suites import SUITES

    store = ResultStore(tmp_path)
    values = {"ga+lora": ((5.0, 0.77), (-3.0, 0.79), (6.0, 0.80)),  # near both ideals, on both sides of 0
              "npo+lora": ((-97.0, 0.51), (-95.0, 0.53), (-99.0, 0.52))}  # far below both
    for method, per_seed in values.items():
        for seed, (leak, mia) in enumerate(per_seed):
            [spec] = expand("tofu-mini", method, seeds=str(seed))
            r = record(spec, mia)
            r["epochs"][0]["metrics"]["privleak"] = leak
            write_json_atomic(store.run_dir(spec) / "run.json", r)
    runs = load_runs("tofu-mini", store)
    rows = {r["metric"]: r for r in compare_methods("tofu-mini", runs, "ga+lora", "npo+lora").rows}
    leak = rows["privleak (distance to 0)"]
    assert leak["verdict"] == "ga+lora-r4 better" and leak["diff"] == pytest.approx((-92 - 92 - 93) / 3)
    assert leak["a"].startswith("4.67 ")  # shown as tested: distances 5, 3, 6 (the values' mean is 2.67)
    mia = rows["mia_loss (distance to ref)"]  # distances to each run's retain-only AUC, 0.78
    assert mia["verdict"] == "ga+lora-r4 better" and mia["diff"] == pytest.approx((-0.26 - 0.24 - 0.24) / 3)

    path = tmp_path / "mine.yaml"
    path.write_text("claims:\n  - id: ga-leaks-less\n    metric: privleak\n    better: ga+lora\n    than: npo+lora\n"
                    "    margin: 1\n  - id: npo-leaks-less\n    metric: privleak\n    better: npo+lora\n"
                    "    than: ga+lora\n    margin: 1\n")
    ga, npo = claims.evaluate_file(path, "tofu-mini", runs)
    assert (ga.verdict, npo.verdict) == ("holds", "does not hold")
    assert ga.checks[0].diff == "-92.3" and "tested as privleak (distance to 0)" in ga.checks[0].reason
    assert ga.values == "distance" and ga.checks[0].a_value.startswith("4.67 [")

    metrics = [m for m in SUITES["tofu-mini"].metrics if m.name in ("privleak", "mia_loss")]
    pairs = {p["metric"]: p for p in agreement.separated_pairs(runs, runs, metrics)}
    assert {m: (p["better"], p["in B"]) for m, p in pairs.items()} == {
        "privleak": ("ga+lora-r4", "same, separated"), "mia_loss": ("ga+lora-r4", "same, separated")}
    assert pairs["privleak"]["A"].startswith("2.67 ")  # shown as values, ordered by distances
    # B finds NPO nearer 0 (npo at -1, ga at 50): reversed, though NPO is still the lower of the two
    other = runs.assign(privleak=runs["method"].map({"ga+lora-r4": 50.0, "npo+lora-r4": -1.0})
                        + pd.Series([0.0, 1.0, 2.0] * 2, index=runs.index))
    [flipped] = [p for p in agreement.separated_pairs(runs, other, metrics) if p["metric"] == "privleak"]
    assert flipped["in B"] == "reversed, separated"


def test_a_run_without_its_calibrating_value_is_no_match_for_one_with_it(tmp_path):
    """Where some runs record their retain-only model's AUC and others do not, a distance to 0.5 is never tested
    against a distance to the calibrating AUC: such pairs are left out, as the leaderboard sets the row apart."""
    from bench.compare import compare_methods
    from bench import agreement
    from suites import SUITES

    store = ResultStore(tmp_path)
    for method, aucs in {"ga+lora": (0.77, 0.79, 0.80), "npo+lora": (0.51, 0.53, 0.52)}.items():
        for seed, value in enumerate(aucs):
            [spec] = expand("tofu-mini", method, seeds=str(seed))
            r = record(spec, value)
            if method == "npo+lora":  # measured from 0.5 it would look nearly ideal
                del r["suite_records"]["reference_metrics"]["mia_loss"]
            write_json_atomic(store.run_dir(spec) / "run.json", r)
    runs = load_runs("tofu-mini", store)
    compared = compare_methods("tofu-mini", runs, "ga+lora", "npo+lora")
    assert not any(r["metric"].startswith("mia_loss") for r in compared.rows)
    assert ("3 pairs left out of mia_loss (distance to ref): a run without its calibrating value (ref), where others "
            "have one") in compared.note
    metrics = [m for m in SUITES["tofu-mini"].metrics if m.name == "mia_loss"]
    assert agreement.separated_pairs(runs, runs, metrics) == []


def test_distance_intervals_stay_within_the_range_distances_can_take():
    """An attack AUC lies in [0, 1]: its distance to 0.5 is at most 0.5 and to a run's calibrating AUC at most 1,
    and the interval shown for distances is clipped there (a t-interval of distances near the end would pass it).
    Privleak ranges from -100 to +inf, so its distance has no upper end."""
    import pandas as pd

    from bench.claims import compared_values
    from suites import SUITES

    metric = {m.name: m for m in SUITES["tofu-mini"].metrics}
    assert metric["mia_loss"].distance_bounds() == (0.0, 0.5)
    assert metric["mia_loss"].distance_bounds(calibrated_runs=True) == (0.0, 1.0)
    assert metric["privleak"].distance_bounds() == (0.0, math.inf)
    far = pd.DataFrame({"mia_loss_a": [0.0, 0.02, 0.1], "mia_loss_b": [0.5, 0.5, 0.5]})
    values = compared_values(far, metric["mia_loss"])
    assert values.test_a == pytest.approx([0.5, 0.48, 0.4]) and values.reach == (0.0, 0.5)
    shown = values.summary(metric["mia_loss"], values.a)
    assert shown.hi == 0.5 and shown.mean == pytest.approx(0.46)  # unclipped: 0.46 + 4.30 * 0.0529 / sqrt(3) = 0.59
