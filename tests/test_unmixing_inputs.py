"""unmix's own checks of its inputs, and the pixel batches of EGU-Net's training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egu_widgets import unmix
from egu_widgets.cube import make_demo
from egu_widgets.engine.networks import build_model
from egu_widgets.engine.trainer import PixelObjective
from egu_widgets.errors import InputError


def _objective(n: int, batch_size: int) -> PixelObjective:
    hp = dict(encoder_widths=(8, 4, 4), decoder_widths=(4, 4, 8), dropout=0.0, bn_eps=1e-3)
    model = build_model("pw", 6, 2, hp)
    return PixelObjective(
        model,
        torch.rand(n, 6),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(0),
        bundle_weight=0.0,
        reconstruction_weight=1.0,
        weight_decay=0.0,
    )


@pytest.mark.parametrize("n", range(2, 41))
@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
def test_pixel_batches_never_hold_a_single_pixel(n, batch_size):
    objective = _objective(n, batch_size)
    steps = objective.begin_epoch()
    sizes = [len(b) for b in objective._batches] if steps > 1 else [n]
    assert len(sizes) == steps and sum(sizes) == n
    assert min(sizes) >= 2, sizes
    if steps > 1:  # every pixel once per epoch
        assert sorted(torch.cat(objective._batches).tolist()) == list(range(n))


def test_seven_pixels_in_batches_of_two_train():
    objective = _objective(7, 2)
    assert objective.begin_epoch() == 3  # 2, 2, 2 and 1 before: the one is shared out
    for step in range(3):
        assert torch.isfinite(objective.losses(step)).all()


def test_batches_that_divide_evenly_keep_their_count():
    assert _objective(8000 * 3, 8000).steps_per_epoch == 3
    assert _objective(10, 2).steps_per_epoch == 5


def test_the_usability_check_gets_every_p_the_method_can_take(monkeypatch):
    from egu_widgets import unmixing

    seen = []
    check = unmixing.check_usable
    monkeypatch.setattr(unmixing, "check_usable", lambda cube, p: (seen.append(p), check(cube, p)))
    cube = make_demo(12, 12, 20, 3)
    assert unmix(cube, "vca-fcls", np.int64(3)).n_endmembers == 3
    assert unmix(cube, "vca-fcls").n_endmembers == 3  # the truth's count
    with pytest.raises(InputError):
        unmix(cube, "vca-fcls", 25)
    assert seen == [3, 3, None]  # a P beyond the bands: the method's own message


@pytest.mark.parametrize(
    "p, fragment",
    [(25, "with 20 bands"), (1, ">= 2"), (2.5, "the number of endmembers")],
    ids=["more than the bands", "one", "not whole"],
)
def test_a_p_out_of_bounds_keeps_the_direct_message(p, fragment):
    with pytest.raises(InputError) as err:
        unmix(make_demo(12, 12, 20, 3), "vca-fcls", p)
    assert fragment in str(err.value)
