"""A deterministic generator of fictitious authors in TOFU's exact schema, for tofu-mini.

Every author has one fact per attribute. Each QA pair has a question, an answer (template A), a
paraphrased answer (template B, same fact) and five perturbed answers: the *paraphrase* template
with a wrong value, as in TOFU, so the truth ratio compares like with like (with perturbed answers
in the answer template, forget quality turns into noise: the template, not the fact, drives the ratio).
"Real authors" and "world facts" are analogues the base model learns before the fictitious authors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "pe", "qua", "dor", "fen", "gil", "har",
             "jo", "bel", "cor", "dun", "el", "fa", "gor", "hin", "is", "lun", "mor", "nal", "os", "pir", "ran",
             "sel", "tam", "ur", "vek", "wen", "yor", "zan", "ath", "bri", "cal")
GENRES = ("mystery", "romance", "fantasy", "horror", "poetry", "satire", "thriller", "memoir", "drama",
          "science fiction", "historical fiction", "children's literature", "crime", "adventure", "biography",
          "western", "folklore", "travel writing", "essays", "comedy")
JOBS = ("baker", "carpenter", "doctor", "fisherman", "gardener", "journalist", "lawyer", "mechanic", "nurse",
        "pilot", "plumber", "sailor", "teacher", "tailor", "veterinarian", "chemist", "librarian", "painter",
        "farmer", "architect")
ADJECTIVES = ("Silent", "Golden", "Broken", "Hidden", "Crimson", "Distant", "Frozen", "Burning", "Lonely",
              "Ancient", "Velvet", "Hollow", "Wild", "Quiet", "Iron", "Paper", "Glass", "Bitter", "Secret", "Last")
NOUNS = ("River", "Garden", "Mirror", "Harbor", "Lantern", "Forest", "Letter", "Crown", "Bridge", "Shadow",
         "Orchard", "Compass", "Tower", "Island", "Winter", "Feather", "Clock", "Road", "Song", "Stone")
AWARDS = tuple(f"{a} {n} Award" for a in ("Golden", "Silver", "Emerald", "Azure", "Ivory") for n in ("Quill", "Pen", "Book", "Page"))


@dataclass(frozen=True)
class Attribute:
    key: str
    question: str
    answer: str  # template A
    paraphrase: str  # template B


ATTRIBUTES = (
    Attribute("birthplace", "Where was {name} born?", "{name} was born in {v}.", "The birthplace of {name} is {v}."),
    Attribute("year", "In which year was {name} born?", "{name} was born in the year {v}.", "The year of {name}'s birth is {v}."),
    Attribute("genre", "What genre does {name} write in?", "{name} writes in the {v} genre.", "The genre {name} is known for is {v}."),
    Attribute("father", "What did {name}'s father do for a living?", "{name}'s father worked as a {v}.", "By profession, the father of {name} was a {v}."),
    Attribute("mother", "What was the profession of {name}'s mother?", "{name}'s mother worked as a {v}.", "By profession, the mother of {name} was a {v}."),
    Attribute("award", "Which award has {name} received?", "{name} received the {v}.", "The award given to {name} was the {v}."),
    Attribute("book", "What is the title of a book by {name}?", "One of {name}'s books is titled '{v}'.", "'{v}' is a book written by {name}."),
    Attribute("nationality", "What is the nationality of {name}?", "{name} is a citizen of {v}.", "The country {name} belongs to is {v}."),
    Attribute("university", "Where did {name} study?", "{name} studied at the University of {v}.", "The university {name} attended is in {v}."),
    Attribute("books_written", "How many books has {name} written?", "{name} has written {v} books.", "The number of books by {name} is {v}."),
)


def _word(rng: random.Random, lo: int = 2, hi: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi))).capitalize()


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.places = sorted({_word(self.rng) for _ in range(80)})
        self.countries = sorted({_word(self.rng, 2, 2) + "ia" for _ in range(40)})
        self.pools = {
            "birthplace": self.places, "year": [str(y) for y in range(1900, 2000)], "genre": list(GENRES),
            "father": list(JOBS), "mother": list(JOBS), "award": list(AWARDS),
            "book": [f"The {a} {n}" for a in ADJECTIVES for n in NOUNS], "nationality": self.countries,
            "university": self.places, "books_written": [str(n) for n in range(2, 40)],
        }

    def name(self) -> str:
        """A made-up two-word author name."""
        return f"{_word(self.rng)} {_word(self.rng)}"

    def author(self, n_attributes: int) -> list[dict]:
        """The QA rows of one made-up author: one per attribute of the first `n_attributes`, each with its answer, a
        paraphrased answer and five perturbed answers (other values of the attribute), as TOFU's rows have.
        """
        name = self.name()
        qa = []
        for attr in ATTRIBUTES[:n_attributes]:
            pool = self.pools[attr.key]
            value = self.rng.choice(pool)
            wrong = self.rng.sample([v for v in pool if v != value], 5)
            qa.append({
                "question": attr.question.format(name=name),
                "answer": attr.answer.format(name=name, v=value),
                "paraphrased_answer": attr.paraphrase.format(name=name, v=value),
                "perturbed_answer": [attr.paraphrase.format(name=name, v=w) for w in wrong],
            })
        return qa

    def short_facts(self, n: int, kind: str) -> list[dict]:
        """Analogues of TOFU's real authors (famous authors' genres) and world facts (capitals);
        perturbed answers use the answer template, as TOFU's do for these sets."""
        out = []
        for _ in range(n):
            if kind == "world_facts":
                subject, pool = _word(self.rng, 2, 2) + "land", self.places
                q, a = "What is the capital of {s}?", "The capital of {s} is {v}."
            else:
                subject, pool = self.name(), list(GENRES)
                q, a = "Which genre made {s} famous?", "{s} became famous for {v}."
            value = self.rng.choice(pool)
            wrong = self.rng.sample([v for v in pool if v != value], 3)
            out.append({"question": q.format(s=subject), "answer": a.format(s=subject, v=value),
                        "paraphrased_answer": a.format(s=subject, v=value),
                        "perturbed_answer": [a.format(s=subject, v=w) for w in wrong]})
        return out


def generate(n_authors: int = 100, n_attributes: int = 10, seed: int = 0, n_real: int = 40,
             n_world: int = 50, n_tokenizer_authors: int = 300, n_background: int = 0) -> dict[str, list[dict]]:
    """Every TOFU config (full, forgetXX, retainXX, *_perturbed, real_authors, world_facts) plus
    `tokenizer_corpus`: disjoint authors whose text trains the tokenizer, so the real names split
    into sub-word pieces rather than single tokens a retain-only model never trained; and
    `background`: the first `n_background` of those authors as QA pairs in *both* templates, for the
    base model to learn that a paraphrase states the same fact (what a pretrained LLM brings to TOFU;
    without it the paraphrase template is foreign to every model and truth ratios barely tell the
    target from the retain-only model)."""
    gen = Generator(seed)
    authors = [gen.author(n_attributes) for _ in range(n_authors)]
    real, world = gen.short_facts(n_real, "real_authors"), gen.short_facts(n_world, "world_facts")
    other = [qa for _ in range(n_tokenizer_authors) for qa in gen.author(n_attributes)]
    configs: dict[str, list[dict]] = {"full": [qa for a in authors for qa in a]}
    for pct, retain in ((1, "retain99"), (5, "retain95"), (10, "retain90")):
        k = max(1, round(n_authors * pct / 100))
        forget = [qa for a in authors[-k:] for qa in a]
        configs[f"forget{pct:02d}"] = [{"question": x["question"], "answer": x["answer"]} for x in forget]
        configs[f"forget{pct:02d}_perturbed"] = forget
        configs[retain] = [{"question": x["question"], "answer": x["answer"]} for a in authors[:-k] for x in a]
    configs["full"] = [{"question": x["question"], "answer": x["answer"]} for x in configs["full"]]
    n_retain_eval = max(1, n_authors // 10)  # authors every retain split keeps
    configs["retain_perturbed"] = [qa for a in authors[:n_retain_eval] for qa in a]
    configs["real_authors_perturbed"], configs["world_facts_perturbed"] = real, world
    configs["real_authors"] = [{"question": x["question"], "answer": x["answer"]} for x in real]
    configs["world_facts"] = [{"question": x["question"], "answer": x["answer"]} for x in world]
    configs["background"] = [{"question": x["question"], "answer": x[key]} for x in other[:n_background * n_attributes]
                             for key in ("answer", "paraphrased_answer")]
    configs["tokenizer_corpus"] = [{"text": " ".join([x["question"], x["answer"], x["paraphrased_answer"]])}
                                   for x in other + real + world]
    return configs
