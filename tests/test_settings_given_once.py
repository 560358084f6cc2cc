"""A setting has one spelling and is given once: stage lists that run the same stages share a run id, and a
name given twice (`--set lr=0.1 --lr 0.2`, a repeated `--option` or `--set`, a repeated list entry) is a
one-line error naming it, never last-wins."""

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.grid import expand


def run_id(*options, suite="tofu-mini"):
    [spec] = expand(suite, "ga", seeds="0", options=dict(o.split("=", 1) for o in options))
    return spec.run_id


def test_robustness_lists_running_the_same_stages_share_one_run_id():
    assert run_id("robustness=relearn") == run_id("robustness=relearn,relearn")
    assert run_id("robustness=relearn,quant") == run_id("robustness=quant,relearn") == \
        run_id("robustness= quant , relearn,quant")
    assert run_id("robustness=none") == run_id("robustness=") == run_id()  # none is the unrecorded default
    assert len({run_id("robustness=relearn"), run_id("robustness=relearn,quant"), run_id("robustness=all"),
                run_id()}) == 4
    [spec] = expand("tofu-mini", "ga", seeds="0", options={"robustness": "paraphrase,relearn"})
    assert spec.option("robustness") == "relearn,paraphrase"  # the stages' own order (bench.robustness.STAGES)


@pytest.mark.parametrize("argv, expected", [
    (["--set", "lr=0.1", "--lr", "0.2"], "lr is given twice (--set lr=0.1 and --lr 0.2); give it once"),
    (["--epochs", "2", "--set", "epochs=3"], "epochs is given twice (--set epochs=3 and --epochs 2)"),
    (["--set", "retain_weight=1", "--set", "retain_weight=2"], "retain_weight is given twice (--set retain_weight=1 "
                                                                "and --set retain_weight=2)"),
    (["--option", "max_items=3", "--option", "max_items=4"], "max_items is given twice (--option max_items=3 and "
                                                             "--option max_items=4)"),
    (["--option", "lm_eval_extra=a", "--lm-eval-tasks", "b"], "lm_eval_extra is given twice"),
    (["--lm-eval-tasks", "a,a"], "option lm_eval_extra name 'a' appears twice in 'a,a'"),
])
def test_a_setting_given_twice_is_a_one_line_error_naming_it(argv, expected, capsys, tmp_path):
    assert main(["show-config", "--suite", "tofu-mini", "--methods", "gd", "--seeds", "0", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err, err


def test_repeated_or_empty_list_entries_in_list_options_are_refused():
    with pytest.raises(BenchError, match="option lm_eval_tasks name 'mini_order' appears twice"):
        expand("tdec-mini", "ga", splits="set0", seeds="0", options={"lm_eval_tasks": "mini_order,mini_order"})
    with pytest.raises(BenchError, match="an empty entry"):
        expand("tdec", "ga", seeds="0", options={"dialogue": "wizard_of_wikipedia,"})
    # the defaults and the empty list (no task) stay valid
    assert expand("tdec-mini", "ga", splits="set0", seeds="0", options={"lm_eval_tasks": ""})
    assert expand("tdec", "ga", seeds="0")
