"""Scenes larger than memory: lazy cubes and chunk-by-chunk unmixing with dask.

A cube opened with ``open_cube("big.nc", chunks={"y": 512, "x": 512})`` holds a dask array; nothing
is read until asked. :func:`map_pixels` applies a pixel-wise function (FCLS against fixed
endmembers, a trained EGU-Net-pw encoder, ...) to each chunk through ``xarray.apply_ufunc`` with
``dask="parallelized"``, so memory stays bounded by the chunk size, and the work runs on whatever
dask scheduler is active: threads by default, or a cluster after
``from dask.distributed import Client; Client("tcp://scheduler:8786")``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from .cube import HyperCube
from .errors import InputError

__all__ = ["PixelFunction", "fcls_chunked", "is_lazy", "map_pixels"]

PixelFunction = Callable[[np.ndarray], np.ndarray]  # (n, bands) float32 -> (n, P)


def is_lazy(cube: HyperCube) -> bool:
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
    ``.compute()`` or write it with ``to_netcdf``.
    """
    if n_out < 1:
        raise InputError(f"n_out must be positive; got {n_out}")

    def per_block(block: np.ndarray) -> np.ndarray:
        # block: (..., bands) with any leading chunk shape
        lead = block.shape[:-1]
        flat = np.ascontiguousarray(block.reshape(-1, block.shape[-1]), dtype=np.float32)
        out = np.asarray(fn(flat), dtype=dtype)
        if out.shape != (flat.shape[0], n_out):
            raise InputError(f"pixel function returned shape {out.shape}; expected ({flat.shape[0]}, {n_out})")
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


def fcls_chunked(cube: HyperCube, endmembers: np.ndarray) -> xr.DataArray:
    """FCLS abundances of every pixel against fixed endmembers, chunk by chunk."""
    from .classic import fcls

    em = np.asarray(endmembers, dtype=np.float64)
    return map_pixels(cube, lambda px: fcls(px, em), em.shape[0])
