"""Cache keys that cannot go stale: fingerprints of what a cached artefact was computed from.

A cached evaluation, threshold or Fisher tensor is keyed by the content of its inputs, never by a
path: the model's weights (a SHA-256 of its weight and config files, computed once and recorded in the
user's cache, `record_path`, recomputed when a file's size or modification time changes), all the
data it read, its options, and the source code of the modules that computed it (so an evaluator
change invalidates old numbers without anyone remembering to bump a version).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.models import is_local, resolve, split_named
from bench.store import read_json, write_json_atomic

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
CONFIG_FILES = ("config.json", "generation_config.json", "adapter_config.json")
# what a tokenizer reads besides `tokenizer*` files (transformers' names; sentencepiece's models): a changed
# vocabulary, special token or chat template changes every prompt a run scores
TOKENIZER_FILES = ("special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
                   "spiece.model", "sentencepiece.bpe.model", "chat_template.json")
CHAT_TEMPLATES = "additional_chat_templates"  # transformers 5: one .jinja file per named template


def model_files(directory: Path, tokenizer: bool = True) -> list[Path]:
    """The files of a model directory its fingerprint covers, sorted: weights (WEIGHT_SUFFIXES), configuration
    (CONFIG_FILES) and, with `tokenizer`, everything the tokenizer reads (`tokenizer*`, TOKENIZER_FILES, chat
    templates)."""
    def counted(p: Path) -> bool:
        return p.suffix in WEIGHT_SUFFIXES or p.name in CONFIG_FILES or tokenizer and (
            p.name in TOKENIZER_FILES or p.name.startswith("tokenizer") or p.suffix == ".jinja")

    files = [p for p in directory.iterdir() if p.is_file() and counted(p)]
    templates = directory / CHAT_TEMPLATES
    if tokenizer and templates.is_dir():
        files += [p for p in templates.iterdir() if p.is_file()]
    return sorted(files)


def record_path(directory: Path, tokenizer: bool = True) -> Path:
    """Where `model_fingerprint` records a model directory's SHA-256: <cache>/fingerprints/<digest of its real
    path>.json, <cache> = $UNLEARNING_BENCH_CACHE, else $XDG_CACHE_HOME/unlearning-bench, else
    ~/.cache/unlearning-bench. Never inside the model directory: it may be the user's own, or a snapshot of the hub
    cache, which must hold only what the hub wrote."""
    root = os.environ.get("UNLEARNING_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "unlearning-bench")
    key = hashlib.sha256(os.path.realpath(directory).encode()).hexdigest()[:32]
    return Path(root) / "fingerprints" / f"{key}{'' if tokenizer else '-weights'}.json"


def _sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(name_or_path: str, tokenizer: bool = True) -> str:
    """SHA-256 over a local model directory's weight, config and tokenizer files (`model_files`); for a hub id, the
    id and the revision it resolves to (a hub snapshot is immutable once its commit is fixed). `tokenizer=False`: the
    weights and config alone, the definition before 2026-12-03, which base models' records of that time hold."""
    directory = Path(name_or_path)
    if not directory.is_dir():
        source, revision = resolve(name_or_path)
        return digest(["hub", source, revision or "main"])
    files = model_files(directory, tokenizer)
    stamp = [[str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    real = os.path.realpath(directory)
    memo = (real, tokenizer, json.dumps(stamp))
    if memo in _MODEL_HASHES:  # without a writable cache, a directory is still hashed once per process, not per check
        return _MODEL_HASHES[memo]
    record = record_path(directory, tokenizer)
    try:
        stored = read_json(record)
        if stored.get("directory") == real and stored.get("files") == stamp:
            return stored["sha256"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # no record, or an unreadable one: recompute it
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(directory)).encode())
        h.update(_sha256_file(p).encode())
    value = _MODEL_HASHES[memo] = h.hexdigest()
    try:
        write_json_atomic(record, {"directory": real, "sha256": value, "files": stamp})
    except OSError:
        pass  # a read-only cache: the process memo above still spares a second hash
    return value


_FILE_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> SHA-256, per process
_MODEL_HASHES: dict[tuple[str, bool, str], str] = {}  # (directory, tokenizer, its files' stamps) -> model_fingerprint


def base_record(base: str) -> dict | None:
    """{path, fingerprint, covers} of a fine-tune's base model when it is a local directory (`NAME=DIR`'s DIR too), for
    the fine-tuned model's recipe.json; None for a hub id, whose revision is pinned. `covers` says the fingerprint
    includes the tokenizer: a record without it was written under the weights-only definition."""
    path = split_named(base)[1]
    return {"path": path, "fingerprint": model_fingerprint(path), "covers": "weights, config, tokenizer"} \
        if is_local(path) else None


def check_fine_tune(out: Path, split: str, data: dict[str, str]) -> None:
    """Raises BenchError when the model a suite fine-tuned at `out` was trained, as its recipe.json records, on other
    data than `data` (the fingerprints of the files it would read now) or from a local base model whose weights have
    changed since (another checkpoint saved at the same path): such a model is never reused."""
    recipe = read_json(out / "recipe.json") if (out / "recipe.json").exists() else {}
    if recipe.get("data") and not data:  # local files then, the hub's data now: the model may well be right
        raise BenchError(f"the {split} model at {out} was fine-tuned on local data files ({', '.join(recipe['data'])}) "
                         f"and this command reads the hub's data; pass --data-dir with the directory it was "
                         f"fine-tuned on")
    if recipe.get("data") is not None and recipe["data"] != data:
        raise BenchError(f"the {split} model at {out} was fine-tuned on other data than the data directory holds now; "
                         f"delete that directory to fine-tune it again on the current data")
    base = recipe.get("base")  # base_record's; a hub id's revision is pinned
    # compared under the definition the record was written with: a reference of before 2026-12-03 stays valid
    if base and is_local(base["path"]) and model_fingerprint(base["path"], "covers" in base) != base["fingerprint"]:
        raise BenchError(f"the {split} model at {out} was fine-tuned from other weights than {base['path']} holds now; "
                         f"delete that directory to fine-tune it again from them")


def file_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of one data file ("missing" if there is none), hashed once per process while its size
    and modification time stay the same, so checking a grid's runs reads each file once."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = _sha256_file(path)
    return _FILE_HASHES[key]


def code_fingerprint(*modules: str) -> str:
    """SHA-256 of the source files of `modules` (dotted names), found without running them: `bench status` compares
    finished runs' evaluator code with this checkout's without importing torch. ModuleNotFoundError for a name that
    is no module."""
    h = hashlib.sha256()
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except ValueError:  # a loaded module without a spec: `__main__` of a script that registers an objective
            spec = None
        origin = spec.origin if spec is not None else getattr(sys.modules.get(name), "__file__", None)
        if not origin or not Path(origin).is_file():
            raise ModuleNotFoundError(f"no module named {name!r} with a source file", name=name)
        h.update(name.encode())
        h.update(_source(Path(origin)))
    return h.hexdigest()


def _source(path: Path) -> bytes:
    """A source file's bytes, read once per process while its size and modification time stay (`bench status`
    compares hundreds of runs' code against the same few files)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SOURCES:
        _SOURCES[key] = path.read_bytes()
    return _SOURCES[key]


_SOURCES: dict[tuple[str, int, int], bytes] = {}


# modules of this project that compute none of a run's numbers, and why: `code_closure` neither fingerprints them
# nor follows their imports (else every edit of the CLI's plumbing would recompute every finished run)
NOT_COMPUTING = {
    "bench": "the package", "bench.errors": "error messages", "bench.phases": "timings", "bench.registry": "name lookups",
    "bench.spec": "run specs: the run id covers them", "bench.store": "result storage", "bench.fingerprint": "cache keys",
    "bench.settings": "setting declarations: the spec holds the values", "bench.metrics": "metric definitions for tables",
    "bench.environment": "the machine's description", "bench.plugins": "plug-in loading",
    "suites": "the suites' registry", "suites.base": "the suite interface: options are in the spec",
    "methods": "the methods' registry", "bench.tiny": "the mini suites' models: their artefacts' digests name it",
    "suites.tofu_mini_data": "a generator: its data files are fingerprinted",
    "suites.tdec_mini_data": "a generator: its data files are fingerprinted",
    "suites.muse_mini_data": "a generator: its data files are fingerprinted",
    "suites.tofu_report": "tables", "suites.tdec_report": "tables", "suites.muse_report": "tables",
    "bench.tables": "tables", "bench.plots": "figures",
}
_LIBRARIES = tuple({os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")})


def _origin(name: str) -> str | None:
    """The source file of module `name`, None for a library's (the standard library, site-packages), a built-in one
    or a name that is no module."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py") or os.path.realpath(origin).startswith(_LIBRARIES):
        return None
    return origin


@functools.lru_cache(maxsize=None)
def code_closure(*modules: str) -> tuple[str, ...]:
    """`modules` and every module of this project or a plug-in that they import, transitively (function-level and
    relative imports included, found in the source without running it), except NOT_COMPUTING and libraries: what
    `code_fingerprint` must cover for the numbers `modules` compute. Sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        origin = _origin(name)
        if name in seen or origin is None or name in NOT_COMPUTING and name not in modules:
            continue
        seen.add(name)
        package = name if origin.endswith("__init__.py") else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(_source(Path(origin)))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                    else node.module
                todo += [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
    return tuple(sorted(seen))


def digest(obj: Any, length: int = 16) -> str:
    """A short SHA-256 of any JSON-serialisable object (sorted keys): data, options, recipes."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]
