"""The module graph (docs/layout.md): no import cycle, and the kernel imports no suite or method.

Every module under bench/, suites/, methods/ and benchmarks/ is parsed with ast (never imported), and every
import statement counts, at module top or inside a function: an import deferred into a function still
makes the modules depend on each other, it only hides the cycle until the function runs.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "suites", "methods", "benchmarks")

# The kernel: what a suite, a method, an adapter or a report section is built on. It never names a suite
# or a method, so a new plug-in touches only its own files and one registry line (docs/layout.md).
KERNEL = (
    "bench.checkpoint", "bench.data", "bench.decide", "bench.distributed", "bench.environment",
    "bench.errors", "bench.fingerprint", "bench.lm_eval_bridge", "bench.loop", "bench.metrics", "bench.models",
    "bench.objective", "bench.phases", "bench.quiet", "bench.registry", "bench.sequential", "bench.settings",
    "bench.spec", "bench.stats",
    "bench.store", "bench.tiny", "bench.tokenizer", "bench.truncation",
)


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (`from bench import stats` -> bench.stats)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the package of `name`
                package = name.split(".") if path.stem == "__init__" else name.split(".")[:-1]
                module = ".".join(package[:len(package) - node.level + 1] + ([module] if module else []))
            submodules = {f"{module}.{alias.name}" for alias in node.names} & set(known)
            found |= submodules
            if len(submodules) < len(node.names):  # a name defined in `module` itself, not one of its submodules
                found.add(module)
    return {m for m in found if m in known and m != name}


@functools.cache
def _graph() -> dict[str, frozenset[str]]:
    known = modules()
    return {name: frozenset(imports(name, path, known)) for name, path in known.items()}


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (parsed once per test session)."""
    return {name: set(targets) for name, targets in _graph().items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted: every import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_and_package_imports():
    """The parser itself, on imports whose targets are known by hand."""
    edges = graph()
    assert "bench.store" in edges["bench.runner"]  # module top: from bench.store import Run, ...
    assert {"bench.checkpoint", "bench.distributed", "bench.phases", "bench.robustness"} <= edges["bench.runner"]
    assert "bench.lm_eval_bridge" in edges["bench.runner"]  # inside a function
    assert "bench.models" in edges["suites.extraction"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert "methods.lora" in edges["methods.fila"] and "methods" not in edges["methods.fila"]  # from methods import lora
    assert "bench" not in edges["bench.report"]  # from bench import robustness, stats: the submodules only


def test_no_import_cycle():
    found = cycles(graph())
    assert found == [], f"import cycles: {found}"


def test_the_kernel_imports_no_suite_method_or_application_module():
    edges = graph()
    missing = [m for m in KERNEL if m not in edges]
    assert not missing, f"kernel modules that do not exist: {missing} (update KERNEL and docs/layout.md)"
    outside = {(m, t) for m in KERNEL for t in edges[m] if t not in KERNEL}
    assert not outside, f"kernel modules importing outside the kernel: {sorted(outside)}"


def test_only_the_perf_command_imports_the_benchmarks():
    edges = graph()
    importers = {m for m, ts in edges.items() for t in ts if t.startswith("benchmarks") and not m.startswith("benchmarks")}
    assert importers == {"bench.cli"}  # cmd_perf: `python -m bench perf` runs benchmarks/
