"""Memory: estimates, the refusal before a run, and the classical methods' block-wise reading."""

from __future__ import annotations

import importlib
import tracemalloc
import warnings

import numpy as np
import pytest

from egu_widgets import memory, unmix
from egu_widgets.classic import fcls, nfindr, nnls_unmix, sunsal, vca
from egu_widgets.classic.adapters import valid_pixels
from egu_widgets.classic.nfindr import simplex_coordinates
from egu_widgets.cube import HyperCube, make_demo
from egu_widgets.errors import InputError
from egu_widgets.methods import get_method, method_names

MiB = 2**20
# The module (the package exports a function of the same name).
fcls_module = importlib.import_module("egu_widgets.classic.fcls")
vca_module = importlib.import_module("egu_widgets.classic.vca")
moments = vca_module._image_moments


def _mixtures(n=3000, b=50, p=4, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    m = rng.random((p, b))
    pixels = rng.dirichlet(np.ones(p), n) @ m + 0.01 * rng.standard_normal((n, b))
    return pixels.astype(dtype), m


# ---------------------------------------------------------------------------- what the machine has


def test_available_bytes_reads_meminfo_and_the_tighter_cgroup_limit(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n")
    assert memory.available_bytes(meminfo, tmp_path / "none") == 8000000 * 1024
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text(f"{3 * 2**30}\n")
    (v2 / "memory.current").write_text(f"{2**30}\n")
    assert memory.available_bytes(meminfo, v2) == 2 * 2**30  # the cgroup's room, less than MemAvailable
    (v2 / "memory.max").write_text("max\n")  # no limit
    assert memory.available_bytes(meminfo, v2) == 8000000 * 1024
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text(f"{2**28}\n")
    assert memory.available_bytes(meminfo, v1) == 2**30 - 2**28
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    assert memory.available_bytes(meminfo, v1) == 8000000 * 1024
    assert memory.available_bytes(tmp_path / "missing", tmp_path / "none") is None


def test_check_fits_refuses_in_one_line_with_the_need_and_the_lazy_path(monkeypatch):
    memory.check_fits(10 * MiB, "a run", available=11 * MiB)
    with pytest.raises(InputError) as info:
        memory.check_fits(3 * 2**30, "egu-pw on this 1500x1500x224 cube", available=512 * MiB)
    message = str(info.value)
    assert "\n" not in message
    assert "egu-pw on this 1500x1500x224 cube needs about 3.0 GiB" in message
    assert "512.0 MiB is available" in message
    assert "chunks=" in message and "abundance_maps(lazy_cube)" in message
    monkeypatch.setenv(memory.CHECK_ENV, "0")
    memory.check_fits(3 * 2**30, "a run", available=512 * MiB)


def test_format_bytes():
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(1.5 * MiB) == "1.5 MiB"
    assert memory.format_bytes(5 * 2**40) == "5120.0 GiB"


# ---------------------------------------------------------------------------- what a run needs


class _Shape:
    """What the estimates read of a cube, without any pixels."""

    def __init__(self, h, w, b, *, lazy=False, masked=0):
        self.shape = (h, w, b)
        self.valid_mask = np.ones((h, w), dtype=bool)
        self.valid_mask.ravel()[:masked] = False
        self.reflectance = type("R", (), {"chunks": ((h,), (w,), (b,)) if lazy else None})()


def test_every_method_has_an_estimate_that_grows_with_the_image():
    for name in method_names():
        spec = get_method(name)
        small = spec.estimate_memory(_Shape(200, 200, 224), 4)
        large = spec.estimate_memory(_Shape(1500, 1500, 224), 4)
        assert 0 < small < large, name
    cube = _Shape(1500, 1500, 224)
    size = memory.cube_bytes(cube)
    # Classical methods read the image in blocks, and EGU-Net trains on the cube's own array and
    # passes it in blocks: at this size both add less than the cube.
    assert get_method("vca-fcls").estimate_memory(cube, 4) < size
    assert get_method("vca-fcls").estimate_memory(cube, 4) < get_method("egu-pw").estimate_memory(cube, 4) < size
    # The ss stream passes the whole image per step; a larger batch needs more.
    assert get_method("egu-ss").estimate_memory(cube, 4) > get_method("egu-pw").estimate_memory(cube, 4)
    pw = get_method("egu-pw")
    assert pw.estimate_memory(cube, 4, {"batch_size": 64000}) > pw.estimate_memory(cube, 4)


def test_egu_estimate_counts_the_bundle_tiling_and_a_masked_copy():
    kwargs = dict(batch_size=8000, bundle_batch=8000, widths=1056)
    cube = _Shape(500, 500, 224)
    tiled = memory.egu_bytes(cube, 4, **kwargs)
    assert memory.egu_bytes(cube, 4, n_bundles=100 * 100 * 4, **kwargs) == tiled  # 5x5 tiles, P each
    overlapping = memory.egu_bytes(cube, 4, stride=1, **kwargs)
    assert overlapping - tiled == (496 * 496 - 100 * 100) * 4 * 224 * 4
    masked = memory.egu_bytes(_Shape(500, 500, 224, masked=10), 4, **kwargs)
    assert masked > tiled + (500 * 500 - 10) * 224 * 4 * 0.99  # the valid pixels' copy


def test_lazy_and_masked_cubes_add_what_they_load():
    spec = get_method("vca-fcls")
    plain = spec.estimate_memory(_Shape(500, 500, 224), 4)
    assert spec.estimate_memory(_Shape(500, 500, 224, lazy=True), 4) == plain + 500 * 500 * 224 * 4
    assert spec.estimate_memory(_Shape(500, 500, 224, masked=10), 4) == plain + (500 * 500 - 10) * 224 * 4


@pytest.mark.parametrize("method", ["vca-fcls", "nfindr-fcls", "egu-pw", "egu-ss"])
def test_unmix_refuses_a_run_that_does_not_fit_before_it_starts(monkeypatch, method):
    cube = make_demo(20, 20, 30, 3)
    monkeypatch.setattr(memory, "available_bytes", lambda *a, **k: 4 * MiB)
    started = []
    spec = get_method(method)
    monkeypatch.setattr(type(spec), "run", lambda *a, **k: started.append(a))
    with pytest.raises(InputError) as info:
        unmix(cube, method, epochs=1)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{method} on this 20x20x30 cube needs about ")
    assert "4.0 MiB is available" in message and "open_cube(path, chunks=" in message
    assert not started


def test_the_command_line_refuses_with_one_error_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from egu_widgets.cli import main

    make_demo(20, 20, 30, 3).to_netcdf(tmp_path / "c.nc")
    monkeypatch.setattr(memory, "available_bytes", lambda *a, **k: 4 * MiB)
    code = main(["unmix", str(tmp_path / "c.nc"), "--method", "vca-fcls", "--out", str(tmp_path / "r.nc")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: vca-fcls on this 20x20x30 cube needs about ") and "chunks=" in err[0]
    assert not (tmp_path / "r.nc").exists()


def test_unmix_runs_when_the_estimate_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda *a, **k: 64 * 2**30)
    assert unmix(make_demo(20, 20, 30, 3), "vca-fcls").n_endmembers == 3


# ---------------------------------------------------------------------------- block-wise reading


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_wise_classical_methods_give_the_whole_array_answer(monkeypatch, dtype):
    pixels, m = _mixtures(dtype=dtype)
    # Answers that do not depend on the signs of eigenvectors (which are arbitrary) must equal
    # those computed on the whole array; all answers must not depend on the block size.
    sign_free = {
        "fcls": lambda: fcls(pixels, m),
        "nnls": lambda: nnls_unmix(pixels, m),
        "sunsal": lambda: sunsal(pixels, m, lam=1e-3),
        "sunsal sum-to-one": lambda: sunsal(pixels, m, sum_to_one=True),
        "simplex coordinates (magnitudes)": lambda: np.abs(simplex_coordinates(pixels, 4)),
    }
    signed = {
        "vca": lambda: vca(pixels, 4, seed=3),
        "vca low snr": lambda: vca(pixels, 4, seed=3, snr=0.0),
        "nfindr": lambda: nfindr(pixels, 4, seed=1),
        "simplex coordinates": lambda: simplex_coordinates(pixels, 4),
    }
    runs = {**sign_free, **signed}
    whole = {name: _as_tuple(run()) for name, run in sign_free.items()}
    by_size = {}
    # 24 and 9 blocks (VCA computes up to _WHOLE_BLOCKS blocks whole: these images are larger)
    for rows in (128, 334):
        monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 50 * rows)
        by_size[rows] = {name: _as_tuple(run()) for name, run in runs.items()}
    for name in runs:
        references = [by_size[334][name]] + ([whole[name]] if name in sign_free else [])
        for reference in references:
            assert len(by_size[128][name]) == len(reference)
            for got, want in zip(by_size[128][name], reference):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=name)


def test_vca_computes_images_of_up_to_four_blocks_whole_as_before(monkeypatch):
    # The one-product answer (LAPACK's eigenvector signs), which the block path's sign convention
    # does not reproduce: kept for images up to _WHOLE_BLOCKS blocks (the reproduction's scenes).
    from egu_widgets.classic.vca import _vca_core

    pixels, _ = _mixtures()
    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 50 * 750)  # 4 blocks: whole
    em, idx = _vca_core(pixels.astype(np.float64)[None], 4, np.random.default_rng(3), None)
    got_em, got_idx = vca(pixels, 4, seed=3)
    np.testing.assert_array_equal(got_idx, idx[0])
    np.testing.assert_array_equal(got_em, em[0])
    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 50 * 749)  # just over 4 blocks: the block path
    calls = []
    monkeypatch.setattr(vca_module, "_image_moments", lambda x: calls.append(x.shape) or moments(x))
    vca(pixels, 4, seed=3)
    assert calls == [pixels.shape]


def test_block_wise_vca_finds_planted_pure_pixels(monkeypatch):
    rng = np.random.default_rng(4)
    m = rng.random((4, 40)) + 0.1
    ab = rng.dirichlet(np.ones(4), 5000) * 0.8 + 0.05  # no pure pixel but the planted ones
    ab /= ab.sum(axis=1, keepdims=True)
    ab[[10, 1000, 2500, 4999]] = np.eye(4)
    pixels = (ab @ m).astype(np.float32)
    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 40 * 700)
    for seed in range(3):
        assert set(vca(pixels, 4, seed=seed)[1]) == {10, 1000, 2500, 4999}
        assert set(nfindr(pixels, 4, seed=seed)[1]) == {10, 1000, 2500, 4999}


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def test_block_wise_checks_find_bad_rows_and_warn_once(monkeypatch):
    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 50 * 128)
    pixels, m = _mixtures()
    pixels[[5, 1000, 2999], 3] = np.nan
    with pytest.raises(InputError, match="in 3 row"):
        fcls(pixels, m)
    pixels, m = _mixtures()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fcls(pixels, m, max_iter=0)  # no sweep: no pixel is proven optimal, in any of the 24 blocks
    stopped = [w for w in caught if "active-set solver stopped" in str(w.message)]
    assert len(stopped) == 1 and stopped[0].filename == __file__
    assert "with 3000 pixel(s) not proven optimal" in str(stopped[0].message)


def test_valid_pixels_is_a_view_unless_pixels_are_masked():
    cube = make_demo(10, 10, 20, 3)
    assert np.shares_memory(valid_pixels(cube), cube.image)
    image = cube.image.copy()
    image[0, 0] = np.nan
    masked = HyperCube.from_array(image, invalid="mask")
    assert valid_pixels(masked).shape == (99, 20)


def test_vca_and_fcls_never_copy_a_float32_image_whole(monkeypatch):
    # tracemalloc sees numpy's allocations: the methods' peak must stay well under one float64
    # copy of the image (twice its float32 size), which is what they allocated before.
    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 1 << 16)
    pixels, m = _mixtures(n=20000, b=224, p=4)
    tracemalloc.start()
    try:
        em, _ = vca(pixels, 4, seed=0)
        fcls(pixels, em)
        sunsal(pixels, em)
        nfindr(pixels, 4, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * pixels.nbytes


# ---------------------------------------------------------------------------- EGU-Net's fit

bundles_module = importlib.import_module("egu_widgets.engine.bundles")
estimator_module = importlib.import_module("egu_widgets.engine.estimator")


@pytest.mark.parametrize(
    "options",
    [dict(mode="default"), dict(mode="faithful"), dict(mode="faithful", stride=2, project=False, dedup=True)],
    ids=["default", "faithful", "overlapping pixels"],
)
def test_bundles_searched_in_blocks_of_patches_equal_one_block(monkeypatch, options):
    from egu_widgets.engine import extract_bundles

    cube = make_demo(30, 30, 24, 3)
    whole = extract_bundles(cube, 3, seed=5, **options).arrays()
    monkeypatch.setattr(bundles_module, "_CHUNK_ELEMENTS", 25 * 24 * 7)  # blocks of 7 patches
    blocks = extract_bundles(cube, 3, seed=5, **options).arrays()
    for name, value in whole.items():
        np.testing.assert_array_equal(blocks[name], value, err_msg=name)


def test_bundle_extraction_never_copies_the_image_whole(monkeypatch):
    from egu_widgets.engine import extract_bundles

    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 1 << 16)
    monkeypatch.setattr(bundles_module, "_CHUNK_ELEMENTS", 1 << 16)
    cube = make_demo(80, 80, 120, 4)
    assert np.shares_memory(bundles_module._image_of(cube)[0], cube.image)
    tracemalloc.start()
    try:
        bundles = extract_bundles(cube, 4, mode="faithful", seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Before: a float64 image, a float64 copy of all patches and its valid subset (six float32
    # images; one float64 copy alone is two); now the candidates (P spectra per 25 pixels,
    # float64), their labels and blocks of fixed size.
    assert peak < 1.5 * cube.image.nbytes
    assert bundles.n_bundles == (80 // 5) ** 2 * 4


def test_gram64_is_the_float64_product_and_reads_large_images_in_blocks(monkeypatch):
    from egu_widgets.classic.vca import _gram64

    pixels, _ = _mixtures(n=3000, b=50)
    x64 = pixels.astype(np.float64)
    np.testing.assert_array_equal(_gram64(pixels), x64.T @ x64)  # one block: the same product
    monkeypatch.setattr(fcls_module, "_CHUNK_ELEMENTS", 50 * 128)
    np.testing.assert_allclose(_gram64(pixels), x64.T @ x64, rtol=1e-13)


def test_the_training_pixels_are_a_view_of_the_cube_unless_some_are_masked():
    est = estimator_module.EGUNet("pw", 3, progress=False)
    cube = make_demo(12, 12, 20, 3)
    est._resolve(cube)
    assert np.shares_memory(est._pixels_tensor(cube, valid_only=True).numpy(), cube.image)
    image = cube.image.copy()
    image[2, 3] = np.nan
    masked = HyperCube.from_array(image, invalid="mask")
    tensor = est._pixels_tensor(masked, valid_only=True)
    assert tensor.shape == (143, 20) and not np.shares_memory(tensor.numpy(), masked.image)
    readonly = make_demo(12, 12, 20, 3)
    readonly.image.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch would warn on wrapping a read-only array
        np.testing.assert_array_equal(est._pixels_tensor(readonly, valid_only=True).numpy(), readonly.pixels)


def test_statistics_passes_are_whole_on_small_images_and_blocks_on_large(monkeypatch):
    import torch

    est = estimator_module.EGUNet("pw", 3, progress=False)
    est._resolve(make_demo(8, 8, 20, 3))
    assert len(est._statistics_chunks(torch.zeros(memory.ONE_PASS_PIXELS, 2))) == 1
    chunks = est._statistics_chunks(torch.zeros(memory.ONE_PASS_PIXELS + 1, 2))
    assert max(len(c) for c in chunks) <= memory.STATISTICS_BLOCK
    assert sum(len(c) for c in chunks) == memory.ONE_PASS_PIXELS + 1
    est.set_params(chunk_size=1000)._resolve(make_demo(8, 8, 20, 3))  # a smaller chunk_size bounds both
    assert len(est._statistics_chunks(torch.zeros(1000, 2))) == 1
    chunks = est._statistics_chunks(torch.zeros(1001, 2))
    assert len(chunks) == 2 and sum(len(c) for c in chunks) == 1001


def test_block_wise_statistics_give_the_one_pass_abundances(monkeypatch):
    # The calibration and the monitor in blocks (float64 sums) against one pass (float32 batch
    # statistics): the same abundances to float32 rounding.
    cube = make_demo(24, 24, 20, 3)
    kwargs = dict(epochs=2, batch_size=128, encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32), num_threads=1)
    one = estimator_module.EGUNet("pw", 3, progress=False, **kwargs).fit(cube)
    monkeypatch.setattr(estimator_module, "ONE_PASS_PIXELS", 100)
    monkeypatch.setattr(estimator_module, "STATISTICS_BLOCK", 64)
    blocks = estimator_module.EGUNet("pw", 3, progress=False, **kwargs).fit(cube)
    np.testing.assert_allclose(blocks.transform(cube), one.transform(cube), rtol=0, atol=1e-5)
    np.testing.assert_allclose(blocks.history_["rmse"], one.history_["rmse"], rtol=1e-5)


def test_release_freed_memory_runs_where_glibc_is():
    assert memory.release_freed_memory() in (True, False)
    assert memory.release_freed_memory() == memory.release_freed_memory()  # the same answer each time


def test_finite_rows_in_blocks_equal_the_whole_check():
    from egu_widgets.chunked import _finite_rows

    x = np.random.default_rng(0).random((101, 7)).astype(np.float32)
    x[[0, 13, 100], [6, 0, 3]] = [np.nan, np.inf, -np.inf]
    np.testing.assert_array_equal(_finite_rows(x, block=21), np.isfinite(x).all(axis=1))
