"""Sphinx helpers of the egu_widgets docs: pages that read the package instead of repeating it.

- ``egu-methods``: the method registry (:func:`egu_widgets.methods.describe_methods`) as a table,
  so the list of methods in the docs is the one ``unmix`` and the command line use;
- ``egu-cli-help``: the ``--help`` text of ``egu-widgets`` (or of one subcommand), as printed;
- data exported by a package but defined in one of its modules (``PRESETS`` in
  ``egu_widgets.engine``, defined in ``engine/estimator.py``) get the doc comment (``#:``) of
  the module that defines them, where autodoc alone would find none.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pkgutil

from docutils import nodes
from docutils.parsers.rst import Directive


def _table(header: list[str], rows: list[list[nodes.Node | str]], widths: list[int]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)

    def row(cells):
        out = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=cell)
            out += entry
        return out

    head = nodes.thead()
    head += row(header)
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += head
    group += body
    return table


class MethodsTable(Directive):
    """The registered unmixing methods: name, label, whether it trains, options, description."""

    has_content = False

    def run(self):
        from egu_widgets.methods import describe_methods

        rows = []
        for m in describe_methods():
            name = nodes.paragraph()
            name += nodes.literal(text=m["name"])
            options = nodes.paragraph()
            for i, opt in enumerate(m["options"]):
                if i:
                    options += nodes.Text(", ")
                options += nodes.literal(text=opt)
            rows.append([name, m["label"], "yes" if m["trains"] else "no", m["description"], options])
        return [_table(["method", "label", "trains", "what it does", "options"], rows, [12, 18, 6, 34, 30])]


class CliHelp(Directive):
    """The help text ``egu-widgets [SUBCOMMAND] --help`` prints, captured from the parser."""

    optional_arguments = 1

    def run(self):
        from egu_widgets.cli import main

        argv = [*self.arguments, "--help"]
        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; fix the width for the page
        try:
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                main(argv)
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        text = out.getvalue().rstrip()
        if not text:
            raise self.error(f"egu-widgets {' '.join(argv)} printed nothing")
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def defining_module_doc(modname: str, attr: str) -> list[str] | None:
    """The ``#:`` doc comment of ``attr`` in ``modname`` or, for a package, in one of its modules."""
    from sphinx.pycode import ModuleAnalyzer

    names = [modname]
    module = importlib.import_module(modname)
    if hasattr(module, "__path__"):
        names += [info.name for info in pkgutil.walk_packages(module.__path__, modname + ".")]
    for name in names:
        try:
            docs = ModuleAnalyzer.for_module(name).find_attr_docs()
        except Exception:  # a module without source (compiled) has no doc comments to offer
            continue
        if ("", attr) in docs:
            return list(docs[("", attr)])
    return None


def _data_docstring(app, what, name, obj, options, lines):
    if what != "data" or not name.startswith("egu_widgets."):
        return
    modname, _, attr = name.rpartition(".")
    found = defining_module_doc(modname, attr)
    own = [ln for ln in lines if ln.strip()]
    type_doc = [ln.strip() for ln in (type(obj).__doc__ or "").splitlines() if ln.strip()]
    if found and (not own or [ln.strip() for ln in own] == type_doc[: len(own)]):
        lines[:] = [ln.rstrip("\n") for ln in found]
    elif own and [ln.strip() for ln in own] == type_doc[: len(own)]:
        lines[:] = []  # never show the docstring of dict or tuple as if it were the constant's


def setup(app):
    app.add_directive("egu-methods", MethodsTable)
    app.add_directive("egu-cli-help", CliHelp)
    # before numpydoc (priority 500), so that numpydoc formats the doc comment like any docstring
    app.connect("autodoc-process-docstring", _data_docstring, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
