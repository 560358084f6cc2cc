import dataclasses
import subprocess
import sys

import pytest

from bench.errors import BenchError
from bench.spec import Hyperparams, RunSpec

SPEC = RunSpec("tofu-mini", "tiny-llama", "forget10", "ihl", "fila", 4, 0, Hyperparams(lr=1e-3),
               (("generation", "new:32"), ("max_items", 0)))


def test_same_spec_same_id_in_a_fresh_process():
    code = ("from bench.spec import *; print(RunSpec('tofu-mini', 'tiny-llama', 'forget10', 'ihl', 'fila', 4, 0, "
            "Hyperparams(lr=1e-3), (('generation', 'new:32'), ('max_items', 0))).run_id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == SPEC.run_id
    assert SPEC.run_id.startswith("forget10__ihl+fila-r4__tiny-llama__s0__")


@pytest.mark.parametrize("change", [
    dict(suite="tofu"), dict(model="tiny-phi"), dict(split="forget05"), dict(objective="ga"),
    dict(adapter="lora"), dict(rank=8), dict(seed=1), dict(hparams=Hyperparams(lr=2e-3)),
    dict(hparams=Hyperparams(lr=1e-3, retain_weight=0.5)), dict(options=(("generation", "new:200"), ("max_items", 0))),
])
def test_any_field_change_gives_a_new_id(change):
    assert dataclasses.replace(SPEC, **change).run_id != SPEC.run_id


def test_round_trip_through_json():
    assert RunSpec.from_dict(SPEC.to_dict()) == SPEC
    assert RunSpec.from_dict(SPEC.to_dict()).run_id == SPEC.run_id


def test_hyperparameter_overrides_are_typed_and_checked():
    hp = Hyperparams().replace(lr="3e-4", epochs="7")
    assert hp.lr == 3e-4 and hp.epochs == 7
    with pytest.raises(BenchError, match="unknown hyperparameter 'retain_wieght'; did you mean 'retain_weight'"):
        Hyperparams().replace(retain_wieght="1")
    with pytest.raises(BenchError, match="bad hyperparameter lr='fast'"):
        Hyperparams().replace(lr="fast")
    with pytest.raises(BenchError, match="bad hyperparameter dtype='fp16'"):
        Hyperparams(dtype="fp16")


def test_a_run_id_is_read_back_only_in_the_shape_run_id_writes():
    """parse_run_id reads what RunSpec.run_id writes (split, method, model, seed, the spec hash's first 10 hex digits),
    and nothing else: a copy's suffix, a negative seed or a short hash is no run id."""
    from bench.grid import expand
    from bench.spec import parse_run_id

    [spec] = expand("tofu-mini", "ihl+fila", seeds="7")
    assert parse_run_id(spec.run_id) == {"split": "forget10", "method": "ihl+fila-r4", "model": "tiny-llama",
                                         "seed": 7, "hash": spec.hash[:10]}
    for name in (spec.run_id + ".bak", spec.run_id.replace("__s7__", "__s-1__"), "forget10__ga__tiny-llama__s0__abc"):
        assert parse_run_id(name) is None
