"""Scaling of chunked unmixing: time and peak memory for 10^4 ... 10^7 pixels, and whole scenes on disk.

    python benchmarks/bench_scale.py [--sizes 1e4 1e5 1e6 1e7] [--bands 224] [--method fcls egu-pw]
    python benchmarks/bench_scale.py --scene-sides 1000 3000 [--bands 224] [--folder /tmp]

Each size runs in its own process (so peak memory is that run's own) on a lazily generated cube
of the given size (dask chunks of 65 536 pixels, 224 bands), unmixed chunk by chunk with
:func:`egu_widgets.chunked.map_pixels`, and reduced to a checksum so that nothing is kept in memory.
A flat memory column and a linear time column are what chunked processing promises.

``--scene-sides`` writes a side x side x bands float32 netCDF scene (chunk by chunk, in a process
of its own), then, each in a fresh process: ``open_cube(..., chunks=)`` (time and peak RSS; nothing
may be read), ``check_usable`` (a sample), and the whole scene unmixed with an EGU-Net-pw fitted on
a 64 x 64 crop and written to Zarr chunk by chunk (time and peak RSS); and, on a 256 x 256 crop of
the scene, the abundances on a ``LocalCluster`` of 2 workers against the threaded scheduler's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np, dask, dask.array as da, xarray as xr
    from egu_widgets import HyperCube
    from egu_widgets.chunked import map_pixels

    n_pixels, bands, p, method, threads = int(sys.argv[1]), int(sys.argv[2]), 5, sys.argv[3], int(sys.argv[4])
    side = 512
    rows = max(1, n_pixels // side) if n_pixels >= side else 1
    cols = side if n_pixels >= side else n_pixels
    rng = np.random.default_rng(0)
    em = rng.uniform(0.05, 0.95, size=(p, bands)).astype(np.float32)

    def make_block(block_info=None):
        loc = block_info[None]["array-location"]
        h, w = loc[0][1] - loc[0][0], loc[1][1] - loc[1][0]
        r = np.random.default_rng(loc[0][0] * 7919 + loc[1][0])
        ab = r.dirichlet(np.ones(p), size=h * w).astype(np.float32)
        return (ab @ em).reshape(h, w, bands)

    chunk_rows = max(1, (1 << 16) // cols)  # 65 536 pixels (about 58 MB at 224 bands) a chunk
    data = da.map_blocks(make_block, dtype=np.float32, chunks=(da.core.normalize_chunks((chunk_rows,), (rows,))[0], (cols,), (bands,)))
    ds = xr.Dataset({"reflectance": (("y", "x", "band"), data)}, coords={"y": np.arange(rows), "x": np.arange(cols), "band": np.arange(bands)})
    cube = HyperCube(ds, validate=False)

    if method == "fcls":
        from egu_widgets.classic import fcls
        fn = lambda px: fcls(px, em)
    else:
        import torch
        from egu_widgets.engine import EGUNet
        from egu_widgets.cube.synthetic import make_demo
        torch.set_num_threads(1)
        small = make_demo(32, 32, bands, p, seed=0)
        model = EGUNet(variant="pw", n_endmembers=p, epochs=2, seed=0).fit(small)
        # the trained endmember stream as a plain array function (what EGUNet.abundance_maps maps)
        fn = model.pixel_unmixer()

    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=threads):
        total = float(map_pixels(cube, fn, p).sum().compute())
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pixels": rows * cols, "seconds": seconds, "peak_mb": peak_mb, "checksum": total}))
    """
)


WRITE = textwrap.dedent(
    """
    import sys
    import numpy as np, dask.array as da, xarray as xr

    side, bands, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    p = 5
    em = np.random.default_rng(0).uniform(0.05, 0.95, size=(p, bands)).astype(np.float32)

    def make_block(block_info=None):
        (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
        r = np.random.default_rng(y0 * 7919 + x0)
        ab = r.dirichlet(np.ones(p), size=(y1 - y0) * (x1 - x0)).astype(np.float32)
        return (ab @ em).reshape(y1 - y0, x1 - x0, bands)

    data = da.map_blocks(make_block, dtype=np.float32, chunks=da.core.normalize_chunks((256, 256, bands), (side, side, bands)))
    ds = xr.Dataset({"reflectance": (("y", "x", "band"), data)}, coords={"y": np.arange(side), "x": np.arange(side), "band": np.arange(bands)})
    ds.reflectance.encoding["chunksizes"] = (256, 256, bands)
    ds.to_netcdf(path, engine="h5netcdf")
    """
)

SCENE = textwrap.dedent(
    """
    import json, resource, sys, time
    t0 = time.perf_counter()
    import numpy as np
    from egu_widgets import open_cube
    from egu_widgets.cube import check_usable
    mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    chunks = {"y": 512, "x": 512}
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base = rss()
    start = time.perf_counter()
    cube = open_cube(path, chunks=chunks)
    opened = time.perf_counter() - start
    row = {"open_s": opened, "open_rss_mb": rss(), "import_rss_mb": base}
    if mode == "open":
        start = time.perf_counter()
        open_cube(path, chunks=chunks)  # again, its libraries now imported
        row["open_again_s"] = time.perf_counter() - start
        start = time.perf_counter()
        check_usable(cube, 5)
        row.update(check_s=time.perf_counter() - start, check_rss_mb=rss())
    else:
        import dask, torch
        from egu_widgets import HyperCube
        from egu_widgets.engine import EGUNet
        from egu_widgets.results import UnmixingResult
        from egu_widgets.chunked import use_scheduler
        torch.set_num_threads(1)
        start = time.perf_counter()
        crop = HyperCube(cube.isel(y=slice(0, 64), x=slice(0, 64)).ds.compute())
        model = EGUNet("pw", 5, epochs=20, seed=0, progress=False, num_threads=1).fit(crop)
        row["fit_s"] = time.perf_counter() - start
        if mode == "unmix":
            start = time.perf_counter()
            with use_scheduler("threads", workers=2):
                UnmixingResult.from_arrays(cube, model.abundance_maps(cube), method="egu-pw").to_zarr(out)
            row.update(unmix_s=time.perf_counter() - start, unmix_rss_mb=rss())
        else:
            small = cube.isel(y=slice(0, 256), x=slice(0, 256))
            with use_scheduler("threads", workers=2):
                threaded = model.abundance_maps(small).values
            with use_scheduler("local", workers=2):
                clustered = model.abundance_maps(small).values
            row["cluster_max_diff"] = float(np.abs(threaded - clustered).max())
    print(json.dumps(row))
    """
)


WRITE_TRUTH = textwrap.dedent(
    """
    import json, sys
    import numpy as np, dask.array as da, xarray as xr
    from scipy.ndimage import map_coordinates
    from egu_widgets.cube.download import fetch
    from egu_widgets.cube.library import read_usgs_library
    from egu_widgets.cube.synthetic import EGU_SYNTHETIC_FILES, EGU_SYNTHETIC_MINERALS

    side, path, snr, chunk, cell = int(sys.argv[1]), sys.argv[2], 30.0, 256, 40
    library = read_usgs_library(fetch(EGU_SYNTHETIC_FILES[1]))
    names = list(library.names)
    em = library.spectra[[names.index(n) for n in EGU_SYNTHETIC_MINERALS]].astype(np.float64)
    p, bands = em.shape
    # Smooth random fields on a coarse grid (a node every `cell` pixels), interpolated per chunk so
    # that the maps are seamless; a sharpened softmax makes regions with near-pure cores.
    coarse = np.random.default_rng(0).normal(size=(p, side // cell + 4, side // cell + 4))

    def abundances(y0, y1, x0, x1):
        yy, xx = np.mgrid[y0:y1, x0:x1] / cell + 1.0
        f = np.stack([map_coordinates(c, [yy, xx], order=3, mode="nearest") for c in coarse])
        logits = 4.0 * f
        logits -= logits.max(axis=0)
        a = np.exp(logits)
        return a / a.sum(axis=0)

    pilot = np.einsum("phw,pb->hwb", abundances(0, chunk, 0, chunk), em)
    sigma = float(np.sqrt(np.mean(pilot**2) / 10 ** (snr / 10)))

    def reflectance(block_info=None):
        (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
        clean = np.einsum("phw,pb->hwb", abundances(y0, y1, x0, x1), em)
        noise = np.random.default_rng([1, y0, x0]).normal(0.0, sigma, size=clean.shape)
        return np.clip(clean + noise, 0.0, None).astype(np.float32)

    def truth(block_info=None):
        _, (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return abundances(y0, y1, x0, x1).astype(np.float32)

    refl = da.map_blocks(reflectance, dtype=np.float32, chunks=da.core.normalize_chunks((chunk, chunk, bands), (side, side, bands)))
    ab = da.map_blocks(truth, dtype=np.float32, chunks=da.core.normalize_chunks((p, chunk, chunk), (p, side, side)))
    ds = xr.Dataset(
        {"reflectance": (("y", "x", "band"), refl), "endmembers": (("endmember", "band"), em), "abundances": (("endmember", "y", "x"), ab)},
        coords={"y": np.arange(side), "x": np.arange(side), "band": np.arange(bands),
                "wavelength": ("band", library.wavelengths, {"units": "nm"}),
                "endmember": [n.split()[0].lower() for n in EGU_SYNTHETIC_MINERALS]},
        attrs={"name": f"usgs-{side}", "source": "bench_scale.py", "provenance": json.dumps({"snr_db": snr, "cell": cell})},
    )
    ds.reflectance.encoding["chunksizes"] = (chunk, chunk, bands)
    ds.abundances.encoding["chunksizes"] = (p, chunk, chunk)
    ds.to_netcdf(path, engine="h5netcdf")
    """
)

FIT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    mode, path, work, chunk, opts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from egu_widgets import HyperCube, metrics, open_cube
    from egu_widgets.chunked import use_scheduler
    from egu_widgets.engine import EGUNet
    from egu_widgets.results import UnmixingResult
    settings = dict(seed=0, progress=False, num_threads=1, epochs=opts.pop("epochs", None))

    def rmse(maps, cube, endmembers):
        # aligned as UnmixingResult.aligned_to aligns (spectral angles), then read chunk by chunk
        perm = metrics.align(endmembers, cube.true_endmembers)
        err = (maps.data[perm].astype(np.float64) - cube.ds["abundances"].data) ** 2
        return float(np.sqrt(err.mean().compute()))

    cube = open_cube(path, chunks={"y": chunk, "x": chunk})
    if "side" in opts:
        s = opts.pop("side")
        cube = cube.isel(y=slice(0, s), x=slice(0, s))
    row = {"pixels": cube.height * cube.width}
    if mode == "lazy":  # fit on the lazy cube, write the maps to Zarr chunk by chunk; then the crop baseline
        start = time.perf_counter()
        with use_scheduler("threads", workers=2):
            est = EGUNet("pw", 5, **settings, **opts).fit(cube)
            row["fit_s"] = time.perf_counter() - start
            row["epochs"] = est.outcome_.epochs_done
            est.result_.to_zarr(work + "/maps.zarr")
        row["fit_unmix_s"] = time.perf_counter() - start
        row["unmix_s"] = row["fit_unmix_s"] - row["fit_s"]
        row["peak_rss_mb"] = rss()
        with use_scheduler("threads", workers=2):
            written = UnmixingResult.open(work + "/maps.zarr", chunks={})
            row["rmse"] = rmse(written.abundances, cube, written.endmembers.values)
            start = time.perf_counter()
            crop = HyperCube(cube.isel(y=slice(0, 200), x=slice(0, 200)).ds.compute())
            base = EGUNet("pw", 5, **settings).fit(crop)
            row["crop_fit_s"] = time.perf_counter() - start
            if opts.get("crop_rmse", True):
                row["crop_rmse"] = rmse(base.abundance_maps(cube), cube, base.endmembers_)
    elif mode == "memory":  # the same cube fitted whole in memory, and lazily, in one process
        with use_scheduler("threads", workers=2):
            loaded = HyperCube(cube.ds.compute())
            start = time.perf_counter()
            whole = EGUNet("pw", 5, **settings).fit(loaded)
            row.update(memory_fit_s=time.perf_counter() - start, memory_rmse=whole.result_.rmse, memory_epochs=whole.outcome_.epochs_done)
            start = time.perf_counter()
            lazy = EGUNet("pw", 5, **settings, **opts).fit(cube)
            row.update(lazy_fit_s=time.perf_counter() - start, lazy_rmse=lazy.result_.aligned_to(loaded).rmse, lazy_epochs=lazy.outcome_.epochs_done)
    elif mode == "sample":  # one lazy fit at the given sample sizes, scored on the whole cube
        start = time.perf_counter()
        with use_scheduler("threads", workers=2):
            est = EGUNet("pw", 5, **settings, **opts).fit(cube)
            row.update(fit_s=time.perf_counter() - start, epochs=est.outcome_.epochs_done)
            row["rmse"] = rmse(est.result_.abundances, cube, est.result_.endmembers.values)
    print(json.dumps(row))
    """
)


def _child(script: str, *args: str, big: bool = False) -> dict:
    """Run ``script`` in a fresh process; ``big``: above 3 GiB, so one such run at a time (flock)."""
    lock = ["flock", "/tmp/bigmem.lock"] if big else []
    out = subprocess.run([*lock, sys.executable, "-c", script, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_scene(side: int, path: str) -> None:
    """Write the side x side x 224 scene with truth (five USGS spectra, smooth maps, 30 dB) to ``path``."""
    subprocess.run([sys.executable, "-c", WRITE_TRUTH, str(side), path], check=True)


FIT_PARTS = ("open", "lazy", "cluster", "memory", "sweep")


def fit_rows(
    path: str,
    work: str,
    chunk: int,
    memory_side: int | None,
    sweep: list[tuple[int, int]],
    extra: dict,
    parts: tuple[str, ...] = FIT_PARTS,
) -> None:
    """The lazy fit of the whole scene and its goals; each measurement in a fresh process."""
    import os

    print("| what | figure |")
    print("|---|---|")
    print(f"| file | {os.path.getsize(path) / 2**30:.2f} GiB |")
    if "open" in parts:
        _open_rows(path, work)
    if "lazy" in parts:
        _lazy_rows(path, work, chunk, extra)
    if "cluster" in parts:
        cluster = _child(SCENE, "cluster", path, os.path.join(work, "unused.zarr"))
        print(
            f"| LocalCluster (2 workers) vs threads, max diff | {cluster.get('cluster_max_diff', float('nan')):.1e} |"
        )
    if "memory" in parts and memory_side:
        _memory_rows(path, work, chunk, memory_side, extra)
    if "sweep" in parts:
        _sweep_rows(path, work, chunk, memory_side, sweep, extra)


def _open_rows(path: str, work: str) -> None:
    import os

    opened = _child(SCENE, "open", path, os.path.join(work, "unused.zarr"))
    print(
        f"| open_cube (s, RSS MB) | {opened.get('open_s', float('nan')):.2f}, {opened.get('open_rss_mb', float('nan')):.0f} |"
    )
    print(f"| open_cube again, dask imported (s) | {opened.get('open_again_s', float('nan')):.2f} |")


def _lazy_rows(path: str, work: str, chunk: int, extra: dict) -> None:
    lazy = _child(FIT, "lazy", path, work, str(chunk), json.dumps(extra))
    if "error" in lazy:
        print(f"| lazy fit | failed: {lazy['error']} |")
    else:
        baseline = lazy["crop_fit_s"] + lazy["unmix_s"]
        print(f"| lazy fit + unmix to Zarr, peak RSS | {lazy['peak_rss_mb'] / 1024:.2f} GiB |")
        print(f"| lazy fit (s, epochs) / unmix (s) | {lazy['fit_s']:.0f}, {lazy['epochs']} / {lazy['unmix_s']:.0f} |")
        print(f"| fit on 200 x 200 crop (s) | {lazy['crop_fit_s']:.0f} |")
        print(f"| wall / (crop fit + unmix) | {lazy['fit_unmix_s'] / baseline:.2f} |")
        print(
            f"| RMSE, lazy fit / crop fit (whole scene) | {lazy['rmse']:.4f} / {lazy.get('crop_rmse', float('nan')):.4f} |"
        )


def _memory_rows(path: str, work: str, chunk: int, memory_side: int, extra: dict) -> None:
    mem = _child(FIT, "memory", path, work, str(chunk), json.dumps({"side": memory_side, **extra}), big=True)
    if "error" in mem:
        print(f"| {memory_side}^2 in memory | failed: {mem['error']} |")
    else:
        print(f"| {memory_side}^2 subset: RMSE in memory / lazy | {mem['memory_rmse']:.4f} / {mem['lazy_rmse']:.4f} |")
        print(
            f"| {memory_side}^2 subset: fit s in memory / lazy | {mem['memory_fit_s']:.0f} / {mem['lazy_fit_s']:.0f} |"
        )


def _sweep_rows(path: str, work: str, chunk: int, memory_side: int | None, sweep: list, extra: dict) -> None:
    for pixels, patches in sweep:
        opts = {"sample_pixels": pixels, "sample_patches": patches, **extra}
        if memory_side:
            opts["side"] = memory_side
        row = _child(FIT, "sample", path, work, str(chunk), json.dumps(opts))
        print(
            f"| sample {pixels} pixels, {patches} patches: RMSE, fit s | {row.get('rmse', float('nan')):.4f}, {row.get('fit_s', float('nan')):.0f} {row.get('error', '')} |"
        )


def egu_sweep(folder: str | None, sweep: list[tuple[int, int]]) -> None:
    """Lazy fits of egu-synthetic (written to netCDF, opened in 50 x 50 chunks) at each sample size."""
    import os
    import shutil
    import tempfile

    from egu_widgets.cube.synthetic import make_egu_synthetic

    work = tempfile.mkdtemp(prefix="bench_scale_egu_", dir=folder)
    path = os.path.join(work, "egu.nc")
    try:
        make_egu_synthetic().to_netcdf(path)
        print("| sample pixels | sample patches | RMSE | fit (s) | epochs |")
        print("|---|---|---|---|---|")
        for pixels, patches in sweep:
            opts = json.dumps({"sample_pixels": pixels, "sample_patches": patches})
            row = _child(FIT, "sample", path, work, "50", opts)
            print(
                f"| {pixels} | {patches} | {row.get('rmse', float('nan')):.4f} | {row.get('fit_s', float('nan')):.0f} | "
                f"{row.get('epochs', '')} {row.get('error', '')} |"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scenes(sides, bands, folder) -> None:
    """Write each scene, then open, unmix and compare schedulers in fresh processes; a table row each."""
    import os
    import shutil
    import tempfile

    print(
        "| scene | file (GB) | open_cube (s) | RSS after open (MB) | check_usable, sampled (s) | RSS (MB) | "
        "fit on 64 x 64 crop (s) | unmix whole scene to Zarr (s) | peak RSS (MB) | LocalCluster vs threads, max diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for side in sides:
        work = tempfile.mkdtemp(prefix="bench_scale_", dir=folder)
        path = os.path.join(work, "scene.nc")
        try:
            subprocess.run([sys.executable, "-c", WRITE, str(side), str(bands), path], check=True)
            rows = {}
            for mode in ("open", "unmix", "cluster"):
                out = subprocess.run(
                    [sys.executable, "-c", SCENE, mode, path, os.path.join(work, "maps.zarr")],
                    capture_output=True,
                    text=True,
                )
                if out.returncode != 0:
                    rows[mode] = {"error": out.stderr.strip().splitlines()[-1]}
                    continue
                rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            o, u, c = rows["open"], rows["unmix"], rows["cluster"]
            gb = os.path.getsize(path) / 1e9
            print(
                f"| {side} x {side} x {bands} | {gb:.2f} | {o.get('open_s', float('nan')):.2f} | "
                f"{o.get('open_rss_mb', float('nan')):.0f} | {o.get('check_s', float('nan')):.2f} | "
                f"{o.get('check_rss_mb', float('nan')):.0f} | {u.get('fit_s', float('nan')):.1f} | "
                f"{u.get('unmix_s', float('nan')):.1f} | {u.get('unmix_rss_mb', float('nan')):.0f} | "
                f"{c.get('cluster_max_diff', float('nan')):.1e} |"
            )
            for mode, row in rows.items():
                if "error" in row:
                    print(f"<!-- {mode} failed: {row['error']} -->")
        finally:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--bands", type=int, default=224)
    parser.add_argument("--method", nargs="+", default=["fcls", "egu-pw"], choices=["fcls", "egu-pw"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--scene-sides",
        nargs="+",
        type=int,
        default=None,
        help="write side x side x bands netCDF scenes and time open, unmix and cluster runs on them",
    )
    parser.add_argument("--folder", default=None, help="where the scenes are written (default: the temp folder)")
    parser.add_argument(
        "--fit-side",
        type=int,
        default=None,
        help="write a side x side x 224 scene with truth and time the lazy fit and its goals on it",
    )
    parser.add_argument("--scene", default=None, help="an existing scene written by --fit-side --keep (not deleted)")
    parser.add_argument("--parts", nargs="+", default=list(FIT_PARTS), choices=FIT_PARTS, help="which fit rows to run")
    parser.add_argument("--chunk", type=int, default=512, help="dask chunk side of the fit rows (default 512)")
    parser.add_argument(
        "--memory-side", type=int, default=None, help="also fit a top-left subset of this side held in memory"
    )
    parser.add_argument(
        "--sweep",
        nargs="*",
        default=[],
        metavar="PIXELS:PATCHES",
        help="lazy fits at these sample sizes (on the --memory-side subset when given), scored against truth",
    )
    parser.add_argument(
        "--egu-sweep", nargs="*", default=None, metavar="PIXELS:PATCHES", help="the same on egu-synthetic"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epoch bound of every fit (default: the preset's)")
    parser.add_argument("--keep", action="store_true", help="keep the written scene (default: delete it)")
    args = parser.parse_args(argv)
    sweep = [tuple(int(v) for v in item.split(":")) for item in args.sweep]
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    if args.egu_sweep is not None:
        egu_sweep(args.folder, [tuple(int(v) for v in item.split(":")) for item in args.egu_sweep])
        return
    if args.scene:
        import tempfile

        work = tempfile.mkdtemp(prefix="bench_scale_fit_", dir=args.folder)
        fit_rows(args.scene, work, args.chunk, args.memory_side, sweep, extra, tuple(args.parts))
        return
    if args.fit_side:
        import os
        import shutil
        import tempfile

        work = tempfile.mkdtemp(prefix="bench_scale_fit_", dir=args.folder)
        path = os.path.join(work, "scene.nc")
        try:
            start = time.perf_counter()
            write_scene(args.fit_side, path)
            print(f"<!-- scene written in {time.perf_counter() - start:.0f} s -->")
            fit_rows(path, work, args.chunk, args.memory_side, sweep, extra, tuple(args.parts))
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        return
    if args.scene_sides:
        scenes(args.scene_sides, args.bands, args.folder)
        return
    print("| method | pixels | seconds | pixels/s | peak memory (MB) | input size (MB, float32) |")
    print("|---|---|---|---|---|---|")
    for method in args.method:
        for size in args.sizes:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(int(size)), str(args.bands), method, str(args.threads)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                print(f"| {method} | {int(size)} | failed: {out.stderr.strip().splitlines()[-1]} | | | |")
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            in_mb = row["pixels"] * args.bands * 4 / 2**20
            print(
                f"| {method} | {row['pixels']:,} | {row['seconds']:.2f} | {row['pixels'] / row['seconds']:,.0f} | "
                f"{row['peak_mb']:.0f} | {in_mb:,.0f} |"
            )


if __name__ == "__main__":
    main()
