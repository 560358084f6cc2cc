"""tdec-mini's utility stand-ins, built from held-out documents of the synthetic corpus: two
multiple-choice tasks for lm-eval (standing in for the reasoning suite) and a dialogue-like reply
scored by unigram F1."""

from __future__ import annotations

import random

from suites.tdec_mini_data import OBJECTS, SENTENCES, VERBS


def choice_tasks(docs: list[str], seed: int, n: int = 100) -> dict[str, list[dict]]:
    """Two multiple-choice tasks over what the base model learned from the corpus, standing in for the
    reasoning suite (lm-eval, offline). Both are far above chance for the base model (measured: about
    1.0 and 0.86 against 0.25), so damage from unlearning shows as a drop:
    `mini_phrase`: the formats and stock phrases of the corpus; in an e-mail, which ending completes a
    stock sentence (others: endings of other stock sentences); in a clause, which object follows
    "shall <verb>" (others: verbs, which break the clause's grammar);
    `mini_order`: which continuation of a held-out document has its words in the right order (others:
    the same words with one adjacent pair swapped)."""
    rng = random.Random(seed)
    tasks: dict[str, list[dict]] = {"mini_phrase": [], "mini_order": []}

    def add(task, context, gold, others):
        if len(tasks[task]) < n and gold not in others:
            label = rng.randrange(len(others) + 1)
            tasks[task].append({"context": context, "choices": others[:label] + [gold] + others[label:], "label": label})

    for doc in docs:
        if doc.startswith("From:"):
            lines = doc.split("\n")
            sentence = lines[6].split(" ")  # the first stock sentence after "Hi <name>,"
            others = rng.sample([x for x in SENTENCES if x != lines[6]], 3)
            add("mini_phrase", "\n".join(lines[:6]) + "\n" + " ".join(sentence[:2]), " " + " ".join(sentence[2:]),
                [" " + " ".join(o.split(" ")[2:]) for o in others])
        elif doc.startswith("Section"):
            head, tail = doc.split(" shall ", 1)
            verb = tail.split(" ")[0]
            obj = next(o for o in OBJECTS if tail[len(verb) + 1:].startswith(o))
            add("mini_phrase", f"{head} shall {verb}", f" {obj} within",
                [f" {v} within" for v in rng.sample([v for v in VERBS if v != verb], 3)])
        context, ending = _split(doc)
        words = ending.split(" ")[1:]
        if len(words) >= 6 and len(set(words)) == len(words):
            swapped = []
            for i in rng.sample(range(len(words) - 1), 3):
                w = list(words)
                w[i], w[i + 1] = w[i + 1], w[i]
                swapped.append(" " + " ".join(w))
            add("mini_order", context, ending, swapped)
    return tasks


def _split(doc: str) -> tuple[str, str]:
    words = doc.split(" ")
    cut = max(1, len(words) // 2)
    return " ".join(words[:cut]), " " + " ".join(words[cut:cut + 8])


def dialogue_rows(docs: list[str], n: int = 64) -> list[dict]:
    """A dialogue-like stand-in scored by unigram F1 of the greedy reply: given the first two lines of
    a held-out function (signature, `total = ...`), the next two lines (the loop and its test). The
    reply's shape is learned and its argument is in the context: the base model scores about 0.37,
    a model damaged by unlearning far less."""
    rows = []
    for doc in docs:
        if doc.startswith("def "):
            lines = doc.split("\n")
            rows.append({"context": "\n".join(lines[:2]) + "\n", "response": "\n".join(lines[2:4])})
        if len(rows) == n:
            break
    return rows
