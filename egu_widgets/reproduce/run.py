"""Running a reproduction: every method on every scene and seed, scored, saved, tabulated, drawn.

:func:`reproduce` is the entry point (command line: ``egu-widgets reproduce``); each run's result
is saved as netCDF, and the table, figures and manifest follow once every run is done.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from ..results import UnmixingResult
from .diagram import network_figures
from .figures import scene_figures, summary
from .plan import Plan, Run, plan_for
from .publish import KIND, MARKER, ReproduceReport, check_target, publish
from .scenes import Scene, load_scene
from .table import machine, markdown_table, table_rows, versions, write_csv

__all__ = ["reproduce"]


class _Interrupted(KeyboardInterrupt):
    """A training stopped by Ctrl-C inside the engine: the reproduction stops too."""


def _run_one(scene: Scene, method: str, seed: int, plan: Plan) -> UnmixingResult:
    """Unmix ``scene`` with ``method`` and ``seed`` as the plan says (``sunsal`` on VCA's endmembers)."""
    from ..unmixing import unmix

    cube = scene.cube
    if method in ("vca-fcls", "nfindr-fcls"):
        return unmix(cube, method=method, seed=seed)
    if method == "sunsal":
        # The same VCA endmembers as vca-fcls with this seed (vca is deterministic for a seed);
        # the run's time counts VCA as well as SUnSAL.
        from ..classic import vca

        start = time.perf_counter()
        endmembers, _ = vca(cube.pixels[cube.valid_mask.ravel()], cube.n_true_endmembers, seed=seed)
        vca_seconds = time.perf_counter() - start
        res = unmix(cube, method="sunsal", seed=seed, endmembers=endmembers)
        res.ds.attrs["seconds"] = float(res.ds.attrs["seconds"]) + vca_seconds
        return res
    options = {} if plan.threads is None else {"num_threads": plan.threads}
    result = unmix(
        cube, method=method, seed=seed, epochs=plan.epochs_for(method), device=plan.device, progress=False, **options
    )
    if result.partial and "interrupted" in str(result.ds.attrs.get("stop_reason", "")):
        # The engine turns Ctrl-C into a partial result; a reproduction must not tabulate it.
        raise _Interrupted(result.ds.attrs["stop_reason"])
    return result


def reproduce(
    out_dir: str | os.PathLike,
    fast: bool = False,
    *,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    crop: int | None | str = "mode",
    epochs: int | None | str = "mode",
    device: str = "cpu",
    threads: int | None | str = "mode",
    ss_epochs: int | None | str = "mode",
    log: Callable[[str], None] | None = print,
) -> ReproduceReport:
    """Run the comparison and write table, figures and results into ``out_dir``.

    Parameters
    ----------
    out_dir
        The folder to write; an earlier reproduction there is replaced, but only once the new
        one is complete (see :mod:`egu_widgets.reproduce.publish`).
    fast
        The CI smoke test (32×32 crops, 20 epochs, seeds 0 and 1, one torch thread) instead of
        the full run (whole scenes, the engine's default epochs, seeds 0, 1, 2, torch's default
        threads).
    datasets, methods, seeds, crop, epochs, device, threads, ss_epochs
        Override single settings of the mode (see :func:`~egu_widgets.reproduce.plan_for`):
        ``crop`` a side in pixels or None for whole scenes, ``epochs`` None for the engine's
        default, ``ss_epochs`` egu-ss alone (None: as ``epochs``), ``threads`` None for torch's
        default.
    log
        Receives one line per step (None: silent).

    Returns
    -------
    ReproduceReport
        The plan, the runs' scores, the Markdown table and the files written.
    """
    plan = plan_for(
        fast,
        datasets=datasets,
        methods=methods,
        seeds=seeds,
        crop=crop,
        epochs=epochs,
        device=device,
        threads=threads,
        ss_epochs=ss_epochs,
    )
    out_dir = Path(out_dir).expanduser().absolute()
    check_target(out_dir)
    say = log or (lambda _msg: None)
    started = time.perf_counter()
    date = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        report = _reproduce_into(staging, out_dir, plan, started, date, say)
        publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"wrote {out_dir} ({len(report.files)} files) in {report.seconds:.0f} s")
    return report


def _reproduce_into(staging: Path, out_dir: Path, plan: Plan, started: float, date: str, say) -> ReproduceReport:
    """Run the plan and write everything into ``staging``; the report names ``out_dir``."""
    from .. import metrics

    files: list[str] = []
    runs: list[Run] = []
    scenes: dict[str, Scene] = {}
    total = len(plan.datasets) * len(plan.methods) * len(plan.seeds)
    say(f"reproduce ({plan.mode} mode): {plan.describe()}; {total} runs")
    k = 0
    for ds in plan.datasets:
        scene = load_scene(ds, plan.crop)
        scenes[ds] = scene
        say(f"{ds}: {scene.describe()}")
        (staging / "results" / ds).mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[int, UnmixingResult]] = {}
        for method in plan.methods:
            for seed in plan.seeds:
                k += 1
                t0 = time.perf_counter()
                res = _run_one(scene, method, seed, plan)
                wall = time.perf_counter() - t0
                rel = f"results/{ds}/{method}-seed{seed}.nc"
                res.to_netcdf(staging / rel)
                files.append(rel)
                scores = res.scores
                note = ""
                if res.partial:
                    note = str(res.ds.attrs.get("stop_reason", "ended early"))
                valid = scene.cube.valid_mask.ravel()
                by_abundance = metrics.score(res.abundance_pixels[valid], scene.cube.true_abundance_pixels[valid])[
                    "rmse"
                ]
                run = Run(
                    ds,
                    method,
                    seed,
                    float(res.rmse),
                    [float(v) for v in scores["rmse_per_endmember"]],
                    float(res.sad) if res.sad is not None else float("nan"),
                    float(res.ds.attrs.get("seconds", wall)),
                    rel,
                    note,
                    float(by_abundance),
                )
                runs.append(run)
                results.setdefault(method, {})[seed] = res
                say(
                    f"[{k}/{total}] {ds} {method} seed {seed}: RMSE {run.rmse:.4f}, SAD {run.sad:.2f} deg, "
                    f"{run.seconds:.1f} s" + (f" ({note})" if note else "")
                )
        for name, fig in scene_figures(scene, runs, results, plan).items():
            fig.savefig(staging / name, dpi=130)
            files.append(name)
    # the networks, traced from the engine's models at the first scene's size
    for name, fig in network_figures(plan.methods, scenes[plan.datasets[0]].cube).items():
        fig.savefig(staging / name, dpi=130)
        files.append(name)
    summary(runs, plan).savefig(staging / "summary.png", dpi=130)
    files.append("summary.png")

    seconds = time.perf_counter() - started
    info = {"date": date, "machine": machine(), "versions": versions(), "total_seconds": seconds}
    md = markdown_table(runs, scenes, plan, info)
    (staging / "table.md").write_text(md)
    write_csv(table_rows(runs, scenes, plan), staging / "table.csv")
    files += ["table.md", "table.csv"]
    manifest = {
        "kind": KIND,
        "plan": asdict(plan),
        "info": info,
        "scenes": {
            ds: {"description": s.describe(), "window": s.window, "full_shape": s.full_shape}
            for ds, s in scenes.items()
        },
        "runs": [asdict(r) for r in runs],
        "files": sorted(files) + [MARKER],
    }
    (staging / MARKER).write_text(json.dumps(manifest, indent=1, default=str))
    files.append(MARKER)
    return ReproduceReport(out_dir, plan, runs, md, seconds, sorted(files))
