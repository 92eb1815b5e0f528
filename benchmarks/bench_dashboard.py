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
whole process's (every thread, so redraws on the main thread count) over the same span. On a
shared machine wall time swings by more than the effect measured; CPU time does not, so the
budget is checked on CPU time, and both are shown. Widgets are built and redrawn for real (Bokeh
patches are serialised) but no page is attached. The table shows medians over ``--reps``;
overheads are relative to ``none``. Exits 1 when a dashboard configuration exceeds ``--budget``
percent of CPU time.

Engines: ``egu`` is EGU-Net on a 40x40 demo scene (torch limited to one thread so that runs are
comparable); ``nmf`` is the small NMF loop of the browser tests, whose epochs take about a
millisecond: the stress case where per-event cost matters most.
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
    """The training loop's wall time (its own ``elapsed``) and the process's CPU time over it."""

    def __init__(self):
        self.seconds = None
        self.cpu_seconds = None
        self._cpu0 = None

    def on_event(self, event):
        if event.kind == "start":
            self._cpu0 = time.process_time()
        if event.is_final:
            self.seconds = event.elapsed
            self.cpu_seconds = time.process_time() - self._cpu0


def make_fit(engine: str, epochs: int):
    if engine == "egu":
        from egu_widgets.engine import EGUNet

        cube = make_demo(40, 40, 60, 3, seed=0)

        def fit(callbacks):
            EGUNet("pw", 3, epochs=epochs, progress=False, num_threads=1, seed=0).fit(cube, callbacks=callbacks)

    elif engine == "nmf":
        from fake_training import nmf_fit

        cube = make_demo(40, 40, 60, 3, seed=0)

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
        fit([clock, dash])
        stats = {"redraws": dash.redraws, "redraw_cpu": dash.redraw_cpu_seconds}
    elif config == "dashboard-run":
        from egu_widgets.widgets import TrainingDashboard

        async def main():
            dash = TrainingDashboard("bench", mode="notebook")  # made on the loop's thread
            run = dash.run(lambda callbacks: fit(callbacks + [clock]))
            while not run.done():
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)  # let the final redraw run
            run.result()
            return dash

        dash = asyncio.run(main())
        stats = {"redraws": dash.redraws, "redraw_cpu": dash.redraw_cpu_seconds}
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
    parser.add_argument("--budget", type=float, default=5.0, help="largest allowed overhead, percent")
    args = parser.parse_args(argv)
    configs = ["none", "console", "dashboard", "dashboard-run"]

    from egu_widgets.widgets import TrainingDashboard  # noqa: F401  (imports the plotting stack)

    header = ["engine", "epochs", "configuration", "wall s", "wall overhead", "CPU s", "CPU overhead", "redraws", "redraw CPU s"]
    widths = [6, 6, 13, 7, 13, 7, 12, 7, 12]
    failed = False
    print(fmt_row(header, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for engine in args.engine:
        epochs = args.epochs or (300 if engine == "egu" else 6000)
        fit = make_fit(engine, epochs)
        for config in configs:  # warm every path once: first-use costs are not per-run costs
            run_once(config, make_fit(engine, 5))
        walls: dict[str, list[float]] = {c: [] for c in configs}
        cpus: dict[str, list[float]] = {c: [] for c in configs}
        stats: dict[str, list[dict]] = {c: [] for c in configs}
        for _ in range(args.reps):
            for config in configs:
                wall, cpu, extra = run_once(config, fit)
                walls[config].append(wall)
                cpus[config].append(cpu)
                stats[config].append(extra)
        base_wall, base_cpu = statistics.median(walls["none"]), statistics.median(cpus["none"])
        for config in configs:
            wall, cpu = statistics.median(walls[config]), statistics.median(cpus[config])
            wall_over = 100.0 * (wall - base_wall) / base_wall
            cpu_over = 100.0 * (cpu - base_cpu) / base_cpu
            redraws = [s.get("redraws") for s in stats[config] if s]
            redraw_cpu = [s.get("redraw_cpu") for s in stats[config] if s]
            row = [
                engine,
                epochs,
                config,
                f"{wall:.2f}",
                "-" if config == "none" else f"{wall_over:+.1f} %",
                f"{cpu:.2f}",
                "-" if config == "none" else f"{cpu_over:+.1f} %",
                f"{int(np.median(redraws))}" if redraws else "-",
                f"{np.median(redraw_cpu):.3f}" if redraw_cpu else "-",
            ]
            print(fmt_row(row, widths), flush=True)
            if config.startswith("dashboard") and cpu_over >= args.budget:
                failed = True
    print()
    print(f"budget: dashboard CPU overhead < {args.budget:g} %: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
