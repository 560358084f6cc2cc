"""TDEC's published files, read as the knowledge-unlearning repository (Jang et al. 2023) ships them.

Layout of a `--data-dir` (the repository's own, or its files flat):

    lm_extraction_32_{0..4}.csv  or  data/main/lm_extraction_32_{0..4}.csv   forget sets: doc_id, corpus, text
    validation_data/{wizard_of_wikipedia,empathetic_dialogues,blended_skill_talk,wizard_of_internet}.json
                                      pandas column-oriented JSON {"text": {"0": [turn, turn, ...], ...}}
    validation_data/pile.csv          doc_id, text, corpus (Pile validation documents)
    validation_data/lambada.csv       id, token_length, text, task
    validation_data/wikitext.csv      (unnamed index), text: 500 consecutive ~490-token windows from the start
                                      of WikiText-103 validation, the reference's perplexity text (suites/tdec.py
                                      reads it when the WikiText-103 exports are absent)

Every one of these files is checked against the SHA-256 published with it (pinned below, from the
repository at 732876dc), whether downloaded or read from a directory: a different file would give
numbers that are not TDEC's. The reference code's prompt construction is reproduced here; where the
harness departs from it, docs/suites.md says so and why.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from bench.errors import BenchError
from bench.store import publish

REPOSITORY = "https://raw.githubusercontent.com/joeljang/knowledge-unlearning/732876dc19a782c4440c3565cf9821df0a4c7ca0/"
FORGET_PATH = "data/main/lm_extraction_32_{i}.csv"
DIALOGUE_SETS = ("wizard_of_wikipedia", "empathetic_dialogues", "blended_skill_talk", "wizard_of_internet")

# the repository's files at 732876dc (byte-identical to `git show HEAD:<path>`)
PUBLISHED_SHA256 = {
    "data/main/lm_extraction_32_0.csv": "dfce9c8bb657761b5c24513f53f66b469db04a4629354a1b997bd72de4be33cf",
    "data/main/lm_extraction_32_1.csv": "c21fc0fce5e847dd32d39d59ca3b34f217a485e9e6cd12dfda5f95dd825c2e99",
    "data/main/lm_extraction_32_2.csv": "5f8208e9d200f597d41af1aec8b13df8601035c647e543f286fdf388a037f4aa",
    "data/main/lm_extraction_32_3.csv": "c70a83d4f77287d752cee6d78a21559457daa93fa540a661c4ffe3a4e7aaea73",
    "data/main/lm_extraction_32_4.csv": "21f50a98f4b82e53293c7f4cf3bd1a5029c89341da37aa639fc7f860ef19de90",
    "validation_data/pile.csv": "c5339507c8d8478f78f59a248f67d86b5e91e126d74949cdc8d8293e6a742b94",
    "validation_data/lambada.csv": "4059051c8cddaef9577f37dc0fb7399ecfdeac19712e831f09b9e75ca534ff27",
    "validation_data/wikitext.csv": "cb85284acc5ce7e23706d69fc75da183c591da5a207c25c66490659dd88fcb0f",
    "validation_data/blended_skill_talk.json": "60c938c0f2f2f15d00a962a2df2163a9ce2d1511a90baacc68cb713d3b686766",
    "validation_data/empathetic_dialogues.json": "337ebfe6171f8732f114ea618febde30bb05bf2fa3aff259f452c9c5bbac65de",
    "validation_data/wizard_of_wikipedia.json": "e8d2d3332fe6abf59a567fa4a6cc9d7d8bfbebf0d38291519ef7a3df0df2e978",
    "validation_data/wizard_of_internet.json": "8347706b3d7c33816c9b53851ec34e11015fa0632c067a69d44b4d754cc60bd9",
}


def sha256(path: Path) -> str:
    """SHA-256 hex digest of the file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verify(path: Path, published: str) -> Path:
    """`path` if its SHA-256 is the published one of the repository file `published`, else a one-line error."""
    expected, actual = PUBLISHED_SHA256[published], sha256(path)
    if actual != expected:
        raise BenchError(f"{path} is not the published {published}: SHA-256 {actual}, expected {expected} "
                         f"(replace it with the file from github.com/joeljang/knowledge-unlearning)")
    return path


def download(published: str, path: Path) -> Path:
    """The repository file `published`, downloaded once to `path` and verified on every read."""
    if path.exists():
        return verify(path, published)
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", ""):
        raise BenchError(f"{path.name} is not cached and this machine is offline (HF_HUB_OFFLINE); put the "
                         f"knowledge-unlearning files in a directory and pass --data-dir DIR")
    url, expected = REPOSITORY + published, PUBLISHED_SHA256[published]
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except OSError as e:
        raise BenchError(f"could not download {url} ({e}); put {path.name} in a directory and pass --data-dir DIR") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BenchError(f"downloaded {url} is not the published file: SHA-256 {actual}, expected {expected} (not kept)")
    return publish(path, lambda tmp: tmp.write_bytes(data))


def local_file(data_dir: str | Path, published: str, required: bool = True) -> Path | None:
    """`published` (a repository path) in `data_dir`, laid out as the repository or flat; verified."""
    root = Path(data_dir)
    candidates = [root / published, root / Path(published).name]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        if required:
            raise BenchError(f"missing data file {candidates[0]} (or {candidates[1]}): a TDEC data directory holds "
                             f"the knowledge-unlearning repository's data/main/ and validation_data/ files")
        return None
    return verify(found, published)


def _read_csv(path: Path, columns: tuple[str, ...]):
    # pandas loads when this runs, not when the CLI imports suites.tdec_data
    import pandas as pd

    try:
        # the reference reads its CSVs with lineterminator='\n': text cells keep their '\r'
        frame = pd.read_csv(path, lineterminator="\n")
    except (ValueError, pd.errors.ParserError) as e:
        raise BenchError(f"{path} is not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchError(f"{path} has no column {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))}; "
                         f"expected {', '.join(columns)})")
    return frame


def read_forget_csv(path: Path, what: str = "the forget set") -> list[str]:
    """The `text` cells of a forget set (doc_id, corpus, text), in file order, exactly as written."""
    frame = _read_csv(path, ("text",))
    texts = [t for t in frame["text"].dropna().astype(str) if t.strip()]
    if not texts:
        raise BenchError(f"{what} {path} is empty")
    return texts


def read_documents(path: Path) -> list[str]:
    """The `text` cells of pile.csv or wikitext.csv (one document each, line breaks kept), in file order."""
    return read_forget_csv(path, "the document file")


def read_lambada(path: Path) -> list[tuple[str, str]]:
    """(context, target) per passage as the reference splits it: the text up to its last space-separated
    word, and that word with its leading space."""
    frame = _read_csv(path, ("text",))
    out = []
    for text in frame["text"].dropna().astype(str):
        context, _, word = text.rpartition(" ")
        if context and word:
            out.append((context, " " + word))
    if not out:
        raise BenchError(f"{path} holds no passage")
    return out


def normalize_reply(text: str) -> str:
    """ParlAI's reply normalisation (version 2), as the reference applies it to every dialogue turn:
    lower case, punctuation attached to the preceding word, sentence starts and the pronoun I capitalised,
    a final period where the turn ends without closing punctuation."""
    pairs = ((" .", "."), (" ,", ","), (" ?", "?"), (" !", "!"), (" ' ", "'"))
    s = text.lower()
    for spaced, tight in pairs:  # detach punctuation so that words are tokens of their own
        s = s.replace(tight, spaced).replace("  ", " ")
    words = s.split(" ")
    for k, w in enumerate(words):
        if k == 0 or w in ("i", "i'm", "i've", "i'll", "i'd"):
            words[k] = w[:1].upper() + w[1:]
        elif w in "?.!" and k + 1 < len(words):  # a substring test, as ParlAI's: "" counts too
            words[k + 1] = words[k + 1][:1].upper() + words[k + 1][1:]
    s = " " + " ".join(words) + " "
    for spaced, tight in pairs:
        s = s.replace(spaced, tight)
    s = s.strip().replace("  ", " ")
    if s and s[-1] not in "!.?)\"'":
        s += "."
    return s


def dialogue_prompt(turns: list[str]) -> str:
    """`User 1: t0\\nUser 2: t1\\n...User k:` over normalised turns; k is the speaker of the next turn."""
    lines = [f"User {1 + k % 2}: {normalize_reply(t)}\n" for k, t in enumerate(turns)]
    return "".join(lines) + f"User {1 + len(turns) % 2}:"


def read_dialogues(path: Path) -> list[dict]:
    """Rows {context, response} of one dialogue set: every turn but the last as the prompt, the last
    (normalised) as the reference response. Dialogues of fewer than two turns have no prompt: skipped."""
    # pandas loads when this runs, not when the CLI imports suites.tdec_data
    import pandas as pd

    try:
        frame = pd.read_json(path)
    except ValueError as e:
        raise BenchError(f"{path} is not pandas column-oriented JSON ({str(e).splitlines()[0]}); expected "
                         '{"text": {"0": [turn, turn, ...], ...}}') from None
    if "text" not in frame.columns:
        raise BenchError(f"{path} has no 'text' column (columns: {', '.join(map(str, frame.columns))}); expected "
                         '{"text": {"0": [turn, turn, ...], ...}}')
    rows = []
    for turns in frame["text"].dropna():
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise BenchError(f"{path}: a 'text' cell is {type(turns).__name__}, expected a list of turns (strings)")
        if len(turns) >= 2:
            rows.append({"context": dialogue_prompt(turns[:-1]), "response": normalize_reply(turns[-1])})
    if not rows:
        raise BenchError(f"{path} holds no dialogue of two or more turns")
    return rows
