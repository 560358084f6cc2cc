"""Data tofu-mini evaluates on but no tofu-mini model trains on.

Holdout QA pairs, the non-members of the membership attacks: for every forget item, its "name twin",
the same question about the same author with the answer template filled by another value drawn from
the same pool (never the true one). No tofu-mini model (stage A, target, retain-only) trains on any
holdout answer. holdoutXX twins forgetXX item for item, so holdout01 is in holdout05 is in holdout10
as the forget splits nest.

Why twins and not other authors (TOFU's design): every QA pair of an author carries the author's name,
so attack scores cluster by author (a tenth to four fifths of their variance lies between authors,
measured on the retain-only model), and forget10 has only 10 authors. Two exchangeable sets of 10
fresh authors then give a retain-only AUC with a standard deviation of 0.09-0.12, not the 0.04 of 100
independent items, and a particular forget set can sit far from the population: against 1,000 fresh
authors the seed-0 retain-only model scored forget10 at GradNorm AUC 0.71 (docs/metrics.md). With the
author on both sides the name cancels, and a member and its twin differ only in a value drawn from the
same pool: for a model that saw neither, the pair is exchangeable item by item.

Paraphrased questions, the robustness stage's probe: each forget question asked another way
(`paraphrased_question`, as TOFU's items carry), from a second question template per attribute."""

from __future__ import annotations

import random
import re

from suites.tofu_mini_data import ATTRIBUTES, Generator, generate

PARAPHRASED_QUESTIONS = {
    "birthplace": "What is the birthplace of {name}?",
    "year": "What year was {name} born in?",
    "genre": "Which genre is {name} known for writing?",
    "father": "What was the occupation of {name}'s father?",
    "mother": "What did {name}'s mother do for work?",
    "award": "What award was given to {name}?",
    "book": "Can you name a book written by {name}?",
    "nationality": "Which country is {name} a citizen of?",
    "university": "At which university did {name} study?",
    "books_written": "What is the number of books {name} has written?",
}
_QUESTION_OF = [(a, re.compile("^" + re.escape(a.question).replace(re.escape("{name}"), "(?P<name>.+?)") + "$"))
                for a in ATTRIBUTES]


def paraphrase_question(question: str) -> str:
    """The same question from the other template; a question of no known template raises ValueError."""
    for attr, pattern in _QUESTION_OF:
        m = pattern.match(question)
        if m:
            return PARAPHRASED_QUESTIONS[attr.key].format(name=m.group("name"))
    raise ValueError(f"no paraphrase template for {question!r}")

HOLDOUT_STREAM = 7919  # the twins' own random stream, after the value pools of generator seed `seed`


def holdout_configs(n_authors: int = 100, n_attributes: int = 10, seed: int = 0, **data) -> dict[str, list[dict]]:
    """{"holdout01": [...], "holdout05": [...], "holdout10": [...]} in the hub's holdout schema (question,
    answer): holdoutXX[i] is the name twin of forgetXX[i], same question, answer with another value."""
    configs = generate(n_authors=n_authors, n_attributes=n_attributes, seed=seed, **data)
    forget = configs["forget10_perturbed"]
    gen = Generator(seed)  # the value pools the true answers were drawn from
    gen.rng = random.Random(seed * 1_000_003 + HOLDOUT_STREAM)
    twins = []
    for row in forget:  # the question template names the attribute ("born in" alone would not)
        attr, name = next((a, m.group("name")) for a, m in ((a, p.match(row["question"])) for a, p in _QUESTION_OF) if m)
        true = next(v for v in gen.pools[attr.key] if attr.answer.format(name=name, v=v) == row["answer"])
        value = gen.rng.choice([v for v in gen.pools[attr.key] if v != true])
        twins.append({"question": row["question"], "answer": attr.answer.format(name=name, v=value)})
    return {f"holdout{pct:02d}": twins[-len(configs[f"forget{pct:02d}"]):] for pct in (1, 5, 10)}
