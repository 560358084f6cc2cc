"""Wall time and peak memory per phase of a run (prepare, load, each epoch's training and evaluation, the
evaluation's parts, utility), recorded in run.json next to `timings`; `bench perf --real-data` reads them.

Peak memory, CPU: the kernel's resident-set high-water mark (VmHWM in /proc/self/status), reset at the
start of every phase by writing 5 to /proc/self/clear_refs (Linux >= 4.0). That is exact, costs nothing
while the phase runs, and catches a peak however short; a thread sampling the RSS every 10 ms would miss
the 50 MB vocabulary-projection chunks of EL_n, which live a few milliseconds each. It is the peak of the
whole process's RSS (model, data, and memory an earlier phase freed but the allocator kept), so a phase's
own cost is its peak less its `start` RSS. Where the reset is unavailable (not Linux, or /proc read-only)
the peak is the process's lifetime peak (ru_maxrss), recorded with `"exact": false`. CUDA: the peak of
torch.cuda.max_memory_allocated, reset with torch.cuda.reset_peak_memory_stats.

The reset also resets ru_maxrss (the kernel derives it from the same high-water mark): a run's peak is
therefore the maximum over its phases, and no longer carries the peak of an earlier run in the same
process.

Phases nest: `phase("el_n")` inside the suite's evaluation records a child of the runner's current phase;
outside any recorder it does nothing, so the suites call it unconditionally. A resumed run records the
phases of its last attempt (the epochs an earlier attempt ran keep their `timings` only).
"""

from __future__ import annotations

import contextlib
import resource
import time
from dataclasses import dataclass, field

_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemoryGauge:
    """Peak memory since the last `reset`, in MB, for `device` ("cpu" or "cuda[:n]")."""

    def __init__(self, device: str = "cpu"):
        self.cuda = device.startswith("cuda")
        self.exact = True if self.cuda else (_status_kb("VmHWM") is not None and _reset_hwm())

    def reset(self) -> None:
        """Restart the peak measurement (CUDA peak allocation, or the process's VmHWM where it can be reset)."""
        if self.cuda:
            # torch loads when this runs, not when the CLI imports bench.phases
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif self.exact:
            _reset_hwm()

    def peak_mb(self) -> float:
        """Peak memory in MiB since the last reset: CUDA allocation, else VmHWM, else max RSS of the process."""
        if self.cuda:
            # torch loads when this runs, not when the CLI imports bench.phases
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if self.exact:
            return _status_kb("VmHWM") / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    def current_mb(self) -> float:
        """Memory in use now in MiB: CUDA allocation, else the process's RSS (nan where /proc is unreadable)."""
        if self.cuda:
            # torch loads when this runs, not when the CLI imports bench.phases
            import torch

            return torch.cuda.memory_allocated() / 2**20
        kb = _status_kb("VmRSS")
        return kb / 1024 if kb is not None else float("nan")


@dataclass
class _Frame:
    name: str
    started: float
    start_mb: float
    peak: float = 0.0  # the peak before the last child began (the gauge was reset there)
    children: dict = field(default_factory=dict)


class PhaseRecorder:
    """Records {name: {"seconds", "peak_memory_mb", "start_memory_mb", "exact", "phases": {...}}} of the
    phases run under it; a phase entered twice under one parent adds its seconds and keeps the larger peak."""

    def __init__(self, device: str = "cpu"):
        self.gauge = MemoryGauge(device)
        self.stack: list[_Frame] = []
        self.phases: dict[str, dict] = {}
        self._open: list = []

    @contextlib.contextmanager
    def phase(self, name: str):
        """Context manager timing the block as phase `name` (nested in the enclosing phase) and recording its seconds,
        peak and start memory (MiB); a phase entered twice is merged. Yields the phase's frame.
        """
        parent = self.stack[-1] if self.stack else None
        if parent is not None:
            parent.peak = max(parent.peak, self.gauge.peak_mb())
        self.gauge.reset()
        frame = _Frame(name, time.perf_counter(), self.gauge.current_mb())
        self.stack.append(frame)
        global _active
        outer, _active = _active, self
        try:
            yield frame
        finally:
            _active = outer
            self.stack.pop()
            entry = {"seconds": time.perf_counter() - frame.started,
                     "peak_memory_mb": max(frame.peak, self.gauge.peak_mb()), "start_memory_mb": frame.start_mb,
                     "exact": self.gauge.exact}
            if frame.children:
                entry["phases"] = frame.children
            siblings = parent.children if parent is not None else self.phases
            siblings[name] = _merge(siblings[name], entry) if name in siblings else entry
            if parent is not None:
                parent.peak = max(parent.peak, entry["peak_memory_mb"])

    def begin(self, name: str) -> None:
        """Open a phase that a callback closes (`end`): a training epoch runs between two callbacks."""
        cm = self.phase(name)
        cm.__enter__()
        self._open.append(cm)

    def end(self) -> None:
        """Close the phase `begin` opened last (nothing when none is open)."""
        if self._open:
            self._open.pop().__exit__(None, None, None)

    def peak_mb(self) -> float:
        """The largest peak over every phase recorded so far."""
        return max((p["peak_memory_mb"] for p in self.phases.values()), default=self.gauge.peak_mb())


def _merge(old: dict, new: dict) -> dict:
    """The same part run again under one parent (e.g. the attacks' two passes): seconds summed, larger peak."""
    out = {**new, "seconds": old["seconds"] + new["seconds"],
           "peak_memory_mb": max(old["peak_memory_mb"], new["peak_memory_mb"]), "start_memory_mb": old["start_memory_mb"]}
    children = dict(old.get("phases", {}))
    for k, v in new.get("phases", {}).items():
        children[k] = _merge(children[k], v) if k in children else v
    if children:
        out["phases"] = children
    return out


_active: PhaseRecorder | None = None


@contextlib.contextmanager
def recording(device: str = "cpu"):
    """Make a new PhaseRecorder the one `phase` records into, for the duration of the block."""
    global _active
    outer, _active = _active, PhaseRecorder(device)
    try:
        yield _active
    finally:
        _active = outer


def current() -> PhaseRecorder | None:
    """The PhaseRecorder of the phase being recorded now, or None outside any."""
    return _active


@contextlib.contextmanager
def phase(name: str):
    """A part of the current phase (a suite's evaluation: ma, el_n, attacks, generation, ...); nothing
    is recorded when no PhaseRecorder runs."""
    if _active is None:
        yield None
    else:
        with _active.phase(name) as frame:
            yield frame
