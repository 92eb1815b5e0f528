"""Figures that compare methods on one scene: maps, spectra, training curves and a score summary.

These are the figures of ``egu-widgets reproduce`` (see :mod:`egu_widgets.reproduce`), usable on
their own: each takes results keyed by method name, in the order they are to be drawn. Method
labels come from the method registry (:mod:`egu_widgets.methods`) unless ``labels`` gives them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from ._base import new_figure

__all__ = [
    "abundance_comparison_figure",
    "endmember_comparison_figure",
    "summary_figure",
    "training_comparison_figure",
]


def _labels(methods: Sequence[str], labels: Mapping[str, str] | None) -> dict[str, str]:
    """The label of each method: ``labels[m]`` when given, else the registry's, else the name."""
    if labels is not None:
        return {m: labels.get(m, m) for m in methods}
    from ..errors import InputError
    from ..methods import get_method

    out = {}
    for m in methods:
        try:
            out[m] = get_method(m).label
        except (InputError, KeyError):
            out[m] = m
    return out


def _trained(methods: Sequence[str], trained: Collection[str] | None) -> set[str]:
    """The methods that learn a network (drawn dashed): ``trained`` or the registry's flag."""
    if trained is not None:
        return set(trained)
    from ..errors import InputError
    from ..methods import get_method

    out = set()
    for m in methods:
        try:
            if get_method(m).trains:
                out.add(m)
        except (InputError, KeyError):
            pass
    return out


def _short(label: str) -> str:
    """A label without its parenthesised detail: ``"FCLS (VCA endmembers)"`` -> ``"FCLS"``."""
    return label.split(" (")[0]


def abundance_comparison_figure(
    cube: Any,
    results: Mapping[str, Any],
    *,
    title: str = "abundance maps",
    labels: Mapping[str, str] | None = None,
):
    """Rows: materials; columns: the truth, then each method's abundance map (one 0-1 scale).

    ``cube`` must carry the true abundances and endmember names; each result's maps are taken
    by those names, so every column shows the same material in a row.
    """
    names = cube.endmember_names
    truth = cube.true_abundances
    label = _labels(list(results), labels)
    cols = [("truth", None)] + list(results.items())
    n_rows, n_cols = len(names), len(cols)
    side = 1.55 if n_cols > 4 else 1.9
    fig = new_figure(side * n_cols + 0.8, side * n_rows + 0.6)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for c, (method, res) in enumerate(cols):
        maps = truth if res is None else res.abundances.sel(endmember=names).values
        for r in range(n_rows):
            ax = axes[r, c]
            image = ax.imshow(maps[r], vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                heading = "ground truth" if res is None else f"{_short(label[method])}\nRMSE {res.rmse:.4f}"
                ax.set_title(heading, fontsize=8)
            if c == 0:
                ax.set_ylabel(names[r], fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label="abundance")
    fig.suptitle(title, fontsize=10)
    return fig


def endmember_comparison_figure(
    cube: Any,
    results: Mapping[str, Any],
    *,
    title: str = "endmembers vs reference (SAD in the legend; estimates scaled by least squares)",
    labels: Mapping[str, str] | None = None,
    trained: Collection[str] | None = None,
):
    """One panel per material: the reference spectrum and each method's estimate.

    Estimates are scaled onto the reference by least squares (the spectral angle ignores scale,
    and the networks' decoded spectra have no physical scale of their own). Methods whose spectra
    are the same share one line and one legend entry; trained methods are drawn dashed.
    """
    names = cube.endmember_names
    ref = cube.true_endmembers
    wl = cube.wavelengths
    x = wl if wl is not None else np.arange(cube.n_bands)
    label = _labels(list(results), labels)
    dashed = _trained(list(results), trained)
    n = len(names)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = new_figure(3.6 * cols, 2.7 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for p, name in enumerate(names):
        ax = axes[p]
        ax.plot(x, ref[p], color="black", linewidth=2.0, label="reference")
        drawn: list[tuple[np.ndarray, list[str], float, str, int]] = []  # methods sharing spectra share a line
        for k, (method, res) in enumerate(results.items()):
            if res.endmembers is None:
                continue
            est = res.endmembers.sel(endmember=name).values
            sad = res.scores.get("sad_per_endmember", [float("nan")] * n)[p]
            for spectrum, shared, *_ in drawn:
                if spectrum.shape == est.shape and np.allclose(spectrum, est):
                    shared.append(_short(label[method]))
                    break
            else:
                drawn.append((est, [_short(label[method])], sad, method, k))
        for est, shared, sad, method, k in drawn:
            denom = float(est @ est)
            scale = float(est @ ref[p]) / denom if denom > 0 else 1.0
            ax.plot(
                x,
                scale * est,
                linewidth=1.1,
                linestyle="--" if method in dashed else "-",
                color=f"C{k}",
                label=f"{' = '.join(shared)} ({sad:.1f}°)",
            )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("wavelength (nm)" if wl is not None else "band", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return fig


def training_comparison_figure(
    histories: Mapping[str, Sequence[tuple[int, Mapping[str, Any]]]],
    *,
    title: str = "training curves (result.history)",
    labels: Mapping[str, str] | None = None,
):
    """Per trained method: loss terms per epoch (first seed given) and RMSE per epoch (every seed).

    ``histories`` maps a method to ``(seed, history)`` pairs, the seed whose losses are drawn
    first; a history is ``result.history`` (loss terms and ``rmse`` per epoch).
    """
    methods = [m for m in histories if histories[m]]
    label = _labels(methods, labels)
    fig = new_figure(3.7 * max(len(methods), 1), 5.4)
    axes = fig.subplots(2, max(len(methods), 1), squeeze=False)
    for c, method in enumerate(methods):
        runs = histories[method]
        seed0, hist0 = runs[0]
        ax = axes[0, c]
        for key, style in (("loss_total", "-"), ("loss_reconstruction", "--"), ("loss_bundle", ":")):
            v = np.asarray(hist0.get(key, []), dtype=np.float64)
            if v.size and np.isfinite(v).any() and np.nanmax(np.abs(v)) > 0:
                ax.plot(np.arange(1, v.size + 1), v, style, linewidth=1.2, label=key[len("loss_") :])
        ax.set_yscale("log")
        ax.set_title(f"{label[method]}: losses (seed {seed0})", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax = axes[1, c]
        for seed, hist in sorted(runs, key=lambda t: t[0]):
            v = np.asarray(hist.get("rmse", []), dtype=np.float64)
            epochs = np.arange(1, v.size + 1)
            ok = np.isfinite(v)
            if ok.any():
                ax.plot(epochs[ok], v[ok], marker=".", markersize=3, linewidth=1.0, label=f"seed {seed}")
        ax.set_title("abundance RMSE during training", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel():
        ax.tick_params(which="both", labelsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def summary_figure(
    rmse: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    title: str = "abundance RMSE, median and range over seeds",
    labels: Mapping[str, str] | None = None,
):
    """Abundance RMSE per method (bars: median over seeds; whiskers: min-max), one panel per scene.

    ``rmse`` maps a scene name to ``{method: RMSE per seed}``, both in drawing order; methods
    without values are left out of their panel and non-finite values are ignored.
    """
    scenes = list(rmse)
    fig = new_figure(3.4 * len(scenes), 3.4)
    axes = fig.subplots(1, len(scenes), squeeze=False)[0]
    for ax, ds in zip(axes, scenes):
        label = _labels(list(rmse[ds]), labels)
        meds, lo, hi, names = [], [], [], []
        for m, vals in rmse[ds].items():
            if not len(vals):
                continue
            v = np.asarray(vals, dtype=np.float64)
            finite = v[np.isfinite(v)]
            med, low, high = (
                (float(np.median(finite)), float(finite.min()), float(finite.max()))
                if finite.size
                else (float("nan"),) * 3
            )
            meds.append(med)
            lo.append(med - low)
            hi.append(high - med)
            names.append(_short(label[m]))
        pos = np.arange(len(meds))
        ax.bar(pos, meds, yerr=[lo, hi], color=[f"C{i}" for i in range(len(meds))], capsize=3)
        ax.set_xticks(pos, names, rotation=35, ha="right", fontsize=7)
        ax.set_title(ds, fontsize=9)
        ax.set_ylabel("abundance RMSE", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize=10)
    return fig
