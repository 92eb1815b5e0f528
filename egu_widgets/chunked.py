"""Scenes larger than memory: lazy cubes and chunk-by-chunk unmixing with dask.

A cube opened with ``open_cube("big.nc", chunks={"y": 512, "x": 512})`` holds a dask array; nothing
is read until asked. :func:`map_pixels` applies a pixel-wise function (FCLS against fixed
endmembers, a trained EGU-Net-pw encoder, ...) to each chunk through ``xarray.apply_ufunc`` with
``dask="parallelized"``, so memory stays bounded by the chunk size, and the work runs on whatever
dask scheduler is active: threads by default, or a cluster after
``from dask.distributed import Client; Client("tcp://scheduler:8786")`` (or inside
:func:`use_scheduler`). Each chunk is checked as it is read (:mod:`egu_widgets.cube.lazy`): a chunk
with NaN pixels stops the computation with its pixel range, or, in a cube opened with
``invalid="mask"``, gives NaN abundances at those pixels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import xarray as xr

from .cube import HyperCube
from .errors import InputError

__all__ = ["PixelFunction", "fcls_chunked", "is_lazy", "map_pixels", "use_scheduler"]

#: a pixel-wise function: (n, bands) float32 spectra -> (n, P) values
PixelFunction = Callable[[np.ndarray], np.ndarray]


def is_lazy(cube: HyperCube) -> bool:
    """True when the cube's reflectance is a dask array (read chunk by chunk, never whole)."""
    return cube.reflectance.chunks is not None


def map_pixels(
    cube: HyperCube,
    fn: PixelFunction,
    n_out: int,
    *,
    name: str = "abundances",
    out_dim: str = "endmember",
    dtype=np.float64,
) -> xr.DataArray:
    """Apply ``fn`` to every pixel, chunk by chunk; returns ``(out_dim, y, x)``, lazy when the cube is.

    ``fn`` receives a (n, bands) float32 array of pixels and must return (n, n_out). The result of
    an in-memory cube is computed at once; that of a lazy cube is a dask-backed DataArray: call
    ``.compute()`` or write it with ``to_netcdf``/``to_zarr``. Pixels with a NaN or Inf band
    (those a lazy cube opened with ``invalid="mask"`` keeps out) are not passed to ``fn``: their
    outputs are NaN.
    """
    if n_out < 1:
        raise InputError(f"n_out must be positive; got {n_out}")

    def per_block(block: np.ndarray) -> np.ndarray:
        # block: (..., bands) with any leading chunk shape
        lead = block.shape[:-1]
        flat = np.ascontiguousarray(block.reshape(-1, block.shape[-1]), dtype=np.float32)
        good = _finite_rows(flat)
        every = bool(good.all())
        out = np.asarray(fn(flat if every else flat[good]), dtype=dtype)
        n = flat.shape[0] if every else int(good.sum())
        if out.shape != (n, n_out):
            raise InputError(f"pixel function returned shape {out.shape}; expected ({n}, {n_out})")
        if not every:
            full = np.full((flat.shape[0], n_out), np.nan, dtype=dtype)
            full[good] = out
            out = full
        return out.reshape(*lead, n_out)

    mapped = xr.apply_ufunc(
        per_block,
        cube.reflectance,
        input_core_dims=[["band"]],
        output_core_dims=[[out_dim]],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": {out_dim: n_out}},
    )
    return mapped.transpose(out_dim, "y", "x").rename(name)


def _finite_rows(flat: np.ndarray, block: int = 1 << 22) -> np.ndarray:
    """(n,) bool: which rows of ``flat`` (n, bands) are all finite, read a block of values at a time."""
    good = np.empty(flat.shape[0], dtype=bool)
    step = max(1, block // max(flat.shape[1], 1))
    for start in range(0, flat.shape[0], step):
        good[start : start + step] = np.isfinite(flat[start : start + step]).all(axis=1)
    return good


def fcls_chunked(cube: HyperCube, endmembers: np.ndarray) -> xr.DataArray:
    """FCLS abundances of every pixel against fixed endmembers, chunk by chunk."""
    from .classic import fcls

    em = np.asarray(endmembers, dtype=np.float64)
    return map_pixels(cube, lambda px: fcls(px, em), em.shape[0])


@contextlib.contextmanager
def use_scheduler(scheduler: str | None = None, *, workers: int | None = None) -> Iterator[object]:
    """Run the dask computations inside the block on ``scheduler``.

    Parameters
    ----------
    scheduler
        None or ``"threads"``: the threaded scheduler of this process (``workers`` threads);
        ``"local"``: a :class:`dask.distributed.LocalCluster` of ``workers`` processes (default 2)
        bound to loopback, closed on exit; an address such as ``"tcp://host:8786"``: an existing
        cluster's scheduler. Workers receive pixel functions (a trained model's
        :class:`~egu_widgets.engine.inference.PixelUnmixer`) by pickle.

    Yields
    ------
    object
        The ``distributed.Client``, or None for threads.

    Examples
    --------
    >>> with use_scheduler("threads", workers=2):  # doctest: +SKIP
    ...     maps = model.abundance_maps(cube).compute()
    """
    import dask

    if scheduler in (None, "threads"):
        with dask.config.set(scheduler="threads", num_workers=workers):
            yield None
        return
    try:
        from dask import distributed
    except ImportError as exc:
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            "a dask.distributed scheduler needs the distributed package: pip install 'egu_widgets[dask]'"
        ) from exc
    if scheduler == "local":
        n = 2 if workers is None else workers
        with (
            distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise InputError(
            f"scheduler must be 'threads', 'local' or an address such as 'tcp://host:8786'; got {scheduler!r}"
        )
    with distributed.Client(scheduler) as client:
        yield client
