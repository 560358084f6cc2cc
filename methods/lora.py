"""LoRA (PEFT) on every nn.Linear of the transformer blocks, not lm_head: alpha = 2r, dropout 0,
vanilla init (B = 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.errors import BenchError
from methods.adapter import Adapter, AdapterInputs

if TYPE_CHECKING:
    import torch

SCALE = 2.0  # alpha / r


def target_linear_names(model: torch.nn.Module) -> list[str]:
    """Full names of the block Linear layers: every nn.Linear except the output embedding."""
    import torch

    head = model.get_output_embeddings()
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]
    if not names:
        raise BenchError(f"no target nn.Linear layer found in {type(model).__name__}; "
                         "LoRA and FILA need Linear projections in the transformer blocks")
    return names


def check_rank(model: torch.nn.Module, names: list[str], rank: int) -> None:
    """A one-line BenchError when `rank` is not positive or exceeds the smallest dimension of a target
    layer `names` of `model` (a LoRA factor cannot be wider than its layer)."""
    if rank <= 0:
        raise BenchError(f"bad LoRA rank {rank} (expected a positive integer such as 4, 8, 16 or 32)")
    modules = dict(model.named_modules())
    limit, where = min((min(modules[n].weight.shape), n) for n in names)
    if rank > limit:
        raise BenchError(f"LoRA rank {rank} is larger than layer '{where}' allows (at most {limit} for this model)")


def wrap(model: torch.nn.Module, rank: int):
    """PEFT LoRA model with vanilla init; only lora_A / lora_B train."""
    from peft import LoraConfig, get_peft_model

    names = target_linear_names(model)
    check_rank(model, names, rank)
    config = LoraConfig(r=rank, lora_alpha=SCALE * rank, lora_dropout=0.0, target_modules=names,
                        init_lora_weights=True, bias="none")
    return get_peft_model(model, config)


def apply(model, x: AdapterInputs):
    """Wrap `model` in rank-`x.rank` LoRA (PEFT, alpha = 2r, B = 0): only the adapter matrices train."""
    return wrap(model, x.rank)


ADAPTER = Adapter("lora", apply, uses_rank=True, summary="LoRA on all block Linear layers, alpha = 2r")
