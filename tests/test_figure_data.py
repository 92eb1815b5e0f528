"""The data behind figures and views (``egu_widgets.figure_data``): numpy only, no plotting library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.errors import InputError
from egu_widgets.figure_data import (
    block_centres,
    block_mean,
    bundle_envelopes,
    downsample_factor,
    error_limit,
    format_duration,
    make_reconstructor,
    map_data,
    pair_data,
    remaining_seconds,
    spectral_axis,
)
from egu_widgets.metrics import sad
from egu_widgets.results import UnmixingResult

REPO = Path(__file__).resolve().parents[1]
NAMES = ["soil", "tree", "water"]


@pytest.fixture(scope="module")
def cube():
    rng = np.random.default_rng(3)
    wl = np.linspace(400.0, 2500.0, 24)
    em = demo_endmembers(24, 3, wl)
    ab = rng.dirichlet(np.full(3, 0.7), size=(6, 7)).transpose(2, 0, 1)
    image = np.einsum("phw,pb->hwb", ab, em).astype(np.float32)
    return HyperCube.from_array(image, wavelengths=wl, endmembers=em, abundances=ab, endmember_names=NAMES)


@pytest.fixture(scope="module")
def result(cube):
    rng = np.random.default_rng(4)
    ab = cube.true_abundances + 0.1 * rng.random(cube.true_abundances.shape)
    ab /= ab.sum(axis=0)
    em = cube.true_endmembers * 0.9 + 0.02 * rng.random(cube.true_endmembers.shape)
    return UnmixingResult.from_arrays(cube, ab, em, method="egu-pw", names=NAMES)


def test_importing_it_loads_no_plotting_widget_or_torch_library():
    code = (
        "import sys, egu_widgets.figure_data\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'ipywidgets', 'holoviews', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_durations_and_time_left():
    assert format_duration(75.2) == "1:15"
    assert format_duration(3725) == "1:02:05"
    assert [format_duration(v) for v in (None, float("nan"), -1.0)] == ["--:--"] * 3
    assert remaining_seconds(10.0, 2, 5) == pytest.approx(15.0)
    assert remaining_seconds(10.0, 6, 5) == 0.0
    assert remaining_seconds(3.0, 0, 5) is None


def test_block_means_keep_pixel_coordinates():
    assert downsample_factor(1000, 1000, 250) == 4
    assert downsample_factor(10, 3, 10) == 1
    with pytest.raises(InputError):
        downsample_factor(10, 10, 0)
    image = np.arange(25, dtype=np.float32).reshape(5, 5)
    image[0, 0] = np.nan
    small = block_mean(image, 2)
    assert small.shape == (3, 3)
    assert small[0, 0] == pytest.approx(np.mean([1, 5, 6]))  # NaN ignored
    assert small[2, 2] == pytest.approx(24.0)  # the partial corner block is the one pixel it holds
    assert small[0, 2] == pytest.approx(np.mean([4, 9]))
    assert np.array_equal(block_mean(image, 1), image, equal_nan=True)
    np.testing.assert_allclose(block_centres(5, 2), [0.5, 2.5, 4.5])
    np.testing.assert_allclose(block_centres(4, 1), [0.0, 1.0, 2.0, 3.0])


def test_error_limit_is_symmetric_rounded_up_and_never_zero():
    assert error_limit(np.array([-0.123, 0.05, np.nan])) == pytest.approx(0.13)
    assert error_limit(np.zeros(4)) == 0.01


def test_spectral_axis_uses_wavelengths_when_known(cube):
    axis = spectral_axis(cube.n_bands, cube)
    assert axis.label == "wavelength (nm)" and axis.name == "wavelength"
    np.testing.assert_allclose(axis.values, cube.wavelengths)
    bands = spectral_axis(5)
    assert bands.label == "band" and list(bands.values) == [0, 1, 2, 3, 4]


def test_map_data_follows_the_result_order_and_computes_the_error(cube, result):
    md = map_data(result, cube)
    assert md.names == NAMES
    np.testing.assert_allclose(md.error, md.estimate - md.truth)
    assert md.error_limit >= np.abs(md.error).max()
    order = [2, 0, 1]
    swapped = UnmixingResult.from_arrays(
        cube,
        result.abundances.values[order],
        result.endmembers.values[order],
        method="x",
        names=[NAMES[i] for i in order],
        score=False,  # scoring would align the result to the truth's order
    )
    md2 = map_data(swapped, cube)
    assert md2.names == ["water", "soil", "tree"]
    np.testing.assert_allclose(md2.truth, cube.true_abundances[order], rtol=1e-6)
    assert map_data(result, None).truth is None


def test_pair_data_takes_truth_then_estimates_spectra_from_abundances(cube, result):
    d = pair_data(result, cube)
    assert d.reference_label == "truth" and d.estimate_label == "estimate"
    np.testing.assert_allclose(d.sad, sad(result.endmembers.values, cube.true_endmembers))
    assert d.title(0) == f"soil — SAD {d.sad[0]:.2f}°"
    abundance_only = UnmixingResult.from_arrays(cube, cube.true_abundances, method="fcls", names=NAMES)
    d = pair_data(abundance_only, cube)
    assert d.estimate_label.startswith("estimate (least squares")
    np.testing.assert_allclose(d.estimate, cube.true_endmembers, atol=1e-4)  # exact mixtures: the spectra come back
    with pytest.raises(InputError, match="pass the cube"):
        pair_data(abundance_only)


def test_pair_data_aligns_a_bundle_reference_and_matches_envelopes(cube, result):
    order = [1, 2, 0]
    spectra = np.concatenate([cube.true_endmembers[p] * np.linspace(0.9, 1.1, 4)[:, None] for p in order])
    labels = np.repeat(np.eye(3), 4, axis=0)  # group k holds material order[k]
    bundles = SimpleNamespace(
        spectra=spectra, labels=labels, reference=cube.true_endmembers[order], config={"reference": "nfindr"}
    )
    d = pair_data(result, cube.without_truth(), bundles=bundles)
    assert d.reference_label == "N-FINDR"
    np.testing.assert_allclose(d.reference, cube.true_endmembers)  # reordered to the estimate
    for p in range(3):
        lo, hi, count = d.envelopes[p]
        assert count == 4
        np.testing.assert_allclose(hi, cube.true_endmembers[p] * 1.1)
    assert d.envelope_label == "bundle min-max"


def test_bundle_envelopes_quantiles_and_bad_arguments():
    spectra = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [5.0, 5.0]])
    groups = bundle_envelopes(spectra, np.array([0, 0, 0, 1]), 3, envelope=(0.0, 0.5))
    lo, hi, count = groups[0]
    np.testing.assert_allclose(lo, [0.0, 1.0])
    np.testing.assert_allclose(hi, [1.0, 2.0])
    assert count == 3 and groups[1][2] == 1 and groups[2] is None
    for bad in ("range", (0.5, 0.1), (0.1,)):
        with pytest.raises(InputError):
            bundle_envelopes(spectra, np.array([0, 0, 0, 1]), 2, envelope=bad)
    with pytest.raises(InputError):
        bundle_envelopes(spectra, np.zeros((3, 2)), 2)


def test_reconstructors_from_arrays_stored_data_or_the_linear_mixture(cube, result):
    h, w, b = cube.image.shape
    fn, what = make_reconstructor(result, cube)
    assert what == "linear reconstruction"
    i = 5
    expected = result.abundance_pixels[i] @ result.endmembers.transpose("endmember", "band").values
    np.testing.assert_allclose(fn(i), expected)
    flat = np.random.default_rng(0).random((h * w, b))
    for given in (flat, flat.reshape(h, w, b)):
        fn, what = make_reconstructor(result, cube, given)
        assert what == "reconstruction" and np.array_equal(fn(i), flat[i])
    with pytest.raises(InputError, match="reconstruct must be"):
        make_reconstructor(result, cube, np.zeros((3, b)))
    abundance_only = UnmixingResult.from_arrays(cube, cube.true_abundances, method="fcls", names=NAMES)
    fn, what = make_reconstructor(abundance_only, cube)
    assert fn is None and "no reconstruction" in what

    def own(j):
        return flat[j]

    assert make_reconstructor(result, cube, own) == (own, "reconstruction")  # a function is used as given


def test_nnls_shares_in_data_units_are_reconstructed_with_the_pixels_brightness(cube, result):
    # NNLS labels in the data's units (label_scale "none"; the default's where brightness varies): shares with the
    # brightness divided out, so the reconstruction fits each pixel's brightness to their mixture.
    rule = {"labeller": "nnls", "label_scale": "none"}
    em = result.endmembers.transpose("endmember", "band").values.astype(np.float64)
    shares = UnmixingResult.from_arrays(
        cube, result.abundance_pixels, em, method="egu-pw", score=False, config={"bundles": rule}
    )
    fn, what = make_reconstructor(shares, cube)
    assert what == "abundances × references (pixel brightness fitted)"
    i = 5
    shape = shares.abundance_pixels[i] @ em
    observed = cube.image.reshape(-1, cube.n_bands)[i].astype(np.float64)
    np.testing.assert_allclose(fn(i), shape * (shape @ observed) / (shape @ shape))
    # Labels made without NNLS (FCLS, in the data's units) keep the linear mixture.
    fcls_rule = {"bundles": {"labeller": "fcls", "label_scale": "none"}}
    tied = UnmixingResult.from_arrays(cube, result.abundance_pixels, em, method="egu-pw", score=False, config=fcls_rule)
    assert make_reconstructor(tied, cube)[1] == "linear reconstruction"
