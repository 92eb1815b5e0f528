"""The API reference covers the package: every public module is listed, every public name is documented.

The documentation site (``docs/``, built with ``sphinx-build -W --keep-going -b html docs
docs/_build/html``) generates its API reference with autosummary from the modules listed in
``docs/api/index.rst``; each module page lists what the module's ``__all__`` exports. These tests
keep that list complete (a new public module shows up in the docs) and make sure every exported
name has a docstring for the reference to show: autodoc leaves a name without one blank, and
leaves undocumented members of a class out altogether. They read the package only; the site
itself is built in CI, not here.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import egu_widgets

ROOT = Path(__file__).resolve().parents[1]
API_INDEX = ROOT / "docs" / "api" / "index.rst"


def public_modules() -> list[str]:
    """The package and its top-level modules and subpackages whose names do not start with ``_``."""
    names = [info.name for info in pkgutil.iter_modules(egu_widgets.__path__) if not info.name.startswith("_")]
    return ["egu_widgets"] + [f"egu_widgets.{name}" for name in sorted(names)]


def listed_modules(text: str) -> list[str]:
    """The entries of the first ``autosummary`` directive of an reST page."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(".. autosummary::"))
    entries = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        entry = line.strip()
        if entry and not entry.startswith(":"):
            entries.append(entry)
    return entries


def exported_names(module) -> list[str]:
    """``__all__``, or for a module without one the public names it defines itself."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(obj)
        and getattr(obj, "__module__", module.__name__) == module.__name__
    ]


def doc_comment(source: str, name: str) -> str | None:
    """The doc of a module-level assignment to ``name``: ``#:`` lines above it or a string below it.

    These are the two forms autodoc reads for data (``#: text`` before, or a bare string literal
    right after the assignment).
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    body = tree.body
    for i, node in enumerate(body):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
            continue
        above = []
        k = node.lineno - 2
        while k >= 0 and lines[k].strip().startswith("#:"):
            above.insert(0, lines[k].strip()[2:].strip())
            k -= 1
        if any(above):
            return "\n".join(above)
        after = body[i + 1] if i + 1 < len(body) else None
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            return after.value.value
    return None


def data_doc(module, name: str) -> str | None:
    """The doc comment of data ``name`` where it is assigned: in ``module`` or, for a package, one of its modules."""
    names = [module.__name__]
    if hasattr(module, "__path__"):
        names += [info.name for info in pkgutil.walk_packages(module.__path__, module.__name__ + ".")]
    for modname in names:
        path = inspect.getsourcefile(importlib.import_module(modname))
        if path:
            found = doc_comment(Path(path).read_text(encoding="utf-8"), name)
            if found and found.strip():
                return found
    return None


def own_doc(obj) -> str:
    """The object's own docstring: a class's, not one inherited from its bases nor the signature
    that ``dataclasses`` writes when the class has none."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return ""
        return doc
    return getattr(obj, "__doc__", None) or ""


def undocumented(module, *, members: bool = False) -> list[str]:
    """Exported names of ``module`` without a docstring (with ``members``: the public methods and
    properties of its exported classes instead, which autodoc leaves out when undocumented)."""
    missing = []
    for name in exported_names(module):
        if name.startswith("__"):  # __version__ and the like: described in the module's docstring
            continue
        obj = getattr(module, name)
        if not members:
            if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj):
                if not own_doc(obj).strip():
                    missing.append(name)
            elif not data_doc(module, name):
                missing.append(f"{name} (data: give it a '#:' comment where it is assigned)")
        elif inspect.isclass(obj) and obj.__module__.startswith("egu_widgets"):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                target = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if (inspect.isroutine(target) or isinstance(member, property)) and not (
                    getattr(target, "__doc__", None) or ""
                ).strip():
                    missing.append(f"{name}.{attr}")
    return missing


def test_public_modules_are_found():
    modules = public_modules()
    assert {"egu_widgets", "egu_widgets.cube", "egu_widgets.engine", "egu_widgets.widgets"} <= set(modules)
    assert not any(m.split(".")[-1].startswith("_") for m in modules)


def test_listed_modules_reads_the_autosummary_entries():
    page = "Title\n=====\n\n.. autosummary::\n   :toctree: generated\n\n   pkg\n   pkg.a\n\nAfter.\n\n.. autosummary::\n\n   pkg.b\n"
    assert listed_modules(page) == ["pkg", "pkg.a"]


def test_the_api_reference_lists_every_public_module():
    listed = listed_modules(API_INDEX.read_text(encoding="utf-8"))
    assert len(listed) == len(set(listed)), f"docs/api/index.rst lists a module twice: {listed}"
    missing = sorted(set(public_modules()) - set(listed))
    extra = sorted(set(listed) - set(public_modules()))
    assert not missing, f"public modules missing from the autosummary of docs/api/index.rst: {missing}"
    assert not extra, f"docs/api/index.rst lists modules that are not public modules of the package: {extra}"


def test_doc_comment_reads_both_forms_autodoc_reads():
    source = '#: the first\n#: and more\nA = 1\nB: int = 2\n"""after B."""\nC = 3\n\n# a plain comment\nD = 4\n'
    assert doc_comment(source, "A") == "the first\nand more"
    assert doc_comment(source, "B") == "after B."
    assert doc_comment(source, "C") is None
    assert doc_comment(source, "D") is None
    assert doc_comment(source, "E") is None


def test_undocumented_finds_what_the_reference_would_leave_blank():
    import types

    module = types.ModuleType("egu_widgets._probe")

    class Documented:
        """Has a doc."""

        def fine(self):
            """Also documented."""

        def bare(self):
            pass

    Documented.__module__ = "egu_widgets._probe"

    def function():
        pass

    @dataclasses.dataclass
    class Record:
        value: int

    module.Documented, module.function, module.VALUE, module.Record = Documented, function, 3, Record
    module.__all__ = ["Documented", "function", "VALUE", "Record", "__version__"]
    module.__version__ = "1"
    module.__file__ = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inspect, "getsourcefile", lambda m: None)
        mp.setattr(importlib, "import_module", lambda name: module)
        assert undocumented(module) == [
            "function",
            "VALUE (data: give it a '#:' comment where it is assigned)",
            "Record",
        ]
        assert undocumented(module, members=True) == ["Documented.bare"]


@pytest.mark.parametrize("modname", public_modules())
def test_every_public_name_has_a_docstring(modname):
    module = importlib.import_module(modname)
    assert (module.__doc__ or "").strip(), f"{modname} has no module docstring"
    missing = undocumented(module)
    assert not missing, f"{modname} exports names without a docstring for the API reference: {missing}"


# Not yet true: about sixty public methods and properties of exported classes (HyperCube's and
# UnmixingResult's properties among them) have no docstring, so the class pages leave them out.
# strict: once they are all documented this test passes, and the marker must go.
@pytest.mark.xfail(strict=True, reason="public members of exported classes still lack docstrings (issue 18)")
def test_every_public_member_of_an_exported_class_has_a_docstring():
    missing = {m: found for m in public_modules() if (found := undocumented(importlib.import_module(m), members=True))}
    assert not missing, f"public methods and properties without a docstring (autodoc leaves them out): {missing}"
