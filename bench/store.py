"""The result store: one directory per run, `results/<suite>/runs/<run-id>/run.json`.

Every write is atomic (temporary file in the same directory + fsync + rename), so a reader, or a
process killed mid-write, never sees half a file. A run is claimed with an exclusive flock on its
`lock` file, so two processes working through overlapping grids on one results directory compute
each run exactly once; the lock dies with its process, so a killed run can be claimed again.

Artefacts shared by the runs of a suite (reference models, generated data, stored evaluations, Fisher
tensors, thresholds) live under `results/<suite>/artefacts/` at paths named by a digest of everything
they are computed from, so an artefact that exists is the right one: `artefact` (a file or a directory)
and `json_artefact` read it if it exists, else compute it, write it to a temporary path and publish it by
one rename. A reader, or a process killed while writing, never sees a partial artefact.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, NamedTuple

from bench.errors import BenchError
from bench.spec import RunSpec, parse_run_id

SCHEMA_VERSION = 1


def _json_safe(obj: Any) -> Any:
    """NaN and inf are not JSON: store them as strings so a failed run's last numbers survive."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


_UMASK = os.umask(0)  # read once (os.umask can only be read by setting it), then restored
os.umask(_UMASK)


def home_of(run_dir: Path, record: dict | None) -> Path | None:
    """The directory `results/<suite>/runs/<run id>` of the run that `run_dir` (a directory of some suite's runs/)
    holds: the one its readable record names, or, where its record cannot be read, the run whose id begins its name
    (`X.bak`, `X-old`) in the same runs/; None where neither names a run. A run's own directory is its home."""
    named = (record or {}).get("run_id")
    if record is not None:
        suite = (record.get("spec") or {}).get("suite")
        if not isinstance(named, str) or parse_run_id(named) is None or not isinstance(suite, str):
            return None
        return run_dir.parent.parent.parent / suite / "runs" / named
    begins = _RUN_ID_PREFIX.match(run_dir.name)
    return run_dir.parent / begins.group(1) if begins and parse_run_id(begins.group(1)) else None


_RUN_ID_PREFIX = re.compile(r"(.+__s\d{1,10}__[0-9a-f]{10})")  # a run id (bench.spec.parse_run_id) and a suffix


def stray_reason(run_dir: Path, record: dict | None, error: str | None = None) -> str | None:
    """Why the directory `run_dir` of runs/ holds no run of its own, None when it does. A run lives in the directory
    its run id names (bench.spec.parse_run_id) under its suite: a directory of another name belongs to no run, and
    a readable record naming another run, another suite, or another spec than its directory's name, is a copy
    (`X.bak`, a moved or edited directory), which would count that run twice. A directory of a run's name whose
    record is damaged (`error`) or not written yet is that run's. Where a copy's run has no directory of its own
    (`home_of`), the line gives the `mv` that puts it back."""
    said, named = parse_run_id(run_dir.name), (record or {}).get("run_id")
    home = home_of(run_dir, record)
    if home is not None and home != run_dir and not home.exists():  # moved away: the run counts as absent
        holds = (f"its run.json is run {named}'s" if record is not None else
                 f"its name begins with run {home.name}'s id{f' and its run.json is damaged ({error})' if error else ''}")
        return (f"{run_dir}: not counted, {holds}, whose own directory is absent: `mv {run_dir} {home}` puts it back "
                f"(its row counts it as absent; the next `run` starts it anew)")
    if record is not None and named != run_dir.name:
        return (f"{run_dir}: not counted, its run.json is run {named}'s, which counts only in the directory of its "
                f"run id (a copy, or a renamed directory to move back)")
    if record is not None and record["spec"]["suite"] != run_dir.parent.parent.name:  # results/<suite>/runs/<run id>
        return f"{run_dir}: not counted, its run.json is a run of suite {record['spec']['suite']}"
    if said is None:
        return f"{run_dir}: not counted, its name is no run id"
    spec_hash = (record or {}).get("spec_hash")
    if isinstance(spec_hash, str) and not spec_hash.startswith(said["hash"]):  # a copy with its run id edited
        return f"{run_dir}: not counted, its run.json's spec is not the one its run id names (an edited copy?)"
    return None


def suite_dir_hint(path: Path, suite: str | None, flag: str, suites: Collection[str] = ()) -> str:
    """A hint where `path` is a suite's own directory (it holds runs/, or, as in a fresh clone, is named after a suite
    and holds that suite's committed reports) or its runs/ directory, given for the results directory that holds it;
    "" otherwise. `suites`: the names of the suites there are. Its runs' records say which suite it is (its name may
    be a copy's)."""
    path = Path(path)
    if path.name == "runs" and path.parent.name in suites and any(parse_run_id(d.name) for d in path.iterdir()
                                                                  if d.is_dir()):
        return f" ({path} looks like a suite's runs/ directory: pass the results directory that holds it, {flag} " \
               f"{path.parent.parent})"
    reports = path.name in suites and ((path / "sequential.json").is_file() or (path / "claims.md").is_file())
    if not ((path / "runs").is_dir() or reports) or (suite and (path / suite).is_dir()):
        return ""
    suites = Counter(r["spec"]["suite"] for r in map(_readable, (path / "runs").glob("*/run.json")) if r)
    owner = suites.most_common(1)[0][0] if suites else suite or path.name  # most runs' suite: a stray may differ
    if suite and owner != suite:
        return f" ({path} looks like the directory of suite {owner}'s runs, not {suite}'s)"
    if owner == path.name:
        return f" ({path} looks like a suite directory: pass the results directory that holds it, {flag} {path.parent})"
    return (f" ({path} looks like a suite directory: pass a results directory holding it under the name {owner}/, "
            f"as `bench run --results DIR` writes it)")


def _readable(path: Path) -> dict | None:
    """The run record at `path`, None where it cannot be read as one."""
    try:
        record = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return None if record_problem(record) else record


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as JSON to `path` (parents created) by a temporary file in the same directory, fsync and
    one rename: readers see the old file or the new one, never part of one. NaN / inf become strings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_json_safe(obj), f, indent=1, sort_keys=False, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from a group sharing the directory
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    """The JSON value stored at `path` (OSError if it cannot be read, json.JSONDecodeError if it is not JSON)."""
    with open(path) as f:
        return json.load(f)


def publish(path: Path, write: Callable[[Path], None]) -> Path:
    """Make the artefact `write(tmp)` writes (a file or a directory at `tmp`) visible at `path` by one rename.

    `tmp` lies in a hidden staging directory beside `path` (same file system), removed afterwards whatever
    happens; a process killed mid-write leaves only that staging directory, never a partial `path`. A
    directory that another process published first is kept and ours discarded (artefact paths are
    content-addressed: theirs holds the same); a file replaces the one there. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        tmp = staging / path.name
        write(tmp)
        try:
            os.replace(tmp, path)
        except OSError:
            if not (tmp.is_dir() and path.is_dir()):
                raise
            # another process won the race to publish this directory: keep theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def publish_once(path: Path, write: Callable[[Path], None]) -> Path:
    """`publish(path, write)` by rank 0 alone under torchrun (every rank holds the same weights after DDP: one
    copy is written, not one per rank); every rank returns once `path` is there. Outside torchrun: `publish`.
    Raises RankLost when rank 0 does not get there within BENCH_DIST_TIMEOUT."""
    from bench import distributed

    if distributed.is_main():
        publish(path, write)
    distributed.share(None)  # the other ranks read `path` only after rank 0 has published it
    return Path(path)


def artefact(path: Path, write: Callable[[Path], None], ready: str | None = None) -> Path:
    """`path` if the artefact is there, else built by `write(tmp)` and published (`publish`).

    `ready`: for a directory, the file inside it whose presence says it is complete (e.g. `config.json`
    of a saved model); None: `path` itself. Returns `path`."""
    path = Path(path)
    if not (path / ready if ready else path).exists():
        publish(path, write)
    return path


def json_artefact(path: Path, compute: Callable[[], Any]) -> Any:
    """The JSON value stored at `path`, else `compute()`, stored there atomically (`write_json_atomic`) and
    returned as computed (NaN stays a float here; the stored copy reads it back as the string 'nan')."""
    path = Path(path)
    if path.exists():
        return read_json(path)
    value = compute()
    write_json_atomic(path, value)
    return value


class CorruptRun(Exception):
    """A run.json that cannot be read as a run record (truncated, not JSON, another shape: `record_problem`); the
    message names the file. Reported per run (`bench status`, the report), never fatal to a grid."""


@dataclass
class Run:
    """A claimed run: its directory and its record, saved atomically on every change.

    `existed`: it had a run.json when claimed. `writes`: False on the ranks of a distributed run other
    than rank 0, which train alongside it but leave the store to it (bench/distributed.py)."""

    dir: Path
    record: dict
    existed: bool = True
    writes: bool = True

    @property
    def status(self) -> str:
        """pending | running | finished | failed (RUN_STATUSES), as the record says ("missing" without one)."""
        return self.record.get("status", "missing")

    def save(self) -> None:
        """Write the record to `<dir>/run.json` atomically with its `updated_at` (seconds since the epoch)."""
        if not self.writes:
            return
        self.record["updated_at"] = time.time()
        write_json_atomic(self.dir / "run.json", self.record)


class Absent(NamedTuple):
    """A run whose directory is gone, held by a copy (`ResultStore.absent`)."""
    copy: Path  # the directory holding it
    record: dict | None  # the copy's record, None where it cannot be read
    home: Path  # where the run belongs: `mv copy home` puts it back


class ResultStore:
    """The results directory `root`: `<suite>/runs/<run-id>/` per run, `<suite>/artefacts/` shared by a suite's
    runs. Nothing is written until a run is claimed or an artefact built."""

    def __init__(self, root: str | os.PathLike = "results"):
        self.root = Path(root)

    def suite_dir(self, suite: str) -> Path:
        """`<root>/<suite>`: the suite's runs, artefacts, reports and grid timings."""
        return self.root / suite

    def run_dir(self, spec: RunSpec) -> Path:
        """`<root>/<suite>/runs/<run-id>`: where `spec`'s run.json, items and checkpoints live."""
        return self.suite_dir(spec.suite) / "runs" / spec.run_id

    def artefact_dir(self, suite: str) -> Path:
        """Reference models, Fisher tensors, thresholds: shared by every run of a suite."""
        return self.suite_dir(suite) / "artefacts"

    def check_writable(self) -> None:
        """Fail before any work starts, not after hours of training."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".probe.")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:  # a file on the way reads as "File exists" or "Not a directory": say which
            file = next((p for p in (self.root, *self.root.parents) if p.exists() and not p.is_dir()), None)
            why = f"'{file}' is not a directory" if file else e.strerror
            raise BenchError(f"results directory '{self.root}' is not writable ({why}); "
                             "choose another with --results DIR") from None

    def load(self, run_dir: Path) -> dict | None:
        """The run's record, None if it has none yet; CorruptRun if run.json cannot be read."""
        path = Path(run_dir) / "run.json"
        if not path.exists():
            return None
        try:
            record = read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
            raise CorruptRun(f"{path}: {e}") from None
        problem = record_problem(record)
        if problem:
            raise CorruptRun(f"{path}: not a run record ({problem})")
        return record

    def reason(self, spec: RunSpec) -> str | None:
        """Why `spec`'s run failed, as its record says."""
        try:
            return (self.load(self.run_dir(spec)) or {}).get("reason")
        except CorruptRun as e:
            return str(e)

    def status(self, spec: RunSpec) -> str:
        """`spec`'s run status as its record says; "missing" without a record, "corrupt" if it cannot be read."""
        try:
            record = self.load(self.run_dir(spec))
        except CorruptRun:
            return "corrupt"
        return record["status"] if record else "missing"

    def iter_records(self, suite: str | None = None) -> Iterator[tuple[Path, dict | None, str | None]]:
        """(run dir, record or None, error or None) for every run directory, sorted; a directory of runs/ that is no
        run's (`stray_reason`: a copy, a name of another shape) is left out, and `strays` names it."""
        for d, record, error in self._entries(suite):
            if stray_reason(d, record) is None:
                yield d, record, error

    def strays(self, suite: str | None = None) -> list[str]:
        """`stray_reason` of every directory of runs/ that `iter_records` leaves out, sorted."""
        return [why for d, record, error in self._entries(suite) if (why := stray_reason(d, record, error))]

    def absent(self, suite: str) -> dict[str, Absent]:
        """Runs of `suite` whose own directory is gone while a stray holds them (`mv X X.bak`, a move into another
        suite's runs/, a damaged copy whose name begins with the run id; `home_of`): run id -> the first such copy.
        Their rows count them as runs not present, status `absent`, so that a directory moved away never leaves its
        row looking complete."""
        out: dict[str, Absent] = {}
        for d, record, _ in self._entries(None):  # every suite's runs/: a run may have been moved into another's
            home = home_of(d, record)
            if home is not None and home != d and home.parent.parent.name == suite and not home.exists():
                out.setdefault(home.name, Absent(d, record, home))
        return out

    def _entries(self, suite: str | None) -> Iterator[tuple[Path, dict | None, str | None]]:
        suites = [suite] if suite else sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        for s in suites:
            runs = self.suite_dir(s) / "runs"
            if not runs.is_dir():
                continue
            for d in sorted(runs.iterdir()):
                if not d.is_dir():
                    continue
                try:
                    yield d, self.load(d), None
                except CorruptRun as e:
                    yield d, None, str(e)

    @contextmanager
    def claim(self, spec: RunSpec) -> Iterator[Run | None]:
        """Yield the run under an exclusive lock, or None if another process holds it."""
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            try:
                try:
                    record = self.load(d)
                except CorruptRun:
                    record = None  # we hold the lock: a corrupt record is recomputed
                yield Run(d, record or new_record(spec), existed=record is not None)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def is_claimed(run_dir: Path) -> bool:
        """Whether a live process holds the run's lock (a record says `running` also after a kill)."""
        lock_file = Path(run_dir) / "lock"
        if not lock_file.exists():
            return False
        with open(lock_file, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False

    def discard(self, run: Run) -> None:
        """Remove a run that never had a record (a bad input stopped it before it started), and the
        suite's `runs/` and suite directories if that leaves them empty: a failed start leaves nothing."""
        shutil.rmtree(run.dir, ignore_errors=True)
        for parent in (run.dir.parent, run.dir.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                return  # other runs or artefacts live there


# what every reader of a record (status, tables, claims, resumption) relies on, as new_record writes it
SPEC_KEYS = ("suite", "model", "split", "objective", "adapter", "rank", "seed", "hparams")
RUN_STATUSES = ("pending", "running", "finished", "failed")  # what the runner writes into a record
# the settings of a run whose record cannot be read and whose directory name matches no readable run's spec
# (bench.runs._with_owners): a table row of its own, never pooled with another
UNKNOWN_SETTINGS = "unknown: no readable record"


def record_problem(record: Any) -> str:
    """What makes `record` no run record ("" when nothing): valid JSON of another shape (a run.json edited by hand,
    written by another program) is corrupt as much as truncated text, and named as such rather than failing a
    reader with a KeyError."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    spec = record.get("spec")
    if not isinstance(spec, dict):
        return "no spec object"
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        return f"its spec lacks {', '.join(missing)}"
    if not isinstance(spec["hparams"], dict) or not all(isinstance(spec["hparams"].get(k), (int, float))
                                                         for k in ("lr", "epochs")):
        return "its spec's hparams is no object with a numeric lr and epochs"
    wrong = [k for k, kind in (("rank", int), ("seed", int)) if not isinstance(spec[k], kind) or isinstance(spec[k], bool)]
    wrong += [k for k in ("suite", "model", "split", "objective", "adapter") if not isinstance(spec[k], str)]
    if wrong:
        return f"its spec's {', '.join(wrong)} {'has' if len(wrong) == 1 else 'have'} the wrong type"
    for key, kind in (("run_id", str), ("status", str), ("epochs", list)):
        if not isinstance(record.get(key), kind):
            return f"{key} is {'missing' if key not in record else type(record[key]).__name__}, not a {kind.__name__}"
    if record["status"] not in RUN_STATUSES:
        return f"status {record['status']!r} is none of {', '.join(RUN_STATUSES)}"
    if not all(isinstance(e, dict) and isinstance(e.get("epoch", 0), int) and isinstance(e.get("metrics", {}), dict)
               for e in record["epochs"]):
        return "an epoch entry is no object with an integer epoch and a metrics object"
    if record["status"] == "finished" and not any(e.get("metrics") for e in record["epochs"]):
        return "it is finished with no epoch's metrics"  # a table would read it as a run that measured nothing
    for key in ("timings", "suite_records", "final_metrics", "parameters", "inputs", "environment"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key} is a {type(record[key]).__name__}, not an object"
    return ""


def new_record(spec: RunSpec) -> dict:
    """The record of a run not started yet (status pending, no epochs), in schema SCHEMA_VERSION."""
    return {
        "schema": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "spec_hash": spec.hash,
        "spec": spec.to_dict(),
        "status": "pending",
        "reason": None,
        "epochs": [],
    }
