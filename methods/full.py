"""Full fine-tuning: every parameter trains."""

from methods.adapter import Adapter, AdapterInputs


def apply(model, _: AdapterInputs):
    """Every parameter of `model` trains; the model is returned unwrapped."""
    for p in model.parameters():
        p.requires_grad_(True)
    return model


ADAPTER = Adapter("full", apply, uses_rank=False, summary="every parameter trains")
