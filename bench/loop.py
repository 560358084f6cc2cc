"""The unlearning loop: one function, top to bottom.

AdamW; linear warm-up for `warmup_epochs` then linear decay to 0; each optimiser step sees
`effective_batch` forget examples (each with a uniformly random retain partner) in micro-batches of
`batch_size`, gradients accumulated; optional clipping; after every epoch a hook evaluates,
checkpoints and may stop the run (the suite's stopping rule).

It runs under Accelerate: `accelerate launch --num_processes N` splits every optimiser step's
examples across processes and DDP averages the gradients, so the update equals the one-process one.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from bench.data import Example, collate, epoch_pairing, to_device
from bench.distributed import any_rank, weighted_sum
from bench.errors import BenchError
from bench.objective import LossInputs, Objective
from bench.spec import Hyperparams
from bench.truncation import require_counted


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class EpochStats:
    epoch: int
    loss: float
    parts: dict[str, float]
    steps: int
    seconds: float


@dataclass
class LoopState:
    """What the epoch hook may checkpoint, and what a resumed run passes back in."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    history: list[EpochStats] = field(default_factory=list)


def steps_per_epoch(n_forget: int, hp: Hyperparams) -> int:
    """Optimizer steps per epoch: ceil(n_forget / effective batch size)."""
    return math.ceil(n_forget / hp.effective_batch)


def share_of_step(step_items: Sequence[int], batch_size: int, rank: int, world: int) -> list[list[int]]:
    """The micro-batches (lists of example indices) that process `rank` of `world` computes of one optimiser step.

    One process: the step in micro-batches of `batch_size`. Several: whole one-process micro-batches dealt out in
    turn when the step has at least one per process, so each micro-batch averages its loss over the same examples
    (and tokens) as in one process and the summed update is the one-process update up to float rounding, whatever
    the objective; otherwise (a step of a single micro-batch) the step's examples dealt out one by one, so that
    each process's micro-batch averages over other examples than one process's: with examples of different
    lengths a token-mean loss then weighs them differently (docs/methods.md)."""
    whole = [list(step_items[i:i + batch_size]) for i in range(0, len(step_items), batch_size)]
    if world == 1 or len(whole) >= world:
        return whole[rank::world]
    mine = list(step_items[rank::world])
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


def make_optimizer(model: torch.nn.Module, hp: Hyperparams, n_forget: int):
    """AdamW over the trainable parameters (lr, weight decay from `hp`) and its schedule: (optimizer, scheduler).

    The schedule (transformers) warms up over `warmup_epochs` epochs' worth of steps, then stays constant
    (`schedule == "constant"`) or decays linearly to 0 at the end of `hp.epochs`.
    """
    # transformers loads when this runs, not on import of bench.loop
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    per_epoch = steps_per_epoch(n_forget, hp)
    warmup = round(hp.warmup_epochs * per_epoch)
    if hp.schedule == "constant":
        scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
    else:
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, hp.epochs * per_epoch)
    return optimizer, scheduler


def train(model: torch.nn.Module, objective: Objective, forget: Sequence[Example], retain: Sequence[Example],
            hp: Hyperparams, *, pad_id: int, seed: int, reference: torch.nn.Module | None = None,
            alternate: Sequence[Example] | None = None, accelerator=None, start_epoch: int = 0,
            state: LoopState | None = None,
            on_epoch_end: Callable[[EpochStats, LoopState], bool] | None = None,
            progress: Callable[[str], None] | None = None) -> LoopState:
    """Train (unlearn, or fine-tune with an NLL objective) epochs start_epoch+1 .. hp.epochs; return the optimiser state and per-epoch stats.

    `alternate[i]` is forget[i] with another answer (IdkDPO's refusal), batched alongside it.

    `on_epoch_end(stats, state)` runs after each epoch (evaluate, checkpoint) and returns True to stop.
    """
    # accelerate loads when this runs, not on import of bench.loop
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # every example counts at least one token, so no micro-batch loss is a mean over nothing (0, no gradient)
    require_counted(forget, "forget example")
    require_counted(retain, "retain example")
    require_counted(alternate or [], "alternate example")
    # an objective may leave trainable parameters out of its loss (RMU reads a middle block's hidden state, so the
    # blocks above it get no gradient): DDP must then not wait for their gradients, or it stops at the second step
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available(),
                                             kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    world, rank = accelerator.num_processes, accelerator.process_index
    smallest = min(min(hp.effective_batch, len(forget) - s) for s in range(0, len(forget), hp.effective_batch))
    if world > 1 and smallest < world:  # a rank without examples would skip DDP's gradient sync: a hang
        examples = lambda n: f"{n} forget example" + ("" if n == 1 else "s")
        raise BenchError(f"an optimiser step of {examples(smallest)} cannot be split across {world} processes "
                         f"(effective_batch={hp.effective_batch}, {examples(len(forget))}); use at most {smallest} "
                         f"process{'' if smallest == 1 else 'es'}")
    ddp_model = accelerator.prepare_model(model)
    if state is None:  # after wrapping: FSDP replaces the parameters the optimiser must hold
        state = LoopState(*make_optimizer(ddp_model, hp, len(forget)))
    if reference is not None:
        reference.to(accelerator.device).eval().requires_grad_(False)
    micro_batches = 0
    for epoch in range(start_epoch + 1, hp.epochs + 1):
        ddp_model.train()
        start = time.perf_counter()
        order, partners = epoch_pairing(len(forget), len(retain), seed, epoch)
        losses, parts_sum, n_steps = [], {}, 0
        for step_start in range(0, len(forget), hp.effective_batch):
            step_items = order[step_start:step_start + hp.effective_batch]
            chunks = share_of_step(step_items, hp.batch_size, rank, world)
            mine = [i for chunk in chunks for i in chunk]  # this process's share of the optimiser step
            step_loss, step_parts, non_finite = 0.0, {}, None
            for k, idx in enumerate(chunks):
                weight = len(idx) / len(step_items) * world  # DDP averages over processes
                inputs = LossInputs(
                    model=ddp_model,
                    forget=to_device(collate([forget[i] for i in idx], pad_id), accelerator.device),
                    retain=(to_device(collate([retain[partners[i]] for i in idx], pad_id), accelerator.device)
                            if objective.needs_retain else None),
                    reference=reference, hp=hp, seed=seed,
                    alternate=(to_device(collate([alternate[i] for i in idx], pad_id), accelerator.device)
                               if objective.needs_alternate else None))
                last = k == len(chunks) - 1
                with (accelerator.no_sync(ddp_model) if not last else contextlib.nullcontext()):
                    loss, parts = objective.loss(inputs)
                    if not torch.isfinite(loss):
                        non_finite = f"loss is {loss.item()} at epoch {epoch}, step {n_steps + 1}"
                        if world == 1:
                            raise NonFiniteLoss(non_finite)
                    accelerator.backward(loss * weight)  # every rank reaches DDP's gradient sync
                step_loss += loss.item() * len(idx) / len(mine)
                for name, value in parts.items():
                    step_parts[name] = step_parts.get(name, 0.0) + value * len(idx) / len(mine)
                micro_batches += 1
            # one rank's non-finite loss stops every rank at the same step, so none waits on the others
            if world > 1 and any_rank(non_finite is not None, accelerator.device):
                raise NonFiniteLoss(non_finite or f"loss is not finite on another rank at epoch {epoch}, step {n_steps + 1}")
            if world > 1:  # what the step's whole batch gave, not this rank's share of it
                names = sorted(step_parts)
                step_loss, *values = weighted_sum([step_loss] + [step_parts[n] for n in names],
                                                  len(mine) / len(step_items), accelerator.device)
                step_parts = dict(zip(names, values))
            for name, value in step_parts.items():
                parts_sum[name] = parts_sum.get(name, 0.0) + value
            if hp.max_grad_norm > 0:
                accelerator.clip_grad_norm_(ddp_model.parameters(), hp.max_grad_norm)
            state.optimizer.step()
            state.scheduler.step()
            state.optimizer.zero_grad(set_to_none=True)
            losses.append(step_loss)
            n_steps += 1
        stats = EpochStats(epoch=epoch, loss=sum(losses) / len(losses),
                           parts={k: v / n_steps for k, v in parts_sum.items()}, steps=n_steps,
                           seconds=time.perf_counter() - start)
        state.history.append(stats)
        if progress:
            progress(f"epoch {epoch}/{hp.epochs} loss {stats.loss:.4f} ({stats.seconds:.1f}s)")
        if on_epoch_end is not None and on_epoch_end(stats, state):
            break
    return state
