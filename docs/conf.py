"""Sphinx configuration of the egu_widgets documentation site.

Build the site (the command CI runs; warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

It needs the ``docs`` extra (``pip install -e ".[docs]"``) and executes the four notebooks of
``notebooks/`` in fast mode (``EGU_FAST=1``), a few minutes on two CPU cores. Executed notebooks
are cached in ``docs/_build/.jupyter_cache``, so a rebuild reruns only the notebooks that changed;
``EGU_DOCS_EXECUTE=off`` skips execution (quick checks of the text), ``force`` reruns all.
Nothing executed is written back to ``notebooks/``: the build copies the committed, output-free
notebooks into ``docs/notebooks/`` (ignored by git) and renders those.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

# -- the notebooks: copied in, executed in fast mode ---------------------------------------------
# The kernel inherits this process's environment: fast mode, outputs into the build folder, and a
# headless matplotlib backend for the kernel's inline figures.
os.environ["EGU_FAST"] = "1"
os.environ.setdefault("EGU_OUTPUT", str(DOCS / "_build" / "notebook-output"))
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def _copy_notebooks() -> None:
    """Copy notebooks/0*.ipynb to docs/notebooks/, rewriting only what changed (keeps the cache)."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("0*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, src in wanted.items():
        dst = target / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)


_copy_notebooks()

# -- project -------------------------------------------------------------------------------------
from importlib.metadata import version as _version  # noqa: E402

project = "egu_widgets"
author = "the egu_widgets developers"
copyright = "the egu_widgets developers, BSD-3-Clause"
release = _version("egu_widgets")
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "egu_directives",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "notebooks/egu-*-output", "screenshots/README.md"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}


# -- API reference -------------------------------------------------------------------------------
def api_modules() -> list[str]:
    """The modules the API reference lists: the entries of the autosummary in api/index.rst."""
    lines = (DOCS / "api" / "index.rst").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith(".. autosummary::"))
    entries = []
    for ln in lines[start + 1 :]:
        if ln and not ln.startswith(" "):
            break
        text = ln.strip()
        if text and not text.startswith(":"):
            entries.append(text)
    return entries


def api_homes(modules: list[str]) -> dict[str, dict[str, str]]:
    """For each listed module, the names it re-exports from another listed module, with their home.

    A function or class gets its page once, under the listed module whose name is closest to
    where it is defined (``HyperCube`` under ``egu_widgets.cube``, not the top-level package);
    the other modules exporting it link to that page, so no object is described twice.
    """
    import importlib

    exports: dict[int, list[tuple[str, str]]] = {}
    for modname in modules:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if callable(obj) and hasattr(obj, "__module__"):
                exports.setdefault(id(obj), []).append((modname, name))
    homes: dict[str, dict[str, str]] = {}
    for places in exports.values():
        if len(places) < 2:
            continue
        defined = getattr(importlib.import_module(places[0][0]), places[0][1]).__module__
        home = max(places, key=lambda p: (defined == p[0] or defined.startswith(p[0] + "."), len(p[0])))
        for modname, name in places:
            if (modname, name) != home:
                homes.setdefault(modname, {})[name] = f"{home[0]}.{home[1]}"
    return homes


# One page per public module, listing what its __all__ exports; one page per function and class.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_context = {"egu_homes": api_homes(api_modules())}
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- MyST and notebooks --------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("EGU_DOCS_EXECUTE", "cache")
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 1200
nb_execution_raise_on_error = True  # a failing notebook fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"egu_widgets {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []

# Bokeh's loader output (application/vnd.bokehjs_load.v0+json) only loads BokehJS into a live
# page; a static page has nothing to show for it and myst-nb has no renderer for it. It is the one
# output type of the notebooks that has none, so its warning is silenced.
suppress_warnings = ["mystnb.unknown_mime_type"]
