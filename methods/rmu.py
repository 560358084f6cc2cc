"""RMU (Li et al. 2024, "The WMDP benchmark", representation misdirection for unlearning): steer the
hidden state of block l on forget tokens to a fixed random direction, keep it on retain tokens.

    forget = mean over forget answer tokens of msd(h_l,theta, c * u)
    retain = mean over retain answer tokens of msd(h_l,theta, h_l,ref)
    loss   = gamma * forget + lambda * retain

msd(a, b) = mean over the hidden coordinates of (a - b)^2 (the squared distance divided by the width,
the convention of the WMDP code and the open harness); u = a uniform [0, 1) draw normalised to unit
length, fixed by the run's seed; h_l = the output of block l (0-based). Each sequence's tokens are
averaged first, then the batch.

Defaults: c 2 (TOFU-style scale), gamma 1, lambda 1; block l = WMDP's 7 of 32 at the same relative depth
(`rmu_layer=-1`); trainable: the MLP output projections of blocks l-2..l (the WMDP preset,
`rmu_params=wmdp`), intersected with what the adapter trains; `rmu_params=all` keeps the adapter's choice.
`retain_loss` does not apply: RMU's retain term is its own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bench.errors import BenchError
from bench.settings import Setting, choice, positive
from methods.objective import FORGET_WEIGHT, RETAIN_WEIGHT, LossInputs, Objective

if TYPE_CHECKING:
    import torch

    from bench.spec import Hyperparams

WMDP_LAYER, WMDP_DEPTH = 7, 32
SOURCE = "Li et al. 2024, The WMDP benchmark (RMU)"
C = positive("rmu_c", 2.0, "c: forget activations are pushed to c * u", source="this project: a TOFU-scale c")
LAYER = Setting("rmu_layer", -1, lambda v: v >= -1, "a block index, or -1 for the default depth",
                "l: the steered block; -1 = WMDP's block 7 of 32 at the same relative depth", SOURCE)
PARAMS = choice("rmu_params", "wmdp", ("wmdp", "all"),
                "wmdp: train only the MLP output projections of blocks l-2..l; all: what the adapter trains",
                source=SOURCE)
# the MLP output projection in the architectures transformers ships (Llama/Mistral, GPT-2/Neo, Phi, GPT-NeoX)
MLP_OUT = re.compile(r"\.(\d+)\.mlp\.(down_proj|c_proj|fc2|dense_4h_to_h)(\.|$)")


def n_blocks(model) -> int:
    """The number of transformer blocks in `model`'s config; BenchError if it names none."""
    config = model.config
    for name in ("num_hidden_layers", "num_layers", "n_layer"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    raise BenchError(f"RMU: cannot tell how many blocks {type(model).__name__} has")


def steered_layer(model, hp: Hyperparams) -> int:
    """The block RMU steers, checked against the model; the last block is excluded because most
    architectures apply the final norm to its output in `hidden_states`."""
    depth = n_blocks(model)
    layer = hp.rmu_layer if hp.rmu_layer >= 0 else round(WMDP_LAYER / WMDP_DEPTH * depth)
    if not 0 <= layer <= depth - 2:
        raise BenchError(f"bad hyperparameter rmu_layer={hp.rmu_layer} (this model has {depth} blocks: "
                         f"expected 0..{depth - 2}, or -1 for the default depth)")
    return layer


def direction(hidden: int, seed: int, c: float, device) -> torch.Tensor:
    """c * u with u a uniform [0, 1) draw of length `hidden` from `seed`, normalised to unit length, on
    `device` (RMU's fixed random target)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    u = torch.rand(hidden, generator=g)
    return (c * u / u.norm()).to(device)


def mean_squared_distance(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over sequences of (mean over masked tokens of mean_d (h - target)^2)."""
    per_token = (h.float() - target.float()).pow(2).mean(-1)
    per_seq = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_seq.mean()


def hidden_at(model, batch: dict, layer: int) -> torch.Tensor:
    """The output of block `layer` (0-based), [B, T, hidden]: `hidden_states[layer + 1]`."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    return out.hidden_states[layer + 1]  # [0] is the embeddings


def loss(x: LossInputs):
    """gamma * msd(h_l, c u) on forget tokens + lambda * msd(h_l, h_l,ref) on retain tokens (module
    docstring); parts: `rmu_forget`, `rmu_retain`."""
    import torch

    from methods.losses import IGNORE

    base = getattr(x.model, "module", x.model)  # under DDP
    layer = steered_layer(base, x.hp)
    h = hidden_at(x.model, x.forget, layer)
    forget = mean_squared_distance(h, direction(h.shape[-1], x.seed, x.hp.rmu_c, h.device).expand_as(h),
                                   (x.forget["labels"] != IGNORE).float())
    parts = {"rmu_forget": forget.item()}
    total = x.hp.forget_weight * forget
    if x.hp.retain_weight > 0:
        h_r = hidden_at(x.model, x.retain, layer)
        with torch.no_grad():
            h_ref = hidden_at(x.reference, x.retain, layer)
        retain = mean_squared_distance(h_r, h_ref, (x.retain["labels"] != IGNORE).float())
        total = total + x.hp.retain_weight * retain
        parts["rmu_retain"] = retain.item()
    return total, parts


def choose_parameters(model, hp: Hyperparams) -> None:
    """`rmu_params=wmdp`: only the MLP output projections of blocks l-2..l stay trainable (LoRA / FILA:
    the adapter matrices inside them)."""
    if hp.rmu_params == "all":
        return
    layer = steered_layer(getattr(model, "base_model", model), hp)
    kept = 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.requires_grad_(trained(name, layer))
            kept += p.requires_grad
    if not kept:
        raise no_projection(layer)


def trained(name: str, layer: int) -> bool:
    """Whether parameter `name` is in an MLP output projection of blocks layer-2..layer (`rmu_params=wmdp`)."""
    m = MLP_OUT.search(name)
    return bool(m) and layer - 2 <= int(m.group(1)) <= layer


def no_projection(layer: int) -> BenchError:
    """The error for a steered layer with no trainable MLP output projection in blocks l-2..l."""
    return BenchError(f"RMU: no trainable MLP output projection in blocks {max(0, layer - 2)}..{layer} "
                      f"(set rmu_params=all to train what the adapter trains)")


def check(model, hp: Hyperparams) -> None:
    """What `choose_parameters` will need, on the model before any adapter (bench/preflight.py): a steered
    layer inside its blocks and, for `rmu_params=wmdp`, an MLP output projection to train."""
    layer = steered_layer(model, hp)
    if hp.rmu_params != "all" and not any(trained(name, layer) for name, _ in model.named_parameters()):
        raise no_projection(layer)


OBJECTIVE = Objective("rmu", loss, needs_retain=True, needs_reference=True,
                      summary="steer forget activations to a random direction, keep retain activations",
                      settings=(RETAIN_WEIGHT, C, LAYER, PARAMS, FORGET_WEIGHT), records_defaults=True,
                      prepare=choose_parameters, check=check, source=SOURCE)
