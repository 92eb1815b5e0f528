"""Scaling of chunked unmixing: time and peak memory for 10^4 ... 10^7 pixels.

    python benchmarks/bench_scale.py [--sizes 1e4 1e5 1e6 1e7] [--bands 224] [--method fcls egu-pw]

Each size runs in its own process (so peak memory is that run's own) on a lazily generated cube
of the given size (dask chunks of 65 536 pixels, 224 bands), unmixed chunk by chunk with
:func:`egu_widgets.chunked.map_pixels`, and reduced to a checksum so that nothing is kept in memory.
A flat memory column and a linear time column are what chunked processing promises.
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--bands", type=int, default=224)
    parser.add_argument("--method", nargs="+", default=["fcls", "egu-pw"], choices=["fcls", "egu-pw"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print("| method | pixels | seconds | pixels/s | peak memory (MB) | input size (MB, float32) |")
    print("|---|---|---|---|---|---|")
    for method in args.method:
        for size in args.sizes:
            out = subprocess.run([sys.executable, "-c", CHILD, str(int(size)), str(args.bands), method, str(args.threads)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {method} | {int(size)} | failed: {out.stderr.strip().splitlines()[-1]} | | | |")
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            in_mb = row["pixels"] * args.bands * 4 / 2**20
            print(f"| {method} | {row['pixels']:,} | {row['seconds']:.2f} | {row['pixels'] / row['seconds']:,.0f} | "
                  f"{row['peak_mb']:.0f} | {in_mb:,.0f} |")


if __name__ == "__main__":
    main()
