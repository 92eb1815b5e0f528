"""What the live training dashboard costs: training time with and without it attached.

    python benchmarks/bench_dashboard.py [--engine egu nmf] [--epochs 60] [--reps 5] [--budget 5]

Configurations, run interleaved (ABCD ABCD ...) so that load from other processes hits all alike:

- ``none``: no progress callback at all (the baseline);
- ``console``: the engine's tqdm bar;
- ``dashboard``: :class:`TrainingDashboard` passed in ``callbacks=[...]``, redrawing on the
  training thread (the blocking way, the worst case: every redraw adds to training time);
- ``dashboard-run``: ``dashboard.run(fit, cube)`` as in a notebook: training in a background
  thread, redraws on an asyncio loop in the main thread (the kernel's loop in Jupyter).

Times cover the training loop only (from its "start" event to its final one), so building
bundles and the result is left out: wall time is the loop's own ``elapsed``, CPU time is the
whole process's (every thread, so redraws on the main thread count) over the same span. The
"vs none" columns compare each run with the baseline run next to it and take the median ratio.
On a shared machine those swing by several percent from run to run (compare ``console``, which
costs next to nothing), so the budget is checked on what the dashboard itself spends, measured
by it: CPU time recording events and redrawing, as a share of the run's CPU time ("dashboard
CPU", the largest over ``--reps``). Widgets are built and redrawn for real (Bokeh patches are
serialised) but no page is attached. Exits 1 when that share reaches ``--budget`` percent.

Engines: ``egu`` is EGU-Net on the demo scene (``--side`` x ``--side`` pixels, ``--bands`` bands;
torch limited to one thread so that runs are comparable); ``nmf`` is the small NMF loop of the
browser tests, whose epochs are very short: the stress case where per-event cost matters most.

The dashboard's :class:`~egu_widgets.widgets.redraw.RedrawScheduler` charges everything it does
during training (recording events, redraws, drawing its plots the first time) to a budget, by
default 4 % of the training time; drawing the final state happens after training and is not
counted here. Results and how to read them: docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "browser"))

from egu_widgets.cube import make_demo  # noqa: E402


class Clock:
    """The training loop's wall time (its own ``elapsed``) and the process's CPU time over it;
    with a dashboard, also the CPU time the dashboard had spent by then (put the clock first in
    the callbacks: drawing the final state happens after training and is not counted)."""

    def __init__(self, dashboard=None):
        self.seconds = None
        self.cpu_seconds = None
        self.dashboard = dashboard
        self.dashboard_cpu = None
        self._cpu0 = None

    def on_event(self, event):
        if event.kind == "start":
            self._cpu0 = time.process_time()
        if event.is_final:
            self.seconds = event.elapsed
            self.cpu_seconds = time.process_time() - self._cpu0
            if self.dashboard is not None:
                scheduler = self.dashboard.scheduler
                self.dashboard_cpu = scheduler.redraw_cpu_seconds + scheduler.event_cpu_seconds


def make_fit(engine: str, epochs: int, side: int = 40, bands: int = 60):
    if engine == "egu":
        from egu_widgets.engine import EGUNet

        cube = make_demo(side, side, bands, 3, seed=0)

        def fit(callbacks):
            EGUNet("pw", 3, epochs=epochs, progress=False, num_threads=1, seed=0).fit(cube, callbacks=callbacks)

    elif engine == "nmf":
        from fake_training import nmf_fit

        cube = make_demo(side, side, bands, 3, seed=0)

        def fit(callbacks):
            nmf_fit(cube, n_epochs=epochs, callbacks=callbacks)

    else:
        raise SystemExit(f"unknown engine {engine!r}")
    return fit


def run_once(config: str, fit) -> tuple[float, float, dict]:
    clock = Clock()
    stats: dict = {}
    if config == "none":
        fit([clock])
    elif config == "console":
        import io

        from egu_widgets.engine.progress import ConsoleProgress

        fit([clock, ConsoleProgress(file=io.StringIO())])
    elif config == "dashboard":
        from egu_widgets.widgets import TrainingDashboard

        dash = TrainingDashboard("bench")
        clock.dashboard = dash
        fit([clock, dash])
        stats = {"redraws": dash.redraws, "own_cpu": clock.dashboard_cpu}
    elif config == "dashboard-run":
        from egu_widgets.widgets import TrainingDashboard

        async def main():
            dash = TrainingDashboard("bench", mode="notebook")  # made on the loop's thread
            clock.dashboard = dash
            run = dash.run(lambda callbacks: fit([clock] + callbacks))
            while not run.done():
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)  # let the final redraw run
            run.result()
            return dash

        dash = asyncio.run(main())
        stats = {"redraws": dash.redraws, "own_cpu": clock.dashboard_cpu}
    else:
        raise ValueError(config)
    if clock.seconds is None:
        raise RuntimeError(f"{config}: training emitted no final event")
    return clock.seconds, clock.cpu_seconds, stats


def fmt_row(cells, widths):
    return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", nargs="+", default=["egu", "nmf"], choices=["egu", "nmf"])
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: egu 300, nmf 6000)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--side", type=int, default=40, help="the demo scene is side x side pixels")
    parser.add_argument("--bands", type=int, default=60)
    parser.add_argument("--budget", type=float, default=5.0, help="largest allowed overhead, percent")
    args = parser.parse_args(argv)
    configs = ["none", "console", "dashboard", "dashboard-run"]

    from egu_widgets.widgets import TrainingDashboard  # noqa: F401  (imports the plotting stack)

    header = [
        "engine",
        "epochs",
        "configuration",
        "wall s",
        "wall vs none",
        "CPU s",
        "CPU vs none",
        "redraws",
        "dashboard CPU",
    ]
    widths = [6, 6, 13, 7, 12, 7, 11, 7, 16]
    failed = False
    print(fmt_row(header, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for engine in args.engine:
        epochs = args.epochs or (300 if engine == "egu" else 6000)
        fit = make_fit(engine, epochs, args.side, args.bands)
        for config in configs:  # warm every path once: first-use costs are not per-run costs
            run_once(config, make_fit(engine, 5, args.side, args.bands))
        walls: dict[str, list[float]] = {c: [] for c in configs}
        cpus: dict[str, list[float]] = {c: [] for c in configs}
        stats: dict[str, list[dict]] = {c: [] for c in configs}
        for _ in range(args.reps):
            for config in configs:
                wall, cpu, extra = run_once(config, fit)
                walls[config].append(wall)
                cpus[config].append(cpu)
                stats[config].append(extra)
        for config in configs:
            # each run against the baseline run next to it (load drifts slowly), then the median
            wall_ratio = statistics.median(w / b for w, b in zip(walls[config], walls["none"]))
            cpu_ratio = statistics.median(c / b for c, b in zip(cpus[config], cpus["none"]))
            redraws = [s["redraws"] for s in stats[config] if s]
            # the dashboard's own CPU time (recording events + redrawing) as a share of the run's
            share = [s["own_cpu"] / c for s, c in zip(stats[config], cpus[config]) if s]
            row = [
                engine,
                epochs,
                config,
                f"{statistics.median(walls[config]):.2f}",
                "-" if config == "none" else f"{100 * (wall_ratio - 1):+.1f} %",
                f"{statistics.median(cpus[config]):.2f}",
                "-" if config == "none" else f"{100 * (cpu_ratio - 1):+.1f} %",
                f"{int(np.median(redraws))}" if redraws else "-",
                f"{100 * max(share):.1f} % (max)" if share else "-",
            ]
            print(fmt_row(row, widths), flush=True)
            if share and 100 * max(share) >= args.budget:
                failed = True
    print()
    print(f"budget: the dashboard's own CPU time < {args.budget:g} % of the run's: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
