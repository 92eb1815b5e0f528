"""Static matplotlib figures: one result, methods compared, and the network diagram.

- :mod:`.result`: :func:`abundance_figure`, :func:`endmember_figure`, :func:`training_figure` and
  :func:`save_figures`, the paper/CLI counterparts of the notebook views;
- :mod:`.comparison`: methods side by side on one scene (:func:`abundance_comparison_figure`,
  :func:`endmember_comparison_figure`, :func:`training_comparison_figure`) and a score summary
  over scenes (:func:`summary_figure`), the figures of ``egu-widgets reproduce``;
- :mod:`.network`: :func:`network_figure`, the engine's two streams traced from the torch model.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot, so they
need no display, leave no global state behind and work headless under any backend. matplotlib is
imported only when a figure is made. The data drawn come from :mod:`egu_widgets.figure_data`.
"""

from __future__ import annotations

from ._base import save_figure
from .comparison import (
    abundance_comparison_figure,
    endmember_comparison_figure,
    summary_figure,
    training_comparison_figure,
)
from .network import network_figure
from .result import abundance_figure, endmember_figure, save_figures, training_figure

__all__ = [
    "abundance_comparison_figure",
    "abundance_figure",
    "endmember_comparison_figure",
    "endmember_figure",
    "network_figure",
    "save_figure",
    "save_figures",
    "summary_figure",
    "training_comparison_figure",
    "training_figure",
]
