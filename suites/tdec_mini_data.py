"""A synthetic corpus for tdec-mini: templated documents whose layout is predictable and whose names
and numbers are random, so a tiny model can only predict them if it memorised the document.
Three kinds: e-mails, Python functions, legal clauses."""

from __future__ import annotations

import random

SYL = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "pe", "dor", "fen", "gil", "har", "bel",
       "cor", "dun", "mor", "nal", "pir", "ran", "sel", "tam", "vek", "wen", "zan", "bri", "cal")
VERBS = ("deliver", "repair", "inspect", "return", "replace", "insure", "maintain", "report", "pay", "notify")
OBJECTS = ("the premises", "all fixtures", "the deposit", "any damage", "the keys", "the rent", "written notice",
           "the inventory", "common areas", "the appliances")
TOPICS = ("meeting", "invoice", "schedule", "delivery", "contract", "budget", "review", "shipment")
SENTENCES = ("Please find the details below.", "Let me know if anything changes.", "Thanks for the quick reply.",
             "We should confirm this by Friday.", "I attached the latest version.", "Can you check the numbers?")


def word(rng: random.Random, lo: int = 2, hi: int = 3) -> str:
    return "".join(rng.choice(SYL) for _ in range(rng.randint(lo, hi)))


def email(rng: random.Random) -> str:
    a, b = word(rng).capitalize(), word(rng).capitalize()
    lines = [f"From: {a.lower()}@{word(rng)}.com", f"To: {b.lower()}@{word(rng)}.org",
             f"Subject: {rng.choice(TOPICS)} #{rng.randint(100, 9999)}", "", f"Hi {b},", ""]
    lines += [rng.choice(SENTENCES) for _ in range(rng.randint(2, 4))]
    lines += [f"Call me at {rng.randint(200, 999)}-{rng.randint(1000, 9999)}.", "", "Best,", a]
    return "\n".join(lines)


def function(rng: random.Random) -> str:
    name, arg, const = word(rng), word(rng, 1, 2), rng.randint(2, 999)
    body = [f"def {name}_{word(rng, 1, 1)}({arg}, {word(rng, 1, 2)}=None):",
            f"    total = {const}",
            f"    for item in {arg}:",
            f"        if item > {rng.randint(1, 99)}:",
            f"            total += item * {rng.randint(2, 9)}",
            f"    return total - {rng.randint(1, 50)}"]
    return "\n".join(body)


def clause(rng: random.Random) -> str:
    return (f"Section {rng.randint(1, 20)}.{rng.randint(1, 9)} The Tenant shall {rng.choice(VERBS)} "
            f"{rng.choice(OBJECTS)} within {rng.randint(2, 90)} days of {rng.choice(OBJECTS)}, provided that "
            f"{word(rng).capitalize()} {word(rng).capitalize()} shall {rng.choice(VERBS)} {rng.choice(OBJECTS)}.")


KINDS = (email, function, clause)


def documents(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(KINDS)(rng) for _ in range(n)]


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
