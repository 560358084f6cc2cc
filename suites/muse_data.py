"""MUSE's data (Shi et al. 2024; hub datasets muse-bench/MUSE-News and muse-bench/MUSE-Books), read and
schema-checked in one place.

Each corpus has configs, each with named splits (the hub's dataset cards, checked 2026-11):

| config | splits | columns |
|---|---|---|
| raw | forget, retain1, retain2, holdout | text |
| verbmem | forget | prompt, gt |
| knowmem | forget_qa, forget_qa_icl, retain_qa, retain_qa_icl | question, answer |
| privleak | forget, retain, holdout | text |
| scal | forget_1 .. forget_4 (each contains the one before) | text |
| sust | forget_1 .. forget_4 (successive, disjoint requests) | text |

From the hub: `datasets.load_dataset(<hub id>, <config>, split=<split>)`. Offline: `--data-dir DIR` holding
the same files per corpus under `DIR/MUSE-News/` and `DIR/MUSE-Books/` (or DIR itself when it is named
so), laid out as the hub repository (`<config>/<split>-00000-of-00001.parquet`: what `huggingface-cli
download muse-bench/MUSE-News --repo-type dataset --local-dir DIR/MUSE-News` writes) or as exports
(`<config>/<split>.parquet`, `.jsonl` or `.json`: `load_dataset(...).to_json(...)` / `.to_parquet(...)`).
A file whose rows lack the config's columns is refused naming the file, the row and the columns.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError, unknown
from suites.tofu_data import parse_json_values, rows_of

HUB = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
FOLDER = {corpus: hub.split("/")[1] for corpus, hub in HUB.items()}  # MUSE-News, MUSE-Books
COLUMNS = {"raw": ("text",), "verbmem": ("prompt", "gt"), "knowmem": ("question", "answer"),
           "privleak": ("text",), "scal": ("text",), "sust": ("text",)}
SPLITS = {"raw": ("forget", "retain1", "retain2", "holdout"), "verbmem": ("forget",),
          "knowmem": ("forget_qa", "forget_qa_icl", "retain_qa", "retain_qa_icl"),
          "privleak": ("forget", "retain", "holdout"),
          "scal": tuple(f"forget_{k}" for k in range(1, 5)), "sust": tuple(f"forget_{k}" for k in range(1, 5))}
SUFFIXES = (".parquet", ".jsonl", ".json")


def check_source(corpus: str, config: str, split: str) -> None:
    """Raises BenchError (did-you-mean) for a corpus, config or split MUSE does not have."""
    if corpus not in HUB:
        raise unknown("MUSE corpus", corpus, tuple(HUB))
    if config not in SPLITS:
        raise unknown("MUSE config", config, tuple(SPLITS))
    if split not in SPLITS[config]:
        raise unknown(f"split of MUSE config {config}", split, SPLITS[config])


def corpus_dir(data_dir: str | Path, corpus: str) -> Path:
    """Where `corpus`'s files are in `data_dir`: `DIR/MUSE-News` (or `DIR` itself when it is named so)."""
    root = Path(data_dir)
    return root if root.name == FOLDER[corpus] else root / FOLDER[corpus]


def local_files(data_dir: str | Path, corpus: str, config: str, split: str) -> list[Path]:
    """The local files holding (corpus, config, split), in row order: the hub's parquet shards
    (`<split>-NNNNN-of-NNNNN.parquet`) or one export (`<split>.parquet|.jsonl|.json`). [] when none is there."""
    folder = corpus_dir(data_dir, corpus) / config
    shards = sorted(folder.glob(f"{split}-[0-9]*-of-[0-9]*.parquet"))
    if shards:
        return shards
    return [p for p in (folder / f"{split}{s}" for s in SUFFIXES) if p.is_file()][:1]


def expected_path(data_dir: str | Path, corpus: str, config: str, split: str) -> Path:
    """The hub layout's file for (corpus, config, split) under `data_dir`: what an error names as missing."""
    return corpus_dir(data_dir, corpus) / config / f"{split}-00000-of-00001.parquet"


def check_rows(rows: list, config: str, where: str) -> list[dict]:
    """`rows` when each is an object whose `config` columns are strings. BenchError names the first bad row."""
    if not rows:
        raise BenchError(f"{where} holds no rows")
    need = COLUMNS[config]
    for k, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BenchError(f"{where}: row {k} is a {type(row).__name__}, expected an object with {', '.join(need)}")
        missing = [c for c in need if c not in row]
        if missing:
            raise BenchError(f"{where}: row {k} lacks {', '.join(missing)} (it has {', '.join(map(str, row)) or 'no key'}; "
                             f"MUSE {config} rows need {', '.join(need)})")
        bad = next((c for c in need if not isinstance(row[c], str)), None)
        if bad is not None:
            raise BenchError(f"{where}: row {k} has {bad} = {str(row[bad])[:40]!r}, expected a string")
    return [{c: row[c] for c in need} for row in rows]


def read_file(path: Path) -> list:
    """The rows of one local file: parquet (pandas), JSON Lines or JSON arrays (suites/tofu_data.py's reader)."""
    if path.suffix == ".parquet":
        # pandas loads when this runs, not when the CLI imports suites.muse_data
        import pandas as pd

        try:
            return pd.read_parquet(path).to_dict("records")
        except Exception as e:  # pyarrow raises several types for a file that is not parquet
            raise BenchError(f"{path} is not a readable parquet file ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BenchError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return rows_of(parse_json_values(text, path), path)


def load_rows(corpus: str, config: str, split: str, data_dir: str | None) -> list[dict]:
    """The rows of (corpus, config, split), schema-checked: from `data_dir` when given, else from the hub.

    Raises BenchError for an unknown corpus / config / split, a missing or malformed local file, or a hub
    that cannot be read (naming --data-dir)."""
    check_source(corpus, config, split)
    if data_dir:
        files = local_files(data_dir, corpus, config, split)
        if not files:
            raise BenchError(f"missing data file {expected_path(data_dir, corpus, config, split)} (or {split}.parquet / "
                             f".jsonl / .json beside it): a MUSE data directory holds the hub's {HUB[corpus]} files "
                             f"under {FOLDER[corpus]}/<config>/ (docs/suites.md, MUSE)")
        rows: list = []
        for path in files:
            rows += read_file(path)
        return check_rows(rows, config, str(files[0]) if len(files) == 1 else f"{files[0].parent}/{split}-*.parquet")
    # datasets loads when this runs, not when the CLI imports suites.muse_data
    from datasets import load_dataset

    try:
        rows = list(load_dataset(HUB[corpus], config, split=split))
    except Exception as e:  # datasets raises many types when offline and uncached
        raise BenchError(f"could not load {HUB[corpus]} {config}/{split} ({type(e).__name__}); download the dataset "
                         f"elsewhere and pass --data-dir DIR holding {FOLDER[corpus]}/{config}/{split}-00000-of-00001.parquet "
                         f"(docs/suites.md, MUSE)") from None
    return check_rows(rows, config, f"{HUB[corpus]} {config}/{split}")
