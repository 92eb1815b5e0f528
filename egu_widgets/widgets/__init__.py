"""Notebook views of training and results (needs the widget extra: ``pip install "egu_widgets[widgets]"``).

- :func:`training_dashboard` / :class:`TrainingDashboard`: live progress, curves, Stop;
  ``run = dashboard.run(fit, cube)`` trains in the background so that Stop works in a live kernel
  (``await run`` in a later cell waits with Stop still working, under Run All too), and falls
  back to the engine's console progress (tqdm) outside a notebook; :func:`progress_callback`
  picks one of the two for you.
- :func:`endmember_pairs` / :class:`EndmemberPairs`: reference vs estimated spectrum per endmember,
  SAD in the title, optional bundle envelope, a selector to page through, "normalise to max 1".
- :func:`abundance_inspector` / :class:`AbundanceInspector`: abundance, truth and error maps with
  linked pan/zoom; tap a pixel for its spectrum, the model's reconstruction, the residual and its
  abundances; a band slider shows the scene itself.
- :func:`subspace_view` / :class:`SubspaceView`: how many materials — the eigenvalue spectrum
  against the noise estimate for each criterion, with the estimated count marked.
- :func:`bundle_curation` / :class:`BundleCuration`: EGU-Net's spectral bundles (envelopes, a PCA
  projection, positions); select, reject or relabel them and retrain from the curated set.

Each builder returns ``{"widget": container, "wdict": {name: child}, "view": object}`` and takes
``display=False`` (for tests); each view object has ``.show()`` and displays itself in a notebook.

Importing this package needs nothing beyond the core; asking for a view without the widget extra
raises :class:`egu_widgets.errors.MissingDependencyError` that says what to install.
"""

from __future__ import annotations

import importlib

from ._deps import in_notebook, require_widgets

_LAZY = {
    "TrainingDashboard": "dashboard",
    "TrainingRun": "dashboard",
    "training_dashboard": "dashboard",
    "EndmemberPairs": "endmembers",
    "endmember_pairs": "endmembers",
    "AbundanceInspector": "inspector",
    "abundance_inspector": "inspector",
    "progress_callback": "progress",
    "SubspaceView": "subspace",
    "subspace_view": "subspace",
    "BundleCuration": "bundle_curation",
    "bundle_curation": "bundle_curation",
}
_NEEDS_EXTRA = {"dashboard", "endmembers", "inspector", "subspace", "bundle_curation"}

__all__ = sorted(_LAZY) + ["in_notebook", "require_widgets"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'egu_widgets.widgets' has no attribute {name!r}")
    if module in _NEEDS_EXTRA:
        require_widgets(f"egu_widgets.widgets.{name}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
