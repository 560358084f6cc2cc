"""Data tofu-mini evaluates on but no tofu-mini model trains on.

Holdout authors, the non-members of the membership attacks: holdout01/05/10 hold as many authors as forget01/05/10, drawn by the same generator with the same
value pools (places, countries, titles) but their own random stream, so they come from the forget
set's distribution; their names are checked against every generated author, and no tofu-mini model
(stage A, target, retain-only) trains on them. They live in their own module and data directory so
that adding them left every existing tofu-mini artefact (data, references) valid.

Paraphrased questions, the robustness stage's probe: each forget question asked another way
(`paraphrased_question`, as TOFU's items carry), from a second question template per attribute."""

from __future__ import annotations

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
_QUESTION_PATTERNS = [(re.compile("^" + re.escape(a.question).replace(re.escape("{name}"), "(?P<name>.+?)") + "$"),
                       PARAPHRASED_QUESTIONS[a.key]) for a in ATTRIBUTES]


def paraphrase_question(question: str) -> str:
    """The same question from the other template; a question of no known template raises ValueError."""
    for pattern, template in _QUESTION_PATTERNS:
        m = pattern.match(question)
        if m:
            return template.format(name=m.group("name"))
    raise ValueError(f"no paraphrase template for {question!r}")

HOLDOUT_STREAM = 7919  # the holdout authors' own random stream, after the value pools of generator seed `seed`


def holdout_configs(n_authors: int = 100, n_attributes: int = 10, seed: int = 0, **data) -> dict[str, list[dict]]:
    """{"holdout01": [...], "holdout05": [...], "holdout10": [...]} in TOFU's schema (question, answer,
    paraphrased_answer, perturbed_answer); holdoutXX holds the first k authors of one list of 10 %."""
    import random

    configs = generate(n_authors=n_authors, n_attributes=n_attributes, seed=seed, **data)
    taken = {row["question"] for rows in configs.values() for row in rows if "question" in row}
    taken |= {row["text"] for row in configs.get("tokenizer_corpus", [])}
    gen = Generator(seed)  # the same value pools as the training authors
    gen.rng = random.Random(seed * 1_000_003 + HOLDOUT_STREAM)
    k_max = max(1, round(n_authors * 10 / 100))
    authors: list[list[dict]] = []
    while len(authors) < k_max:
        author = gen.author(n_attributes)
        key = author[0]["question"]  # "Where was <name> born?": the same name gives the same question
        if key not in taken and not any(key in text for text in taken):
            authors.append(author)
            taken.add(key)
    out = {}
    for pct in (1, 5, 10):
        k = max(1, round(n_authors * pct / 100))
        out[f"holdout{pct:02d}"] = [qa for a in authors[:k] for qa in a]
    return out
