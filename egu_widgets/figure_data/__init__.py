"""The numbers behind every figure and view, shared by the static figures and the notebook widgets.

Both :mod:`egu_widgets.plotting` (matplotlib) and :mod:`egu_widgets.widgets` (ipywidgets and
HoloViews) draw from these functions, so a static figure and its live view show the same data.
They sit below both layers and import no plotting or widget library: numpy only, torch lazily
when a network is traced.

- :mod:`.spectra`: estimate, reference, spectral angles and bundle envelopes (:func:`pair_data`);
- :mod:`.maps`: abundance, truth and error maps (:func:`map_data`), block means, reconstructions;
- :mod:`.timing`: duration and time-left read-outs of training views;
- :mod:`.network`: the layers of the engine's two-stream model, traced (:func:`network_graph`).
"""

from __future__ import annotations

from .maps import (
    MapData,
    block_centres,
    block_mean,
    downsample_factor,
    error_limit,
    make_reconstructor,
    map_data,
    member_maps,
    residual,
    spread_layers,
    spread_limit,
)
from .network import NetBox, NetGraph, network_graph, network_rows
from .spectra import (
    PairData,
    SpectralAxis,
    as_spectra,
    bundle_envelopes,
    group_means,
    least_squares_endmembers,
    match_rows_by_sad,
    names_of,
    pair_data,
    spectral_angles_deg,
    spectral_axis,
)
from .timing import format_duration, remaining_seconds

__all__ = [
    "MapData",
    "NetBox",
    "NetGraph",
    "PairData",
    "SpectralAxis",
    "as_spectra",
    "block_centres",
    "block_mean",
    "bundle_envelopes",
    "downsample_factor",
    "error_limit",
    "format_duration",
    "group_means",
    "least_squares_endmembers",
    "make_reconstructor",
    "map_data",
    "member_maps",
    "match_rows_by_sad",
    "names_of",
    "network_graph",
    "network_rows",
    "pair_data",
    "remaining_seconds",
    "residual",
    "spread_layers",
    "spread_limit",
    "spectral_angles_deg",
    "spectral_axis",
]
