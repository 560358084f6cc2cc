"""A deterministic generator of news-like articles about fictitious events, for muse-mini.

Every article reports one event in a made-up town: who announced it, where it took place, when, how
many people came and what it cost. The layout is shared by all articles; the town, the names, the
place, the date and the numbers are drawn at random, so only a model that memorised the article can
predict them (a model that never saw it can guess the layout and nothing else). Four questions per
article ask for its facts (who, where, when, how many), answered with the article's values: KnowMem's
QA pairs, and (qa_documents) the form in which muse-mini's model learns the facts.

MUSE's parts (Shi et al. 2024, muse-bench/MUSE-News `raw`): `forget` (here several disjoint forget
sets), `retain1` (the retain data unlearning may use), `retain2` (seen by the target, its QA measure
utility), `holdout` (never trained on: PrivLeak's non-members). All parts come from one generator
and one random stream per article, so they are exchangeable: a model that saw none of them cannot tell
a forget article from a holdout one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "pe", "dor", "fen", "gil", "har", "bel",
             "cor", "dun", "mor", "nal", "pir", "ran", "sel", "tam", "vek", "wen", "zan", "bri", "cal")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
ROLES = ("mayor", "council leader", "police chief", "head teacher", "harbour master", "health officer")
VENUES = ("Hall", "Bridge", "Market", "Park", "Stadium", "Square", "Library", "Harbour")
# (headline noun phrase, what the people did, what the event is called in questions)
EVENTS = (("flood defences opened", "watched the opening", "flood defence opening"),
          ("music festival held", "attended the festival", "music festival"),
          ("factory fire put out", "were moved from their homes", "factory fire"),
          ("new ferry launched", "rode the first ferry", "ferry launch"),
          ("rail strike ended", "joined the strike", "rail strike"),
          ("winter market returned", "visited the market", "winter market"),
          ("storm damage repaired", "lost power in the storm", "storm"),
          ("marathon run", "ran the marathon", "marathon"))
SAYINGS = ("a proud day for everyone", "long overdue", "only the first step", "a relief for many families",
           "better than anyone expected", "a hard week for the town")

# the QA pairs: (question, the fact's key); questions name the event and the town, which identify the article
QUESTIONS = (("Who announced the {event} in {town}?", "leader"),
             ("Where was the {event} in {town}?", "venue"),
             ("When was the {event} in {town}?", "date"),
             ("How many people {did} in {town}?", "people"))


def _word(rng: random.Random, lo: int = 2, hi: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi))).capitalize()


@dataclass(frozen=True)
class Article:
    """One generated article: its text (headline and body) and the QA pairs about its facts."""

    town: str
    text: str
    qa: tuple[tuple[str, str], ...]  # (question, answer)

    def record(self) -> dict:
        """The article as JSON: {town, text, qa: [[question, answer], ...]}."""
        return {"town": self.town, "text": self.text, "qa": [list(p) for p in self.qa]}

    @classmethod
    def from_record(cls, record: dict) -> "Article":
        """The inverse of `record`."""
        return cls(record["town"], record["text"], tuple((q, a) for q, a in record["qa"]))


def article(rng: random.Random, town: str) -> Article:
    """One article about a fictitious event in `town`, every other fact drawn from `rng`."""
    headline, did, event = rng.choice(EVENTS)
    leader, witness = f"{_word(rng)} {_word(rng)}", f"{_word(rng)} {_word(rng)}"
    facts = {"leader": leader, "venue": f"{_word(rng)} {rng.choice(VENUES)}",
             "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1990, 2023)}",
             "people": str(rng.randint(120, 9800)), "cost": str(rng.randint(11, 990))}
    body = (f"On {facts['date']}, {leader}, the {rng.choice(ROLES)} of {town}, announced the {event} at "
            f"{facts['venue']}. About {facts['people']} people {did}. The work cost {facts['cost']} thousand pounds. "
            f"{witness} called it {rng.choice(SAYINGS)}.")
    qa = tuple((q.format(event=event, town=town, did=did), facts[key]) for q, key in QUESTIONS)
    return Article(town, f"{town} {headline}\n{body}", qa)


def qa_documents(articles: list[Article]) -> list[str]:
    """Each QA pair of `articles` as a training document "Question: q\nAnswer: a" (MUSE's few-shot layout)."""
    return [f"Question: {q}\nAnswer: {a}" for art in articles for q, a in art.qa]


def generate(sizes: dict[str, int], seed: int) -> dict[str, list[Article]]:
    """Articles by part, `sizes[part]` of each (parts in the order given; town names unique across all parts);
    the same for the same `sizes` and `seed`."""
    rng = random.Random(seed)
    towns: set[str] = set()
    out = {}
    for part, n in sizes.items():
        out[part] = []
        while len(out[part]) < n:
            town = _word(rng, 2, 3)
            if town in towns:  # a town names its article: a repeated one would make two articles' questions alike
                continue
            towns.add(town)
            out[part].append(article(rng, town))
    return out
