"""Static matplotlib figures of one result: the paper/CLI counterparts of the notebook views.

- :func:`abundance_figure`: every abundance map side by side on one 0-1 colour scale, with the
  true map and the error (estimate - truth) under each when the cube has truth;
- :func:`endmember_figure`: reference vs estimated spectrum per endmember, SAD in each title,
  optional bundle envelope;
- :func:`training_figure`: loss terms, metrics (RMSE) and learning rate per epoch;
- :func:`save_figures`: all of those written to a folder (what ``egu-widgets`` uses for figures).

The data come from :mod:`egu_widgets.figure_data`, the same functions the notebook views use.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..figure_data import map_data, pair_data
from ._base import new_figure, save_figure

__all__ = ["abundance_figure", "endmember_figure", "save_figures", "training_figure"]

_METRIC_LABELS = {"rmse": "abundance RMSE", "sad": "SAD (deg)"}


# ---------------------------------------------------------------------------------- abundances
def abundance_figure(
    result: Any,
    cube: Any = None,
    *,
    cmap: str = "viridis",
    error_cmap: str = "RdBu_r",
    panel_size: float = 2.4,
):
    """Abundance maps (row 1), truth (row 2) and estimate - truth (row 3) when the cube has truth.

    Estimates and truths share one colour scale from 0 to 1; the error maps share a symmetric one.
    """
    md = map_data(result, cube)
    n_em = len(md.names)
    rows = [("", md.estimate, cmap, (0.0, 1.0), "abundance")]
    if md.truth is not None:
        rows.append(("truth: ", md.truth, cmap, (0.0, 1.0), "abundance"))
        rows.append(("error: ", md.error, error_cmap, (-md.error_limit, md.error_limit), "estimate - truth"))
    fig = new_figure(panel_size * n_em + 1.0, panel_size * len(rows) + 0.3)
    axes = np.atleast_2d(fig.subplots(len(rows), n_em, squeeze=False, sharex=True, sharey=True))
    for r, (prefix, maps, colormap, (vmin, vmax), label) in enumerate(rows):
        image = None
        for p in range(n_em):
            ax = axes[r, p]
            image = ax.imshow(maps[p], cmap=colormap, vmin=vmin, vmax=vmax, interpolation="nearest")
            title = f"{prefix}{md.names[p]}"
            if prefix == "error: ":
                rmse = float(np.sqrt(np.nanmean(maps[p].astype(np.float64) ** 2)))
                title += f"\nRMSE {rmse:.4f}"
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=list(axes[r]), shrink=0.9, label=label)
    heading = getattr(result, "method", "") or "abundances"
    if getattr(result, "rmse", None) is not None:
        heading += f" — abundance RMSE {result.rmse:.4f}"
    fig.suptitle(heading, fontsize=10)
    return fig


# ---------------------------------------------------------------------------------- endmembers
def endmember_figure(
    result: Any,
    cube: Any = None,
    *,
    reference: Any = None,
    reference_label: str | None = None,
    bundles: Any = None,
    envelope: Any = "minmax",
    align: bool = False,
    ncols: int | None = None,
    panel_size: tuple[float, float] = (3.4, 2.6),
):
    """One panel per endmember: reference (truth/library/VCA) and estimate, SAD in the title.

    Arguments as :class:`egu_widgets.widgets.EndmemberPairs` (the same resolution rules).
    """
    d = pair_data(
        result,
        cube,
        reference=reference,
        reference_label=reference_label,
        bundles=bundles,
        envelope=envelope,
        align=align,
    )
    n_em = d.n_endmembers
    ncols = ncols or min(n_em, 4)
    nrows = -(-n_em // ncols)
    fig = new_figure(panel_size[0] * ncols, panel_size[1] * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    x = d.axis.values
    for p in range(nrows * ncols):
        ax = axes.flat[p]
        if p >= n_em:
            ax.set_visible(False)
            continue
        if d.envelopes is not None and d.envelopes[p] is not None:
            lo, hi, count = d.envelopes[p]
            ax.fill_between(x, lo, hi, color="#9ecae1", alpha=0.6, linewidth=0, label=f"{d.envelope_label} ({count})")
        if d.reference is not None:
            ax.plot(x, d.reference[p], color="#222222", linestyle="--", linewidth=1.5, label=d.reference_label)
        ax.plot(x, d.estimate[p], color="#d62728", linewidth=1.5, label=d.estimate_label)
        ax.set_title(d.title(p), fontsize=9)
        ax.set_xlabel(d.axis.label, fontsize=8)
        ax.set_ylabel("reflectance", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if p == 0:
            ax.legend(fontsize=7, loc="best")
    if d.sad is not None and np.isfinite(d.sad).all():
        fig.suptitle(f"endmembers — mean SAD {float(np.mean(d.sad)):.2f}°", fontsize=10)
    return fig


# ---------------------------------------------------------------------------------- training
def _history_of(source: Any) -> dict[str, np.ndarray]:
    history = getattr(source, "history", source)
    if not isinstance(history, Mapping):
        raise InputError("training_figure needs a result with training history or a dict name -> values per epoch")
    return {str(k): np.asarray(v, dtype=np.float64).ravel() for k, v in history.items()}


def training_figure(
    source: Any, *, logy: Any = "auto", tol: float | None = None, panel_size: tuple[float, float] = (3.6, 2.6)
):
    """Training curves per epoch from ``result.history`` (or a dict): losses, metrics, learning rate.

    Keys starting with ``loss`` go to the loss panel (log scale when all positive and
    ``logy="auto"``), ``lr``/``learning_rate`` to the learning-rate panel, the stopping rule's
    ``change`` to a log panel of its own with its tolerance as a dashed line (``tol``: None reads
    it from the result's configuration), the rest (``rmse``, ``sad``...) to the metrics panel.
    Empty panels are left out. Epochs without a value (NaN: metrics are evaluated every few
    epochs) are skipped, and such curves are drawn with markers.
    """
    history = {k: v for k, v in _history_of(source).items() if v.size}
    if not history:
        raise InputError("there is no training history to plot (classical methods record none)")
    losses = {k: v for k, v in history.items() if k.startswith("loss")}
    rates = {k: v for k, v in history.items() if k in ("lr", "learning_rate")}
    stopping = {k: v for k, v in history.items() if k == "change" and np.isfinite(v).any()}
    metrics = {k: v for k, v in history.items() if k not in losses and k not in rates and k != "change"}
    if tol is None:
        tol = ((getattr(source, "config", None) or {}).get("hyperparameters") or {}).get("tol")
    groups = (("losses", losses), ("metrics", metrics), ("change between checks", stopping), ("learning rate", rates))
    panels = [(name, group) for name, group in groups if group]
    fig = new_figure(panel_size[0] * len(panels), panel_size[1])
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, group) in zip(axes, panels):
        for key, values in group.items():
            label = key[len("loss_") :] if key.startswith("loss_") else _METRIC_LABELS.get(key, key)
            # only the epochs with a value: metrics evaluated every few epochs are NaN in between,
            # and a line through NaN draws nothing between isolated points
            epochs = np.arange(1, len(values) + 1)
            ok = np.isfinite(values)
            sparse = ok.sum() < len(values)
            ax.plot(epochs[ok], values[ok], linewidth=1.3, label=label, marker="." if sparse else None)
        if name == "losses":
            finite = np.concatenate([v[np.isfinite(v)] for v in group.values()])
            use_log = logy is True or (logy == "auto" and finite.size and (finite > 0).all())
            if use_log:
                ax.set_yscale("log")
        if name == "change between checks":
            positive = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in group.values()])
            if positive.size:
                ax.set_yscale("log")
            if tol:  # None or 0: no rule, nothing to compare with
                ax.axhline(float(tol), color="#d62728", linestyle="--", linewidth=1.0, label=f"tol {float(tol):g}")
                ax.legend(fontsize=7)
            ax.set_ylabel("change (RMS)", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(which="both", labelsize=7)  # a log axis under a decade labels its minor ticks
        ax.grid(alpha=0.3)
        if len(group) > 1 or name == "metrics":
            ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------------------------- files
def save_figures(
    result: Any,
    cube: Any = None,
    directory: str | os.PathLike = ".",
    *,
    formats: Iterable[str] = ("png",),
    dpi: int = 150,
    prefix: str = "",
    bundles: Any = None,
) -> list[Path]:
    """Write the abundance, endmember and (when recorded) training figures into ``directory``.

    Files are ``{prefix}abundances.{fmt}``, ``{prefix}endmembers.{fmt}`` (when spectra can be
    shown) and ``{prefix}training.{fmt}`` (when the result has history). Returns the paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"figure folder {str(directory)!r} does not exist; create it first")
    figures = {"abundances": abundance_figure(result, cube)}
    if getattr(result, "endmembers", None) is not None or cube is not None:
        figures["endmembers"] = endmember_figure(result, cube, bundles=bundles)
    if any(np.asarray(v).size for v in getattr(result, "history", {}).values()):
        figures["training"] = training_figure(result)
    written = []
    for name, fig in figures.items():
        for fmt in formats:
            written.append(save_figure(fig, directory / f"{prefix}{name}.{fmt.lstrip('.')}", dpi=dpi))
    return written
