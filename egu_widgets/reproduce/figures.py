"""The figures of a reproduction: per scene the comparison figures, over all scenes the summary.

The drawing lives in :mod:`egu_widgets.plotting`; this module picks what each figure shows (the
median-RMSE seed of each method, every seed's training curve) and its title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..plotting import (
    abundance_comparison_figure,
    endmember_comparison_figure,
    summary_figure,
    training_comparison_figure,
)
from .plan import ENGINE_METHODS, METHOD_LABELS, Plan, Run
from .scenes import Scene

__all__ = ["representative", "scene_figures", "summary"]


def representative(runs: Sequence[Run]) -> Run:
    """The run whose RMSE is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: (r.rmse, r.seed))
    return ordered[(len(ordered) - 1) // 2]


def scene_figures(
    scene: Scene, runs: Sequence[Run], results: Mapping[str, Mapping[int, Any]], plan: Plan
) -> dict[str, Any]:
    """``{file name: figure}`` for one scene: abundances, endmembers and (if recorded) training.

    ``results[method][seed]`` are the scene's results and ``runs`` their scores. The maps and
    spectra show each method's representative seed; the training curves show every seed,
    the representative one first.
    """
    ds = scene.name
    reps, histories = {}, {}
    for m in plan.methods:
        rep_seed = representative([r for r in runs if r.dataset == ds and r.method == m]).seed
        reps[m] = results[m][rep_seed]
        if m in ENGINE_METHODS:
            seeds = [rep_seed] + [s for s in plan.seeds if s != rep_seed]
            histories[m] = [(s, results[m][s].history) for s in seeds if results[m][s].history]
    figures = {
        f"abundances-{ds}.png": abundance_comparison_figure(
            scene.cube, reps, title=f"{ds}: abundance maps (median-RMSE seed of each method)", labels=METHOD_LABELS
        ),
        f"endmembers-{ds}.png": endmember_comparison_figure(
            scene.cube,
            reps,
            labels=METHOD_LABELS,
            trained=ENGINE_METHODS,
            title=f"{ds}: endmembers vs reference (SAD in the legend; estimates scaled by least squares)",
        ),
    }
    if any(histories.values()):
        figures[f"training-{ds}.png"] = training_comparison_figure(
            histories, title=f"{ds}: training curves (result.history)", labels=METHOD_LABELS
        )
    return figures


def summary(runs: Sequence[Run], plan: Plan):
    """Abundance RMSE per method and scene over seeds (``summary.png``)."""
    rmse = {
        ds: {m: [r.rmse for r in runs if r.dataset == ds and r.method == m] for m in plan.methods}
        for ds in plan.datasets
    }
    return summary_figure(
        rmse, title=f"abundance RMSE, median and range over seeds ({plan.mode} mode)", labels=METHOD_LABELS
    )
