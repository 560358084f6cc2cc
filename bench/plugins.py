"""Plug-ins from outside this repository: the modules named in the environment variable
UNLEARNING_BENCH_PLUGINS (comma-separated, importable from sys.path / PYTHONPATH) are imported when the suite
registry is built, so that their one registration line (`SUITES.register(...)`, `OBJECTIVES.register(...)`)
has run in every process that looks a name up: the CLI, `--workers N`'s spawned processes, submitit's jobs.

    UNLEARNING_BENCH_PLUGINS=my_method,my_suite PYTHONPATH=plugins python -m bench run --suite toy --methods mine

README's "Adding a method, a suite or a metric" shows the two files; tests/test_plugins.py runs them.
"""

from __future__ import annotations

import importlib
import os

from bench.errors import BenchError

VARIABLE = "UNLEARNING_BENCH_PLUGINS"


def load_plugins() -> list[str]:
    """Import every module named in $UNLEARNING_BENCH_PLUGINS, in order (an imported module is not imported
    again); returns their names. A module that cannot be imported is a one-line BenchError naming it."""
    names = [n.strip() for n in os.environ.get(VARIABLE, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # the plug-in itself imports something missing: its own error says what
                raise
            raise BenchError(f"plug-in module {name!r} (from {VARIABLE}) is not importable: put its directory on "
                             f"PYTHONPATH, or remove it from {VARIABLE}") from None
        except ValueError as e:  # a registration the registries refuse, e.g. a name that is already taken
            raise BenchError(f"plug-in module {name!r} (from {VARIABLE}) cannot register: {e}") from None
    return names
