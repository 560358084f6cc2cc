"""TOFU's data files (locuslab/TOFU, one file per configuration), read and schema-checked in one place.

A local `<config>.json` may be what the hub's own export writes or what copies in the wild hold:
- JSON Lines (one object per line: the hub's form and `to_json(lines=True)`),
- one JSON array of objects (`to_json(lines=False)` of pandas),
- several JSON arrays one after another (`datasets`' `to_json(lines=False)` writes one per batch of
  1,000 rows: the file is not valid JSON, but its values follow each other and are read in order).
Rows must carry the hub's keys. A file with other keys is refused, naming the file, the row and the
keys it has and needs, before any model runs; so is a file that is not JSON, naming the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.errors import BenchError

QA = ("question", "answer")
PERTURBED = ("question", "answer", "paraphrased_answer", "perturbed_answer")
OTHER_PERTURBED = ("question", "answer", "perturbed_answer")  # real authors, world facts: base = answer
# known renamings in circulating copies, and what they stand for
RENAMED = {"prompt": "question", "response": "answer"}


def required_keys(config: str) -> tuple[str, ...]:
    """The keys every row of `config` needs for what the harness computes from it."""
    if config in ("real_authors_perturbed", "world_facts_perturbed"):
        return OTHER_PERTURBED
    if config.endswith("_perturbed"):
        return PERTURBED
    return QA


def parse_json_values(text: str, path: Path) -> list:
    """Every top-level JSON value of `text` in order: one array, JSON Lines, or arrays one after another."""
    decoder, values, pos = json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return values
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise BenchError(f"{path} is not JSON (line {e.lineno}, column {e.colno}: {e.msg}); expected JSON Lines "
                             f"of TOFU rows as the hub exports them") from None
        values.append(value)


def rows_of(values: list, path: Path) -> list[dict]:
    """Flatten JSON values read from `path` (an object or a list of objects each) into one list of rows.

    Raises BenchError naming the file and the first row that is not a JSON object.
    """
    rows: list = []
    for value in values:
        rows += value if isinstance(value, list) else [value]
    bad = next((k for k, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise BenchError(f"{path}: row {bad} is a JSON {type(rows[bad]).__name__}, expected an object with keys "
                         f"question, answer, ...")
    return rows


def check_rows(rows: list[dict], config: str, where: str) -> list[dict]:
    """`rows` if each has `config`'s keys with the right types (and one number of perturbed answers)."""
    if not rows:
        raise BenchError(f"{where} holds no rows")
    need = required_keys(config)
    for k, row in enumerate(rows):
        missing = [key for key in need if key not in row]
        if missing:
            renamed = [key for key in row if RENAMED.get(key) in missing]
            hint = (f"; {', '.join(renamed)} are a re-export's names for {', '.join(RENAMED[key] for key in renamed)}: use "
                    f"the hub's file (locuslab/TOFU) or rename {', '.join(f'{key} -> {RENAMED[key]}' for key in renamed)}"
                    if renamed else "")
            raise BenchError(f"{where}: row {k} lacks {', '.join(missing)} (it has {', '.join(map(str, row)) or 'no key'}; "
                             f"{config} needs {', '.join(need)}){hint}")
        for key in need:
            value = row[key]
            ok = (isinstance(value, list) and value and all(isinstance(v, str) for v in value)) \
                if key == "perturbed_answer" else isinstance(value, str)
            if not ok:
                expected = "a non-empty list of strings" if key == "perturbed_answer" else "a string"
                raise BenchError(f"{where}: row {k} has {key} = {str(value)[:40]!r}, expected {expected}")
    if "perturbed_answer" in need:
        counts = sorted({len(r["perturbed_answer"]) for r in rows})
        if len(counts) > 1:
            raise BenchError(f"{where}: rows carry {' or '.join(map(str, counts))} perturbed answers; the truth ratio "
                             f"needs one number per set")
    return rows


def read_config_file(path: Path, config: str) -> list[dict]:
    """The rows of a local TOFU file, checked against `config`'s schema."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BenchError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return check_rows(rows_of(parse_json_values(text, Path(path)), Path(path)), config, str(path))
