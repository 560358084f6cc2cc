"""FILA (Cha et al., ICLR 2025): LoRA initialised from relative Fisher information.

For each target weight W (out x in):
  1. F_f, F_r: diagonal empirical Fisher of the forget / retain NLL, token-weighted over batches.
  2. I = F_f / (F_r + eps), elementwise: what matters for the forget set but not for the retain set.
  3. Row weights w_i = sqrt(sum_j I_ij).
  4. Weighted rank-r SVD: diag(w) W ~= U_r S_r V_r^T.
  5. With S' = S_r / s: A = (V_r diag(sqrt S'))^T, B = diag(1/(w + eps)) U_r diag(sqrt S').
  6. Residual base W <- W - s B A, so the model computes exactly what it did before.
The adapter therefore starts on the directions most responsible for the forget set, and both A and B
start non-zero. Only the row weights depend on the data, and they do not depend on the rank, so the
caller caches them per (model, forget split) and reuses them for every rank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from methods import lora
from methods.adapter import Adapter, AdapterInputs

if TYPE_CHECKING:
    import torch

EPS = 1e-5


def fisher_diagonals(model: torch.nn.Module, names: list[str], pairs: Iterable[tuple[dict, dict]]
                     ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Token-weighted mean of squared gradients of the batch-mean NLL, for forget and retain (float32).

    `pairs` yields (forget batch, paired retain batch). Only the target weights take gradients.
    """
    import torch

    from methods.losses import nll_of

    modules = dict(model.named_modules())
    weights = {n: modules[n].weight for n in names}
    saved = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for w in weights.values():
        w.requires_grad_(True)
    sums = {"forget": {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()},
            "retain": {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}}
    tokens = {"forget": 0, "retain": 0}
    was_training = model.training
    model.eval()  # no dropout noise in the importance estimate
    try:
        for forget, retain in pairs:
            for which, batch in (("forget", forget), ("retain", retain)):
                n = int((batch["labels"][:, 1:] != -100).sum())
                if n == 0:
                    continue
                grads = torch.autograd.grad(nll_of(model, batch), list(weights.values()))
                for name, g in zip(weights, grads):
                    sums[which][name] += g.float().pow(2) * n
                tokens[which] += n
    finally:
        for p, flag in saved.items():
            p.requires_grad_(flag)
        model.train(was_training)
    if tokens["forget"] == 0 or tokens["retain"] == 0:
        raise ValueError("FILA needs at least one counted token in both the forget and the retain set")
    return ({n: f / tokens["forget"] for n, f in sums["forget"].items()},
            {n: r / tokens["retain"] for n, r in sums["retain"].items()})


def row_weights(fisher_forget: dict[str, torch.Tensor], fisher_retain: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
    """w_i = sqrt(sum_j F_f / (F_r + eps)) for every target layer: a vector of length `out`."""
    return {n: (fisher_forget[n] / (fisher_retain[n] + EPS)).sum(dim=1).sqrt() for n in fisher_forget}


def factors(weight: torch.Tensor, w: torch.Tensor, rank: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [rank x in], B [out x rank]) with s * B @ A = the w-weighted rank-r approximation of W."""
    import torch

    W = weight.float()
    U, S, Vh = torch.linalg.svd(w[:, None] * W, full_matrices=False)
    root = (S[:rank] / scale).sqrt()
    A = root[:, None] * Vh[:rank]
    B = (1.0 / (w + EPS))[:, None] * U[:, :rank] * root[None, :]
    return A, B


def initialise(peft_model, weights: dict[str, torch.Tensor]) -> None:
    """Set every LoRA pair from its layer's row weights and leave the residual in the base weight."""
    import torch

    with torch.no_grad():
        _initialise(peft_model, weights)


def _initialise(peft_model, weights: dict[str, torch.Tensor]) -> None:
    for name, module in peft_model.base_model.model.named_modules():
        if name not in weights:
            continue
        base = module.base_layer.weight
        A_param, B_param = module.lora_A["default"].weight, module.lora_B["default"].weight
        scale = module.scaling["default"]
        A, B = factors(base, weights[name].to(base.device), A_param.shape[0], scale)
        A_param.copy_(A)
        B_param.copy_(B)
        base.copy_((base.float() - scale * (B @ A)).to(base.dtype))


def apply(model, x: AdapterInputs):
    names = lora.target_linear_names(model)
    lora.check_rank(model, names, x.rank)
    weights = x.fisher_row_weights(model, names)
    peft_model = lora.wrap(model, x.rank)
    initialise(peft_model, weights)
    return peft_model


ADAPTER = Adapter("fila", apply, uses_rank=True,
                  summary="LoRA initialised from relative Fisher information (the paper's FILA)")
