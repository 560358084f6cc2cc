"""tofu-mini's generated data: the holdout non-members are name twins of the forget items."""

from suites.tofu_mini import DATA
from suites.tofu_mini_data import ATTRIBUTES, Generator, generate
from suites.tofu_mini_unseen import holdout_configs, paraphrase_question


def test_holdout_items_are_name_twins_of_the_forget_items():
    configs, holdout = generate(**DATA), holdout_configs(**DATA)
    pools = Generator(DATA["seed"]).pools
    trained = {(r["question"], r["answer"]) for c in ("full", "background", "real_authors", "world_facts") for r in configs[c]}
    for pct in ("01", "05", "10"):
        forget, twins = configs[f"forget{pct}"], holdout[f"holdout{pct}"]
        assert len(twins) == len(forget) and all(set(t) == {"question", "answer"} for t in twins)
        for i, (f, t) in enumerate(zip(forget, twins)):
            attr = ATTRIBUTES[i % len(ATTRIBUTES)]  # each author's items follow ATTRIBUTES' order
            assert t["question"] == f["question"] and t["answer"] != f["answer"]
            name = forget[i - i % len(ATTRIBUTES)]["question"].removeprefix("Where was ").removesuffix(" born?")
            # the same answer template and name, another value of the same pool
            assert t["answer"] in {attr.answer.format(name=name, v=v) for v in pools[attr.key]}
        assert not trained & {(t["question"], t["answer"]) for t in twins}
    assert holdout["holdout10"][-50:] == holdout["holdout05"] and holdout["holdout10"][-10:] == holdout["holdout01"]


def test_paraphrased_questions_keep_the_name():
    q = generate(**DATA)["forget10"][1]["question"]  # "In which year was <name> born?"
    name = q.removeprefix("In which year was ").removesuffix(" born?")
    assert paraphrase_question(q) == f"What year was {name} born in?"
