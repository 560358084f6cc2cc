"""Model loading in one place: a registry name, a hub id or a local directory -> (model, tokenizer).

Registry names carry the paper's learning rates and prompt format (the model's *recipe*). A local
directory keeps its recipe when named `NAME=DIR` (`phi-1.5=/models/phi-1_5`) or when its config.json
identifies it (`recipe_of`); `show-config` states which recipe every run gets and why. Loading prefers
what is already on disk (a local directory, then the Hugging Face cache) and only then asks the hub;
when the hub cannot be reached the error says so at once, with how to point the harness at local files.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bench.errors import BenchError, unknown
from bench.registry import Registry
from bench.tokenizer import check_vocabulary

DTYPES = {"fp32": "float32", "bf16": "bfloat16"}  # torch dtypes by name: torch loads only with a model


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its hub id (and pinned revision), prompt family and the paper's learning rates."""

    name: str
    hub_id: str
    family: str  # selects the prompt format: phi | llama2-chat | gpt-neo | chat-template
    model_type: str  # config.json's model_type: a directory named like hub_id is this model only if it matches
    unlearn_lr: float
    finetune_lr: float | None = None
    revision: str | None = None
    note: str = ""


MODELS: Registry[ModelInfo] = Registry("model")
for _info in (
    ModelInfo("phi-1.5", "microsoft/phi-1_5", "phi", "phi", unlearn_lr=2e-4, finetune_lr=2e-5),
    ModelInfo("llama2-7b", "meta-llama/Llama-2-7b-chat-hf", "llama2-chat", "llama", unlearn_lr=1e-4, finetune_lr=1e-5,
              note="gated on the hub: accept the licence and log in first"),
    ModelInfo("gpt-neo-125m", "EleutherAI/gpt-neo-125M", "gpt-neo", "gpt_neo", unlearn_lr=5e-5),
    ModelInfo("gpt-neo-1.3b", "EleutherAI/gpt-neo-1.3B", "gpt-neo", "gpt_neo", unlearn_lr=5e-5),
    ModelInfo("gpt-neo-2.7b", "EleutherAI/gpt-neo-2.7B", "gpt-neo", "gpt_neo", unlearn_lr=5e-5),
):
    MODELS.register(_info.name, _info)


def is_local(name_or_path: str) -> bool:
    """Whether `name_or_path` is a local directory (a model on disk) rather than a hub id or registry name."""
    return Path(name_or_path).is_dir()


def split_named(model: str) -> tuple[str | None, str]:
    """`phi-1.5=/models/phi` -> ('phi-1.5', '/models/phi'); anything else -> (None, model)."""
    name, sep, path = model.partition("=")
    return (name, path) if sep and name in MODELS else (None, model)


def recipe_of(model: str) -> tuple[ModelInfo | None, str]:
    """(the registry entry whose recipe `model` gets, why). A registry name is itself; `NAME=DIR` names its
    recipe; a directory is recognised when its config.json records a registry hub id as `_name_or_path`, or
    when the directory (or the hub cache's `models--org--name` folder above it) is named like a registry
    hub id and config.json's model_type agrees. Anything else gets the suite's generic defaults."""
    if model in MODELS:
        return MODELS[model], "registry name"
    named, path = split_named(model)
    if named:
        return MODELS[named], f"named: {named}={path}"
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None, "generic defaults (not a registry model; name one with NAME=DIR)"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return None, f"generic defaults ({config_file} is unreadable)"
    folders = [p.name for p in (Path(path).resolve(), *Path(path).resolve().parents)]
    for _, info in MODELS.items():
        if config.get("_name_or_path") == info.hub_id:
            return info, f"detected: {config_file} names {info.hub_id}"
        named_like = info.hub_id.split("/")[-1] == folders[0] or f"models--{info.hub_id.replace('/', '--')}" in folders
        if named_like and config.get("model_type") == info.model_type:
            return info, f"detected: directory named like {info.hub_id}, model_type {info.model_type}"
    return None, "generic defaults (config.json matches no registry model; name one with NAME=DIR)"


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
    """A model is a registry name, a model directory (written as a path, existing here, or `NAME=DIR`), or a hub id
    `org/name`. Raises BenchError quoting the name as typed."""
    if not name.strip():  # Path("") is the working directory: never a model anyone meant
        raise BenchError(f"bad model {name!r} (expected a registry name, a model directory or a hub id)")
    named, path = split_named(name)
    if named and not path:
        raise BenchError(f"model '{name}' names no directory (expected {named}=DIR)")
    if named and _exists(name):  # a directory of that name here: say how to write each reading
        first = f"write {named}=./{path} for the first or " if _exists(path) else \
            f"'{path}' does not exist here; write "
        raise BenchError(f"model '{name}' reads as NAME=DIR ({named}'s recipe for '{path}') and is a directory here; "
                         f"{first}./{name} for the directory")
    if name in MODELS:
        return
    written_as_path = path.startswith((".", "/", "~")) or _exists(path)
    if "=" in name and not named and not written_as_path:  # `epoch=3-step=100/` is a directory, not NAME=DIR
        raise unknown("registry recipe of NAME=DIR", name.partition("=")[0], MODELS.names())
    local = Path(path).expanduser()
    if named or written_as_path or (os.sep in path and _exists(str(local.parent))):
        check_model_dir(path, f"model directory '{path}'" + (f" (named {named})" if named else ""))
        return
    if name.count("/") != 1:
        raise unknown("model", name, MODELS.names())


def check_model_dir(path: str, what: str, valid: str = "a model directory written by save_pretrained") -> None:
    """Raises BenchError, `what` saying what was given, unless `path` is a directory holding config.json: anything
    else fails later in from_pretrained with a hub or tokenizer error that names neither."""
    directory = Path(path).expanduser()
    if not _exists(path):
        problem = "does not exist"
    elif not directory.is_dir():
        problem = "is not a directory"
    elif not (directory / "config.json").is_file():
        problem = "holds no config.json"
    else:
        return
    raise BenchError(f"{what} {problem} (expected {valid})")


# a hub id as from_pretrained takes it (`org/name`): a value of this shape that is no path here stays a hub id
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _exists(path: str) -> bool:
    """Path.exists, False for a name the system refuses outright (too long, NUL) rather than OSError."""
    if not path:  # Path("") is ".": an empty name names nothing
        return False
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError):
        return False


def local_model_path(value: str) -> str | None:
    """The real path of `value` (absolute, symbolic links and `..` resolved, as the operating system opens it) when it
    names a local path: existing here (from_pretrained reads a local directory before the hub, whatever its name's
    shape), written as one (starting with '.', '/' or '~'), or with a '/' but not shaped like a hub id; else None (a
    hub id or a keyword). `./m`, `m/`, `models/m`, `/abs/x/../m` and, in a symlinked working directory, `$PWD/m` are
    one model, so one run id; `~` is expanded (from_pretrained does not expand it)."""
    if value and (_exists(value) or value.startswith((".", "/", "~")) or ("/" in value and not HUB_ID.fullmatch(value))):
        return os.path.realpath(os.path.expanduser(value))
    return None


def canonical_model(model: str, names: Sequence[str] = ()) -> str:
    """`--models` / `--model` in the one spelling run ids and reference models are keyed by: a local directory as
    `local_model_path` gives it (in `NAME=DIR`, the DIR); a registry name, one of `names` (the suite's own models)
    or a hub id as given."""
    if model in MODELS or model in names:
        return model
    named, path = split_named(model)
    if named:  # DIR is a directory by the form's definition
        return f"{named}={os.path.realpath(os.path.expanduser(path))}"
    return local_model_path(model) or model


def canonical_model_option(key: str, value: str, keywords: tuple[str, ...] = ()) -> str:
    """An option naming a model (`--option target=...`), in the one spelling its run id uses: a local path as
    `local_model_path` gives it, a hub id or one of `keywords` as given. Raises BenchError for a local path that is
    not a directory holding config.json (the run would fail later with a hub or tokenizer error), and for an empty
    value where "" is no keyword."""
    kinds = ["a model directory written by save_pretrained", "a hub id"] + [k for k in keywords if k]  # "": the default
    valid = ", ".join(kinds[:-1]) + f" or {kinds[-1]}"
    if value in keywords:
        return value
    if not value.strip():
        raise BenchError(f"bad option {key}={value!r} (expected {valid})")
    path = local_model_path(value)
    if path is not None:
        check_model_dir(path, f"bad option {key}={value!r}:" + (f" {path}" if path != value else ""), valid)
    return path or value


def resolve(name_or_path: str) -> tuple[str, str | None]:
    """(hub id or local path, revision)."""
    if name_or_path in MODELS:
        info = MODELS[name_or_path]
        return info.hub_id, info.revision
    return split_named(name_or_path)[1], None


def load_model(name_or_path: str, dtype: str = "fp32", trust_remote_code: bool = False,
               device: str = "cpu", offline_hint: str = "pass its local directory with --models DIR (bench run) or "
                                                     "--model DIR (bench finetune)"):
    """Return (model, tokenizer). Weights come from safetensors where the checkpoint offers them.
    `offline_hint`: how the user supplies this model locally, for the error when it is not on this machine."""
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
            f"download it elsewhere and {offline_hint} (or set HF_HOME to a cache holding it)")
    return _load(source, dtype, device, kwargs, local_only=False)


def _load(source, dtype, device, kwargs, local_only):
    # torch, transformers load when this runs, not when the CLI imports bench.models
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, **{
        k: v for k, v in kwargs.items() if k in ("revision", "trust_remote_code")})
    model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, DTYPES[dtype]), local_files_only=local_only,
                                                 **kwargs)

    check_vocabulary(tokenizer, source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False,
                   offline_hint: str = "pass its local directory with --models DIR"):
    """The tokenizer alone (pad = eos where it has none), from disk first; BenchError when it is on neither
    or when it loads with an empty vocabulary (bench.tokenizer.check_vocabulary)."""
    # transformers loads when this runs, not when the CLI imports bench.models
    from transformers import AutoTokenizer

    source, revision = resolve(name_or_path)
    for local_only in (True, False):
        if not local_only and (is_local(source) or not hub_reachable()):
            break
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code,
                                                      local_files_only=local_only)
        except OSError:
            continue
        check_vocabulary(tokenizer, source)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    where = "holds no loadable tokenizer" if is_local(source) else \
        "is not on this machine and the Hugging Face hub cannot be reached"
    raise BenchError(f"the tokenizer of '{source}' {where}; {offline_hint}")


def same_tokenizer(a, b) -> bool:
    """True when two tokenizers map every token to the same id (NLLs computed on one apply to the other)."""
    return a.get_vocab() == b.get_vocab() and a.all_special_ids == b.all_special_ids


def count_parameters(model) -> dict[str, int]:
    """{"trainable": parameters with requires_grad, "total": all parameters} of a torch module (counts of
    scalars, not tensors)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}


def on_meta(build):
    """`build()`'s model on the meta device: its modules and shapes without allocating weights (what
    bench/preflight.py checks before anything is built; a suite's `model_structure` returns it)."""
    # torch loads when this runs, not when the CLI imports bench.models
    import torch

    with torch.device("meta"):
        return build()


class _StandInVocabulary:
    """What bench.tiny.build_tiny reads of a tokenizer, for a structure whose vocabulary no check reads
    (the output embedding is never adapted)."""

    eos_token_id = pad_token_id = 0

    def __len__(self) -> int:
        return 256


STAND_IN_VOCABULARY = _StandInVocabulary()


# architectures whose logits are exactly lm_head(last hidden state): scoring may run the head only where it reads
PLAIN_HEADS = ("llama", "phi", "gpt_neo", "gpt2", "mistral", "qwen2")


def decoder_and_head(model):
    """(transformer body, lm_head) of a Hugging Face causal LM whose logits are exactly
    lm_head(last hidden state); None for anything else (logit soft-capping, custom heads, ...).
    A PEFT model is unwrapped: its LoRA layers live inside the underlying model's modules."""
    # transformers loads when this runs, not when the CLI imports bench.models
    from transformers import PreTrainedModel

    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    if not isinstance(model, PreTrainedModel) or model.config.model_type not in PLAIN_HEADS:
        return None
    body, head = getattr(model, model.base_model_prefix, None), model.get_output_embeddings()
    return (body, head) if body is not None and head is not None else None
