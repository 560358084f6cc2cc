"""Adding replicates until the claims are decided, at a stated family-wise level.

`bench run ... --until-decided [--max-seeds N]` runs the grid, evaluates the suite's claims, adds
replicates to the methods of every comparison still inconclusive (where forget splits are replicates, the
suite's splits the grid left out, in one look; then one seed at a time), and repeats until every
comparison is decided or the methods have N seeds. Each evaluation is a *look*; the plan in
results/<suite>/sequential.json records, per comparison, the replicate count and level of each look and
the verdict once decided, so a later `bench report` neither looks again at the same data for free nor
re-decides a settled comparison.

Levels: a comparison of a claim with k comparisons has alpha_c = 0.05 / k (Bonferroni); its look at n
matched replicates after a look at n' spends alpha_c (n - n') / n_max (bench.decide.spent_level), n_max
= the cap of matched replicates (max seeds x splits x models, counting the splits the loop may add). The spent shares sum to at most alpha_c,
so the chance that any look of any comparison of the claim errs stays below 0.05 (union bound).

Only the suite's own claims file (suites/claims/<family>.yaml) looks through the plan: a claims file given with
`bench report --claims FILE` is a fixed-sample analysis at the full level and leaves the plan as it is.
A comparison's key names everything that fixes its family and level (bench.claims.comparison_key); plans
written before the key named `among` and the claim's comparison count (no `version`) keep their looks: each
old entry is adopted by the comparison its old key names when its recorded levels were spent at that
comparison's alpha (`Plan.adopt`), and stays under `legacy` otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from pathlib import Path

from bench.decide import CLAIM_NEEDED, EPOCHS_NEEDED, PLAN_NEEDED, RUNS_NEEDED, SETTINGS_NEEDED, spent_level
from bench.errors import BenchError
from bench.store import read_json, write_json_atomic

FILE = "sequential.json"
AGAIN = "a new plan over the same runs would look at them again and bound neither plan's error (docs/statistics.md)"
VERSION = 2  # keys name `among` and the comparison count (version 1, unmarked: they did not)


def _read_plan(path: Path) -> dict:
    """The plan stored at `path`, checked for the shape `Plan.save` writes; a one-line BenchError naming the file
    for anything else (a damaged file must not be read as other levels than the ones spent)."""
    fix = f"restore it; {AGAIN}"
    try:
        data = read_json(path)
    except (OSError, ValueError) as e:
        raise BenchError(f"{path} cannot be read as a sequential plan ({type(e).__name__}: {e}); {fix}") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path} is not a sequential plan (expected a JSON object, got {type(data).__name__}); {fix}")
    if data.get("version", VERSION) != VERSION:
        raise BenchError(f"{path} has plan version {data['version']!r}; this harness reads version {VERSION} "
                         f"(or plans from before versions); {fix}")
    n_max = data.get("n_max")
    if not isinstance(n_max, int) or isinstance(n_max, bool) or n_max < 1:
        raise BenchError(f"{path}: n_max {n_max!r} is not an integer >= 1; {fix}")
    for part in ("comparisons", "legacy"):
        entries = data.get(part, {})
        if not isinstance(entries, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("looks", []), list) for e in entries.values()):
            raise BenchError(f"{path}: {part} is not a mapping of comparisons to their looks; {fix}")
    return data


def other_values(path: Path, detail: str) -> str:
    """Why a comparison waits for PLAN_NEEDED: the runs the plan at `path` looked at give other values now."""
    return (f"the runs its plan {path} looked at give other values here ({detail}): runs rebuilt on another machine "
            f"or software, whose float rounding differs (docs/statistics.md); its looks and verdict are about those "
            f"runs, not these: to decide on these, move the plan aside (`mv {path} {path}.other`) and rerun the "
            f"suite's `--until-decided` command, which starts a plan of these runs' own")


class Plan:
    """The looks taken so far (JSON at results/<suite>/sequential.json)."""

    def __init__(self, path: Path, n_max: int, data: dict | None = None):
        self.path, self.n_max = path, n_max
        data = data or {}
        current = data.get("version", 1 if data.get("comparisons") else VERSION) >= VERSION
        self.comparisons: dict[str, dict] = dict(data.get("comparisons", {})) if current else {}
        # entries under keys of the old scheme, waiting for the comparison that adopts them
        self.legacy: dict[str, dict] = dict(data.get("legacy", {})) if current else dict(data.get("comparisons", {}))

    @classmethod
    def open(cls, suite_dir: Path, n_max: int | None = None, per_seed: int = 1) -> "Plan | None":
        """The suite's plan; a new one when `n_max` is given and none exists; None without either.
        A different n_max than the recorded one is a one-line error (the cap is part of the levels) naming the
        plan's --max-seeds: its n_max / `per_seed` (the grid's forget splits x models)."""
        path = suite_dir / FILE
        if path.exists():
            data = _read_plan(path)
            if n_max is not None and n_max != data["n_max"] and not any(
                    c.get("looks") for part in ("comparisons", "legacy") for c in data.get(part, {}).values()):
                return cls(path, n_max)  # no look taken yet: no error control to lose
            if n_max is not None and n_max != data["n_max"]:
                raise BenchError(f"{path} was planned with at most {data['n_max']} replicates per comparison; this "
                                 f"grid's cap is {n_max} (--max-seeds x {per_seed} forget splits x models): give "
                                 f"--max-seeds {data['n_max'] / per_seed:g}, the plan's; {AGAIN}")
            return cls(path, data["n_max"], data)
        if n_max is None:
            return None
        if n_max < 2:
            raise BenchError(f"--max-seeds allows {n_max} replicates per comparison; at least 2 are needed")
        return cls(path, n_max)

    def adopt(self, key: str, legacy_key: str, alpha: float) -> bool:
        """Move the entry recorded under `legacy_key` (the old key scheme) to `key` when `key` has none and the
        entry's first look spent `alpha` (its level is 1 - alpha * n / n_max): the looks were taken for this
        comparison's family. An entry spent at another alpha (another `among`, another comparison count)
        stays where it is. Returns True when it moved."""
        entry = self.legacy.get(legacy_key)
        if entry is None or key in self.comparisons:
            return False
        looks = entry.get("looks", [])
        if looks:
            first = looks[0]
            spent = (1 - first["level"]) * self.n_max / max(min(first["n"], self.n_max), 1)
            if not math.isclose(spent, alpha, rel_tol=1e-6):
                return False
        self.comparisons[key] = self.legacy.pop(legacy_key)
        return True

    def stale(self, key: str, n: int, basis: str, matched: list[str], siblings: tuple[str, ...] = (),
              present: list[str] | None = None) -> tuple[str, str]:
        """Whether comparison `key` may take a look: ("", "") when it may, else what it waits for (a
        bench.decide constant) and why. It may not, as its looks and verdict are about other runs and a look now
        would reuse or respend a level on data already looked at, when:
        - it has no look but one of `siblings` (its keys in families of other sizes, bench.claims.comparison_key)
          has: CLAIM_NEEDED;
        - a run its last look matched is not in `matched` ("model/split/seed" keys; a look recorded before looks
          kept their runs: `n`, its usable pairs now, is below the look's): RUNS_NEEDED, rerunning restores it;
          but where every such pair is in `present` (both runs finished, usable or not: a run that did not forget
          here), the runs give other values than at the look: PLAN_NEEDED;
        - its runs' settings digest to another `basis` than the one recorded at its first look: SETTINGS_NEEDED."""
        entry = self.comparisons.get(key)
        if not entry or not entry.get("looks"):  # no look yet: the looks to come are about these runs...
            # ...unless it looked at them in another family of the claim (a best claim with another count of methods)
            other = next((k for k in siblings if k != key and self.comparisons.get(k, {}).get("looks")), None)
            if other:
                told = self.comparisons[other]
                verdict = f" (its verdict there: {told['check']['verdict']})" if told.get("decided") else ""
                return CLAIM_NEEDED, (
                    f"its plan {self.path} looked at these methods as {other!r}{verdict}, in a family of another "
                    f"number of comparisons: the best claim's other methods with finished runs were others (some "
                    f"lost or added since); a look in this family would look at their runs again at a fresh level: "
                    f"bring the methods back to those of its looks (rerun a lost one; move an added one's runs aside), "
                    f"or delete the plan to start a new one (which discards the error control of its looks)")
            if n:
                self.comparisons.setdefault(key, {"looks": []})["basis"] = basis
            return "", ""
        verdict = f" (its verdict on them: {entry['check']['verdict']})" if entry.get("decided") else ""
        # (a side without runs has no basis: its runs are gone; a plan from before bases were recorded adopts the
        # runs it has)
        if basis and entry.setdefault("basis", basis) != basis:
            return SETTINGS_NEEDED, (
                f"its plan {self.path} looked at runs of other settings than the ones in the results now{verdict}; "
                f"no look taken: restore those runs, or delete the plan to start a new one (which discards the "
                f"error control of its looks)")
        last = entry["looks"][-1]
        missing = sorted(set(last["keys"]) - set(matched)) if "keys" in last else []
        if missing and present is not None and set(missing) <= set(present):
            return PLAN_NEEDED, other_values(self.path, (
                f"{len(missing)} of the pairs its last look matched ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}) are finished runs that give no usable pair now, e.g. a run "
                f"that did not forget here{verdict}"))
        if "keys" not in last and present is not None and n < last["n"] <= len(present):  # a look that kept no keys
            return PLAN_NEEDED, other_values(self.path, (
                f"{n} matched replicates are usable, fewer than the {last['n']} its last look had, though {len(present)} "
                f"pairs of finished runs are here{verdict}; its look kept no run keys, so runs it looked at may instead "
                f"have been deleted and others added since: then restore those"))
        if missing or n < last["n"]:
            gone = (f"{len(missing)} of the {len(last['keys'])} runs its plan {self.path} last looked at "
                    f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}) are not among its finished runs"
                    if missing else f"{n} matched replicates are usable, fewer than the {last['n']} its plan "
                                    f"{self.path} last looked at")
            return RUNS_NEEDED, (
                f"{gone}{verdict}: runs were deleted, failed or are unfinished since; no look taken: restore them "
                f"(rerun their seeds; `--until-decided` adds seeds in order until they are back); {AGAIN}")
        return "", ""

    def level_at(self, key: str, n: int) -> float | None:
        """The level of comparison `key`'s look at `n` matched replicates, None without one."""
        return next((look["level"] for look in self.comparisons.get(key, {}).get("looks", []) if look["n"] == n), None)

    def decided(self, key: str) -> dict | None:
        """The stored check of a comparison decided at an earlier look (its verdict is final)."""
        entry = self.comparisons.get(key)
        return entry["check"] if entry and entry.get("decided") else None

    def look(self, key: str, n: int, alpha: float, drawn) -> float | None:
        """The level of a look at n matched replicates: the level recorded for n when this is no new look,
        else the level the new replicates spend, recorded with the runs it drew on (`drawn`, bench.claims.PairKeys:
        the runs it matched, Plan.stale, and the pairs it tested, Plan.tested_at_last_look); None when nothing
        is left to spend."""
        looks = self.comparisons.setdefault(key, {"looks": []})["looks"]
        if looks and looks[-1]["n"] == n:
            return looks[-1]["level"]
        previous = looks[-1]["n"] if looks else 0
        if n < previous:
            raise BenchError(f"comparison {key!r} has {n} matched replicates, fewer than the {previous} of its last "
                             f"look in {self.path}: runs were deleted; restore them "
                             f"(rerunning the grid reproduces them); {AGAIN}")
        level = spent_level(alpha, n, previous, self.n_max)
        if level >= 1:
            return None
        looks.append({"n": n, "level": level, "keys": sorted(drawn.matched), "tested": sorted(drawn.tested)})
        return level

    def tested_at_last_look(self, key: str, tested: list[str]) -> bool:
        """Whether the pairs `tested` now ("model/split/seed" keys) are the ones comparison `key`'s last look tested
        (True for a look recorded before looks kept them). At an equal count they can differ only where copies of a
        run were kept from another seed; testing them at the last look's level would spend that level twice."""
        looks = self.comparisons.get(key, {}).get("looks") or [{}]
        return "tested" not in looks[-1] or looks[-1]["tested"] == sorted(tested)

    def record(self, key: str, check) -> None:
        """Record the latest check of comparison `key`; a verdict that decides it (holds / does not hold / equivalent)
        marks it decided and keeps the check.
        """
        entry = self.comparisons[key]
        entry["last"] = check.verdict
        if check.verdict in ("holds", "does not hold", "equivalent"):
            entry["decided"], entry["check"] = True, asdict(check)

    def save(self) -> None:
        """Write the plan (version, n_max, the comparisons and any legacy entries not adopted) atomically to its path."""
        write_json_atomic(self.path, {"version": VERSION, "n_max": self.n_max, "comparisons": self.comparisons,
                                      **({"legacy": self.legacy} if self.legacy else {})})


def label_base(label: str) -> str:
    """`ihl+fila-r4` -> `ihl+fila`: a run label without its rank (bench.runs.method_base maps it over a Series)."""
    return re.sub(r"-r\d+$", "", label)


def seed_inert(done) -> set[str]:
    """Methods (without rank) whose seeds reproduce their runs bit for bit: two finished runs on one model and split
    with different seeds and the same replicate key (bench.runs.replicate_key). Read from all finished runs, so runs
    found already finished count as much as new ones. `done`: a frame with method, model, split, seed and
    replicate columns."""
    if done.empty or "replicate" not in done:
        return set()
    keys = done.assign(base=done["method"].map(label_base)).groupby(["base", "model", "split"])
    return {name[0] for name, group in keys if group["seed"].nunique() > group["replicate"].nunique()}


def undecided_methods(results, inert: set[str] = frozenset()) -> set[str]:
    """Methods of the comparisons that more replicates could still decide, or restore the replicates of an earlier
    look (bench.decide.RUNS_NEEDED): inconclusive (not `no data`), not waiting on a larger --epochs (a run cut off
    by the epoch cap: no seed turns its bound into a value) or on runs of other settings or another form of the
    claim, and
    neither side `inert` (a method, without rank, whose new seeds reproduce its runs bit for bit: a pair with
    one of its copies is dropped, so no seed adds a pair to such a comparison)."""
    return {m for r in results for k in r.checks if k.verdict == "inconclusive"
            and k.needed not in (EPOCHS_NEEDED, SETTINGS_NEEDED, CLAIM_NEEDED, PLAN_NEEDED)
            and not {label_base(k.a), label_base(k.b)} & inert for m in (k.a, k.b)}
