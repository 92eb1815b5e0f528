"""The default run's stopping rule, weight averaging, divergence checks and per-step bundle batches.

Tiny scenes (12×10 or 16×16 pixels, 16 bands) and narrow networks: every fit takes well under a
second of training, so a run that goes to a bound of a few hundred steps stays cheap.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet
from egu_widgets.engine.estimator import PRESETS, resolve_hyperparameters
from egu_widgets.errors import InputError

P = 3
TINY = dict(progress=False, batch_size=64, encoder_widths=(12, 8, 4), decoder_widths=(4, 8, 12), num_threads=1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Direct torch calls in these tests run on one thread too."""


@pytest.fixture(scope="module")
def cube() -> HyperCube:
    return make_demo(12, 10, 16, P, seed=3)


def _with_truth(cube: HyperCube, truth: np.ndarray | None) -> HyperCube:
    return HyperCube.from_array(
        cube.image, abundances=truth, endmembers=None if truth is None else cube.true_endmembers
    )


# ----------------------------------------------------------------------------- the rule


def test_the_default_preset_stops_by_the_rule_and_paper_runs_its_epochs():
    assert PRESETS["default"]["epochs"] == "auto" and PRESETS["default"]["tol"] > 0
    assert PRESETS["paper"]["epochs"] == 200 and PRESETS["paper"]["tol"] is None
    assert PRESETS["paper"]["average"] is None
    with pytest.raises(InputError, match="tol"):
        resolve_hyperparameters("pw", "paper", epochs="auto")


def test_stops_when_converged_and_says_why(cube):
    """A decaying learning rate settles the tiny problem well before the bound."""
    est = EGUNet("pw", P, seed=0, epochs=400, lr_decay=0.95, **TINY).fit(cube)
    out = est.outcome_
    assert out.stop == "converged" and out.converged and not out.partial
    assert out.epochs_done < 400
    assert out.change < est.hyperparameters_["tol"]
    training = est.result_.config["training"]
    assert training["stop"] == "converged" and training["epochs_done"] == out.epochs_done
    assert f"converged at epoch {out.epochs_done}" in est.result_.ds.attrs["stop_reason"]
    assert not est.result_.partial


def test_runs_to_the_bound_when_it_does_not_converge(cube):
    """A constant, large learning rate without averaging keeps the answer moving: no early stop."""
    est = EGUNet("pw", P, seed=0, epochs=90, lr=0.1, lr_decay=1.0, average=0, tol=1e-9, **TINY).fit(cube)
    assert est.outcome_.stop == "bound" and not est.outcome_.converged
    assert est.outcome_.epochs_done == 90 and not est.result_.partial
    assert est.result_.config["training"]["stop"] == "bound"


def test_tol_zero_never_stops_early(cube):
    est = EGUNet("pw", P, seed=0, epochs=70, lr_decay=0.9, tol=0, **TINY).fit(cube)
    assert est.outcome_.epochs_done == 70 and est.outcome_.stop == "bound"


def test_the_rule_never_reads_the_truth(cube):
    """The same cube with its truth, with garbage truth and without truth: the same answer, bit for bit."""
    garbage = np.random.default_rng(0).dirichlet(np.ones(P), size=cube.n_pixels).T.reshape(P, cube.height, cube.width)
    runs = []
    for truth in (cube.true_abundances, garbage, None):
        est = EGUNet("pw", P, seed=1, epochs=300, lr_decay=0.95, **TINY).fit(_with_truth(cube, truth))
        runs.append((est.outcome_.epochs_done, est.outcome_.stop, est.transform(cube)))
    assert runs[0][1] == "converged"
    for epochs_done, stop, ab in runs[1:]:
        assert (epochs_done, stop) == runs[0][:2]
        np.testing.assert_array_equal(ab, runs[0][2])


def test_events_carry_the_criterion(cube):
    events = []
    EGUNet("pw", P, seed=0, epochs=300, lr_decay=0.95, **TINY).fit(cube, callbacks=[events.append])
    start = events[0]
    assert start.info["stopping"]["tol"] == PRESETS["default"]["tol"]
    changes = [e.metrics["change"] for e in events if e.kind == "epoch" and "change" in e.metrics]
    assert len(changes) >= 3 and all(c >= 0 for c in changes)
    assert events[-1].kind == "end" and "change" in events[-1].metrics
    assert "converged" in events[-1].message
    assert "change" in events[-1].history.as_dict()


def test_the_averaged_weights_are_the_answer(cube):
    """average=0 keeps the last weights; the default's average gives a different, valid model."""
    kw = dict(seed=0, epochs=8, tol=0, **TINY)
    last = EGUNet("pw", P, average=0, **kw).fit(cube)
    averaged = EGUNet("pw", P, **kw).fit(cube)
    assert not last.outcome_.averaged and averaged.outcome_.averaged
    a, b = last.transform(cube), averaged.transform(cube)
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------- divergence


@pytest.mark.parametrize("truth", [True, False], ids=["with truth", "without truth"])
def test_an_exploding_loss_is_a_failed_run_with_the_last_good_weights(cube, truth):
    """lr=1e6 stays finite for a while (huge weight decay) but is no complete run, truth or not."""
    data = cube if truth else _with_truth(cube, None)
    kinds = []
    est = EGUNet("pw", P, seed=0, epochs=20, lr=1e6, **TINY).fit(data, callbacks=[lambda e: kinds.append(e.kind)])
    assert kinds[-1] == "fail"
    assert est.outcome_.stop == "diverged" and est.outcome_.failed and est.result_.partial
    assert "diverged" in est.result_.ds.attrs["stop_reason"]
    assert est.result_.config["training"]["failed"]
    assert all(torch.isfinite(p).all() for p in est.model_.parameters())
    assert all(float(p.detach().abs().max()) < 1e3 for p in est.model_.parameters())
    assert np.isfinite(est.transform(cube)).all()


def test_nan_weights_with_truth_roll_back_instead_of_raising(cube):
    """With truth the monitor runs after each epoch; NaN weights must not reach it."""
    est = EGUNet("pw", P, seed=0, epochs=5, lr=1e20, **TINY).fit(cube)
    assert est.outcome_.stop == "diverged" and est.result_.partial
    assert np.isfinite(est.transform(cube)).all()


def test_collapsed_abundances_stop_the_run(cube, monkeypatch):
    """A probe whose abundances are one constant map is divergence; the start state is kept."""
    from egu_widgets.engine import estimator

    def constant_probe(self, model, pixels):
        return lambda: torch.full((pixels.shape[0], model.n_endmembers), 1.0 / model.n_endmembers)

    monkeypatch.setattr(estimator.EGUNet, "_probe", constant_probe)
    start = EGUNet("pw", P, seed=0, epochs=0, **TINY).fit(cube)
    est = EGUNet("pw", P, seed=0, epochs=30, **TINY).fit(cube)
    assert est.outcome_.stop == "diverged" and est.result_.partial
    assert "one constant map" in est.result_.ds.attrs["stop_reason"]
    for a, b in zip(start.model_.parameters(), est.model_.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ----------------------------------------------------------------------------- bundle batches


def test_bundles_are_sampled_per_step_above_bundle_batch_deterministically():
    cube = make_demo(16, 16, 16, P, seed=1)
    kw = dict(epochs=3, tol=0, **TINY)
    full = EGUNet("pw", P, seed=0, **kw).fit(cube)
    n = full.bundles_.n_bundles
    assert n > 20
    same = EGUNet("pw", P, seed=0, bundle_batch=n, **kw).fit(cube)
    np.testing.assert_array_equal(full.transform(cube), same.transform(cube))  # one batch: all of them
    a = EGUNet("pw", P, seed=0, bundle_batch=20, **kw).fit(cube)
    b = EGUNet("pw", P, seed=0, bundle_batch=20, **kw).fit(cube)
    c = EGUNet("pw", P, seed=1, bundle_batch=20, bundles=a.bundles_, **kw).fit(cube)
    np.testing.assert_array_equal(a.transform(cube), b.transform(cube))
    assert not np.array_equal(a.transform(cube), full.transform(cube))
    assert not np.array_equal(a.transform(cube), c.transform(cube))


def test_a_sampled_batch_is_drawn_from_the_set(cube):
    from egu_widgets.engine.trainer import PixelObjective

    est = EGUNet("pw", P, seed=0, epochs=0, **TINY).fit(cube)
    model, spectra = est.model_, torch.from_numpy(est.bundles_.spectra)
    labels = torch.from_numpy(est.bundles_.labels)
    gen = torch.Generator().manual_seed(0)
    obj = PixelObjective(
        model,
        spectra,
        spectra,
        labels,
        batch_size=64,
        generator=gen,
        bundle_batch=5,
        bundle_generator=torch.Generator().manual_seed(1),
        bundle_weight=1.0,
        reconstruction_weight=1.0,
        weight_decay=0.0,
    )
    x, y, moments = obj._bundle_batch()
    assert x.shape == (5, spectra.shape[1]) and moments is None
    rows = {tuple(r) for r in spectra.numpy().tolist()}
    assert all(tuple(r) in rows for r in x.numpy().tolist())
    with pytest.raises(ValueError):
        PixelObjective(
            model,
            spectra,
            spectra,
            labels,
            batch_size=64,
            generator=gen,
            bundle_batch=5,
            bundle_weight=1.0,
            reconstruction_weight=1.0,
            weight_decay=0.0,
        )


# ----------------------------------------------------------------------------- reproducibility

_CHILD = """
import hashlib
import numpy as np
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet
cube = make_demo(16, 16, 16, 3, seed=1)
kw = dict(progress=False, batch_size=64, encoder_widths=(12, 8, 4), decoder_widths=(4, 8, 12), num_threads=1)
est = EGUNet("pw", 3, seed=4, epochs=200, lr_decay=0.95, bundle_batch=20, **kw).fit(cube)
ab = est.transform(cube)
print(est.outcome_.epochs_done, hashlib.sha256(np.ascontiguousarray(ab).tobytes()).hexdigest())
"""


def test_auto_stopped_sampled_runs_are_bit_identical_across_processes():
    # Side by side: on two cores the pair costs about one child's time.
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = set()
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        outputs.add(out.strip())
    assert len(outputs) == 1


def test_bf16_precision_trains_and_is_checked(cube):
    est = EGUNet("pw", P, seed=0, epochs=3, tol=0, precision="bf16", **TINY).fit(cube)
    assert est.hyperparameters_["precision"] == "bf16"
    assert np.isfinite(est.transform(cube)).all()
    with pytest.raises(InputError, match="precision"):
        EGUNet("pw", P, precision="fp8", **TINY).fit(cube)
