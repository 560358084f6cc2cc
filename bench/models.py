"""Model loading in one place: a registry name, a hub id or a local directory -> (model, tokenizer).

Registry names carry the paper's learning rates. Loading prefers what is already on disk (a local
directory, then the Hugging Face cache) and only then asks the hub; when the hub cannot be reached
the error says so at once, with how to point the harness at local files instead.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, unknown
from bench.registry import Registry

DTYPES = {"fp32": "float32", "bf16": "bfloat16"}  # torch dtypes by name: torch loads only with a model


@dataclass(frozen=True)
class ModelInfo:
    name: str
    hub_id: str
    family: str  # selects the prompt format: phi | llama2-chat | gpt-neo | chat-template
    unlearn_lr: float
    finetune_lr: float | None = None
    revision: str | None = None
    note: str = ""


MODELS: Registry[ModelInfo] = Registry("model")
for _info in (
    ModelInfo("phi-1.5", "microsoft/phi-1_5", "phi", unlearn_lr=2e-4, finetune_lr=2e-5),
    ModelInfo("llama2-7b", "meta-llama/Llama-2-7b-chat-hf", "llama2-chat", unlearn_lr=1e-4, finetune_lr=1e-5,
              note="gated on the hub: accept the licence and log in first"),
    ModelInfo("gpt-neo-125m", "EleutherAI/gpt-neo-125M", "gpt-neo", unlearn_lr=5e-5),
    ModelInfo("gpt-neo-1.3b", "EleutherAI/gpt-neo-1.3B", "gpt-neo", unlearn_lr=5e-5),
    ModelInfo("gpt-neo-2.7b", "EleutherAI/gpt-neo-2.7B", "gpt-neo", unlearn_lr=5e-5),
):
    MODELS.register(_info.name, _info)


def is_local(name_or_path: str) -> bool:
    return Path(name_or_path).is_dir()


def hub_reachable(timeout: float = 3.0) -> bool:
    """DNS lookups here can stall for tens of seconds; give up after `timeout`."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    result = []

    def probe():
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def check_model_name(name: str) -> None:
    """A model is a registry name, an existing directory, or a hub id `org/name`."""

    if name in MODELS or is_local(name):
        return
    if name.startswith((".", "/", "~")) or os.sep in name and Path(name).parent.exists():
        raise BenchError(f"model directory '{name}' does not exist")
    if name.count("/") != 1:
        raise unknown("model", name, MODELS.names())


def resolve(name_or_path: str) -> tuple[str, str | None]:
    """(hub id or local path, revision)."""
    if name_or_path in MODELS:
        info = MODELS[name_or_path]
        return info.hub_id, info.revision
    return name_or_path, None


def load_model(name_or_path: str, dtype: str = "fp32", trust_remote_code: bool = False,
               device: str = "cpu"):
    """Return (model, tokenizer). Weights come from safetensors where the checkpoint offers them."""
    source, revision = resolve(name_or_path)
    check_model_name(name_or_path)
    kwargs = dict(revision=revision, trust_remote_code=trust_remote_code, use_safetensors=None)
    try:
        return _load(source, dtype, device, kwargs, local_only=True)
    except OSError:
        if is_local(source):
            raise BenchError(f"'{source}' holds no loadable model (expected config.json and weights)") from None
    if not hub_reachable():
        raise BenchError(
            f"model '{source}' is not on this machine and the Hugging Face hub cannot be reached; "
            f"download it elsewhere and pass its local directory as --model PATH (or set HF_HOME to a cache holding it)")
    return _load(source, dtype, device, kwargs, local_only=False)


def _load(source, dtype, device, kwargs, local_only):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, **{
        k: v for k, v in kwargs.items() if k in ("revision", "trust_remote_code")})
    model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, DTYPES[dtype]), local_files_only=local_only,
                                                 **kwargs)
    from bench.tokenizer import check_vocabulary

    check_vocabulary(tokenizer, source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def count_parameters(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}
