"""Static checks of the package's structure: layers, cycles, public names, measurements out of the code.

The layers (lowest first) are the ones the package promises: every import in a module, including
imports inside functions, must point to its own layer or a lower one, and the import graph between
modules has no cycle. A new module must be placed in ``LAYERS`` explicitly.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "egu_widgets"

#: module-name prefix -> layer rank (the longest matching prefix wins).
LAYERS = {
    "egu_widgets.errors": 0,
    "egu_widgets.validation": 0,
    "egu_widgets._atomic": 0,
    "egu_widgets.memory": 0,
    "egu_widgets.cube": 1,
    "egu_widgets.classic": 2,
    "egu_widgets.metrics": 2,
    # The result container sits below the engine: the engine returns UnmixingResults.
    "egu_widgets.results": 3,
    "egu_widgets.chunked": 3,
    "egu_widgets.engine": 4,
    "egu_widgets.methods": 5,
    "egu_widgets.unmixing": 5,
    "egu_widgets.figure_data": 6,
    "egu_widgets.plotting": 7,
    "egu_widgets.reproduce": 8,
    "egu_widgets.widgets": 9,
    "egu_widgets.cli": 10,
    "egu_widgets": 11,  # the package's __init__ re-exports from below
}
LAYER_NAMES = {
    0: "base",
    1: "cube",
    2: "classic/metrics",
    3: "results",
    4: "engine",
    5: "methods",
    6: "figure data",
    7: "plotting",
    8: "reproduce",
    9: "views",
    10: "cli",
    11: "package",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Package modules imported by ``name`` anywhere in its source (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                root = base[: len(base) - node.level + 1]
                mod = ".".join(root + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule; `from pkg import name` the module pkg
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            if not t.startswith("egu_widgets"):
                continue
            # the deepest known module that the target names
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _rank(module: str) -> int | None:
    best = None
    for prefix, rank in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, rank)
    return None if best is None else best[1]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def test_every_module_has_a_layer():
    unplaced = [m for m in _modules() if _rank(m) is None]
    assert not unplaced, f"place these modules in tests/test_architecture.py LAYERS: {unplaced}"


def test_imports_point_down_only():
    upward = []
    for mod, deps in _graph().items():
        r = _rank(mod)
        if mod == "egu_widgets":
            continue
        for d in deps:
            rd = _rank(d)
            if d == "egu_widgets":
                rd = LAYERS["egu_widgets"]
            if rd is not None and r is not None and rd > r:
                upward.append(f"{mod} ({LAYER_NAMES[r]}) imports {d} ({LAYER_NAMES[rd]})")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _graph()
    # Package __init__ modules re-export their children; an edge child -> parent package is a
    # cycle too, so nothing is exempt.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_engine_and_lower_layers_import_no_view_library():
    views = re.compile(r"^\s*(import|from)\s+(ipywidgets|holoviews|bokeh|IPython|panel|jupyter_bokeh)\b", re.M)
    offenders = [
        m
        for m, p in _modules().items()
        if (_rank(m) or 0) < LAYERS["egu_widgets.widgets"] and views.search(p.read_text())
    ]
    assert not offenders, f"below the views, these import a widget library: {offenders}"


def test_public_modules_declare_all():
    missing, wrong = [], []
    for m, p in _modules().items():
        if any(part.startswith("_") and part != "__init__" for part in p.relative_to(PACKAGE).parts):
            continue
        tree = ast.parse(p.read_text())
        names = None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                names = ast.literal_eval(node.value)
        if names is None:
            missing.append(m)
            continue
        defined = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        wrong += [f"{m}.{n}" for n in names if n not in defined]
    assert not missing, f"public modules without __all__: {missing}"
    assert not wrong, f"names in __all__ that the module does not define: {wrong}"


DATED = re.compile(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_dated_measurements_in_the_package(path):
    hits = [
        f"line {i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1) if DATED.search(line)
    ]
    assert not hits, f"dated text belongs in docs/ with its command, not in {path.name}:\n" + "\n".join(hits)


def test_version_comes_from_the_installed_metadata():
    from importlib.metadata import version

    import egu_widgets

    assert egu_widgets.__version__ == version("egu_widgets")
    assert not re.search(r'__version__ = "\d+\.\d', (PACKAGE / "__init__.py").read_text()), "version written in code"
