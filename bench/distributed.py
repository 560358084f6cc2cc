"""`python -m bench run` under torchrun / accelerate launch: every rank trains, rank 0 owns the store.

torchrun starts one process per device with WORLD_SIZE / RANK set. All of them build the same data and
artefacts (atomic, idempotent writes), train together (bench/loop.py splits every optimiser step across
them) and evaluate the same model. Only rank 0 claims a run's lock, decides whether to skip, resume or
recompute it, and writes run.json, per-item files, checkpoints and exported models; the other ranks
follow its decisions, which `share` sends them. Every collective has a timeout (BENCH_DIST_TIMEOUT
seconds, default 1800), so a rank that dies or hangs makes the others stop with an error, not wait
forever; torchrun itself also stops the other ranks when one exits with an error.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any

from bench.errors import BenchError

DEFAULT_TIMEOUT_S = 1800.0
MAX_TIMEOUT_S = 1e7  # about 116 days: longer than any job a scheduler runs
MIN_TIMEOUT_S = 1e-3  # torch counts the timeout in whole milliseconds: less is 0, an immediate failure


class RankLost(RuntimeError):
    """Another rank stopped, or did not answer within the timeout."""


def _collective(what: str):
    @contextlib.contextmanager
    def guard():
        try:
            yield
        except BenchError:
            raise
        except Exception as e:
            raise RankLost(f"another process of this distributed run stopped or did not answer within "
                           f"{timeout_seconds():g} s (BENCH_DIST_TIMEOUT) during {what}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None

    return guard()


def world_size() -> int:
    """Number of processes of this torchrun launch (WORLD_SIZE; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (RANK; 0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def active() -> bool:
    """True under torchrun with more than one process."""
    return world_size() > 1


def is_main() -> bool:
    """True on rank 0, the process that reports and writes shared results."""
    return rank() == 0


def timeout_seconds() -> float:
    """Collective timeout in seconds: BENCH_DIST_TIMEOUT, or DEFAULT_TIMEOUT_S when unset.

    Raises BenchError when the variable is not a positive number.
    """
    raw = os.environ.get("BENCH_DIST_TIMEOUT") or str(DEFAULT_TIMEOUT_S)  # set empty: unset
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_TIMEOUT_S <= value <= MAX_TIMEOUT_S:  # inf and NaN too
        raise BenchError(f"bad BENCH_DIST_TIMEOUT={raw!r} (expected seconds, a number >= {MIN_TIMEOUT_S:g} and "
                         f"<= {MAX_TIMEOUT_S:g})")
    return value


def init() -> None:
    """Join the process group (gloo on CPU, nccl on GPUs) with the timeout, before Accelerate does. Raises BenchError
    for a bad BENCH_DIST_TIMEOUT (`bench run` and `finetune` check it first, on every launcher)."""
    seconds = timeout_seconds()
    if not active():
        return
    # torch loads when this runs, not when the CLI imports bench.distributed
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "nccl"
    timeout = datetime.timedelta(seconds=seconds)  # a bad value is the user's error, not a lost rank
    with _collective("start-up"):
        dist.init_process_group(backend, timeout=timeout)


def finish() -> None:
    """Leave the process group once every rank is done (a no-op when not distributed), instead of leaving the group
    to the interpreter's exit: CI saw one rank of a finished grid abort there once, under load ("terminate called
    without an active exception"), which made a finished torchrun fail. Raises RankLost when a rank is gone."""
    if not active():
        return
    # torch loads when this runs, not when the CLI imports bench.distributed
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    with _collective("the end of the grid"):
        dist.barrier()
    dist.destroy_process_group()


def share(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (picklable; `obj` itself when not distributed)."""
    if not active():
        return obj
    # torch loads when this runs, not when the CLI imports bench.distributed
    import torch.distributed as dist

    box = [obj if is_main() else None]
    with _collective("a broadcast of rank 0's decision"):
        dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool, device="cpu") -> bool:
    """True on every rank if `flag` is True on any (e.g. a non-finite loss on one rank's share)."""
    # torch loads when this runs, not when the CLI imports bench.distributed
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    with _collective("the loss check"):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def weighted_sum(values: list[float], weight: float, device="cpu") -> list[float]:
    """sum over ranks of weight * values (each rank its own weight): a step's mean from its shares."""
    # torch loads when this runs, not when the CLI imports bench.distributed
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device) * weight
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        with _collective("the loss sum"):
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()
