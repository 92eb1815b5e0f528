"""The bad-input matrix (issue 14) through the Python API: each case one clear error, no warnings.

:data:`READER_CASES` is meant for reuse by the CLI half of the matrix: each entry writes its
file(s) under a folder and gives the ``open_cube`` keyword arguments; :func:`cli_flags` turns
those into the command line's flags, and the expected fragment is the same in both halves.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import xarray as xr

from egu_widgets import HyperCube, UnmixingResult, open_cube
from egu_widgets.cube import check_usable
from egu_widgets.errors import DataFileError, EguError, InputError


def scene(rows=6, cols=9, bands=12, p=3, seed=0):
    """A noise-free mixture of ``p`` materials (distinct pixels, so a wrong order shows)."""
    rng = np.random.default_rng(seed)
    em = rng.uniform(0.1, 0.9, size=(p, bands))
    ab = rng.dirichlet(np.ones(p), size=(rows, cols)).transpose(2, 0, 1)
    return np.einsum("phw,pb->hwb", ab, em), em, ab


def matlab_columns(img: np.ndarray) -> np.ndarray:
    """(rows, cols, channels) -> (channels, rows*cols), MATLAB's column-major pixel order."""
    return img.reshape(-1, img.shape[-1], order="F").T


def envi_file(d: Path, name: str, data: np.ndarray, **metadata: Any) -> Path:
    import spectral.io.envi as envi

    envi.save_image(str(d / f"{name}.hdr"), data, ext=".img", force=True, metadata=metadata)
    return d / f"{name}.hdr"


def edit_header(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new))
    return path


# ---------------------------------------------------------------------------- writers
def _mat(d: Path, name: str, **variables: Any) -> Path:
    scipy.io.savemat(d / name, variables)
    return d / name


def w_mat3d_bands_first(d):
    img, *_ = scene(rows=8, cols=8, bands=20)
    return _mat(d, "bfirst.mat", Y=np.moveaxis(img, -1, 0))  # (20, 8, 8)


def w_mat3d_unstated(d):
    img, *_ = scene()
    return _mat(d, "cube3d.mat", Y=img)  # (6, 9, 12): a 6x9 image of 12 bands or a 9x12 image of 6


def w_mat2d_square_matrix(d):
    img, em, ab = scene(rows=4, cols=4, bands=16)  # 16 pixels and 16 bands: a square matrix
    _mat(d, "sqtruth.mat", A=matlab_columns(ab.transpose(1, 2, 0)), M=em.T)
    return _mat(d, "square.mat", Y=matlab_columns(img).T)  # stored pixels x bands


def w_mat2d_pixels_by_bands(d):
    img, *_ = scene(rows=5, cols=5, bands=50)  # 25 pixels x 50 bands, stored one pixel per row
    return _mat(d, "pb.mat", Y=matlab_columns(img).T)


def w_mat_integer(d):
    img, *_ = scene()
    return _mat(d, "int.mat", Y=np.round(matlab_columns(img) * 5000).astype(np.uint16), nRow=6, nCol=9)


def w_mat_overflow(d):
    img, *_ = scene()
    y = matlab_columns(img)
    y[0, 0] = 1e39
    return _mat(d, "huge.mat", Y=y, nRow=6, nCol=9)


def w_mat_label_map(d):
    labels = np.random.default_rng(1).integers(0, 17, size=(14, 14)).astype(np.uint8)
    return _mat(d, "Indian_pines_gt.mat", indian_pines_gt=labels)


def w_mat_two_images(d):
    img, *_ = scene(rows=8, cols=8)
    return _mat(d, "two.mat", first=img, second=img)


def w_mat_max_value_zero(d):
    img, *_ = scene()
    return _mat(d, "max0.mat", Y=matlab_columns(img), nRow=6, nCol=9, maxValue=0.0)


def _envi_int(dtype):
    def write(d):
        img, *_ = scene()
        return envi_file(d, f"int_{np.dtype(dtype).name}", np.round(img * 5000).astype(dtype))

    write.__name__ = f"w_envi_{np.dtype(dtype).name}"
    return write


def w_envi_bands_mismatch(d):
    img, *_ = scene(bands=50)
    return edit_header(envi_file(d, "b50", img.astype(np.float32)), "bands = 50", "bands = 40")


def w_envi_type_99(d):
    img, *_ = scene()
    return edit_header(envi_file(d, "t99", img.astype(np.float32)), "data type = 4", "data type = 99")


def _envi_scale(factor):
    def write(d):
        img, *_ = scene()
        return envi_file(d, f"scale{factor}", img.astype(np.float32), **{"reflectance scale factor": factor})

    write.__name__ = f"w_envi_scale_{factor}"
    return write


def w_nc_raw_int16(d):
    img, *_ = scene()
    xr.Dataset({"data": (("y", "x", "band"), np.round(img * 10000).astype(np.int16))}).to_netcdf(
        d / "raw.nc", engine="h5netcdf"
    )
    return d / "raw.nc"


def w_nc_own_int16(d):
    """The project's own layout, but integers: HyperCube itself refuses the dtype."""
    img, *_ = scene()
    xr.Dataset({"reflectance": (("y", "x", "band"), np.round(img * 10000).astype(np.int16))}).to_netcdf(
        d / "own_int.nc", engine="h5netcdf"
    )
    return d / "own_int.nc"


def w_nc_no_spectral_dim(d):
    img, *_ = scene()
    xr.Dataset({"data": (("p", "q", "r"), img)}).to_netcdf(d / "nodim.nc", engine="h5netcdf")
    return d / "nodim.nc"


def w_nc_two_candidates(d):
    img, *_ = scene()
    wl = np.linspace(400, 900, 12)
    xr.Dataset(
        {"radiance": (("y", "x", "wavelength"), img), "reflectance_l2": (("y", "x", "wavelength"), img / 2)},
        coords={"wavelength": ("wavelength", wl, {"units": "nm"})},
    ).to_netcdf(d / "two.nc", engine="h5netcdf")
    return d / "two.nc"


def w_nc_rows_cols_unnamed(d):
    img, *_ = scene()
    xr.Dataset({"data": (("a", "b", "band"), img)}).to_netcdf(d / "unnamed.nc", engine="h5netcdf")
    return d / "unnamed.nc"


def w_good_mat(d):
    img, *_ = scene()
    return _mat(d, "good.mat", Y=matlab_columns(img), nRow=6, nCol=9)


def w_good_mat_and_label_truth(d):
    _mat(d, "Indian_pines_gt.mat", indian_pines_gt=np.ones((6, 9), dtype=np.uint8))
    return w_good_mat(d)


# ---------------------------------------------------------------------------- the reader matrix
@dataclass(frozen=True)
class ReaderCase:
    """One bad input: ``open_cube(write(folder), **kwargs)`` raises ``error`` whose message holds ``fragment``."""

    id: str
    write: Callable[[Path], Path]
    kwargs: dict
    error: type[EguError]
    fragment: str


READER_CASES = [
    ReaderCase("mat 3-D stored bands first", w_mat3d_bands_first, {}, InputError, "it looks like bands first"),
    ReaderCase("mat 3-D, nothing stated", w_mat3d_unstated, {}, InputError, "pass layout="),
    ReaderCase(
        "mat 2-D square, as many pixels as bands",
        w_mat2d_square_matrix,
        {"truth": "sqtruth.mat"},
        InputError,
        "which axis holds the bands",
    ),
    ReaderCase("mat 25 pixels x 50 bands, no size", w_mat2d_pixels_by_bands, {}, InputError, "layout='pixels,bands'"),
    ReaderCase("mat integer, no scale", w_mat_integer, {}, InputError, "raw integer"),
    ReaderCase("mat maxValue 0", w_mat_max_value_zero, {}, InputError, "maxValue must be positive"),
    ReaderCase("mat values of 1e39", w_mat_overflow, {}, InputError, "beyond float32's range"),
    ReaderCase("mat label map as a cube", w_mat_label_map, {}, DataFileError, "class-label map"),
    ReaderCase(
        "mat label map as truth",
        w_good_mat_and_label_truth,
        {"truth": "Indian_pines_gt.mat"},
        DataFileError,
        "not abundances",
    ),
    ReaderCase("mat two candidate images", w_mat_two_images, {}, DataFileError, "pass variable="),
    ReaderCase("mat variable not there", w_good_mat, {"variable": "paviaU"}, DataFileError, "no variable 'paviaU'"),
    ReaderCase(
        "mat layout for 3-D on a matrix", w_good_mat, {"layout": "bands,rows,cols"}, InputError, "for 3-D arrays"
    ),
    ReaderCase("layout misspelt", w_good_mat, {"layout": "bands,wide"}, InputError, "layout must be one of"),
    *[
        ReaderCase(f"ENVI {np.dtype(t).name}, no scale", _envi_int(t), {}, InputError, "raw integer")
        for t in (np.uint8, np.int16, np.int32, np.uint16, np.uint32, np.int64, np.uint64)
    ],
    ReaderCase(
        "ENVI 40 bands declared over 50", w_envi_bands_mismatch, {}, DataFileError, "does not describe this file"
    ),
    ReaderCase("ENVI data type 99", w_envi_type_99, {}, DataFileError, "unsupported ENVI data type 99"),
    ReaderCase("ENVI scale factor 0", _envi_scale(0), {}, InputError, "reflectance scale factor"),
    ReaderCase("ENVI scale factor -1", _envi_scale(-1), {}, InputError, "must be positive"),
    ReaderCase("ENVI with layout=", _envi_scale(10), {"layout": "bands,rows,cols"}, InputError, "does not apply"),
    ReaderCase("scale 0 given", w_good_mat, {"scale": 0}, InputError, "scale must be positive"),
    ReaderCase("netCDF raw int16, no scale_factor", w_nc_raw_int16, {}, InputError, "raw integer"),
    ReaderCase("netCDF own layout, int16", w_nc_own_int16, {}, InputError, "raw integer"),
    ReaderCase("netCDF no spectral dimension", w_nc_no_spectral_dim, {}, DataFileError, "no spectral variable found"),
    ReaderCase(
        "netCDF variable without a spectral dimension",
        w_nc_no_spectral_dim,
        {"variable": "data"},
        DataFileError,
        "no spectral dimension found",
    ),
    ReaderCase(
        "netCDF two candidate variables", w_nc_two_candidates, {}, DataFileError, "2 candidate spectral variables"
    ),
    ReaderCase(
        "netCDF rows/cols not named", w_nc_rows_cols_unnamed, {}, DataFileError, "cannot tell rows from columns"
    ),
    ReaderCase(
        "netCDF lazy with invalid=",
        w_nc_two_candidates,
        {"variable": "radiance", "chunks": {"y": 2}, "invalid": "fill"},
        InputError,
        "needs the cube in memory",
    ),
]


def cli_flags(path: Path, kwargs: dict) -> list[str]:
    """The ``egu-widgets unmix`` arguments that ask what ``open_cube(path, **kwargs)`` asks."""
    flags = [str(path)]
    for key, value in kwargs.items():
        if key == "chunks":
            flags += ["--chunks", ",".join(f"{k}={v}" for k, v in value.items())]
        elif key == "truth":
            flags += ["--truth", str(path.parent / value)]
        else:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def _open(case: ReaderCase, tmp_path: Path):
    path = case.write(tmp_path)
    kwargs = dict(case.kwargs)
    if "truth" in kwargs:
        kwargs["truth"] = tmp_path / kwargs["truth"]
    return open_cube(path, **kwargs)


@pytest.mark.parametrize("case", READER_CASES, ids=lambda c: c.id)
def test_reader_refuses_with_one_clear_message(case, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy/spectral warnings must not add lines to the one-line error
        with pytest.raises(case.error) as err:
            _open(case, tmp_path)
    message = str(err.value)
    assert case.fragment in message, message
    assert "\n" not in message and "KeyError" not in message


# ---------------------------------------------------------------------------- what the refusals point to works
def test_each_suggested_fix_opens_the_right_image(tmp_path):
    img, em, ab = scene(rows=8, cols=8, bands=20)
    np.testing.assert_array_equal(
        open_cube(w_mat3d_bands_first(tmp_path), layout="bands,rows,cols").image, img.astype(np.float32)
    )
    img, em, ab = scene()
    np.testing.assert_array_equal(
        open_cube(w_mat3d_unstated(tmp_path), layout="rows,cols,bands").image, img.astype(np.float32)
    )
    np.testing.assert_array_equal(open_cube(w_mat3d_unstated(tmp_path), rows=6, cols=9).image, img.astype(np.float32))
    img, em, ab = scene(rows=4, cols=4, bands=16)
    cube = open_cube(w_mat2d_square_matrix(tmp_path), truth=tmp_path / "sqtruth.mat", layout="pixels,bands")
    np.testing.assert_array_equal(cube.image, img.astype(np.float32))
    np.testing.assert_array_equal(cube.true_abundances, ab)
    img, *_ = scene(rows=5, cols=5, bands=50)
    np.testing.assert_array_equal(
        open_cube(w_mat2d_pixels_by_bands(tmp_path), layout="pixels,bands").image, img.astype(np.float32)
    )
    img, *_ = scene()
    cube = open_cube(w_mat_two_images(tmp_path), variable="second", layout="rows,cols,bands")
    assert cube.shape == (8, 8, 12)


def test_fewer_pixels_than_bands_is_read_as_stored(tmp_path):
    """(bands, pixels) with 25 pixels of 50 bands: the old heuristic transposed it."""
    img, *_ = scene(rows=5, cols=5, bands=50)
    path = _mat(tmp_path, "bp.mat", Y=matlab_columns(img))
    np.testing.assert_array_equal(open_cube(path).image, img.astype(np.float32))


# ---------------------------------------------------------------------------- arrays
@pytest.mark.parametrize(
    "array, kwargs, fragment",
    [
        (np.moveaxis(scene(rows=8, cols=8, bands=20)[0], -1, 0), {}, "layout='bands,rows,cols'"),
        (np.full((4, 4, 5), 1e39), {}, "beyond float32's range"),
        (np.ones((4, 4, 5), dtype=np.int16), {}, "raw integer"),
        (np.ones((4, 4, 5)), {"layout": "pixels,bands"}, "layout must be one of"),
    ],
    ids=["bands first", "1e39", "int16", "2-D layout"],
)
def test_from_array_refuses(array, kwargs, fragment):
    with pytest.raises(InputError, match=None) as err:
        HyperCube.from_array(array, **kwargs)
    assert fragment in str(err.value)


def test_from_array_layout_reads_bands_first():
    img, *_ = scene(rows=8, cols=8, bands=20)
    cube = HyperCube.from_array(np.moveaxis(img, -1, 0), layout="bands,rows,cols")
    np.testing.assert_array_equal(cube.image, img.astype(np.float32))


def test_hypercube_checks_the_dtype_of_a_dataset():
    ds = xr.Dataset({"reflectance": (("y", "x", "band"), np.ones((3, 3, 4), dtype=np.uint16))})
    with pytest.raises(InputError, match="raw integer"):
        HyperCube(ds)


# ---------------------------------------------------------------------------- degenerate data
@pytest.mark.parametrize(
    "image, p, fragment",
    [
        (np.full((6, 6, 10), 0.3), 2, "same spectrum"),
        (scene(rows=8, cols=8)[0], 4, "span only 2 direction"),
        (scene(rows=8, cols=8)[0] * 1e-30, 3, "float32's range"),
        (scene(rows=8, cols=8)[0] * 1e25, 3, "float32's range"),
    ],
    ids=["all pixels equal", "rank below P-1", "reflectance x 1e-30", "reflectance x 1e25"],
)
def test_degenerate_cubes_are_refused_before_training(image, p, fragment):
    cube = HyperCube.from_array(image)
    with pytest.raises(InputError) as err:
        check_usable(cube, p)
    assert fragment in str(err.value)


def test_usable_cubes_pass_and_masked_pixels_do_not_count():
    img, *_ = scene(rows=8, cols=8)
    check_usable(HyperCube.from_array(img), 3)  # three materials, noise-free: rank 2 is enough
    img[0, 0] = np.nan
    check_usable(HyperCube.from_array(img, invalid="mask"), 3)
    flat = np.full((4, 4, 6), 0.2)
    flat[0, 0] = np.nan
    with pytest.raises(InputError, match="same spectrum"):  # the one differing pixel is masked out
        check_usable(HyperCube.from_array(flat, invalid="mask"), 2)


# ---------------------------------------------------------------------------- result files
def _result_file(tmp_path: Path, change: Callable[[xr.Dataset], xr.Dataset]) -> Path:
    img, em, ab = scene()
    cube = HyperCube.from_array(img, endmembers=em, abundances=ab)
    result = UnmixingResult.from_arrays(cube, cube.true_abundance_pixels, em, method="m", config={"k": 1})
    ds = change(result.ds)
    ds.attrs["egu_widgets_kind"] = "result"
    ds.to_netcdf(tmp_path / "r.nc", engine="h5netcdf")
    return tmp_path / "r.nc"


RESULT_CASES = [
    (
        "abundances (y, x, endmember)",
        lambda ds: ds.transpose("y", "x", "endmember", ...),
        "has dims ('y', 'x', 'endmember')",
    ),
    (
        "no y/x dims",
        lambda ds: ds.assign(abundances=(("endmember", "pixel"), ds["abundances"].values.reshape(3, -1))).drop_vars(
            ["y", "x"]
        ),
        "has dims ('endmember', 'pixel')",
    ),
    ("text abundances", lambda ds: ds.assign(abundances=ds["abundances"].astype(str)), "real numbers"),
    ("non-JSON config", lambda ds: ds.assign_attrs(config="{not json"), "'config' must be a JSON object"),
    ("config a JSON list", lambda ds: ds.assign_attrs(config=json.dumps([1, 2])), "'config' must be a JSON object"),
    ("text rmse", lambda ds: ds.assign_attrs(rmse="0.1"), "'rmse' must be a number"),
    ("endmembers (band, endmember)", lambda ds: ds.transpose("band", "endmember", ...), "'endmembers' has dims"),
]


@pytest.mark.parametrize("label, change, fragment", RESULT_CASES, ids=[c[0] for c in RESULT_CASES])
def test_result_file_is_validated_on_open(tmp_path, label, change, fragment):
    path = _result_file(tmp_path, change)
    with pytest.raises(DataFileError) as err:
        UnmixingResult.open(path)
    assert fragment in str(err.value), str(err.value)


def test_result_repr_never_raises():
    ds = xr.Dataset({"abundances": (("endmember", "pixel"), np.ones((2, 5)))}, attrs={"rmse": "n/a"})
    text = repr(UnmixingResult(ds))
    assert text.startswith("<UnmixingResult") and "pixel=5" in text


# ---------------------------------------------------------------------------- method options
@pytest.mark.parametrize(
    "endmembers",
    ["abc", [[0.1, 0.2], [0.3]], {"a": 1}, [["x"] * 12] * 3],
    ids=["a string", "ragged rows", "a dict", "text entries"],
)
@pytest.mark.parametrize("method", ["fcls", "sunsal"])
def test_endmembers_that_are_not_numbers_are_one_input_error(method, endmembers):
    img, em, ab = scene()
    cube = HyperCube.from_array(img, endmembers=em, abundances=ab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError) as err:
            from egu_widgets import unmix

            unmix(cube, method, endmembers=endmembers)
    assert "endmembers must be a (P, bands) array of numbers" in str(err.value)
    assert "\n" not in str(err.value)
