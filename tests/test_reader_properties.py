"""Property: a random small cube written in any legal layout is read back to the same array.

Legal layouts are those whose axis order the file states: ``.mat`` pixel matrices with
``nRow``/``nCol`` in either pixel orientation, 3-D ``.mat`` images with their size stored, ENVI
in each interleave (the header states it), and netCDF with its dimensions named, in any order.
"""

from __future__ import annotations

import numpy as np
import scipy.io
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from egu_widgets import open_cube

LAYOUTS = ("mat bands x pixels", "mat pixels x bands", "mat rows x cols x bands", "envi", "netcdf", "netcdf cf")


def _write(path_dir, layout: str, img: np.ndarray, rng: np.random.Generator, extra: str):
    rows, cols, bands = img.shape
    columns = img.reshape(-1, bands, order="F").T  # MATLAB's column-major pixel order
    stated = {"nRow": rows, "nCol": cols}
    kwargs: dict = {}
    if layout == "mat bands x pixels":
        scipy.io.savemat(path_dir / "c.mat", {"Y": columns, **stated})
        if rows * cols == bands:  # a square matrix: only layout= can say which axis is which
            kwargs["layout"] = "bands,pixels"
        return path_dir / "c.mat", kwargs
    if layout == "mat pixels x bands":
        scipy.io.savemat(path_dir / "c.mat", {"Y": columns.T, **stated})
        if rows * cols == bands:
            kwargs["layout"] = "pixels,bands"
        return path_dir / "c.mat", kwargs
    if layout == "mat rows x cols x bands":
        scipy.io.savemat(path_dir / "c.mat", {"Y": img, **stated})
        if (rows, cols) == (cols, bands):  # both readings fit the stated size
            kwargs["layout"] = "rows,cols,bands"
        return path_dir / "c.mat", kwargs
    if layout == "envi":
        import spectral.io.envi as envi

        envi.save_image(str(path_dir / "c.hdr"), img, ext=".img", force=True, interleave=extra)
        return path_dir / "c.hdr", kwargs
    names = {"netcdf": ("y", "x", "band"), "netcdf cf": ("lat", "lon", "wavelength")}[layout]
    order = [int(i) for i in rng.permutation(3)]
    dims = tuple(names[i] for i in order)
    coords = {}
    if layout == "netcdf cf":
        coords = {
            "lat": np.linspace(40.0, 41.0, rows),
            "lon": np.linspace(-3.0, -2.0, cols),
            "wavelength": ("wavelength", np.linspace(400.0, 2500.0, bands), {"units": "nm"}),
        }
    ds = xr.Dataset({"data": (dims, np.transpose(img, order))}, coords=coords)
    ds.to_netcdf(path_dir / "c.nc", engine="h5netcdf")
    return path_dir / "c.nc", kwargs


@settings(max_examples=40, deadline=None)
@given(
    layout=st.sampled_from(LAYOUTS),
    rows=st.integers(1, 5),
    cols=st.integers(1, 5),
    bands=st.integers(2, 7),
    interleave=st.sampled_from(("bsq", "bil", "bip")),
    seed=st.integers(0, 2**16),
)
def test_any_legal_layout_reads_back_the_same_array(tmp_path_factory, layout, rows, cols, bands, interleave, seed):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0.01, 1.0, size=(rows, cols, bands)).astype(np.float32)
    path, kwargs = _write(tmp_path_factory.mktemp("layout"), layout, img, rng, interleave)
    cube = open_cube(path, **kwargs)
    np.testing.assert_array_equal(cube.image, img)
    if layout == "netcdf cf":
        np.testing.assert_allclose(cube.wavelengths, np.linspace(400.0, 2500.0, bands))
        np.testing.assert_allclose(cube.ds["lat"].values, np.linspace(40.0, 41.0, rows))
