"""The import structure of the code: every module of bench/ sits in one layer of `LAYERS` (bottom
first), a module imports only from its own layer or the ones below it, the core (bench/) never imports
the models (baselines/, submissions/), and no two modules import each other, even indirectly.

Imports are read with `ast` from the source, wherever they are (module level or inside a function),
except under ``if TYPE_CHECKING:`` (annotations only, no dependency at run time).

Why results sits below score: the data flow is scorer -> results -> leaderboard, and results.py is the
format the scorer writes and the leaderboard reads, so both import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import REPO_ROOT

#: bottom first; a name ending in ".*" stands for the package and everything in it
LAYERS = (
    ("foundation", ("bench", "bench.errors", "bench.console", "bench.env", "bench.names", "bench.locks",
                    "bench.workers", "bench.runguard")),
    ("signal", ("bench.audio", "bench.dsp", "bench.streaming", "bench.speed")),
    ("protocol", ("bench.protocol", "bench.protocol.manipulations", "bench.protocol.batched")),
    ("data", ("bench.data", "bench.data.corpus", "bench.data.manifest", "bench.data.tracks", "bench.data.root",
              "bench.data.prepared", "bench.data.prepare", "bench.data.verify", "bench.data.archive",
              "bench.data.download", "bench.data.recorded", "bench.data.evaluation", "bench.data.sampling",
              "bench.data.selection", "bench.data.resident",
              "bench.data.commands")),
    ("measures", ("bench.measures", "bench.composite", "bench.dnsmos")),
    ("metrics", ("bench.metrics", "bench.stats", "bench.losses")),
    ("adapters", ("bench.adapters", "bench.modelcard", "bench.weights")),
    ("models", ("baselines.*", "submissions.*")),
    ("train", ("bench.adversarial", "bench.batches", "bench.checkpoints", "bench.distributed", "bench.train")),
    ("run configuration", ("bench.runconfig",)),
    ("results format", ("bench.results",)),
    ("suite", ("bench.suite",)),
    ("score", ("bench.score",)),
    ("evidence", ("bench.evidence",)),
    ("board", ("bench.board", "bench.leaderboard", "bench.compare", "bench.site", "bench.site_media")),
    ("pipeline", ("bench.pipeline",)),
    ("commands", ("bench.reproduce", "bench.noise", "bench.contract", "bench.check", "bench.new", "bench.enhance")),
    ("cli", ("bench.cli", "bench.__main__")),
)
PACKAGES = ("bench", "baselines", "submissions")
CORE, MODELS = "bench", ("baselines", "submissions")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
           (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports(ast.Module(body=[child], type_ignores=[])))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def imported_modules(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that module `name` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    out = set()
    for node in _imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:   # relative: from the module's package
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        out.update(t for t in targets if t.split(".")[0] in PACKAGES)
    out.discard(name)
    return out


def import_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}
    known = set(files)
    return {name: imported_modules(p.read_text(encoding="utf-8"), name, p.name == "__init__.py", known)
            for name, p in files.items()}


def layer_of(module: str, layers=LAYERS) -> int | None:
    for i, (_, members) in enumerate(layers):
        for m in members:
            if module == m or (m.endswith(".*") and (module == m[:-2] or module.startswith(m[:-1]))):
                return i
    return None


def layer_violations(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    problems = []
    for mod, deps in sorted(graph.items()):
        lm = layer_of(mod, layers)
        if lm is None:
            problems.append(f"{mod} is in no layer: add it to LAYERS in tests/test_layers.py")
            continue
        for dep in sorted(deps):
            if mod.split(".")[0] == CORE and dep.split(".")[0] in MODELS:
                problems.append(f"{mod} imports {dep}: the core never imports baselines/ or submissions/")
                continue
            ld = layer_of(dep, layers)
            if ld is not None and ld > lm:
                problems.append(f"{mod} ({layers[lm][0]}) imports {dep} ({layers[ld][0]}), a layer above it")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ----------------------------------------------------------------------------------------------
def test_the_code_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_import_follows_the_layers():
    assert layer_violations(import_graph()) == []


def test_the_graph_is_read_from_the_source():
    g = import_graph()
    assert "bench.adapters" in g["bench.train"] and "bench.cli" in g["bench.__main__"]
    assert "baselines.demucs.model" in g["baselines.demucs.streamer"]            # relative import
    assert "bench.streaming" in g["baselines.demucs.streamer"]
    assert "bench.data.commands" in g["bench.cli"]                               # from bench.data import commands
    assert "bench.runconfig" not in g["bench.train"]                             # under TYPE_CHECKING only
    assert "bench.stats" in g["bench.compare"]                                   # inside a function


@pytest.mark.parametrize("graph, expected", [
    ({"bench.a": {"bench.b"}, "bench.b": {"bench.c"}, "bench.c": {"bench.a"}}, [["bench.a", "bench.b", "bench.c"]]),
    ({"bench.a": {"bench.b"}, "bench.b": set(), "bench.c": {"bench.a"}}, []),
])
def test_a_cycle_is_found(graph, expected):
    assert cycles(graph) == expected


def test_upward_and_core_to_model_imports_are_found():
    layers = (("low", ("bench.low",)), ("models", ("baselines.*",)), ("high", ("bench.high",)))
    graph = {"bench.low": {"bench.high"}, "bench.high": {"baselines.x.model", "bench.low"},
             "baselines.x.model": {"bench.low"}, "bench.stray": set()}
    problems = layer_violations(graph, layers)
    assert problems == ["bench.high imports baselines.x.model: the core never imports baselines/ or submissions/",
                        "bench.low (low) imports bench.high (high), a layer above it",
                        "bench.stray is in no layer: add it to LAYERS in tests/test_layers.py"]


def test_imports_are_parsed_with_type_checking_skipped_and_relative_resolved():
    src = ("from typing import TYPE_CHECKING\nimport bench.errors\nfrom . import sibling\nfrom .model import X\n"
           "if TYPE_CHECKING:\n    from bench.train import T\nelse:\n    from bench.audio import A\n"
           "def f():\n    from baselines.demucs import adapter\n")
    known = {"baselines.demucs.sibling", "baselines.demucs.model", "baselines.demucs.adapter"}
    got = imported_modules(src, "baselines.demucs.streamer", False, known)
    assert got == {"bench.errors", "baselines.demucs.sibling", "baselines.demucs.model", "bench.audio",
                   "baselines.demucs.adapter"}
