"""Cubes and readers: every layout, pixel order, round trips, datasets and bad input."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from egu_widgets import HyperCube, open_cube
from egu_widgets.cube import download
from egu_widgets.cube.formats.truth import mat_pixels_to_image
from egu_widgets.errors import DataFileError, DatasetError, InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


def scene(rows=6, cols=9, bands=12, p=3, seed=0):
    """A non-square scene with distinct pixels: a wrong pixel order cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    em = rng.uniform(0.1, 0.9, size=(p, bands))
    ab = rng.dirichlet(np.ones(p), size=(rows, cols)).transpose(2, 0, 1)  # (P, rows, cols)
    img = np.einsum("phw,pb->hwb", ab, em)
    return img, em, ab


def to_matlab_columns(img: np.ndarray) -> np.ndarray:
    """(rows, cols, channels) -> (channels, rows*cols) with MATLAB's column-major pixel order."""
    rows, cols, ch = img.shape
    out = np.empty((ch, rows * cols))
    for c in range(cols):  # spelled out on purpose: pixel n = r + c * rows
        for r in range(rows):
            out[:, r + c * rows] = img[r, c]
    return out


# ---------------------------------------------------------------------------- HyperCube
def test_from_array_layout_and_views():
    img, em, ab = scene()
    cube = HyperCube.from_array(
        img,
        wavelengths=np.linspace(400, 1000, 12),
        endmembers=em,
        abundances=ab,
        endmember_names=["a", "b", "c"],
        name="t",
    )
    assert cube.ds["reflectance"].dims == ("y", "x", "band")
    assert cube.ds["abundances"].dims == ("endmember", "y", "x")
    assert cube.ds["endmembers"].dims == ("endmember", "band")
    assert cube.ds["wavelength"].attrs["units"] == "nm"
    assert cube.shape == (6, 9, 12) and cube.n_pixels == 54
    assert cube.endmember_names == ["a", "b", "c"]
    np.testing.assert_allclose(cube.pixels[9 + 4], img[1, 4], rtol=1e-6)  # row-major pixel order
    np.testing.assert_allclose(cube.true_abundance_pixels[9 + 4], ab[:, 1, 4])
    assert "6x9 pixels, 12 bands" in repr(cube)


def test_abundances_accepted_bands_last():
    img, em, ab = scene()
    cube = HyperCube.from_array(img, endmembers=em, abundances=ab.transpose(1, 2, 0))
    np.testing.assert_allclose(cube.true_abundances, ab)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((4, 4, 5), np.nan), "NaN or Inf"),
        (np.zeros((4, 4, 5)), "all zeros"),
        (-np.ones((4, 4, 5)), "negative"),
        (np.ones((4, 5)), "3-D"),
        (np.ones((4, 4, 5), dtype=np.uint16), "raw integer"),
    ],
)
def test_bad_reflectance_is_refused(bad, message):
    with pytest.raises(InputError, match=message):
        HyperCube.from_array(bad)


def test_nan_policies():
    img, *_ = scene()
    img[2, 3, 4] = np.nan
    masked = HyperCube.from_array(img, invalid="mask")
    assert not masked.valid_mask[2, 3] and masked.valid_mask.sum() == 53
    assert np.isfinite(masked.image).all()
    filled = HyperCube.from_array(img, invalid="fill")
    assert filled.valid_mask.all() and np.isfinite(filled.image).all()
    assert filled.provenance["invalid_pixels"] == 1


def test_negative_clip():
    img, *_ = scene()
    img[0, 0, 0] = -0.01
    cube = HyperCube.from_array(img, negative="clip")
    assert cube.image.min() == 0 and cube.provenance["clipped_negative_values"] == 1


def test_truth_mismatch_is_refused():
    img, em, ab = scene()
    with pytest.raises(InputError, match="bands"):
        HyperCube.from_array(img, endmembers=em[:, :5])
    with pytest.raises(InputError, match="pixels|cube is"):
        HyperCube.from_array(img, abundances=ab[:, :4])


# ---------------------------------------------------------------------------- .mat layouts
def test_matlab_pixel_order_helper():
    img, *_ = scene()
    np.testing.assert_array_equal(mat_pixels_to_image(to_matlab_columns(img), 6, 9), img)


def test_zhu_pair_layout(tmp_path):
    img, em, ab = scene()
    scipy.io.savemat(tmp_path / "cube.mat", {"V": to_matlab_columns(img), "nRow": 6, "nCol": 9, "nBand": 12})
    cood = np.empty((3, 1), dtype=object)
    cood[:, 0] = ["1-rock", "2-Tree", "3-water"]
    scipy.io.savemat(tmp_path / "truth.mat", {"A": to_matlab_columns(ab.transpose(1, 2, 0)), "M": em.T, "cood": cood})
    cube = open_cube(tmp_path / "cube.mat", truth=tmp_path / "truth.mat")
    np.testing.assert_allclose(cube.image, img, rtol=1e-6)
    np.testing.assert_allclose(cube.true_abundances, ab)  # truth maps line up with the image
    np.testing.assert_allclose(cube.true_endmembers, em)
    assert cube.endmember_names == ["rock", "tree", "water"]


def test_integer_cube_with_max_value(tmp_path):
    img, *_ = scene()
    raw = np.round(img * 5000).astype(np.uint16)
    scipy.io.savemat(
        tmp_path / "c.mat", {"Y": to_matlab_columns(raw).astype(np.uint16), "nRow": 6, "nCol": 9, "maxValue": 5000}
    )
    cube = open_cube(tmp_path / "c.mat")
    np.testing.assert_allclose(cube.image, raw / 5000, rtol=1e-6)
    assert cube.provenance["scale"] == 5000


def test_integer_cube_without_scale_is_refused(tmp_path):
    img, *_ = scene()
    raw = np.round(img * 5000).astype(np.uint16)
    scipy.io.savemat(tmp_path / "c.mat", {"Y": to_matlab_columns(raw).astype(np.uint16), "nRow": 6, "nCol": 9})
    with pytest.raises(InputError, match="scale"):
        open_cube(tmp_path / "c.mat")
    assert open_cube(tmp_path / "c.mat", scale=5000).image.max() <= 1


def test_single_file_layout_with_size(tmp_path):
    img, em, ab = scene()
    scipy.io.savemat(
        tmp_path / "s.mat",
        {"Y": to_matlab_columns(img), "A": to_matlab_columns(ab.transpose(1, 2, 0)), "M": em.T, "H": 6, "W": 9},
    )
    cube = open_cube(tmp_path / "s.mat")
    np.testing.assert_allclose(cube.image, img, rtol=1e-6)
    np.testing.assert_allclose(cube.true_abundances, ab)


def test_single_file_square_assumed_only_when_exact(tmp_path):
    img, em, ab = scene(rows=5, cols=5)
    scipy.io.savemat(
        tmp_path / "sq.mat", {"Y": to_matlab_columns(img), "A": to_matlab_columns(ab.transpose(1, 2, 0)), "M": em.T}
    )
    assert open_cube(tmp_path / "sq.mat").shape == (5, 5, 12)
    img, em, ab = scene()  # 6 x 9 = 54 pixels: not a square
    scipy.io.savemat(
        tmp_path / "ns.mat", {"Y": to_matlab_columns(img), "A": to_matlab_columns(ab.transpose(1, 2, 0)), "M": em.T}
    )
    with pytest.raises(InputError, match="rows= and cols="):
        open_cube(tmp_path / "ns.mat")
    np.testing.assert_allclose(open_cube(tmp_path / "ns.mat", rows=6, cols=9).image, img, rtol=1e-6)


def test_tnnls_layout(tmp_path):
    img, em, ab = scene(rows=8, cols=8)
    mixed = img.reshape(64, 12, order="F")  # the authors' (pixels, bands) export of a square image
    scipy.io.savemat(tmp_path / "Mixed_TrSet.mat", {"Mixed_TrSet": mixed})
    scipy.io.savemat(tmp_path / "TeLabel.mat", {"TeLabel": ab.transpose(1, 2, 0).reshape(64, 3, order="F")})
    cube = open_cube(tmp_path)
    np.testing.assert_allclose(cube.image, img, rtol=1e-6)
    np.testing.assert_allclose(cube.true_abundances, ab)


def test_unknown_mat_keys_are_listed(tmp_path):
    scipy.io.savemat(tmp_path / "odd.mat", {"foo": np.ones((3, 3)), "bar": 1})
    with pytest.raises(DataFileError) as err:
        open_cube(tmp_path / "odd.mat")
    assert "bar" in str(err.value) and "foo" in str(err.value) and "Zhu" in str(err.value)


def test_empty_and_truncated_files(tmp_path):
    (tmp_path / "empty.mat").write_bytes(b"")
    with pytest.raises(DataFileError, match="empty"):
        open_cube(tmp_path / "empty.mat")
    img, *_ = scene()
    scipy.io.savemat(tmp_path / "full.mat", {"Y": to_matlab_columns(img), "nRow": 6, "nCol": 9})
    data = (tmp_path / "full.mat").read_bytes()
    (tmp_path / "cut.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError):
        open_cube(tmp_path / "cut.mat")


def test_missing_file_and_unknown_dataset():
    with pytest.raises(DataFileError, match="no such file"):
        open_cube("/nonexistent/cube.mat")
    with pytest.raises(DatasetError) as err:
        open_cube("not-a-dataset")
    assert "samson" in str(err.value) and "jasper-ridge" in str(err.value)


def _pinned_layouts(d: Path):
    """Every .mat/ENVI layout the readers accept, each with the exact arrays it must give back."""
    import spectral.io.envi as envi

    img, em, ab = scene()
    a_cols = to_matlab_columns(ab.transpose(1, 2, 0))
    cood = np.empty((3, 1), dtype=object)
    cood[:, 0] = ["1-rock", "2-Tree", "3-water"]
    names = ["rock", "tree", "water"]
    scipy.io.savemat(d / "zhu.mat", {"V": to_matlab_columns(img), "nRow": 6, "nCol": 9, "nBand": 12})
    scipy.io.savemat(d / "truth.mat", {"A": a_cols, "M": em.T, "cood": cood})
    raw = np.round(img * 5000).astype(np.uint16)
    scipy.io.savemat(
        d / "int.mat", {"Y": to_matlab_columns(raw).astype(np.uint16), "nRow": 6, "nCol": 9, "maxValue": 5000}
    )
    scipy.io.savemat(d / "single.mat", {"Y": to_matlab_columns(img).T, "A": a_cols.T, "E": em, "nRow": 6, "nCol": 9})
    scipy.io.savemat(d / "cube3d.mat", {"Y": img, "maxValue": 2.0})
    sq, _, sq_ab = scene(rows=8, cols=8)
    (d / "tnnls").mkdir()
    scipy.io.savemat(d / "tnnls" / "Mixed_TrSet.mat", {"Mixed_TrSet": sq.reshape(64, 12, order="F")})
    scipy.io.savemat(d / "tnnls" / "TeLabel.mat", {"TeLabel": sq_ab.transpose(1, 2, 0).reshape(64, 3, order="F")})
    wl = np.linspace(0.4, 2.5, 12)
    counts = (img * 10000).astype(np.int16)
    envi.save_image(
        str(d / "c.hdr"),
        counts,
        ext=".img",
        metadata={"wavelength": list(wl), "wavelength units": "Micrometers", "reflectance scale factor": 10000},
    )
    f32 = np.float32
    return {
        "zhu": (
            d / "zhu.mat",
            {"truth": d / "truth.mat"},
            img.astype(f32),
            ab,
            em,
            names,
            {"file": "zhu.mat", "key": "V", "reader": "mat"},
        ),
        "integer": (
            d / "int.mat",
            {},
            (raw / 5000.0).astype(f32),
            None,
            None,
            None,
            {"file": "int.mat", "key": "Y", "reader": "mat", "scale": 5000.0, "scale_from": "maxValue"},
        ),
        "single, transposed": (
            d / "single.mat",
            {},
            img.astype(f32),
            ab,
            em,
            ["material 1", "material 2", "material 3"],
            {"file": "single.mat", "key": "Y", "reader": "mat"},
        ),
        "3-D": (
            d / "cube3d.mat",
            {"truth": d / "truth.mat"},
            (img / 2.0).astype(f32),
            ab,
            em,
            names,
            {"file": "cube3d.mat", "key": "Y", "reader": "mat", "scale": 2.0, "scale_from": "maxValue"},
        ),
        "tnnls": (
            d / "tnnls",
            {},
            sq.astype(f32),
            sq_ab,
            None,
            ["material 1", "material 2", "material 3"],
            {"file": "Mixed_TrSet.mat", "reader": "tnnls"},
        ),
        "envi": (
            d / "c.img",
            {"truth": d / "truth.mat", "scale": 5000},
            (counts / 5000.0).astype(f32),
            ab,
            em,
            names,
            {"file": "c.hdr", "reader": "envi", "scale": 5000},
        ),
    }


def test_reader_arrays_are_pinned(tmp_path):
    """Each layout gives exactly these arrays, names and provenance (pinned before the readers moved)."""
    import json

    for label, (path, kwargs, image, abundances, endmembers, names, provenance) in _pinned_layouts(tmp_path).items():
        ds = open_cube(path, **kwargs).ds
        assert ds["reflectance"].dtype == np.float32, label
        np.testing.assert_array_equal(ds["reflectance"].values, image, err_msg=label)
        for var, expected in (("abundances", abundances), ("endmembers", endmembers)):
            assert (var in ds) == (expected is not None), (label, var)
            if expected is not None:
                np.testing.assert_array_equal(ds[var].values, expected, err_msg=label)
        assert (list(ds["endmember"].values) if "endmember" in ds.coords else None) == names, label
        assert json.loads(ds.attrs["provenance"]) == provenance, label


def test_tnnls_layout_with_a_truth_file_keeps_its_names_and_endmembers(tmp_path):
    img, em, ab = scene(rows=8, cols=8)
    scipy.io.savemat(tmp_path / "Mixed_TrSet.mat", {"Mixed_TrSet": img.reshape(64, 12, order="F")})
    cood = np.empty((3, 1), dtype=object)
    cood[:, 0] = ["1-rock", "2-tree", "3-water"]
    scipy.io.savemat(tmp_path / "t.mat", {"A": to_matlab_columns(ab.transpose(1, 2, 0)), "M": em.T, "cood": cood})
    cube = open_cube(tmp_path, truth=tmp_path / "t.mat")
    np.testing.assert_array_equal(cube.true_abundances, ab)
    np.testing.assert_array_equal(cube.true_endmembers, em)
    assert cube.endmember_names == ["rock", "tree", "water"]
    scipy.io.savemat(tmp_path / "m.mat", {"M": em.T})  # endmembers only, no TeLabel.mat: kept, not dropped
    np.testing.assert_array_equal(open_cube(tmp_path, truth=tmp_path / "m.mat").true_endmembers, em)


def test_suffix_table_picks_the_reader(tmp_path):
    from egu_widgets.cube.formats import READERS, reader_for
    from egu_widgets.cube.formats.envi import read_envi
    from egu_widgets.cube.formats.mat import read_mat
    from egu_widgets.cube.formats.netcdf import read_netcdf

    assert {READERS[s] for s in (".mat", ".hdr", ".img", ".nc")} == {read_mat, read_envi, read_netcdf}
    assert reader_for("a/b/C.MAT") is read_mat and reader_for("x.xyz") is None
    img, *_ = scene()
    scipy.io.savemat(tmp_path / "CUBE.MAT", {"Y": to_matlab_columns(img), "nRow": 6, "nCol": 9})
    np.testing.assert_array_equal(open_cube(tmp_path / "CUBE.MAT").image, img.astype(np.float32))
    (tmp_path / "x.xyz").write_text("x")
    with pytest.raises(DataFileError, match="unknown file type '.xyz'"):
        open_cube(tmp_path / "x.xyz")
    with pytest.raises(InputError, match="chunks="):
        open_cube(tmp_path / "x.xyz", chunks={"y": 2})


# ---------------------------------------------------------------------------- ENVI
def test_envi_reader(tmp_path):
    import spectral.io.envi as envi

    img, *_ = scene()
    wl = np.linspace(0.4, 2.5, 12)
    envi.save_image(
        str(tmp_path / "c.hdr"),
        (img * 10000).astype(np.int16),
        ext=".img",
        metadata={"wavelength": list(wl), "wavelength units": "Micrometers", "reflectance scale factor": 10000},
    )
    cube = open_cube(tmp_path / "c.hdr")
    np.testing.assert_allclose(cube.image, (img * 10000).astype(np.int16) / 10000, atol=1e-6)
    np.testing.assert_allclose(cube.wavelengths, wl)
    assert cube.wavelength_units == "um"
    os.remove(tmp_path / "c.img")
    with pytest.raises(DataFileError, match="data file"):
        open_cube(tmp_path / "c.hdr")


# ---------------------------------------------------------------------------- netCDF round trip
def test_netcdf_round_trip_is_identical(tmp_path):
    img, em, ab = scene()
    cube = HyperCube.from_array(
        img,
        wavelengths=np.linspace(400, 1000, 12),
        endmembers=em,
        abundances=ab,
        endmember_names=["rock", "tree", "water"],
        name="rt",
        provenance={"k": 1},
    )
    cube.to_netcdf(tmp_path / "c.nc")
    back = open_cube(tmp_path / "c.nc")
    xr.testing.assert_identical(back.ds, cube.ds)


def test_netcdf_round_trip_with_mask(tmp_path):
    img, *_ = scene()
    img[1, 1] = np.inf
    cube = HyperCube.from_array(img, invalid="mask")
    cube.to_netcdf(tmp_path / "m.nc")
    xr.testing.assert_identical(open_cube(tmp_path / "m.nc").ds, cube.ds)


def test_corrupted_netcdf(tmp_path):
    img, *_ = scene()
    HyperCube.from_array(img).to_netcdf(tmp_path / "c.nc")
    data = (tmp_path / "c.nc").read_bytes()
    (tmp_path / "bad.nc").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError):
        open_cube(tmp_path / "bad.nc")


# ---------------------------------------------------------------------------- datasets
def test_demo_dataset_needs_no_files():
    cube = open_cube("demo")
    assert cube.has_truth and cube.wavelengths is not None
    np.testing.assert_allclose(cube.true_abundances.sum(axis=0), 1.0)
    assert open_cube("demo") == cube  # deterministic


@needs_shared
@pytest.mark.parametrize("name, shape, p", [("samson", (95, 95, 156), 3), ("jasper-ridge", (100, 100, 198), 4)])
def test_real_datasets(name, shape, p):
    from egu_widgets.cube.datasets import DATASETS

    cube = open_cube(name)
    assert cube.shape == shape and cube.n_true_endmembers == p == DATASETS[name].n_endmembers
    assert cube.image.min() >= 0 and cube.image.max() < 1.5
    np.testing.assert_allclose(cube.true_abundances.sum(axis=0), 1.0, atol=1e-6)


@needs_shared
def test_real_truth_maps_line_up_with_the_image():
    """Samson's water map must sit where the image is dark in the near infrared (water absorbs it)."""
    cube = open_cube("samson")
    nir = cube.image[:, :, -20:].mean(axis=-1)
    water = cube.true_abundances[cube.endmember_names.index("water")]
    assert np.corrcoef(nir.ravel(), water.ravel())[0, 1] < -0.8
    flipped = water.T  # the classic row-major mistake transposes a square image
    assert np.corrcoef(nir.ravel(), flipped.ravel())[0, 1] > -0.5


@needs_shared
def test_egu_synthetic():
    cube = open_cube("egu-synthetic")
    assert cube.shape == (200, 200, 224) and cube.n_true_endmembers == 5
    assert cube.provenance["snr_db"] == 30.0
    clean = np.einsum("phw,pb->hwb", cube.true_abundances, cube.true_endmembers)
    noise = cube.image - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert abs(snr - 30.0) < 0.2


def test_dataset_registry_is_the_one_list():
    from egu_widgets import dataset_names as top_level
    from egu_widgets.cube import dataset_names
    from egu_widgets.cube.datasets import ALIASES, DATASETS, find_dataset, paper_datasets

    assert top_level is dataset_names and dataset_names() == list(DATASETS)
    assert paper_datasets() == ("egu-synthetic", "samson", "jasper-ridge")
    for entry in DATASETS.values():
        assert entry.description and entry.n_endmembers >= 2
        assert set(entry.files) <= set(download.FILES), entry.name  # every file has a checksum and an address
    assert all(find_dataset(alias) is DATASETS[name] for alias, name in ALIASES.items())
    assert find_dataset(" Samson ") is DATASETS["samson"] and find_dataset("nope") is None
    assert open_cube("demo").n_true_endmembers == DATASETS["demo"].n_endmembers


def test_dataset_options_are_checked_before_any_file_is_read(tmp_path):
    with pytest.raises(InputError, match="takes no options"):
        open_cube("samson", seed=1)
    scipy.io.savemat(tmp_path / "t.mat", {"M": np.ones((12, 3))})
    with pytest.raises(InputError, match="brings its own truth"):
        open_cube("demo", truth=tmp_path / "t.mat")


def test_checksum_mismatch_of_a_download(tmp_path, monkeypatch):
    """Serve a wrong file on loopback: the download must be refused and not kept."""
    import http.server
    import threading

    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "x.mat").write_bytes(b"not the real file")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "srv"), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = download.RemoteFile(
            "samson/samson_1.mat", hashlib.sha256(b"real").hexdigest(), f"http://127.0.0.1:{server.server_port}/x.mat"
        )
        monkeypatch.setitem(download.FILES, remote.relpath, remote)
        monkeypatch.setattr(download, "search_path", lambda: [tmp_path / "dl"])
        monkeypatch.setattr(download, "download_dir", lambda: tmp_path / "dl")
        with pytest.raises(DatasetError, match="checksum"):
            download.fetch("samson/samson_1.mat")
        assert not (tmp_path / "dl" / "samson" / "samson_1.mat").exists()
    finally:
        server.shutdown()


def test_local_file_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    (tmp_path / "samson").mkdir()
    (tmp_path / "samson" / "end3.mat").write_bytes(b"tampered")
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetError, match="checksum"):
        download.fetch("samson/end3.mat", download=False)


def test_data_dir_setting_comes_first(tmp_path, monkeypatch):
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path))
    assert download.search_path()[0] == tmp_path
    assert download.download_dir() == tmp_path


# ---------------------------------------------------------------------------- more bad input
def test_rows_cols_not_matching_pixel_count(tmp_path):
    img, *_ = scene()
    scipy.io.savemat(tmp_path / "c.mat", {"Y": to_matlab_columns(img), "nRow": 7, "nCol": 9})
    with pytest.raises(InputError, match="no axis of 63 pixels"):
        open_cube(tmp_path / "c.mat")


def test_truth_with_other_band_or_pixel_count(tmp_path):
    img, em, ab = scene()
    scipy.io.savemat(tmp_path / "c.mat", {"Y": to_matlab_columns(img), "nRow": 6, "nCol": 9})
    scipy.io.savemat(tmp_path / "bands.mat", {"M": em[:, :10].T})
    with pytest.raises(InputError, match="12 bands|10 bands"):
        open_cube(tmp_path / "c.mat", truth=tmp_path / "bands.mat")
    scipy.io.savemat(tmp_path / "pix.mat", {"A": to_matlab_columns(ab.transpose(1, 2, 0))[:, :50], "M": em.T})
    with pytest.raises(InputError, match="50 pixels"):
        open_cube(tmp_path / "c.mat", truth=tmp_path / "pix.mat")


def test_output_path_checks(tmp_path):
    from egu_widgets._atomic import check_writable

    (tmp_path / "file").write_text("x")
    with pytest.raises(DataFileError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "r.nc")
    with pytest.raises(DataFileError, match="does not exist"):
        check_writable(tmp_path / "missing" / "r.nc")
    with pytest.raises(DataFileError, match="is a folder"):
        check_writable(tmp_path)


# ---------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 7), cols=st.integers(1, 7), bands=st.integers(2, 9), seed=st.integers(0, 10_000))
def test_property_matlab_layout_round_trip(tmp_path_factory, rows, cols, bands, seed):
    """Any image written in MATLAB's column-major layout reads back pixel for pixel.

    When there are as many pixels as bands the matrix is square and nothing in the file says which
    axis is which: the reader refuses to guess (tests/test_bad_input.py), so the test states it.
    """
    img = np.random.default_rng(seed).uniform(0.01, 1.0, size=(rows, cols, bands))
    path = tmp_path_factory.mktemp("m") / "c.mat"
    scipy.io.savemat(path, {"Y": to_matlab_columns(img), "nRow": rows, "nCol": cols})
    layout = "bands,pixels" if rows * cols == bands else None
    np.testing.assert_allclose(open_cube(path, layout=layout).image, img, rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    bands=st.integers(1, 8),
    p=st.integers(2, 4),
    seed=st.integers(0, 10_000),
)
def test_property_netcdf_round_trip(tmp_path_factory, rows, cols, bands, p, seed):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0.0, 1.0, size=(rows, cols, bands)) + 1e-3
    cube = HyperCube.from_array(
        img,
        wavelengths=np.sort(rng.uniform(400, 2500, bands)),
        endmembers=rng.uniform(size=(p, bands)),
        abundances=rng.dirichlet(np.ones(p), size=(rows, cols)),
        layout="rows,cols,bands",  # (a, b, b) shapes with a > b are refused unless stated
    )
    path = tmp_path_factory.mktemp("n") / "c.nc"
    cube.to_netcdf(path)
    xr.testing.assert_identical(open_cube(path).ds, cube.ds)


# ---------------------------------------------------------------------------- issue 18: CF netCDF, H x W x B .mat
def _cf_file(path, img, *, fill_pixel=(1, 2)):
    """A CF-style file: int16 radiance(wavelength, lat, lon) with scale_factor and _FillValue."""
    raw = np.round(img * 10000).astype(np.int16).transpose(2, 0, 1).copy()
    raw[:, fill_pixel[0], fill_pixel[1]] = -9999
    rows, cols, bands = img.shape
    ds = xr.Dataset(
        {"radiance": (("wavelength", "lat", "lon"), raw, {"scale_factor": 1e-4, "_FillValue": np.int16(-9999)})},
        coords={
            "wavelength": ("wavelength", np.linspace(0.4, 2.5, bands), {"units": "micrometers"}),
            "lat": ("lat", np.linspace(45.0, 44.0, rows), {"standard_name": "latitude"}),
            "lon": ("lon", np.linspace(7.0, 8.0, cols), {"standard_name": "longitude"}),
        },
    )
    ds.to_netcdf(path, engine="h5netcdf")
    return raw


def test_cf_netcdf_is_decoded_oriented_and_its_nodata_masked(tmp_path):
    from egu_widgets import UnmixingResult

    img, em, ab = scene()
    raw = _cf_file(tmp_path / "cf.nc", img)
    cube = open_cube(tmp_path / "cf.nc")
    assert cube.shape == (6, 9, 12) and cube.ds["reflectance"].dtype == np.float32
    expected = (raw.transpose(1, 2, 0) * np.float32(1e-4)).astype(np.float32)  # xarray's decoding
    valid = cube.valid_mask
    assert not valid[1, 2] and valid.sum() == 53
    np.testing.assert_allclose(cube.image[valid], expected[valid], rtol=1e-6)
    np.testing.assert_allclose(cube.wavelengths, np.linspace(0.4, 2.5, 12))
    assert cube.wavelength_units == "um"
    np.testing.assert_allclose(cube.ds["lat"].values, np.linspace(45.0, 44.0, 6))
    np.testing.assert_allclose(cube.ds["x"].values, np.linspace(7.0, 8.0, 9))
    assert cube.provenance["nodata_pixels"] == 1 and cube.provenance["variable"] == "radiance"
    result = UnmixingResult.from_arrays(cube, np.full((54, 3), 1 / 3), method="flat")
    assert np.isnan(result.abundances.values[:, 1, 2]).all()  # nodata written back as NaN
    assert np.isfinite(np.delete(result.abundance_pixels, 1 * 9 + 2, axis=0)).all()


def test_cf_netcdf_by_variable_and_layout(tmp_path):
    img, *_ = scene()
    xr.Dataset(
        {"data": (("d0", "d1", "d2"), np.moveaxis(img, -1, 0)), "quality": (("d1", "d2"), np.ones((6, 9)))}
    ).to_netcdf(tmp_path / "v.nc", engine="h5netcdf")
    cube = open_cube(tmp_path / "v.nc", variable="data", layout="bands,rows,cols")
    np.testing.assert_array_equal(cube.image, img.astype(np.float32))
    with pytest.raises(DataFileError, match="no variable 'nope'"):
        open_cube(tmp_path / "v.nc", variable="nope")
    with pytest.raises(DataFileError, match="three"):
        open_cube(tmp_path / "v.nc", variable="quality")


def test_netcdf_honours_truth_scale_invalid_and_negative(tmp_path):
    img, em, ab = scene()
    raw = img * 4000
    raw[2, 3] = np.nan
    raw[0, 0, 0] = -1.0
    xr.Dataset({"reflectance": (("y", "x", "band"), raw)}).to_netcdf(tmp_path / "o.nc", engine="h5netcdf")
    with pytest.raises(InputError, match="NaN or Inf"):
        open_cube(tmp_path / "o.nc", scale=4000)
    scipy.io.savemat(tmp_path / "truth.mat", {"A": to_matlab_columns(ab.transpose(1, 2, 0)), "M": em.T})
    cube = open_cube(tmp_path / "o.nc", tmp_path / "truth.mat", scale=4000, invalid="mask", negative="clip")
    assert not cube.valid_mask[2, 3] and cube.valid_mask.sum() == 53
    assert cube.image.min() == 0 and cube.provenance["scale"] == 4000
    np.testing.assert_allclose(cube.image[1, 1], img[1, 1], rtol=1e-6)
    np.testing.assert_array_equal(cube.true_abundances, ab)
    np.testing.assert_array_equal(cube.true_endmembers, em)


def test_own_netcdf_with_a_mask_keeps_it_when_rescaled(tmp_path):
    img, *_ = scene()
    img[1, 1] = np.nan
    HyperCube.from_array(img * 2, invalid="mask").to_netcdf(tmp_path / "m.nc")
    cube = open_cube(tmp_path / "m.nc", scale=2)
    assert not cube.valid_mask[1, 1] and cube.valid_mask.sum() == 53
    np.testing.assert_allclose(cube.image[0, 0], img[0, 0], rtol=1e-6)


def test_hwb_mat_key_detected_or_given(tmp_path):
    img, *_ = scene(rows=7, cols=5, bands=12)  # not square: the key's convention states bands last
    counts = np.round(img * 8000).astype(np.uint16)
    scipy.io.savemat(tmp_path / "PaviaU.mat", {"paviaU": counts})
    with pytest.raises(InputError, match="raw integer"):
        open_cube(tmp_path / "PaviaU.mat")
    cube = open_cube(tmp_path / "PaviaU.mat", scale=8000)
    np.testing.assert_array_equal(cube.image, (counts / 8000).astype(np.float32))
    assert cube.provenance["key"] == "paviaU"
    scipy.io.savemat(tmp_path / "two.mat", {"paviaU": counts, "paviaU_copy": counts})
    with pytest.raises(DataFileError, match="pass variable="):
        open_cube(tmp_path / "two.mat", scale=8000)
    np.testing.assert_array_equal(open_cube(tmp_path / "two.mat", scale=8000, variable="paviaU").image, cube.image)
    sq, *_ = scene(rows=6, cols=6, bands=10)  # square image, any key: (n, n, b) reads bands last
    scipy.io.savemat(tmp_path / "ip.mat", {"indian_pines_corrected": sq, "indian_pines_gt": np.zeros((6, 6), np.uint8)})
    np.testing.assert_array_equal(open_cube(tmp_path / "ip.mat").image, sq.astype(np.float32))
    with pytest.raises(DataFileError, match="class-label map"):
        open_cube(tmp_path / "ip.mat", variable="indian_pines_gt")


@needs_shared
def test_real_datasets_state_their_ground_truths_abundance_scale():
    """Their truths count each spectrum scaled to a maximum of 1: shares by non-negative least
    squares against the max-scaled truth spectra give back their abundances; on Jasper Ridge,
    whose stored spectra have maxima from 0.14 to 0.63, the spectra as stored do not."""
    from egu_widgets.engine.bundles import label_spectra

    for name in ("samson", "jasper-ridge"):
        cube = open_cube(name)
        assert cube.ds.attrs["abundance_scale"] == "max"
        em = np.asarray(cube.true_endmembers, dtype=np.float64)
        pixels, truth = cube.pixels.astype(np.float64), cube.true_abundance_pixels
        scaled, _ = label_spectra(pixels, em, "nnls", "max")
        assert np.sqrt(np.mean((scaled - truth) ** 2)) < 0.01, name
    stored, _ = label_spectra(pixels, em, "nnls", "none")
    assert np.sqrt(np.mean((stored - truth) ** 2)) > 0.03
