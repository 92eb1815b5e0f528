"""Tiled inference of the EGU-Net-ss unmixing stream: stored image statistics and seam-free tiles.

Small scenes (37x45x12, P=3, a few epochs) on one torch thread, so this file runs in seconds.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet
from egu_widgets.engine.estimator import _digest
from egu_widgets.engine.networks import batch_statistics, calibrate
from egu_widgets.errors import InputError

P = 3
BANDS = 12
FAST = dict(
    progress=False, epochs=3, batch_size=128, encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32), num_threads=1
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cube():
    return make_demo(37, 45, BANDS, P, seed=2)  # neither side a multiple of 8: the model pads


@pytest.fixture(scope="module")
def fitted(cube) -> EGUNet:
    return EGUNet("ss", P, seed=4, **FAST).fit(cube)


def image_of(cube) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(cube.image.transpose(2, 0, 1), dtype=np.float32))[None]


def whole_eval(model, image):
    model.eval()
    with torch.no_grad():
        return model.image_stream(image)


def count_tiles(model, monkeypatch) -> list:
    """Record the shape of every tile the model runs (the instance's _padded_stream is wrapped)."""
    shapes = []
    inner = model._padded_stream

    def counted(x, *args):
        shapes.append(tuple(x.shape[-2:]))
        return inner(x, *args)

    monkeypatch.setattr(model, "_padded_stream", counted)
    return shapes


# ----------------------------------------------------------------------------------- (a) tiles


@pytest.mark.parametrize("tile, halo, n_tiles", [(8, None, 5 * 6), (16, 16, 3 * 3), (24, 24, 2 * 2), (16, 32, 3 * 3)])
def test_tiled_equals_whole_image_pass(fitted, cube, monkeypatch, tile, halo, n_tiles):
    model = fitted.model_
    image = image_of(cube)
    ab_whole, rec_whole = whole_eval(model, image)
    shapes = count_tiles(model, monkeypatch)
    ab, rec = model.tiled_image_stream(image, tile=tile, halo=halo)
    # The 37x45 image is padded to 40x48, so these tile sizes really cut it into several tiles.
    assert len(shapes) == n_tiles
    assert all(h % 8 == 0 and w % 8 == 0 for h, w in shapes)
    assert ab.shape == (1, P, 37, 45) and rec.shape == (1, BANDS, 37, 45)
    torch.testing.assert_close(ab, ab_whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(rec, rec_whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("height, width", [(21, 11), (8, 64), (33, 17)])
def test_tiled_equals_whole_image_pass_on_other_sizes(fitted, height, width):
    model = fitted.model_
    image = image_of(make_demo(height, width, BANDS, P, seed=5))
    ab_whole, rec_whole = whole_eval(model, image)
    ab, rec = model.tiled_image_stream(image, tile=8)
    torch.testing.assert_close(ab, ab_whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(rec, rec_whole, atol=1e-5, rtol=0)


def test_abundances_alone_skip_the_decoder(fitted, cube):
    model = fitted.model_
    image = image_of(cube)
    ab_whole, _ = whole_eval(model, image)
    ab, rec = model.tiled_image_stream(image, tile=16, reconstruct=False)
    assert rec is None
    torch.testing.assert_close(ab, ab_whole, atol=1e-5, rtol=0)


def test_an_image_that_fits_one_tile_takes_one_pass(fitted, cube, monkeypatch):
    shapes = count_tiles(fitted.model_, monkeypatch)
    fitted.model_.eval()
    fitted.model_.tiled_image_stream(image_of(cube))  # default tile (256) > 40x48
    assert shapes == [(40, 48)]


def test_receptive_radius_is_where_inputs_stop_reaching_a_core(fitted):
    """The derived radius (12 for kernels 5, 3) is tight: column a-12 reaches the core at a, a-13 does not."""
    model = fitted.model_
    assert model.receptive_radius == 12
    image = image_of(make_demo(16, 48, BANDS, P, seed=6))
    a = 24  # a core's left edge, on the 8-pixel grid
    _, rec = whole_eval(model, image)

    def change_at_core(column: int) -> float:
        moved = image.clone()
        moved[..., column] += 0.5
        _, rec_moved = whole_eval(model, moved)
        return float((rec_moved - rec)[..., a:].abs().max())

    assert change_at_core(a - 13) < 1e-6
    assert change_at_core(a - 12) > 1e-4


# ----------------------------------------------------------------------------------- (b) statistics


def test_stored_statistics_reproduce_the_batch_statistics_pass(fitted, cube):
    model = fitted.model_
    image = image_of(cube)
    ab_stored, rec_stored = whole_eval(model, image)
    with torch.no_grad(), batch_statistics(model):
        ab_batch, rec_batch = model.image_stream(image)
    torch.testing.assert_close(ab_stored, ab_batch, atol=1e-5, rtol=0)
    torch.testing.assert_close(rec_stored, rec_batch, atol=1e-5, rtol=0)
    # and the estimator's answers, which go through the tiles
    np.testing.assert_allclose(
        fitted.transform(cube, stream="unmixing"),
        ab_batch[0].permute(1, 2, 0).reshape(-1, P).double().numpy(),
        atol=1e-5,
        rtol=0,
    )
    np.testing.assert_allclose(
        fitted.reconstruct(cube), rec_batch[0].permute(1, 2, 0).reshape(-1, BANDS).double().numpy(), atol=1e-5, rtol=0
    )


def test_tiles_refuse_batch_statistics(fitted, cube):
    model = fitted.model_
    with batch_statistics(model), pytest.raises(InputError, match="stored statistics"):
        model.tiled_image_stream(image_of(cube))
    model.train()
    try:
        with pytest.raises(InputError, match=r"model\.eval\(\)"):
            model.tiled_image_stream(image_of(cube))
    finally:
        model.eval()


# ----------------------------------------------------------------------------------- (c) endmember stream


def test_endmember_stream_keeps_the_pixel_statistics(fitted, cube):
    model = fitted.model_
    model.eval()
    pixels = torch.from_numpy(np.ascontiguousarray(cube.pixels, dtype=np.float32))
    with torch.no_grad():
        eval_unmix = model.unmix(pixels).double().numpy()
        with batch_statistics(model):
            batch_unmix = model.unmix(pixels).double().numpy()  # the authors' reading, all pixels
    ab = fitted.transform(cube)
    np.testing.assert_allclose(ab, eval_unmix, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ab, batch_unmix, atol=1e-5, rtol=0)
    # The shared bn3 still holds the pixels' statistics; the image's are kept apart.
    again = copy.deepcopy(model)
    calibrate(again.pixel_norms(), again.unmix, [pixels])
    torch.testing.assert_close(model.encoder.bn3.mean, again.encoder.bn3.mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.encoder.bn3.var, again.encoder.bn3.var, atol=1e-6, rtol=1e-6)
    assert (model.image_bn3.mean - model.encoder.bn3.mean).abs().max() > 1e-3


# ----------------------------------------------------------------------------------- (d) checkpoints


def test_checkpoint_round_trip_keeps_the_unmixing_stream(fitted, cube, tmp_path):
    fitted.save(tmp_path / "ss.pt")
    assert {"image_bn3.mean", "image_bn3.var"} <= set(torch.load(tmp_path / "ss.pt", weights_only=True)["state"])
    loaded = EGUNet.load(tmp_path / "ss.pt")
    np.testing.assert_array_equal(loaded.transform(cube, stream="unmixing"), fitted.transform(cube, stream="unmixing"))
    np.testing.assert_array_equal(loaded.reconstruct(cube), fitted.reconstruct(cube))
    np.testing.assert_array_equal(loaded.transform(cube), fitted.transform(cube))


def test_checkpoint_without_image_statistics_keeps_its_old_answers(fitted, cube, tmp_path):
    """Checkpoints written before image_bn3 existed load; their image stream runs as it did then."""
    fitted.save(tmp_path / "new.pt")
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    state = {k: v for k, v in payload["state"].items() if not k.startswith("image_bn3.")}
    torch.save(dict(payload, state=state, digest=_digest(state, payload["config"])), tmp_path / "old.pt")
    old = EGUNet.load(tmp_path / "old.pt")
    model = old.model_
    with torch.no_grad(), batch_statistics(model):
        ab_batch, rec_batch = model.image_stream(image_of(cube))
    np.testing.assert_array_equal(
        old.transform(cube, stream="unmixing"), ab_batch[0].permute(1, 2, 0).reshape(-1, P).double().numpy()
    )
    np.testing.assert_array_equal(
        old.reconstruct(cube), rec_batch[0].permute(1, 2, 0).reshape(-1, BANDS).double().numpy()
    )
    np.testing.assert_array_equal(old.transform(cube), fitted.transform(cube))


# ----------------------------------------------------------------------------------- (e) arguments


@pytest.mark.parametrize("tile", [0, -8, 12, 8.0, True, "16", None])
def test_bad_tile_sizes_are_input_errors(fitted, cube, tile):
    with pytest.raises(InputError, match=r"tile=.*positive multiple of 8"):
        fitted.model_.tiled_image_stream(image_of(cube), tile=tile)


@pytest.mark.parametrize(
    "halo, message",
    [
        (-8, r"whole number >= 0 and a multiple of 8.*use 16"),
        (12, r"multiple of 8.*use 16"),
        (16.0, r"whole number"),
        (8, r"smaller than the network's receptive radius \(12 pixels\).*halo >= 16"),
        (0, r"smaller than the network's receptive radius"),
    ],
)
def test_bad_halos_are_input_errors(fitted, cube, halo, message):
    with pytest.raises(InputError, match=message):
        fitted.model_.tiled_image_stream(image_of(cube), tile=16, halo=halo)
