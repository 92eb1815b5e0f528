"""Estimating the number of materials: HySime, noise-whitened HFC and the random-matrix test."""

from __future__ import annotations

import numpy as np
import pytest

from egu_widgets.classic.subspace import CRITERIA, estimate_n_endmembers, estimate_noise, hfc, hysime, rmt
from egu_widgets.errors import InputError


def _scene(p: int, snr_db: float, seed: int, n: int = 3000, bands: int = 120) -> np.ndarray:
    """Pixels mixed from p smooth random spectra (Dirichlet abundances) with white noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, bands)
    spectra = []
    for _ in range(p):
        centres, widths, depths = rng.uniform(0, 1, 4), rng.uniform(0.03, 0.2, 4), rng.uniform(-0.3, 0.3, 4)
        s = 0.5 + rng.uniform(-0.3, 0.3) * t
        s += sum(d * np.exp(-0.5 * ((t - c) / w) ** 2) for c, w, d in zip(centres, widths, depths))
        spectra.append(np.clip(s, 0.02, None))
    y = rng.dirichlet(np.ones(p), size=n) @ np.array(spectra)
    return y + rng.normal(0, np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10)), y.shape)


def test_noise_estimate_recovers_the_noise_level():
    y = _scene(4, 30, seed=1)
    clean_sigma = np.sqrt(np.mean(_scene(4, np.inf, seed=1) ** 2) / 10**3)
    est = np.sqrt(np.mean(estimate_noise(y) ** 2, axis=0))
    assert np.median(est) == pytest.approx(clean_sigma, rel=0.1)


@pytest.mark.parametrize("p", [3, 4, 6])
@pytest.mark.parametrize("criterion", ["hysime", "rmt"])
def test_finds_the_number_of_materials_at_40_db(p, criterion):
    found = [estimate_n_endmembers(_scene(p, 40, seed=s), criterion).n_endmembers for s in range(3)]
    assert found.count(p) >= 2, found


def test_hfc_counts_signal_and_stays_within_bounds():
    est = hfc(_scene(4, 40, seed=0))
    assert 1 <= est.n_endmembers <= 5
    assert est.eigenvalues.shape == (120,)


def test_pure_noise_has_no_signal_directions():
    rng = np.random.default_rng(0)
    noise = rng.normal(1.0, 0.01, size=(3000, 50))
    assert hysime(noise).n_endmembers <= 1
    assert rmt(noise).n_endmembers <= 2


def test_result_carries_what_a_plot_needs():
    est = hysime(_scene(3, 30, seed=2))
    assert est.criterion == "hysime"
    assert est.eigenvalues.shape == est.signal_power.shape == est.noise_power.shape == (120,)
    assert np.all(np.diff(est.eigenvalues) <= 1e-12)
    assert est.n_endmembers == int((est.signal_power > 2 * est.noise_power).sum())


def test_accepts_images_and_cubes():
    from egu_widgets.cube import make_demo

    cube = make_demo(seed=0)
    est = estimate_n_endmembers(cube)
    assert est.n_endmembers == estimate_n_endmembers(cube.pixels).n_endmembers
    assert estimate_n_endmembers(cube.image).n_endmembers == est.n_endmembers


@pytest.mark.parametrize(
    "data, message",
    [
        (np.ones((10, 20)), "more pixels than bands"),
        (np.ones((100, 2)), "at least 3 bands"),
        (np.ones(5), "expected pixels"),
        (np.full((100, 5), np.nan), "NaN"),
    ],
)
def test_bad_input_is_refused(data, message):
    with pytest.raises(InputError, match=message):
        hysime(data)


def test_unknown_criterion_and_bad_options():
    y = _scene(3, 30, seed=0)
    with pytest.raises(InputError, match="criterion must be one of"):
        estimate_n_endmembers(y, "eigengap")
    with pytest.raises(InputError, match="false_alarm"):
        hfc(y, false_alarm=0.9)
    assert set(CRITERIA) == {"hysime", "hfc", "rmt"}
