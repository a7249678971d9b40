"""The package's import graph: no circles, and no module imports a layer above it.

Every `import`/`from ... import` of an `aishell` module counts, at module level or
inside a function (a lazy import is still an edge), except imports under
`if TYPE_CHECKING:` (types only, never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aishell

SRC = Path(aishell.__file__).resolve().parent

# Layers, lowest first: a module may import its own layer or a lower one.
LAYERS: tuple[tuple[str, ...], ...] = (
    # the record type everything uses (aishell.tuples.NamedTuple)
    ("tuples",),
    # data and pure helpers
    ("constants", "errors", "paths", "hashing", "versions", "harnesses", "output", "fileio"),
    ("interrupts", "diagnose"),
    ("netpolicy", "project", "state", "config", "gitconfig", "trust", "journal"),
    # the host and the engine, each talked to by one module
    ("hostgit", "engine.run_args", "engine.client"),
    ("hostfacts", "worktrees", "security", "engine", "agenthome", "changes", "records"),
    # the core: the launch pipeline and sessions, what commands report
    ("session", "launch", "discovery", "report_json"),
    # the surface
    ("commands",),
    ("cli", "__main__", "completion"),
)


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["aishell", *parts])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """The aishell modules `path` imports (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aishell"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            if base.startswith("aishell"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in ALL else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(me)
    return {m for m in found if m in ALL}


ALL = {module_name(p) for p in SRC.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}


def layer_of(module: str) -> int:
    rel = module.removeprefix("aishell").removeprefix(".") or "__init__"
    best, best_len = None, -1
    for index, names in enumerate(LAYERS):
        for name in names:
            if (rel == name or rel.startswith(name + ".")) and len(name) > best_len:
                best, best_len = index, len(name)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def test_every_module_has_a_layer() -> None:
    for module in ALL:
        if module != "aishell":
            layer_of(module)


def test_no_import_circles() -> None:
    # Tarjan's strongly connected components; any component of more than one module
    # (or a module importing itself) is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            strong(v)
    assert circles == []


def _package_of(module: str) -> str:
    return module.rsplit(".", 1)[0]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_upward_imports(module: str) -> None:
    if module == "aishell":
        return
    mine = layer_of(module)
    upward = [
        target
        for target in sorted(GRAPH[module])
        if target != "aishell"
        # a package's __init__ may hand on names of its own submodules
        and not target.startswith(module + ".")
        and layer_of(target) > mine
    ]
    assert upward == [], f"{module} (layer {mine}) imports a higher layer: {upward}"


def test_the_graph_is_read() -> None:
    """Guard for the tests above: the parser sees real edges."""
    assert "aishell.engine.client" in GRAPH["aishell.launch.materialise"] or (
        "aishell.engine.choice" in GRAPH["aishell.launch.materialise"]
    )
    assert "aishell.launch" in GRAPH["aishell.commands.sandbox"]
