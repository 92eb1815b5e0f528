"""GeoTIFF in and out: CRS, transform, nodata and wavelengths read; maps written on the input's grid."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import egu_widgets
from egu_widgets import HyperCube, open_cube
from egu_widgets.cube import georef
from egu_widgets.errors import DataFileError, InputError, MissingDependencyError
from egu_widgets.results import UnmixingResult

rasterio = pytest.importorskip("rasterio")
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import Affine  # noqa: E402
from rasterio.windows import Window  # noqa: E402
from rasterio.windows import transform as window_transform  # noqa: E402

# Origin and pixel size chosen so that a transform recomputed from pixel centres would not come
# back bit for bit: only a transform carried as stated survives the round trip exactly.
TRANSFORM = Affine(0.1 + 0.2, 0.0, 699960.123456789, 0.0, -(0.1 + 0.2), 5100020.987654321)
CRS_UTM = CRS.from_epsg(32632)
ROWS, COLS, BANDS = 8, 11, 10


def scene(rows=ROWS, cols=COLS, bands=BANDS, p=3, seed=0) -> np.ndarray:
    """(bands, rows, cols) reflectance mixed from ``p`` materials: what a GeoTIFF stores."""
    rng = np.random.default_rng(seed)
    em = rng.uniform(0.1, 0.9, size=(p, bands))
    ab = rng.dirichlet(np.ones(p), size=(rows, cols))
    return np.einsum("hwp,pb->bhw", ab, em).astype(np.float32)


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs=CRS_UTM,
    transform=TRANSFORM,
    nodata=None,
    descriptions=None,
    band_tags=None,
    tags=None,
    scales=None,
    offsets=None,
) -> Path:
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i in range(1, data.shape[0] + 1):
            if descriptions is not None:
                dst.set_band_description(i, descriptions[i - 1])
            if band_tags is not None:
                dst.update_tags(i, **band_tags[i - 1])
        if tags:
            dst.update_tags(**tags)
        if scales is not None:
            dst.scales = scales
        if offsets is not None:
            dst.offsets = offsets
    return path


def read_tif(path: Path) -> dict:
    with rasterio.open(path) as src:
        return dict(
            data=src.read(),
            crs=src.crs,
            transform=src.transform,
            gdal=tuple(src.transform.to_gdal()),
            descriptions=src.descriptions,
            band_tags=[src.tags(i) for i in src.indexes],
            tags=src.tags(),
            nodata=src.nodata,
            dtypes=set(src.dtypes),
        )


# ---------------------------------------------------------------------------- round trip
def test_round_trip_keeps_crs_and_geotransform_exactly(tmp_path):
    src = write_tif(tmp_path / "scene.tif", scene())
    cube = open_cube(src)
    assert cube.shape == (ROWS, COLS, BANDS)
    assert cube.geotransform == tuple(TRANSFORM.to_gdal())
    assert CRS.from_wkt(cube.crs_wkt) == CRS_UTM
    np.testing.assert_array_equal(cube.ds["x"].values, TRANSFORM.c + TRANSFORM.a * (np.arange(COLS) + 0.5))
    result = egu_widgets.unmix(cube, method="vca-fcls", n_endmembers=3)
    assert result.ds["spatial_ref"].attrs == cube.ds["spatial_ref"].attrs
    out = read_tif(result.to_geotiff(tmp_path / "maps.tif"))
    with rasterio.open(src) as original:
        assert out["crs"].to_wkt() == original.crs.to_wkt()
        assert out["gdal"] == tuple(original.transform.to_gdal())
    assert out["dtypes"] == {"float32"} and math.isnan(out["nodata"])
    assert out["descriptions"] == tuple(result.ds["endmember"].values)
    assert [t["variable"] for t in out["band_tags"]] == ["abundances"] * 3
    assert out["tags"]["method"] == "vca-fcls"
    np.testing.assert_array_equal(out["data"], result.abundances.values.astype(np.float32))


def test_a_crop_is_written_on_the_inputs_grid(tmp_path):
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene()))
    crop = cube.isel(y=slice(2, 7), x=slice(3, 10))
    expected = window_transform(Window(3, 2, 7, 5), TRANSFORM)
    assert crop.geotransform == tuple(expected.to_gdal())
    result = egu_widgets.unmix(crop, method="vca-fcls", n_endmembers=3)
    out = read_tif(result.to_geotiff(tmp_path / "crop.tif", cog=True))
    assert out["transform"] == expected and out["crs"] == CRS_UTM
    assert out["data"].shape == (3, 5, 7)


def test_georeferencing_survives_netcdf(tmp_path):
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene()))
    cube.to_netcdf(tmp_path / "cube.nc")
    again = open_cube(tmp_path / "cube.nc")
    xr.testing.assert_identical(again.ds, cube.ds)
    result = egu_widgets.unmix(again, method="vca-fcls", n_endmembers=3)
    result.to_netcdf(tmp_path / "result.nc")
    out = read_tif(UnmixingResult.open(tmp_path / "result.nc").to_geotiff(tmp_path / "maps.tif"))
    assert out["transform"] == TRANSFORM and out["crs"] == CRS_UTM


def test_rioxarray_reads_the_same_georeferencing(tmp_path):
    pytest.importorskip("rioxarray")
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene()))
    result = egu_widgets.unmix(cube.isel(y=slice(1, 6)), method="vca-fcls", n_endmembers=3)
    assert result.ds.rio.crs == CRS_UTM
    assert result.ds.rio.transform() == window_transform(Window(0, 1, COLS, 5), TRANSFORM)


def test_error_and_uncertainty_maps_are_written_after_the_abundances(tmp_path):
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene()))
    result = egu_widgets.unmix(cube, method="vca-fcls", n_endmembers=3)
    rng = np.random.default_rng(1)
    ds = result.ds.assign(
        uncertainty=(("endmember", "y", "x"), rng.uniform(size=(3, ROWS, COLS))),
        error=(("y", "x"), rng.uniform(size=(ROWS, COLS))),
    )
    out = read_tif(UnmixingResult(ds).to_geotiff(tmp_path / "maps.tif"))
    names = list(result.ds["endmember"].values)
    assert out["descriptions"] == tuple(names + [f"uncertainty: {n}" for n in names] + ["error"])
    assert out["band_tags"][3] == {"variable": "uncertainty", "endmember": names[0]}
    assert out["band_tags"][-1] == {"variable": "error"}
    np.testing.assert_array_equal(out["data"][-1], ds["error"].values.astype(np.float32))
    assert out["transform"] == TRANSFORM


def test_the_maps_file_is_not_taken_for_a_cube(tmp_path):
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene()))
    path = egu_widgets.unmix(cube, method="vca-fcls", n_endmembers=3).to_geotiff(tmp_path / "maps.tif")
    with pytest.raises(DataFileError, match="result maps"):
        open_cube(path)


# ---------------------------------------------------------------------------- nodata
def test_nodata_pixels_are_masked_and_written_back_as_nan(tmp_path):
    data = np.round(scene() * 10000).astype(np.uint16)
    data[:, 0, 0] = 0
    data[4, 5, 6] = 0  # one band of a pixel is enough to make the pixel invalid
    path = write_tif(tmp_path / "scene.tif", data, nodata=0, scales=[1e-4] * BANDS)
    cube = open_cube(path)
    expected = np.ones((ROWS, COLS), bool)
    expected[0, 0] = expected[5, 6] = False
    np.testing.assert_array_equal(cube.valid_mask, expected)
    assert cube.provenance["nodata_pixels"] == 2
    assert np.isfinite(cube.image).all()  # masked pixels hold finite filler, as invalid="mask" does
    result = egu_widgets.unmix(cube, method="vca-fcls", n_endmembers=3)
    out = read_tif(result.to_geotiff(tmp_path / "maps.tif"))
    np.testing.assert_array_equal(np.isnan(out["data"]).all(axis=0), ~expected)
    assert not np.isnan(out["data"][:, expected]).any()


def test_nan_besides_the_nodata_follows_invalid(tmp_path):
    data = scene()
    data[:, 1, 1] = -9999.0
    data[2, 3, 3] = np.nan
    path = write_tif(tmp_path / "scene.tif", data, nodata=-9999.0)
    with pytest.raises(InputError, match="besides its nodata.*invalid='mask'"):
        open_cube(path)
    cube = open_cube(path, invalid="mask")
    assert not cube.valid_mask[1, 1] and not cube.valid_mask[3, 3] and cube.valid_mask.sum() == ROWS * COLS - 2


# ---------------------------------------------------------------------------- values and scale
def test_integer_bands_without_a_scale_are_refused(tmp_path):
    data = np.round(scene() * 10000).astype(np.uint16)
    path = write_tif(tmp_path / "scene.tif", data)
    with pytest.raises(InputError, match="raw integer data.*scale="):
        open_cube(path)
    cube = open_cube(path, scale=10000)
    np.testing.assert_allclose(cube.image, np.moveaxis(data, 0, -1) / 10000, rtol=1e-6)
    assert cube.provenance["scale"] == 10000


def test_band_scale_and_offset_of_the_file_are_applied(tmp_path):
    data = np.round(scene() * 10000).astype(np.int16)
    path = write_tif(tmp_path / "scene.tif", data + 1000, scales=[1e-4] * BANDS, offsets=[-0.1] * BANDS)
    cube = open_cube(path)
    np.testing.assert_allclose(cube.image, np.moveaxis(data, 0, -1) / 10000, atol=1e-6)
    assert cube.provenance["scale_from"] == "band scale/offset"
    with pytest.raises(InputError, match="do not pass scale="):
        open_cube(path, scale=10000)


# ---------------------------------------------------------------------------- wavelengths
def test_wavelengths_from_band_tags(tmp_path):
    wl = np.linspace(0.45, 2.4, BANDS)
    tags = [{"wavelength": repr(float(w)), "wavelength_units": "Micrometers"} for w in wl]
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene(), band_tags=tags))
    np.testing.assert_array_equal(cube.wavelengths, wl)
    assert cube.wavelength_units == "um" and cube.provenance["wavelengths_from"] == "band tags"


def test_wavelengths_from_gdals_imagery_domain(tmp_path):
    path = write_tif(tmp_path / "scene.tif", scene())
    with rasterio.open(path, "r+") as dst:
        for i in dst.indexes:
            dst.update_tags(i, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=f"{0.4 + 0.05 * i:.2f}")
    cube = open_cube(path)
    np.testing.assert_allclose(cube.wavelengths, 0.4 + 0.05 * np.arange(1, BANDS + 1))
    assert cube.wavelength_units == "um"


def test_unknown_wavelength_units_are_told_from_the_values(tmp_path):
    tags = [{"wavelength": str(450 + 10 * i), "wavelength_units": "Unknown"} for i in range(BANDS)]
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene(), band_tags=tags))
    assert cube.wavelength_units == "nm" and cube.provenance["wavelength_units_from"] == "magnitude"


def test_wavelengths_from_band_descriptions(tmp_path):
    names = [f"Band {i + 1} ({450 + 10 * i}.5 nm)" for i in range(BANDS)]
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene(), descriptions=names))
    np.testing.assert_array_equal(cube.wavelengths, 450.5 + 10 * np.arange(BANDS))
    assert cube.wavelength_units == "nm"


def test_bare_numbers_in_descriptions_get_units_from_their_magnitude(tmp_path):
    names = [f"{0.4 + 0.1 * i:.2f}" for i in range(BANDS)]
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene(), descriptions=names))
    assert cube.wavelength_units == "um" and cube.provenance["wavelength_units_from"] == "magnitude"


def test_wavelengths_from_an_envi_style_file_tag(tmp_path):
    listed = "{" + ", ".join(str(400 + 20 * i) for i in range(BANDS)) + "}"
    tags = {"wavelength": listed, "wavelength_units": "Nanometers"}
    cube = open_cube(write_tif(tmp_path / "scene.tif", scene(), tags=tags))
    np.testing.assert_array_equal(cube.wavelengths, 400 + 20 * np.arange(BANDS))
    bad = write_tif(tmp_path / "bad.tif", scene(), tags={"wavelength": "{400, 410}"})
    with pytest.raises(DataFileError, match="2 wavelengths for 10 bands"):
        open_cube(bad)


def test_names_that_are_not_wavelengths_give_none_and_given_ones_win(tmp_path):
    numbered = write_tif(tmp_path / "numbered.tif", scene(), descriptions=[str(i + 1) for i in range(BANDS)])
    assert open_cube(numbered).wavelengths is None
    path = write_tif(tmp_path / "scene.tif", scene(), descriptions=[f"B{i + 1:02d}" for i in range(BANDS)])
    assert open_cube(path).wavelengths is None
    given = np.linspace(500, 900, BANDS)
    cube = open_cube(path, wavelengths=given)
    np.testing.assert_array_equal(cube.wavelengths, given)
    assert cube.provenance["wavelengths_from"] == "given"
    with pytest.raises(InputError, match="3 wavelengths given for a cube with 10 bands"):
        open_cube(path, wavelengths=[1, 2, 3])


# ---------------------------------------------------------------------------- without georeferencing
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the test's own writer and reader
def test_a_geotiff_without_crs_or_transform_is_a_plain_cube(tmp_path):
    data = scene()
    cube = open_cube(write_tif(tmp_path / "plain.tif", data, crs=None, transform=None))
    assert "spatial_ref" not in cube.ds.coords and cube.crs_wkt is None and cube.geotransform is None
    plain = HyperCube.from_array(np.moveaxis(data, 0, -1))
    np.testing.assert_array_equal(cube.ds["x"].values, plain.ds["x"].values)
    out = read_tif(egu_widgets.unmix(cube, method="vca-fcls", n_endmembers=3).to_geotiff(tmp_path / "maps.tif"))
    assert out["crs"] is None and out["transform"].is_identity


def test_a_transform_without_crs_is_kept_without_crs(tmp_path):
    cube = open_cube(write_tif(tmp_path / "local.tif", scene(), crs=None))
    assert cube.crs_wkt is None and cube.geotransform == tuple(TRANSFORM.to_gdal())
    out = read_tif(egu_widgets.unmix(cube, method="vca-fcls", n_endmembers=3).to_geotiff(tmp_path / "maps.tif"))
    assert out["crs"] is None and out["transform"] == TRANSFORM


# ---------------------------------------------------------------------------- bad files and options
@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"this is not a TIFF file at all", "not a readable GeoTIFF")],
)
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.tif"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as info:
        open_cube(path)
    assert "\n" not in str(info.value)


def test_a_truncated_geotiff_gives_one_clear_error(tmp_path):
    path = write_tif(tmp_path / "scene.tif", scene(rows=64, cols=64))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFileError, match="not a readable GeoTIFF"):
        open_cube(path)


def test_without_rasterio_the_error_says_what_to_install(tmp_path, monkeypatch):
    path = write_tif(tmp_path / "scene.tif", scene())
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"egu_widgets\[geo\]"):
        open_cube(path)


def test_options_that_do_not_apply_are_refused(tmp_path):
    path = write_tif(tmp_path / "scene.tif", scene())
    with pytest.raises(InputError, match="layout= does not apply"):
        open_cube(path, layout="bands,rows,cols")


# ---------------------------------------------------------------------------- georef without files
def _grid(gt, rows=4, cols=5) -> xr.Dataset:
    coords = georef.grid_coords(gt, rows, cols)
    return xr.Dataset(
        {"m": (("y", "x"), np.zeros((rows, cols)))},
        coords={**coords, "spatial_ref": georef.spatial_ref_coord(None, gt)},
    )


def test_a_rotated_grid_is_cropped_by_pixel_index():
    gt = (1000.0, 2.0, 0.5, 5000.0, 0.25, -2.0)
    ds = _grid(gt).isel(y=slice(1, 3), x=slice(2, 5))
    assert georef.geotransform(ds) == tuple((Affine.from_gdal(*gt) @ Affine.translation(2, 1)).to_gdal())


def test_coordinates_off_the_grid_are_refused():
    ds = _grid((1000.0, 2.0, 0.0, 5000.0, 0.0, -2.0))
    with pytest.raises(InputError, match="do not lie on the grid"):
        georef.geotransform(ds.isel(x=slice(None, None, 2)))
    with pytest.raises(InputError, match="do not lie on the grid"):
        georef.geotransform(ds.assign_coords(x=ds["x"].values + 0.5))
