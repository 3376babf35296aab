"""The import structure of the code: bench/ is a few packages named after the stages a result flows
through, listed bottom first in `LAYERS`; a module imports only from its own package or the ones below it,
the core (bench/) never imports the models (baselines/, submissions/), and no two modules import each
other, even indirectly. Imports are read with `ast` wherever they are (module level, inside a function,
or under ``if TYPE_CHECKING:``: an annotation is a dependency too).

The shape checks beside it keep the house walkable: no loose module in bench/ but ``__init__`` and
``__main__``, at most 12 packages, none over 12 modules or 1,500 lines, no module over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import REPO_ROOT

#: bottom first; a name ending in ".*" stands for the package and everything in it
LAYERS = (
    ("root", ("bench",)),
    ("core", ("bench.core.*",)),
    ("protocol", ("bench.protocol.*",)),
    ("corpora", ("bench.corpora.*",)),
    ("data", ("bench.data.*",)),
    ("metrics", ("bench.metrics.*",)),
    ("adapters", ("bench.adapters.*",)),
    ("models", ("baselines.*", "submissions.*")),
    ("train", ("bench.train.*",)),
    ("scoring", ("bench.scoring.*",)),
    ("verify", ("bench.verify.*",)),
    ("board", ("bench.board.*",)),
    ("run", ("bench.run.*",)),
    ("cli", ("bench.cli.*", "bench.__main__")),
)
PACKAGES = ("bench", "baselines", "submissions")
CORE, MODELS = "bench", ("baselines", "submissions")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
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
    assert "bench.adapters.base" in g["bench.train.trainer"] and "bench.cli.main" in g["bench.__main__"]
    assert "baselines.demucs.model" in g["baselines.demucs.streamer"]            # relative import
    assert "bench.adapters.streaming" in g["baselines.demucs.streamer"]
    assert "bench.metrics.stats" in g["bench.verify.compare"]


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


def test_imports_are_parsed_with_type_checking_counted_and_relative_resolved():
    src = ("from typing import TYPE_CHECKING\nimport bench.core.errors\nfrom . import sibling\nfrom .model import X\n"
           "if TYPE_CHECKING:\n    from bench.train.trainer import T\nelse:\n    from bench.core.audio import A\n"
           "def f():\n    from baselines.demucs import adapter\n")
    known = {"baselines.demucs.sibling", "baselines.demucs.model", "baselines.demucs.adapter"}
    got = imported_modules(src, "baselines.demucs.streamer", False, known)
    assert got == {"bench.core.errors", "baselines.demucs.sibling", "baselines.demucs.model", "bench.core.audio",
                   "baselines.demucs.adapter", "bench.train.trainer"}


# ----------------------------------------------------------------------------------------------
# the shape of the house
MAX_PACKAGES, MAX_MODULES, MAX_PACKAGE_LINES, MAX_MODULE_LINES = 12, 12, 1500, 400


def _lines(p: Path) -> int:
    return len(p.read_text(encoding="utf-8").splitlines())


def test_bench_has_no_loose_module():
    loose = sorted(p.name for p in (REPO_ROOT / "bench").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == []


def test_every_package_is_small_and_in_a_layer():
    pkgs = sorted(p.parent for p in (REPO_ROOT / "bench").glob("*/__init__.py"))
    assert len(pkgs) <= MAX_PACKAGES
    for pkg in pkgs:
        mods = sorted(pkg.rglob("*.py"))
        assert len([m for m in mods if m.name != "__init__.py"]) <= MAX_MODULES, pkg.name
        assert sum(_lines(m) for m in mods) <= MAX_PACKAGE_LINES, pkg.name
        assert layer_of(f"bench.{pkg.name}") is not None, pkg.name


def test_no_module_is_long():
    long = {str(p.relative_to(REPO_ROOT)): _lines(p) for p in (REPO_ROOT / "bench").rglob("*.py")
            if _lines(p) > MAX_MODULE_LINES}
    assert long == {}


def test_every_package_says_what_it_is_for():
    for init in sorted((REPO_ROOT / "bench").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{init.parent.name}/__init__.py: say what it is for and what it may import"
