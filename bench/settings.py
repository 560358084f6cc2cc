"""Settings of a run (`--set NAME=VALUE`): what one is, and the registry the objectives declare theirs in.

The kernel declares the training loop's settings (bench/spec.py); each objective declares the settings
its loss reads in its own file (methods/<name>.py) and registers them here, as lm-eval's tasks register
themselves. `Hyperparams` (bench/spec.py) holds one value per registered setting and checks each against
its declaration, so a new objective adds a setting without editing the kernel.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import BenchError


@dataclass(frozen=True)
class Setting:
    """One named setting: its default, the rule a value must satisfy and the text naming valid values.

    `late`: added after results existed, so a spec records it only when its objective reads it or it
    differs from `default` (runs made before it existed keep their ids); settings that every spec has
    recorded since the first results are not late. `doc` says what it is (with its symbol in the
    formulas), `source` where its default comes from."""

    name: str
    default: Any
    holds: Callable[[Any], bool]
    valid: str  # what would be valid, completing "expected ...": "a number > 0", "nll or kl"
    doc: str = ""
    source: str = ""
    late: bool = True
    # read only when this holds for the run's Hyperparams (retain_loss: when retain_weight > 0); `condition`
    # says it in words for the error of a --set nobody reads
    read_when: Callable[[Any], bool] | None = None
    condition: str = ""
    wants_reference: Callable[[Any], bool] | None = None  # this value needs the frozen model (retain_loss=kl)

    @property
    def kind(self) -> type:
        """The type a value given as text is converted to: the default's (int, float or str)."""
        return type(self.default)

    def check(self, value: Any) -> None:
        """Raise a one-line BenchError naming the value (as typed: -1, not -1.0) and what would be valid."""
        ok, valid = self.holds(value), self.valid
        if isinstance(value, float) and not math.isfinite(value):  # inf passes "> 0" and breaks the spec's JSON
            ok = False
            valid = valid if valid.startswith("a finite") else f"a finite {valid.removeprefix('a ')}"
        if not ok:
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise BenchError(f"bad hyperparameter {self.name}={shown} (expected {valid})")

    def convert(self, value: Any) -> Any:
        """`value` as this setting's kind (the declared default's type: int, float or str). Text that is no such
        value (`--set epochs=2.5`, `--set lr=abc`), a number with a fraction for an integer setting and a
        boolean for a number are one-line BenchErrors saying what is valid, as `check` says it for a value out
        of range (one wording per setting: `--set lr=abc` and `--set lr=-1` both expect "a number > 0")."""
        kind = self.kind
        if kind is str:
            return value if isinstance(value, str) else str(value)
        try:
            if isinstance(value, bool):  # True is an int to Python, not a number to anyone typing it
                raise ValueError(value)
            if isinstance(value, str):
                return int(value) if kind is int else float(value)
            if kind is int and not float(value).is_integer():  # int(2.5) would silently give 2
                raise ValueError(value)
            return kind(value)
        except (TypeError, ValueError, OverflowError):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)  # text as typed, in quotes
            raise BenchError(f"bad hyperparameter {self.name}={shown} (expected {self.valid})") from None


def positive(name: str, default: float, doc: str = "", **kw) -> Setting:
    """A number > 0 (a learning rate, a temperature)."""
    return Setting(name, default, lambda v: v > 0, "a number > 0", doc, **kw)


def non_negative(name: str, default: float, doc: str = "", **kw) -> Setting:
    """A number >= 0 (a weight; 0 switches its term off)."""
    return Setting(name, default, lambda v: v >= 0, "a number >= 0", doc, **kw)


def count(name: str, default: int, doc: str = "", **kw) -> Setting:
    """An integer >= 1 (epochs, examples)."""
    return Setting(name, default, lambda v: v >= 1, "an integer >= 1", doc, **kw)


def finite(name: str, default: float, doc: str = "", **kw) -> Setting:
    """Any finite number (a margin)."""
    return Setting(name, default, math.isfinite, "a finite number", doc, **kw)


def choice(name: str, default: str, choices: tuple[str, ...], doc: str = "", **kw) -> Setting:
    """One of `choices` (`default` first among them)."""
    return Setting(name, default, lambda v: v in choices, " or ".join(choices) if len(choices) == 2
                   else ", ".join(choices[:-1]) + f" or {choices[-1]}", doc, **kw)


# ---- the registry -------------------------------------------------------------------------------------

SETTINGS: dict[str, Setting] = {}  # name -> declaration, in registration order
RECORDED: dict[str, tuple[str, ...]] = {}  # objective -> the late settings its specs record even at their defaults
READERS: dict[str, tuple[str, ...]] = {}  # objective -> every setting its loss and `prepare` read beyond the loop's

# Packages whose import registers the objectives' settings, imported the first time a setting is looked
# up (as lm-eval imports its task directory): the kernel names no plug-in module in an import statement.
PLUGIN_PACKAGES: list[str] = ["methods"]
_loaded = False


def register(setting: Setting) -> Setting:
    """Declare `setting`. Registering the same declaration again is a no-op; another one under a taken
    name raises ValueError (two objectives would read one flat name differently)."""
    known = SETTINGS.get(setting.name)
    if known is not None and known is not setting:
        raise ValueError(f"setting '{setting.name}' declared twice")
    SETTINGS[setting.name] = setting
    return setting


def register_objective(name: str, reads: tuple[Setting, ...], records_defaults: bool) -> None:
    """Declare what objective `name` reads (each setting is registered too). `records_defaults`: its specs
    record its late settings even at their defaults (the objectives added with the late settings do, so
    that a later change of a default cannot silently rename what their runs meant)."""
    for setting in reads:
        register(setting)
    READERS[name] = tuple(s.name for s in reads)
    RECORDED[name] = tuple(s.name for s in reads if s.late) if records_defaults else ()


def load_plugins() -> None:
    """Import the plug-in packages once, so that every setting they declare is registered."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # before importing: a plug-in that builds Hyperparams while it loads must not recurse
    for package in PLUGIN_PACKAGES:
        importlib.import_module(package)


def declared(name: str) -> Setting | None:
    """The declaration of setting `name`, or None if no loaded plug-in declares it."""
    if name not in SETTINGS:
        load_plugins()
    return SETTINGS.get(name)


def recorded_by(objective: str) -> tuple[str, ...]:
    """The late settings a spec of `objective` records even at their defaults (none for an unknown one)."""
    load_plugins()
    return RECORDED.get(objective, ())
