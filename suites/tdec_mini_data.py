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
    """A made-up word of `lo` to `hi` syllables drawn from SYL."""
    return "".join(rng.choice(SYL) for _ in range(rng.randint(lo, hi)))


def email(rng: random.Random) -> str:
    """A synthetic e-mail (addresses, subject, a few sentences, a phone number, a signature), one document."""
    a, b = word(rng).capitalize(), word(rng).capitalize()
    lines = [f"From: {a.lower()}@{word(rng)}.com", f"To: {b.lower()}@{word(rng)}.org",
             f"Subject: {rng.choice(TOPICS)} #{rng.randint(100, 9999)}", "", f"Hi {b},", ""]
    lines += [rng.choice(SENTENCES) for _ in range(rng.randint(2, 4))]
    lines += [f"Call me at {rng.randint(200, 999)}-{rng.randint(1000, 9999)}.", "", "Best,", a]
    return "\n".join(lines)


def function(rng: random.Random) -> str:
    """A synthetic Python function of six lines with made-up names and constants, one document."""
    name, arg, const = word(rng), word(rng, 1, 2), rng.randint(2, 999)
    body = [f"def {name}_{word(rng, 1, 1)}({arg}, {word(rng, 1, 2)}=None):",
            f"    total = {const}",
            f"    for item in {arg}:",
            f"        if item > {rng.randint(1, 99)}:",
            f"            total += item * {rng.randint(2, 9)}",
            f"    return total - {rng.randint(1, 50)}"]
    return "\n".join(body)


def clause(rng: random.Random) -> str:
    """A synthetic lease clause with a section number, made-up names and a deadline in days, one document."""
    return (f"Section {rng.randint(1, 20)}.{rng.randint(1, 9)} The Tenant shall {rng.choice(VERBS)} "
            f"{rng.choice(OBJECTS)} within {rng.randint(2, 90)} days of {rng.choice(OBJECTS)}, provided that "
            f"{word(rng).capitalize()} {word(rng).capitalize()} shall {rng.choice(VERBS)} {rng.choice(OBJECTS)}.")


KINDS = (email, function, clause)


def documents(n: int, seed: int) -> list[str]:
    """`n` synthetic documents, each an e-mail, function or clause at random; the same for the same `seed`."""
    rng = random.Random(seed)
    return [rng.choice(KINDS)(rng) for _ in range(n)]
