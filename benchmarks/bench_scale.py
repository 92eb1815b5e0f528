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
    args = parser.parse_args(argv)
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
