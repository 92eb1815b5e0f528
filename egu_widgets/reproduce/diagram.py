"""The network diagrams of a reproduction: the engine's own models, traced and drawn.

The model is built by the engine with its default hyperparameters at the scene's size, so the
figure shows the network that was trained; tracing and drawing are
:func:`egu_widgets.figure_data.network_graph` and :func:`egu_widgets.plotting.network_figure`.
torch is imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..plotting import network_figure
from .plan import METHOD_LABELS

__all__ = ["DIAGRAM_METHODS", "engine_model", "network_figures"]

#: The methods drawn as network diagrams (the ablation is EGU-Net-pw's unmixing stream alone).
DIAGRAM_METHODS = ("egu-pw", "egu-ss")


def engine_model(variant: str, n_bands: int, n_endmembers: int):
    """A freshly initialised engine network with the engine's default hyperparameters.

    ``variant`` is ``"pw"``, ``"ss"`` or ``"ae"``; the model is in training mode, as built.
    """
    from ..engine import resolve_hyperparameters
    from ..engine.networks import build_model

    return build_model(variant, n_bands, n_endmembers, resolve_hyperparameters(variant))


def network_figures(methods: Sequence[str], cube: Any) -> dict[str, Any]:
    """``{"network-<method>.png": figure}`` for each of :data:`DIAGRAM_METHODS` in ``methods``.

    Each network is built at the size of ``cube`` (its bands and true number of endmembers).
    """
    from ..engine.estimator import METHOD_VARIANTS

    figures = {}
    for method in DIAGRAM_METHODS:
        if method in methods:
            model = engine_model(METHOD_VARIANTS[method], cube.n_bands, cube.n_true_endmembers)
            title = f"{METHOD_LABELS[method]} ({cube.n_bands} bands, P={cube.n_true_endmembers})"
            figures[f"network-{method}.png"] = network_figure(model, title=title)
    return figures
