"""Robustness stages: option parsing, spec ids when off, quantisation error against the library's
scheme, merged adapters, the relearning split and the recovery fraction."""

import copy

import pytest
import torch

from bench import robustness
from bench.errors import BenchError
from bench.grid import expand
from tests.conftest import tiny


def test_the_option_names_stages_and_rejects_others():
    assert robustness.parse("none") == () and robustness.parse("") == ()
    assert robustness.parse("all") == ("relearn", "quant", "paraphrase")
    assert robustness.parse("quant, relearn,quant") == ("quant", "relearn")
    with pytest.raises(BenchError, match=r"bad option robustness='relearn,quantise' \(expected none, all"):
        robustness.parse("relearn,quantise")


@pytest.mark.parametrize("suite", ["tofu-mini", "tdec-mini", "tofu", "tdec"])
def test_stages_off_leave_the_spec_and_its_id_as_they_were(suite):
    [plain] = expand(suite, "ga", seeds="0", splits=None, models=None)[:1]
    [off] = expand(suite, "ga", seeds="0", options={"robustness": "none"})[:1]
    [on] = expand(suite, "ga", seeds="0", options={"robustness": "all"})[:1]
    assert off.hash == plain.hash and "robustness" not in plain.canonical_json()
    assert on.hash != plain.hash and on.option("robustness") == "all"


def test_int8_weights_are_within_half_a_step_and_the_original_is_untouched(tokenizer, batch):
    model = tiny("llama", tokenizer).eval()
    with torch.no_grad():
        before = model(input_ids=batch["input_ids"]).logits
    q8 = robustness.quantized(model, 8)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module is not model.get_output_embeddings():
            w = module.weight.detach()
            wq = dict(q8.named_modules())[name].weight.dequantize()
            step = w.abs().amax(dim=1, keepdim=True) / 127  # symmetric per output channel
            assert ((wq - w).abs() <= step / 2 + 1e-7).all(), name
            assert not torch.equal(wq, w)
    with torch.no_grad():
        assert torch.equal(model(input_ids=batch["input_ids"]).logits, before)  # quantising copies
        q4 = robustness.quantized(model, 4)(input_ids=batch["input_ids"]).logits
        q8_logits = q8(input_ids=batch["input_ids"]).logits
    assert (q8_logits - before).abs().max() < (q4 - before).abs().max()  # fewer bits, larger error


def test_a_lora_model_is_attacked_as_its_merged_weights(tokenizer, batch):
    from methods import lora

    wrapped = lora.wrap(tiny("llama", tokenizer), 4)
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.add_(0.1)
        expected = wrapped(input_ids=batch["input_ids"]).logits
        merged = robustness.merged_copy(wrapped)
        assert not any("lora_" in n for n, _ in merged.named_parameters())
        assert torch.allclose(merged(input_ids=batch["input_ids"]).logits, expected, atol=1e-5)


def test_relearning_split_and_recovery_by_hand():
    trained, held = robustness.relearn_split(10, 0.5, seed=3)
    assert len(trained) == 5 and sorted(trained + held) == list(range(10))
    assert robustness.relearn_split(10, 0.5, seed=3) == (trained, held) != robustness.relearn_split(10, 0.5, seed=4)
    with pytest.raises(BenchError, match="bad option relearn_fraction=1.5"):
        robustness.relearn_split(10, 1.5, seed=0)
    assert robustness.recovery(after=0.6, unlearned=0.2, target=1.0) == pytest.approx(0.5)
    assert robustness.recovery(after=0.2, unlearned=0.2, target=1.0) == 0.0
    assert robustness.recovery(after=0.5, unlearned=0.5, target=0.5) is None


def test_every_stage_declares_its_metrics_in_both_suites():
    from suites import SUITES

    for name, probed in (("tofu-mini", "paraphrase/forget_rouge"), ("tdec-mini", "paraphrase/el10")):
        metrics = {m.name: m for m in SUITES[name].metrics}
        assert probed in metrics and "relearn_forget/recovery" in metrics and "target_quant4/" + \
            SUITES[name].robustness_columns[0] in metrics
    assert "relearn_retain/forgotten" in {m.name for m in SUITES["tdec-mini"].metrics}
    fq = {m.name: m for m in SUITES["tofu-mini"].metrics}["quant4/forget_quality"]
    assert fq.log_scale and fq.higher_is_better


def test_recovery_is_left_out_where_unlearning_removed_too_little():
    record = lambda last: {"epochs": [{"epoch": 0, "metrics": {"ma": 0.9}}, {"epoch": 3, "metrics": {"ma": last}}],
                           "final_metrics": {"relearn_forget/recovery": -12.0, "relearn_retain/recovery": 3.0,
                                             "quant4/ma": 0.88}}
    assert robustness.screened(record(0.88), "ma") == {"quant4/ma": 0.88}  # removed 0.02 < MIN_REMOVED
    assert robustness.screened(record(0.60), "ma")["relearn_forget/recovery"] == -12.0


def test_the_robustness_table_counts_forgotten_runs_whatever_their_dtype():
    import pandas as pd

    from bench.tables import robustness_rows

    runs = pd.DataFrame({"status": ["finished"] * 3, "method": ["ga"] * 3, "config": ["c"] * 3,
                         "forgotten": pd.Series([True, False, True], dtype=bool),
                         "quant4/forgotten": [1.0, 0.0, 0.0]})
    rows, columns = robustness_rows(runs, pd.DataFrame(), (), ("forgotten",))
    [ga] = [r for r in rows if r["method"] == "ga"]
    assert ga["forgotten"].mean == pytest.approx(2 / 3) and ga["quant4/forgotten"].mean == pytest.approx(1 / 3)
