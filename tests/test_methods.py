"""The method registry: one table behind ``unmix``, the CLI and the docs; classical numbers pinned."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from egu_widgets import UnmixingResult, cli, methods
from egu_widgets.classic import fcls, nfindr, vca
from egu_widgets.classic.adapters import CubeUnmixer
from egu_widgets.classic.nfindr import simplex_coordinates
from egu_widgets.classic.nfindr_fcls import NFindrFcls
from egu_widgets.cube import HyperCube, make_demo, open_cube
from egu_widgets.errors import InputError
from egu_widgets.methods import DEFAULT_METHOD, MethodSpec, describe_methods, get_method, method_names
from egu_widgets.unmixing import unmix

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def demo():
    """The scene the numbers below were pinned on: the 0.1.0 demo recipe (smooth random fields),
    built here from the synthetic helpers so that later changes to ``make_demo`` do not move it."""
    from egu_widgets.cube.synthetic import add_noise, demo_endmembers, smooth_abundances

    rng = np.random.default_rng(4)
    wavelengths = np.linspace(400.0, 2500.0, 30)
    endmembers = demo_endmembers(30, 3, wavelengths)
    abundances = smooth_abundances(16, 16, 3, rng)
    noisy = np.clip(add_noise(np.einsum("phw,pb->hwb", abundances, endmembers), 30.0, rng), 0.0, None)
    return HyperCube.from_array(
        noisy,
        wavelengths=wavelengths,
        endmembers=endmembers,
        abundances=abundances,
        layout="rows,cols,bands",
        name="demo",
    )


@pytest.fixture(scope="module")
def no_truth(demo):
    return HyperCube.from_array(demo.pixels.reshape(16, 16, 30))


def _row_indices(cube, endmembers):
    """Which pixel rows the endmembers are (VCA and N-FINDR return pixels unchanged)."""
    return [int(np.flatnonzero((cube.pixels == e).all(axis=1))[0]) for e in endmembers]


# Values written down from the code before the registry existed: the refactor must not move them.
def test_vca_fcls_numbers_are_pinned(demo):
    r = unmix(demo, method="vca-fcls", seed=3)
    assert _row_indices(demo, r.endmembers.values) == [113, 150, 204]
    np.testing.assert_allclose(
        r.abundances.values[:, 3, 11], [0.37827577893063524, 0.36900162680559134, 0.2527225942637733], rtol=1e-9
    )
    np.testing.assert_allclose(
        r.abundances.values[:, 15, 0], [0.44019683798852255, 0.19250614700280894, 0.3672970150086685], rtol=1e-9
    )
    assert r.rmse == pytest.approx(0.4551215595998838, rel=1e-9)
    assert r.sad == pytest.approx(23.106840880898933, rel=1e-9)
    assert r.config == {"n_endmembers": 3, "seed": 3}


def test_sunsal_numbers_are_pinned(demo, no_truth):
    r = unmix(no_truth, method="sunsal", n_endmembers=3, seed=2)
    assert _row_indices(no_truth, r.endmembers.values) == [113, 95, 204]
    np.testing.assert_allclose(
        r.abundances.values[:, 3, 11], [0.3847251861197827, 0.45617357388826874, 0.15910123999194867], rtol=1e-9
    )
    assert r.config == {"endmembers": "vca", "lam": 0.0, "n_endmembers": 3, "seed": 2}
    t = unmix(demo, method="sunsal", lam=0.01)
    np.testing.assert_allclose(
        t.abundances.values[:, 15, 0], [0.9971147258951901, 0.0, 0.002885274104809911], rtol=1e-9, atol=1e-12
    )
    assert t.rmse == pytest.approx(0.005292379477432624, rel=1e-9)
    assert t.config == {"endmembers": "truth", "lam": 0.01, "n_endmembers": 3, "seed": 0}


def test_fcls_with_truth_numbers_are_pinned(demo):
    r = unmix(demo, method="fcls")
    np.testing.assert_allclose(
        r.abundances.values[:, 5, 7], [0.9992708241140421, 0.0, 0.0007291758859579849], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_array_equal(r.endmembers.values, demo.true_endmembers)
    assert r.config == {"endmembers": "truth", "n_endmembers": 3}


@pytest.mark.skipif(not (SHARED / "samson").is_dir(), reason="../shared/data/samson not present")
def test_vca_fcls_on_samson_is_pinned():
    cube = open_cube("samson")
    r = unmix(cube, method="vca-fcls", seed=0)
    assert _row_indices(cube, r.endmembers.values) == [6584, 3282, 5893]
    assert r.rmse == pytest.approx(0.2730149967717418, rel=1e-9)
    assert r.sad == pytest.approx(4.191013107026045, rel=1e-9)
    np.testing.assert_allclose(
        r.abundances.values[:, 10, 20], [0.0, 0.023074609093722463, 0.9769253909062775], rtol=1e-9, atol=1e-12
    )


# ------------------------------------------------------------------ the registry
def test_every_method_has_its_parts():
    names = method_names()
    assert len(names) == len(set(names)) and DEFAULT_METHOD in names
    assert {"vca-fcls", "fcls", "sunsal", "nfindr-fcls", "egu-pw", "egu-ss", "ae"} <= set(names)
    for name in names:
        spec = get_method(name)
        assert spec.name == name
        assert isinstance(spec.label, str) and spec.label
        assert isinstance(spec.trains, bool)
        assert callable(spec.factory)
        assert isinstance(spec.description, str) and spec.description
    assert [get_method(n).trains for n in ("vca-fcls", "fcls", "sunsal", "nfindr-fcls")] == [False] * 4
    assert [get_method(n).trains for n in ("egu-pw", "egu-ss", "ae")] == [True] * 3
    assert get_method("sunsal").accepted_options() == ("endmembers", "lam")
    assert get_method("vca-fcls").accepted_options() == ()
    with pytest.raises(InputError, match="unknown method 'magic'; choose one of vca-fcls"):
        get_method("magic")


def test_describe_methods_lists_the_registry_in_order():
    rows = describe_methods(options=False)
    assert [r["name"] for r in rows] == list(method_names())
    assert all(set(r) == {"name", "label", "trains", "description"} for r in rows)
    assert rows[0] == {
        "name": "vca-fcls",
        "label": get_method("vca-fcls").label,
        "trains": False,
        "description": get_method("vca-fcls").description,
    }


def test_engine_options_are_read_from_the_engine_when_asked(monkeypatch):
    pytest.importorskip("torch")
    from egu_widgets.engine import bundles, estimator

    accepted = get_method("egu-pw").accepted_options()
    assert set(estimator.HYPERPARAMETERS) <= set(accepted) and set(bundles.BUNDLE_OPTIONS) <= set(accepted)
    monkeypatch.setattr(estimator, "HYPERPARAMETERS", (*estimator.HYPERPARAMETERS, "brand_new"))
    assert "brand_new" in get_method("ae").accepted_options()
    assert "options" in describe_methods()[-1]


def _cli_method_actions():
    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {cmd: next(a for a in subs.choices[cmd]._actions if a.dest == "method") for cmd in ("unmix", "demo")}


def test_cli_choices_and_help_come_from_the_registry():
    for action in _cli_method_actions().values():
        assert tuple(action.choices) == method_names()
        assert action.default == DEFAULT_METHOD
        assert f"default: {DEFAULT_METHOD}" in action.help
        for name in method_names():
            assert f"{name}: {get_method(name).label}" in action.help


class _Recorder(CubeUnmixer):
    """A method that answers equal shares and remembers what it was built with."""

    name = "equal-shares"
    built: list = []

    def __init__(self, n_endmembers=None, seed=0, width=1.0):
        super().__init__(n_endmembers, seed)
        self.width = width
        _Recorder.built.append({"n_endmembers": n_endmembers, "seed": seed, "width": width})

    def _endmembers(self, cube):
        p = self._n_endmembers(cube)
        return cube.pixels[:p] * self.width, {"n_endmembers": p, "width": self.width}

    def _abundances(self, pixels, endmembers):
        return np.full((pixels.shape[0], endmembers.shape[0]), 1.0 / endmembers.shape[0])


def test_one_registry_line_adds_a_method_everywhere(monkeypatch, no_truth):
    spec = MethodSpec("equal-shares", "Equal shares", False, _Recorder, ("width",), "For the test.")
    monkeypatch.setitem(methods._REGISTRY, spec.name, spec)
    _Recorder.built.clear()
    res = unmix(no_truth, method="equal-shares", n_endmembers=4, seed=7, width=2.0)
    assert _Recorder.built == [{"n_endmembers": 4, "seed": 7, "width": 2.0}]
    assert res.method == "equal-shares" and res.config == {"n_endmembers": 4, "width": 2.0}
    np.testing.assert_array_equal(res.abundances.values, 0.25)
    np.testing.assert_array_equal(res.endmembers.values, no_truth.pixels[:4] * 2.0)
    assert "equal-shares" in method_names() and "equal-shares" in _cli_method_actions()["unmix"].choices
    with pytest.raises(InputError, match=r"takes no option\(s\) \['depth'\]; it accepts width"):
        unmix(no_truth, method="equal-shares", n_endmembers=4, depth=1)


def test_unmix_hands_engine_methods_to_run_egu(monkeypatch, demo):
    pytest.importorskip("torch")
    import egu_widgets.engine as engine

    seen = {}

    def fake_run_egu(cube, **kwargs):
        seen.update(kwargs)
        return unmix(cube, method="fcls")

    monkeypatch.setattr(engine, "run_egu", fake_run_egu)
    res = unmix(demo, method="egu-ss", seed=5, epochs=3, patch_size=5)
    assert res.method == "fcls"
    assert seen == {
        "method": "egu-ss",
        "n_endmembers": 3,
        "seed": 5,
        "epochs": 3,
        "device": "cpu",
        "callbacks": None,
        "progress": False,
        "patch_size": 5,
    }
    seen.clear()
    with pytest.raises(InputError, match="at most 30"):  # P is checked before any training
        unmix(demo, method="egu-pw", n_endmembers=31)
    with pytest.raises(InputError, match=r"'egu-pw' takes no option\(s\) \['lam'\]"):
        unmix(demo, method="egu-pw", lam=0.1)
    assert seen == {}


def test_unmixing_keeps_no_validation_of_its_own():
    import egu_widgets.unmixing as um

    assert not hasattr(um, "check_n_endmembers") and not hasattr(um, "METHODS")


# ------------------------------------------------------------------ the classical adapters
def test_classic_methods_equal_their_array_functions(demo):
    valid = demo.valid_mask.ravel()
    em, _ = vca(demo.pixels[valid], 3, seed=11)
    res = unmix(demo, method="vca-fcls", seed=11, n_endmembers=3)
    # the result is aligned to the truth: compare as sets of rows, then abundances in that order
    order = [int(np.flatnonzero((em == e).all(axis=1))[0]) for e in res.endmembers.values]
    np.testing.assert_array_equal(res.abundance_pixels, fcls(demo.pixels, em)[:, order])
    em, _ = nfindr(demo.pixels[valid], 3, seed=11)
    res = unmix(demo, method="nfindr-fcls", seed=11)
    order = [int(np.flatnonzero((em == e).all(axis=1))[0]) for e in res.endmembers.values]
    np.testing.assert_array_equal(res.abundance_pixels, fcls(demo.pixels, em)[:, order])
    assert res.method == "nfindr-fcls" and res.config == {"n_endmembers": 3, "seed": 11}


def test_nfindr_fcls_on_a_demo_cube(demo, no_truth):
    res = unmix(no_truth, method="nfindr-fcls", n_endmembers=3, seed=0)
    ab = res.abundance_pixels
    assert (ab >= -1e-12).all()
    np.testing.assert_allclose(ab.sum(axis=1), 1.0, atol=1e-9)
    nf = _row_indices(no_truth, res.endmembers.values)
    vc = _row_indices(no_truth, unmix(no_truth, method="vca-fcls", n_endmembers=3, seed=0).endmembers.values)
    h = simplex_coordinates(no_truth.pixels, 3)
    # N-FINDR starts from the very pixels VCA picks with the same seed and only ever grows the volume
    assert abs(np.linalg.det(h[nf])) >= abs(np.linalg.det(h[vc])) * (1 - 1e-12)
    scene = make_demo(seed=0)  # the CLI's demo scene has near-pure pixels: N-FINDR finds them
    assert unmix(scene, method="nfindr-fcls", seed=0).rmse < 0.03
    model = NFindrFcls(3, seed=0).fit(no_truth)
    np.testing.assert_array_equal(model.transform(demo), fcls(demo.pixels, model.endmembers_))
    np.testing.assert_array_equal(model.fit_transform(no_truth), model.abundances_)


def test_an_adapter_instance_is_a_method_too(no_truth):
    by_name = unmix(no_truth, method="nfindr-fcls", n_endmembers=3, seed=2)
    by_object = unmix(no_truth, method=NFindrFcls(n_endmembers=3, seed=2))
    np.testing.assert_array_equal(by_object.abundances.values, by_name.abundances.values)
    assert by_object.method == "nfindr-fcls"
    with pytest.raises(InputError, match="not fitted yet"):
        NFindrFcls(3).transform(no_truth)


@pytest.mark.parametrize("method", ["vca-fcls", "nfindr-fcls", "sunsal", "fcls"])
@pytest.mark.parametrize("seed", [1.5, -1, True, "3", None])
def test_bad_seeds_give_one_clear_error(demo, method, seed):
    with pytest.raises(InputError, match=f"seed must be a whole number >= 0; got {re.escape(repr(seed))}"):
        unmix(demo, method=method, seed=seed)


@pytest.mark.parametrize("method", ["vca-fcls", "nfindr-fcls"])
def test_bad_numbers_of_endmembers(demo, no_truth, method):
    for p, message in [
        (1, "whole number >= 2; got 1"),
        (1.5, "got 1.5"),
        (True, "got True"),
        (31, "with 30 bands; use at most 30"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            unmix(demo, method=method, n_endmembers=p)
    with pytest.raises(InputError, match="the number of endmembers is unknown"):
        unmix(no_truth, method=method)
    tiny = HyperCube.from_array(demo.pixels[:2].reshape(1, 2, 30))
    with pytest.raises(InputError, match="cannot find 3 endmembers among 2 valid pixels"):
        unmix(tiny, method=method, n_endmembers=3)


def test_options_a_method_does_not_take_are_refused(demo):
    with pytest.raises(InputError, match=r"'vca-fcls' takes no option\(s\) \['lam'\]; it takes none"):
        unmix(demo, method="vca-fcls", lam=0.1)
    with pytest.raises(InputError, match=r"\['endmembers'\]"):
        unmix(demo, method="nfindr-fcls", endmembers=demo.true_endmembers)
    with pytest.raises(InputError, match=r"\['foo'\]; it accepts endmembers"):
        unmix(demo, method="fcls", foo=1)
    with pytest.raises(InputError, match="the number of endmembers must be a whole number >= 1; got 2.5"):
        unmix(demo, method="fcls", n_endmembers=2.5)
    with pytest.raises(InputError, match="3 endmembers given but 2 asked for"):
        unmix(demo, method="fcls", n_endmembers=2)
    with pytest.raises(InputError, match="lam must be a finite number >= 0; got 'x'"):
        unmix(demo, method="sunsal", lam="x")


def test_cli_refuses_a_bad_seed_in_one_line(tmp_path, capsys):
    for cmd in (
        ["unmix", "demo", "-m", "vca-fcls", "--seed", "-1", "--out", str(tmp_path / "r.nc")],
        ["demo", "--method", "vca-fcls", "--seed", "-1", "--out", str(tmp_path / "d")],
    ):
        assert cli.main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: seed must be a whole number >= 0; got -1"]
    assert not (tmp_path / "r.nc").exists() and not (tmp_path / "d").exists()
    assert cli.main(["unmix", "demo", "-m", "vca-fcls", "--lam", "0.5", "--out", str(tmp_path / "r.nc")]) == 2
    assert "takes no option(s) ['lam']" in capsys.readouterr().err


def test_cli_runs_nfindr_fcls(tmp_path, capsys):
    assert cli.main(["unmix", "demo", "-m", "nfindr-fcls", "--seed", "1", "--out", str(tmp_path / "r.nc")]) == 0
    res = UnmixingResult.open(tmp_path / "r.nc")
    assert res.method == "nfindr-fcls" and res.rmse is not None
    assert "nfindr-fcls on demo" in capsys.readouterr().out


# ------------------------------------------------------------------ any object with fit/transform
class _TinyNMF:
    """NMF-shaped fake (scikit-learn's API): components_ are P spread-out rows, abundances by FCLS."""

    def __init__(self, n_components=3, attr="components_"):
        self.n_components = n_components
        self.attr = attr

    def get_params(self, deep=True):
        return {"n_components": self.n_components, "attr": self.attr}

    def fit(self, x):
        self.fit_shape_ = x.shape
        rows = np.linspace(0, x.shape[0] - 1, self.n_components).astype(int)
        setattr(self, self.attr, x[rows].copy())
        return self

    def transform(self, x):
        return fcls(x, getattr(self, self.attr))


def test_an_object_with_fit_and_transform_is_fitted_on_the_valid_pixels(demo):
    pixels = demo.pixels.reshape(16, 16, 30).copy()
    pixels[0, 0] = np.nan
    cube = HyperCube.from_array(
        pixels, endmembers=demo.true_endmembers, abundances=demo.true_abundances, invalid="mask"
    )
    model = _TinyNMF(3)
    res = unmix(cube, method=model)
    assert model.fit_shape_ == (255, 30)
    assert res.method == "_TinyNMF" and res.n_endmembers == 3 and res.rmse is not None
    assert res.config["params"] == {"n_components": 3, "attr": "components_"}
    assert res.config["estimator"].endswith("test_methods._TinyNMF")
    assert np.isnan(res.abundances.values[:, 0, 0]).all()
    assert sorted(_row_indices(cube, res.endmembers.values)) == sorted(_row_indices(cube, model.components_))
    other = unmix(cube.without_truth(), method=_TinyNMF(3, attr="endmembers_"))
    np.testing.assert_array_equal(other.endmembers.values, np.asarray(model.components_))


def test_an_object_without_endmembers_gives_abundances_only(no_truth):
    class AbundancesOnly(_TinyNMF):
        def fit(self, x):
            super().fit(x)
            self.spectra = self.components_
            del self.components_
            return self

        def transform(self, x):
            return fcls(x, self.spectra)

    res = unmix(no_truth, method=AbundancesOnly(4))
    assert res.endmembers is None and res.abundances.shape == (4, 16, 16)


def test_objects_that_are_not_estimators_are_refused(demo):
    class FitOnly:
        def fit(self, x):
            return self

    with pytest.raises(
        InputError, match=r"a method name \(vca-fcls, .*\) or an object with fit\(\) and transform\(\); got FitOnly"
    ):
        unmix(demo, method=FitOnly())
    with pytest.raises(InputError, match="got the class _TinyNMF; pass an instance"):
        unmix(demo, method=_TinyNMF)
    with pytest.raises(InputError, match="gave 3 abundances per pixel but 4 endmembers"):
        unmix(demo, method=_TinyNMF(3), n_endmembers=4)
    with pytest.raises(InputError, match=r"options \['lam'\] are for registered methods"):
        unmix(demo, method=_TinyNMF(3), lam=0.1)
    with pytest.raises(InputError, match="seed must be"):
        unmix(demo, method=_TinyNMF(3), seed=-2)

    class WrongShape(_TinyNMF):
        def transform(self, x):
            return super().transform(x).T

    with pytest.raises(InputError, match=r"WrongShape.transform gave shape \(3, 256\)"):
        unmix(demo, method=WrongShape(3))


@pytest.mark.filterwarnings("ignore:Maximum number of iterations")  # a short fit is enough here
def test_scikit_learn_nmf_plugs_in(no_truth):
    decomposition = pytest.importorskip("sklearn.decomposition")
    nmf = decomposition.NMF(n_components=3, init="nndsvda", max_iter=50, random_state=0)
    res = unmix(no_truth, method=nmf)
    assert res.method == "NMF" and res.endmembers.shape == (3, 30)
    np.testing.assert_array_equal(res.endmembers.values, nmf.components_)
    assert res.config["params"]["n_components"] == 3
