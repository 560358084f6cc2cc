#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv in .venv with the CPU build of torch and the project.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip_install() {  # hide the harmless "Location ... is ignored" noise of local package indexes
  .venv/bin/pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored" >&2)
}
# torch first, pinned: a bare `torch` requirement (or -U) would pull a multi-GB CUDA build.
pip_install "torch==2.13.0"
pip_install -e '.[test]'
.venv/bin/python -c "import torch, transformers, peft, lm_eval, submitit; print('unlearning-bench ready: torch', torch.__version__)"
