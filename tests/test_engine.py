"""Tests of the EGU-Net engine on small scenes (16×16×20, P=3), fast enough for every commit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.engine import EGUNet, SpectralBundles, extract_bundles, run_egu
from egu_widgets.engine.estimator import PRESETS
from egu_widgets.engine.networks import build_model
from egu_widgets.errors import CheckpointError, InputError

P = 3
# One torch thread: these tensors are too small to gain from two, and on a shared machine a second
# thread waiting for a busy core slows every operation down.
FAST = dict(
    progress=False, epochs=12, batch_size=128, encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32), num_threads=1
)


def scene(height: int = 16, width: int = 16, bands: int = 20, seed: int = 0, snr_db: float = 40.0) -> HyperCube:
    """Three smooth materials, Dirichlet abundances with pure pixels in each material's corner."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    em = demo_endmembers(bands, P, wl)
    yy, xx = np.mgrid[0:height, 0:width]
    # Three smooth "fields", each peaking in a different region, made into abundances.
    centres = [(0, 0), (0, width - 1), (height - 1, width // 2)]
    fields = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.18 * height * width)) for cy, cx in centres])
    ab = fields**3 + 0.02 * rng.random(fields.shape)
    ab /= ab.sum(axis=0, keepdims=True)
    clean = np.einsum("phw,pb->hwb", ab, em)
    sigma = np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10))
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, None)
    return HyperCube.from_array(noisy, wavelengths=wl, endmembers=em, abundances=ab, name="test-scene")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Direct torch calls in these tests also run on one thread (see FAST)."""


@pytest.fixture(scope="module")
def cube() -> HyperCube:
    return scene()


@pytest.fixture(scope="module")
def fitted(cube) -> EGUNet:
    return EGUNet("pw", P, seed=3, **FAST).fit(cube)


# ----------------------------------------------------------------------------------- bundles


def test_bundle_shapes_and_labels(cube):
    b = extract_bundles(cube, P, mode="faithful")
    n_patches = (16 // 5) ** 2
    assert isinstance(b, SpectralBundles)
    assert b.spectra.shape == (n_patches * P, 20) and b.spectra.dtype == np.float32
    assert b.labels.shape == (n_patches * P, P) and b.labels.dtype == np.float32
    assert b.reference.shape == (P, 20)
    assert (b.labels >= 0).all()
    np.testing.assert_allclose(b.labels.sum(axis=1), 1.0, atol=1e-5)
    assert sorted(set(b.patch_index.tolist())) == list(range(n_patches))
    assert b.config["n_bundles"] == n_patches * P


def test_overlapping_bundles_drop_duplicates(cube):
    b = extract_bundles(cube, P, mode="faithful", stride=1, dedup=True, project=False)
    assert b.n_bundles > (16 // 5) ** 2 * P
    assert len(np.unique(b.pixel_index)) == b.n_bundles  # every image pixel at most once
    assert b.config["n_candidates"] == 12 * 12 * P  # (16 - 5 + 1)² patches before removal
    np.testing.assert_array_equal(b.spectra, cube.pixels[b.pixel_index])


def test_stride_and_patch_size_set_the_patch_grid(cube):
    b = extract_bundles(cube, P, patch_size=4, stride=3, pixel_labels=0)  # the patches' bundles alone
    assert b.config["n_patches"] == 5 * 5  # corners 0, 3, 6, 9, 12 on each side of 16
    assert b.n_bundles == 25 * P and b.config["stride_used"] == 3
    # Without dedup, overlapping patches can pick the same pixel twice.
    raw = extract_bundles(cube, P, stride=1, project=False, pixel_labels=0)
    assert raw.n_bundles == 12 * 12 * P and (raw.pixel_index >= 0).all()


def test_project_takes_the_patch_subspace_projection(cube):
    projected = extract_bundles(cube, P, mode="faithful", seed=4)
    observed = extract_bundles(cube, P, mode="faithful", seed=4, project=False)
    assert (projected.pixel_index == -1).all()
    np.testing.assert_array_equal(observed.spectra, cube.pixels[observed.pixel_index].astype(np.float32))
    # The projection of a picked pixel onto its patch's top-P subspace is close to it, not equal.
    gap = np.abs(projected.spectra - observed.spectra).max()
    assert 0 < gap < 0.1 * np.abs(observed.spectra).max()


def test_bundle_seed_is_the_bundles_stream(cube):
    """Same seed, same bundles; another seed, other VCA directions (here: other reference picks)."""
    a, b = extract_bundles(cube, P, mode="faithful", seed=5), extract_bundles(cube, P, mode="faithful", seed=5)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    np.testing.assert_array_equal(a.labels, b.labels)
    others = [extract_bundles(cube, P, mode="faithful", seed=s) for s in (6, 7, 8)]
    assert any(not np.array_equal(o.spectra, a.spectra) or not np.array_equal(o.labels, a.labels) for o in others)


def test_bundle_reference_truth_gives_true_labels_at_pure_pixels(cube):
    b = extract_bundles(cube, P, reference="truth", stride=1, dedup=True, project=False)
    truth = cube.true_abundance_pixels[b.pixel_index]
    # Labels are non-negative least squares against the true spectra: close to the truth.
    assert np.sqrt(np.mean((b.labels - truth) ** 2)) < 0.05


def test_default_mode_nnls_labels_against_max_scaled_nfindr_spectra(cube):
    """Default mode with the NNLS labeller (what ``labeller="auto"`` picks where the sum-to-one
    test fails): N-FINDR reference kept in data units, labels against its max-scaled copy."""
    from egu_widgets.engine.bundles import _pseudo_abundances, reference_endmembers

    # The picks themselves (reference_purest=0); the default's purest-pixel means: test_purest_reference.py.
    b = extract_bundles(cube, P, seed=2, labeller="nnls", label_scale="max", reference_purest=0.0)
    assert b.config["reference"] == "nfindr" and b.config["label_scale"] == "max"
    ref, _ = reference_endmembers(cube, P, "nfindr", seed=2)
    np.testing.assert_allclose(b.reference, ref)
    expected, _ = _pseudo_abundances(b.spectra.astype(np.float64), ref / ref.max(axis=1, keepdims=True))
    np.testing.assert_allclose(b.labels, expected, atol=1e-6)
    # The unscaled convention labels the same spectra differently (a pixel's brightness moves into
    # the abundances in proportion to each spectrum's scale).
    unscaled = extract_bundles(cube, P, seed=2, labeller="nnls", label_scale="none", reference_purest=0.0)
    np.testing.assert_allclose(unscaled.reference, ref)
    assert np.abs(unscaled.labels - b.labels).max() > 1e-3
    # On the test scene, whose materials have pure pixels, N-FINDR finds the true spectra.
    from egu_widgets import metrics

    order = metrics.align(b.reference, cube.true_endmembers)
    assert np.diag(metrics.sad_matrix(b.reference[order], cube.true_endmembers)).max() < 5.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(patch_size=1), "fewer than the 3 endmembers"),
        (dict(patch_size=20), "smaller than one 20x20 patch"),
        (dict(stride=0), "stride"),
        (dict(stride=2, dedup=True), "dedup=True"),
        (dict(label_scale="min"), "label_scale"),
        (dict(patch_size=2.5), "patch_size"),
        (dict(reference=np.ones((2, 20))), "reference endmembers must be"),
        (dict(mode="nonsense"), "bundle mode"),
        (dict(mode="overlap"), "bundle mode"),
    ],
)
def test_bundle_validation(cube, kwargs, message):
    with pytest.raises(InputError, match=message):
        extract_bundles(cube, P, **kwargs)


def test_bundles_skip_masked_patches():
    img = scene().image.copy()
    img[2, 2] = np.nan
    masked = HyperCube.from_array(img, invalid="mask")
    b = extract_bundles(masked, P, mode="faithful")
    assert b.config["n_patches"] == (16 // 5) ** 2 - 1
    assert 0 not in set(b.patch_index.tolist())


# ----------------------------------------------------------------------------------- networks


@pytest.mark.parametrize("variant", ["pw", "ss"])
def test_bundle_loss_alone_moves_the_unmixing_stream(cube, variant):
    hp = dict(PRESETS["paper"], encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32), dropout=0.0)
    model = build_model(variant, 20, P, hp, generator=torch.Generator().manual_seed(0))
    model.train()
    pixels = torch.from_numpy(cube.pixels)
    image = torch.from_numpy(cube.image.transpose(2, 0, 1).copy())[None]
    b = extract_bundles(cube, P)

    def unmixing_stream():
        with torch.no_grad():
            return model(pixels)[0] if variant == "pw" else model.image_stream(image)[0]

    before = unmixing_stream()
    loss = torch.nn.functional.cross_entropy(
        model.bundle_logits(torch.from_numpy(b.spectra)), torch.from_numpy(b.labels)
    )
    loss.backward()
    decoder = model.decoder.parameters() if variant == "pw" else model.dec.parameters()
    assert all(p.grad is None for p in decoder)  # the bundle loss does not reach the decoder
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad
    after = unmixing_stream()
    assert (after - before).abs().max() > 1e-4


def test_chunked_calibration_equals_whole_image_batch_norm(cube):
    """Stored statistics reproduce the authors' reading (batch norm over all pixels at once)."""
    from egu_widgets.engine.networks import batch_statistics, calibrate

    hp = dict(PRESETS["paper"], encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32))
    model = build_model("pw", 20, P, hp, generator=torch.Generator().manual_seed(1))
    pixels = torch.from_numpy(cube.pixels)
    model.eval()
    with torch.no_grad(), batch_statistics(model):
        whole = model.unmix(pixels)
    calibrate(model.pixel_norms(), model.unmix, list(pixels.tensor_split(7)))  # layer by layer
    with torch.no_grad():
        chunked = torch.cat([model.unmix(c) for c in pixels.tensor_split(3)])
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


def test_folded_first_layer_equals_batch_norm_of_the_fixed_batch(cube):
    """The endmember stream's folded first layer is the same function, values and gradients."""
    from egu_widgets.engine.networks import Encoder, InputMoments

    torch.manual_seed(3)
    enc = Encoder(20, P, widths=(32, 16, 8), dropout=0.0)
    with torch.no_grad():  # non-trivial batch-norm parameters
        enc.bn1.weight.uniform_(0.5, 2.0)
        enc.bn1.bias.uniform_(-1.0, 1.0)
    enc.train()
    x = torch.from_numpy(cube.pixels[:300]) * 3.0 + 0.5  # an offset mean, as reflectances have
    grads = []
    for moments in (None, InputMoments(x)):
        enc.zero_grad()
        out = enc(x, moments)
        (out * torch.linspace(-1, 1, P)).sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in enc.parameters()]))
    (plain, plain_grads), (folded, folded_grads) = grads
    torch.testing.assert_close(folded, plain, atol=1e-4, rtol=1e-4)
    for g_folded, g_plain in zip(folded_grads, plain_grads):
        torch.testing.assert_close(g_folded, g_plain, atol=1e-4, rtol=1e-3)
    # Outside training the moments are ignored: eval() uses the stored statistics.
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(x, InputMoments(x)), enc(x))


def test_ss_shares_the_third_layer_only():
    hp = dict(PRESETS["paper"], encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32))
    model = build_model("ss", 20, P, hp)
    ids = {id(p) for p in model.encoder.parameters()}
    image_stream = [model.conv1, model.cbn1, model.conv2, model.cbn2, model.up, *model.dec, *model.dec_norms]
    assert not ids & {id(p) for m in image_stream for p in m.parameters()}
    # The convolutional stream uses the encoder's fc3 weights and bn3 in its forward pass.
    assert model.encoder.fc3.weight.shape == (8, 16)


# ----------------------------------------------------------------------------------- training


def test_abundances_on_the_simplex_and_loss_decreases(fitted, cube):
    ab = fitted.transform(cube)
    assert ab.shape == (cube.n_pixels, P)
    assert (ab >= 0).all()
    np.testing.assert_allclose(ab.sum(axis=1), 1.0, atol=1e-5)
    total = fitted.result_.history["loss_total"]
    assert len(total) == FAST["epochs"]
    assert np.mean(total[-3:]) < total[0]
    rec = fitted.result_.history["loss_reconstruction"]
    assert rec[-1] < rec[0]


def test_pw_streams_coincide(fitted, cube):
    # One encoder serves both streams in pw, so their abundances are the same numbers.
    np.testing.assert_array_equal(fitted.transform(cube, stream="unmixing"), fitted.transform(cube))
    with pytest.raises(InputError, match="stream"):
        fitted.transform(cube, stream="both")


def test_end_to_end_beats_a_random_guess(fitted, cube):
    truth = cube.true_abundance_pixels
    rng = np.random.default_rng(0)
    guess = rng.dirichlet(np.ones(P), size=truth.shape[0])
    random_rmse = np.sqrt(np.mean((guess - truth) ** 2))
    constant_rmse = np.sqrt(np.mean((1.0 / P - truth) ** 2))
    assert fitted.result_.rmse is not None
    assert fitted.result_.rmse < 0.6 * min(random_rmse, constant_rmse)
    assert fitted.result_.endmembers.shape == (P, 20)


def test_same_seed_same_abundances(cube):
    a = EGUNet("pw", P, seed=11, **FAST).fit(cube).transform(cube)
    b = EGUNet("pw", P, seed=11, **FAST).fit(cube).transform(cube)
    c = EGUNet("pw", P, seed=12, **FAST).fit(cube).transform(cube)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_events_arrive_in_order(cube):
    events = []
    EGUNet("pw", P, seed=0, **FAST).fit(cube, callbacks=[events.append])
    kinds = [e.kind for e in events]
    assert kinds == ["start"] + ["epoch"] * FAST["epochs"] + ["end"]
    assert [e.epoch for e in events[1:-1]] == list(range(1, FAST["epochs"] + 1))
    first = events[1]
    assert set(first.losses) == {"total", "reconstruction", "bundle", "weight_decay"}
    assert events[-2].metrics.get("rmse") is not None  # truth known: RMSE at least at the end
    lrs = [e.learning_rate for e in events[1:-1]]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert events[0].info["n_bundles"] > 0 and events[0].info["method"] == "egu-pw"


def test_console_progress_reports_the_run(cube):
    import io

    from egu_widgets.engine.progress import ConsoleProgress

    out = io.StringIO()
    EGUNet("pw", P, seed=0, **FAST).fit(cube, callbacks=[ConsoleProgress(file=out, mininterval=0)])
    text = out.getvalue()
    assert "egu-pw" in text and f"{FAST['epochs']}/{FAST['epochs']}" in text and "rmse=" in text

    out = io.StringIO()
    stopper = [ConsoleProgress(file=out, mininterval=0), lambda e: e.kind == "epoch" and e.control.request_stop("user")]
    EGUNet("pw", P, seed=0, **FAST).fit(cube, callbacks=stopper)
    assert "stopped" in out.getvalue() and "stop: user" in out.getvalue()


def test_stop_request_returns_a_partial_result(cube):
    kinds = []

    def stop_at_three(event):
        kinds.append(event.kind)
        if event.kind == "epoch" and event.epoch == 3:
            event.control.request_stop("enough")

    est = EGUNet("pw", P, seed=0, **FAST).fit(cube, callbacks=[stop_at_three])
    assert kinds[-1] == "stop" and kinds.count("epoch") == 3
    assert est.result_.partial and est.result_.ds.attrs["stop_reason"] == "enough"
    assert est.outcome_.epochs_done == 3
    assert len(est.result_.history["loss_total"]) == 3
    np.testing.assert_allclose(est.transform(cube).sum(axis=1), 1.0, atol=1e-5)


def test_keyboard_interrupt_in_a_callback_returns_a_partial_result(cube):
    kinds = []

    def interrupt(event):
        kinds.append(event.kind)
        if event.kind == "epoch" and event.epoch == 2:
            raise KeyboardInterrupt

    est = EGUNet("pw", P, seed=0, **FAST).fit(cube, callbacks=[interrupt])
    assert kinds[-1] == "stop"
    assert est.result_.partial and "KeyboardInterrupt" in est.result_.ds.attrs["stop_reason"]
    assert est.outcome_.epochs_done == 2


def test_divergence_stops_with_the_last_finite_state(cube):
    kinds = []
    # A huge learning rate sends the weights to ~1e20 in one step; their squares overflow
    # float32, so the second step's loss is infinite.
    est = EGUNet("pw", P, seed=0, **{**FAST, "lr": 1e20}).fit(cube, callbacks=[lambda e: kinds.append(e.kind)])
    assert kinds[-1] == "fail"
    assert est.result_.partial
    assert "NaN or infinite" in est.result_.ds.attrs["stop_reason"]
    ab = est.transform(cube)
    assert np.isfinite(ab).all()
    assert all(torch.isfinite(p).all() for p in est.model_.parameters())


def test_ss_on_odd_sizes():
    odd = scene(17, 23)
    est = EGUNet("ss", P, seed=0, **{**FAST, "epochs": 4}).fit(odd)
    for stream in ("endmember", "unmixing"):
        ab = est.transform(odd, stream=stream)
        assert ab.shape == (17 * 23, P)
        np.testing.assert_allclose(ab.sum(axis=1), 1.0, atol=1e-5)
    assert est.reconstruct(odd).shape == (17 * 23, 20)
    assert est.endmembers_.shape == (P, 20) and est.decoder_endmembers_.shape == (P, 20)
    assert np.isfinite(est.result_.rmse)


def test_ae_ablation_and_run_egu(cube):
    res = run_egu(cube, method="ae", n_endmembers=P, seed=0, epochs=5, batch_size=128, num_threads=1)
    assert res.method == "ae" and res.config["variant"] == "ae" and "bundles" not in res.config
    assert res.ds.attrs["partial"] == 0
    res = run_egu(cube, method="egu-pw", n_endmembers=P, epochs=3, patch_size=4, bundle_mode="faithful", num_threads=1)
    assert res.config["bundles"]["patch_size"] == 4
    with pytest.raises(InputError, match="unknown option"):
        run_egu(cube, method="egu-pw", n_endmembers=P, epochs=1, learning_rate=0.1)
    with pytest.raises(InputError, match="not an EGU-Net method"):
        run_egu(cube, method="vca", n_endmembers=P)


def test_given_bundles_are_used(cube):
    bundles = extract_bundles(cube, P, reference="truth", stride=2, dedup=True, project=False)
    est = EGUNet("pw", P, seed=0, **{**FAST, "epochs": 2}).fit(cube, bundles=bundles)
    assert est.bundles_ is bundles
    np.testing.assert_array_equal(est.endmembers_, cube.true_endmembers)
    with pytest.raises(InputError, match="labelled with 3 endmembers but P=4"):
        EGUNet("pw", 4, **FAST).fit(cube, bundles=bundles)
    with pytest.raises(InputError, match="unknown bundle option"):
        EGUNet("pw", P, bundles={"patch": 3}, **FAST).fit(cube)


def test_masked_pixels_are_left_out(cube):
    img = cube.image.copy()
    img[0, :3] = np.nan
    masked = HyperCube.from_array(img, invalid="mask", abundances=cube.true_abundances, endmembers=cube.true_endmembers)
    est = EGUNet("pw", P, seed=0, **{**FAST, "epochs": 3}).fit(masked)
    ab = est.result_.abundances.values
    assert np.isnan(ab[:, 0, :3]).all() and np.isfinite(ab[:, 1:, :]).all()


def test_cuda_request_without_cuda_is_an_input_error_at_fit(cube):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    est = EGUNet("pw", P, device="cuda", **FAST)  # building it is fine anywhere
    with pytest.raises(InputError, match="no CUDA GPU"):
        est.fit(cube)


def test_device_names_are_checked_at_fit(cube):
    est = EGUNet("pw", P, seed=0, device=torch.device("cpu"), **{**FAST, "epochs": 1}).fit(cube)
    assert est.device_.type == "cpu" and isinstance(est.device, torch.device)
    with pytest.raises(InputError, match="not a device name"):
        EGUNet("pw", P, device="gpu please").fit(cube)
    with pytest.raises(InputError, match="not supported"):
        EGUNet("pw", P, device="meta").fit(cube)


def test_bad_hyperparameters_are_input_errors_at_fit(cube):
    with pytest.raises(TypeError, match="learning_rate"):
        EGUNet("pw", P, learning_rate=0.1)
    for kwargs, message in (
        (dict(epochs=-1), "epochs"),
        (dict(lr=0.0), "lr"),
        (dict(lr_decay=1.5), "lr_decay"),
        (dict(dropout=1.0), "dropout"),
        (dict(kernels=(4, 3)), "odd"),
        (dict(encoder_widths=(8, 4)), "encoder_widths"),
        (dict(batch_size=2.0), "batch_size"),
        (dict(conv_width=0), "conv_width"),
        (dict(bundle_mode="overlap"), "bundle_mode"),
        (dict(preset="fast"), "preset"),
        (dict(seed=-1), "seed"),
        (dict(n_endmembers=1), "endmembers"),
        (dict(variant="xx"), "variant"),
    ):
        est = EGUNet(**{"variant": "pw", **kwargs})  # stored as given
        assert all(getattr(est, k) == v for k, v in kwargs.items())
        with pytest.raises(InputError, match=message):
            est.fit(cube)
    with pytest.raises(InputError, match="not fitted"):
        EGUNet("pw", P).transform(scene())


# ----------------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(fitted, cube, tmp_path):
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = EGUNet.load(path)
    np.testing.assert_array_equal(loaded.transform(cube), fitted.transform(cube))
    np.testing.assert_array_equal(loaded.endmembers_, fitted.endmembers_)
    np.testing.assert_array_equal(loaded.endmembers_, fitted.bundles_.reference)
    np.testing.assert_array_equal(loaded.decoder_endmembers_, fitted.decoder_endmembers_)
    assert loaded.get_config()["hyperparameters"] == fitted.get_config()["hyperparameters"]


def test_ss_checkpoint_round_trip(tmp_path):
    odd = scene(9, 11)
    est = EGUNet("ss", P, seed=1, **{**FAST, "epochs": 2}).fit(odd)
    est.save(tmp_path / "ss.pt")
    loaded = EGUNet.load(tmp_path / "ss.pt")
    for stream in ("endmember", "unmixing"):
        np.testing.assert_array_equal(loaded.transform(odd, stream=stream), est.transform(odd, stream=stream))


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the hand-made pickle below
def test_tampered_or_garbage_checkpoints_are_refused(fitted, tmp_path):
    good = tmp_path / "good.pt"
    fitted.save(good)
    payload = torch.load(good, weights_only=True)

    edited = dict(payload, state=dict(payload["state"]))
    key = next(iter(edited["state"]))
    edited["state"][key] = edited["state"][key] + 1.0  # weights changed, digest kept
    torch.save(edited, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="modified or corrupted"):
        EGUNet.load(tmp_path / "edited.pt")

    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        EGUNet.load(tmp_path / "garbage.pt")

    raw = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError):
        EGUNet.load(tmp_path / "truncated.pt")

    with open(tmp_path / "code.pt", "wb") as fh:
        pickle.dump({"format": "egu_widgets.EGUNet", "x": _Exploit()}, fh)
    with pytest.raises(CheckpointError):
        EGUNet.load(tmp_path / "code.pt")
    torch.save({"format": "egu_widgets.EGUNet", "x": _Exploit()}, tmp_path / "code2.pt")
    with pytest.raises(CheckpointError, match="not a readable"):
        EGUNet.load(tmp_path / "code2.pt")

    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format marker"):
        EGUNet.load(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        EGUNet.load(tmp_path / "missing.pt")


def test_adam_matches_torch_adam_bit_for_bit():
    """The trainer's Adam is torch.optim.Adam's arithmetic, without the cost of constructing one."""
    from egu_widgets.engine.trainer import Adam

    torch.manual_seed(0)
    ours = [
        torch.randn(5, 3, requires_grad=True),
        torch.randn(4, requires_grad=True),
        torch.randn(2, requires_grad=True),
    ]
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    opt_ours, opt_theirs = Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1, foreach=True)
    for step in range(30):
        lr = 0.1 * 0.99**step
        opt_ours.lr = lr
        for group in opt_theirs.param_groups:
            group["lr"] = lr
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            # The third tensor gets no gradient: both optimisers must leave it alone.
            loss = (params[0] ** 2).sum().sin() + (params[1] ** 3).sum()
            loss.backward()
            opt.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
