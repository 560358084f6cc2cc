"""Keep library chatter out of the harness's progress lines (the CLI's process and every pool worker)."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries(verbose: bool) -> None:
    """Library chatter (weight-loading bars, rouge's tokenizer notice, deprecation notes) hides
    the harness's own progress lines; -v brings it back."""
    if verbose:
        return
    for noisy in ("transformers", "datasets", "accelerate", "peft", "lm_eval", "httpx", "filelock", "absl"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*`pretrained` model kwarg.*")
    # environment, not imports: commands that never touch a model must not pay for importing the stack
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")):
        os.environ.setdefault(name, value)
