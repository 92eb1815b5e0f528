"""The frozen pixel-wise encoder (PixelUnmixer) behind transform, transform_array and abundance_maps."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from egu_widgets.cube.synthetic import make_demo  # noqa: E402
from egu_widgets.engine import EGUNet  # noqa: E402
from egu_widgets.engine.inference import PixelUnmixer, native_bfloat16  # noqa: E402
from egu_widgets.errors import InputError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fitted(one_torch_thread):
    cube = make_demo(18, 21, 24, 3, seed=1)
    return cube, EGUNet("pw", 3, epochs=4, seed=0, progress=False, num_threads=1).fit(cube)


def _module_abundances(est, pixels):
    model = est.model_.eval()
    with torch.no_grad():
        return model.unmix(torch.from_numpy(np.asarray(pixels, dtype=np.float32))).double().numpy()


def test_folded_encoder_equals_the_modules(fitted):
    cube, est = fitted
    expected = _module_abundances(est, cube.pixels)
    # Folding batch norm into the weights reorders float32 arithmetic: agreement to ~1e-6.
    np.testing.assert_allclose(est.transform(cube), expected, atol=1e-5)
    np.testing.assert_allclose(est.transform_array(cube.pixels), expected, atol=1e-5)


def test_any_leading_shape_chunks_and_out(fitted):
    cube, est = fitted
    whole = est.transform_array(cube.pixels)
    image = est.transform_array(cube.image)  # (rows, cols, bands) -> (rows, cols, P)
    assert image.shape == (cube.height, cube.width, 3) and image.dtype == np.float32
    np.testing.assert_array_equal(image.reshape(-1, 3), whole)
    small_chunks = est.pixel_unmixer(chunk_size=7)  # many chunks, last one partial
    np.testing.assert_allclose(small_chunks(cube.pixels), whole, atol=1e-6)
    out = np.empty_like(whole)
    assert small_chunks(cube.pixels, out=out) is not None
    np.testing.assert_allclose(out, whole, atol=1e-6)
    assert np.all(whole >= 0) and np.allclose(whole.sum(axis=1), 1, atol=1e-5)
    single = est.transform_array(cube.pixels[5])  # one spectrum -> (P,)
    np.testing.assert_allclose(single, whole[5], atol=1e-6)


def test_read_only_input_is_copied_chunk_by_chunk(fitted, monkeypatch):
    """torch warns (once per process) when it wraps a read-only array: chunks of one are copied."""
    from egu_widgets.engine import inference

    cube, est = fitted
    wrapped = []
    real = inference.torch.from_numpy
    monkeypatch.setattr(inference.torch, "from_numpy", lambda a: wrapped.append(a.flags.writeable) or real(a))
    frozen = np.array(cube.pixels, dtype=np.float32)
    frozen.flags.writeable = False
    result = est.pixel_unmixer(chunk_size=100)(frozen)
    assert len(wrapped) == -(-len(frozen) // 100) + 1 and all(wrapped)  # each block, and the output once
    monkeypatch.undo()
    np.testing.assert_array_equal(result, est.transform_array(cube.pixels))


def test_blocks_buffers_and_layout_do_not_change_the_numbers(fitted):
    """Cache-sized blocks, reused buffers and the transposed softmax are rewrites of the same
    arithmetic: every block size gives the plain whole-array forward pass to float32 rounding."""
    cube, est = fitted
    unmixer = est.pixel_unmixer()
    (w1, w2, w3, w4), (b1, b2, b3, b4) = unmixer._weights, unmixer._biases
    x = torch.from_numpy(np.ascontiguousarray(cube.pixels, dtype=np.float32))
    h = torch.tanh(x @ w1 + b1)
    h = torch.tanh(h @ w2 + b2)
    h = torch.relu(h @ w3 + b3)
    plain = torch.softmax(h @ w4.T + b4, dim=1).numpy()
    for block in (1, 5, 64, len(x) - 1, len(x), 10_000):
        got = PixelUnmixer.__new__(PixelUnmixer)
        got.__setstate__(dict(unmixer.__getstate__(), block_size=block))
        np.testing.assert_allclose(got(cube.pixels), plain, atol=2e-6, err_msg=f"block_size={block}")
    assert pickle.loads(pickle.dumps(got)).block_size == 10_000  # a chosen block travels with pickling
    assert unmixer.block_size is None  # default: chosen per call from torch's thread count


def test_threads_share_one_unmixer(fitted):
    """Buffers are per call: concurrent calls on one object give each caller its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    cube, est = fitted
    unmixer = est.pixel_unmixer()
    parts = [cube.pixels[k::4] for k in range(4)]
    expected = [unmixer(p) for p in parts]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(unmixer, parts * 3))
    for k, g in enumerate(got):
        np.testing.assert_array_equal(g, expected[k % 4])


def test_pickles_for_dask_workers(fitted):
    cube, est = fitted
    unmixer = est.pixel_unmixer()
    clone = pickle.loads(pickle.dumps(unmixer))
    np.testing.assert_array_equal(clone(cube.pixels), unmixer(cube.pixels))
    assert "bands=24" in repr(clone) and f"block_size={unmixer.block_size}" in repr(clone)
    old_state = {k: v for k, v in unmixer.__getstate__().items() if k != "block_size"}  # pickled before blocks
    restored = PixelUnmixer.__new__(PixelUnmixer)
    restored.__setstate__(old_state)
    np.testing.assert_array_equal(restored(cube.pixels), unmixer(cube.pixels))


needs_bf16 = pytest.mark.skipif(
    not native_bfloat16(torch.device("cpu")),
    reason="this CPU has no bfloat16 hardware (AMX / AVX512-BF16): bfloat16 is refused here",
)


@needs_bf16
def test_bfloat16_is_close_and_valid(fitted):
    cube, est = fitted
    exact = est.transform_array(cube.pixels)
    fast = est.transform_array(cube.pixels, precision="bfloat16")
    np.testing.assert_array_equal(est.transform_array(cube.pixels, precision="bf16"), fast)  # training's spelling
    assert est.pixel_unmixer("bf16").precision == "bfloat16"
    assert fast.dtype == np.float32
    assert np.all(fast >= 0) and np.allclose(fast.sum(axis=1), 1, atol=1e-5)
    # bfloat16 keeps 8 bits of mantissa: close to, not equal to, float32
    assert 0 < np.sqrt(np.mean((fast - exact) ** 2)) < 0.05


def test_bad_input_is_explained(fitted):
    cube, est = fitted
    with pytest.raises(InputError, match="24 bands"):
        est.transform_array(np.ones((4, 23)))
    with pytest.raises(InputError, match="precision"):
        est.transform_array(cube.pixels, precision="float16")
    with pytest.raises(InputError, match="chunk_size"):
        est.pixel_unmixer(chunk_size=0)
    with pytest.raises(InputError, match="out must be"):
        est.pixel_unmixer()(cube.pixels, out=np.empty((2, 3), dtype=np.float32))
    with pytest.raises(InputError, match="not contiguous"):  # it would be filled through a copy
        est.pixel_unmixer()(cube.pixels, out=np.empty((3, len(cube.pixels)), dtype=np.float32).T)
    with pytest.raises(InputError, match="block_size"):
        PixelUnmixer.from_encoder(est.model_.encoder, block_size=0)
    with pytest.raises(InputError, match="not fitted"):
        EGUNet("pw", 3).transform_array(cube.pixels)
    with pytest.raises(InputError, match="four layers"):
        PixelUnmixer([np.ones((2, 2))], [np.ones(2)])


@needs_bf16
def test_bfloat16_blocks_and_inputs_do_not_change_the_numbers(fitted):
    """The bfloat16 path reuses its buffers from block to block: any block size, float64 or
    read-only input gives the numbers of one whole-array pass."""
    cube, est = fitted
    state = est.pixel_unmixer("bfloat16").__getstate__()
    whole = PixelUnmixer.__new__(PixelUnmixer)
    whole.__setstate__(dict(state, block_size=10_000))
    expected = whole(cube.pixels.astype(np.float32))
    frozen = cube.pixels.copy()
    frozen.flags.writeable = False
    for block in (1, 7, 64, len(cube.pixels) - 1):
        got = PixelUnmixer.__new__(PixelUnmixer)
        got.__setstate__(dict(state, block_size=block))
        for pixels in (cube.pixels, frozen):
            np.testing.assert_array_equal(got(pixels), expected, err_msg=f"block_size={block}")


def test_bfloat16_is_refused_where_it_would_be_emulated(fitted, monkeypatch):
    """Without bfloat16 hardware torch emulates the products, far slower than float32: refused."""
    from egu_widgets.engine import inference

    cube, est = fitted
    monkeypatch.setattr(inference, "native_bfloat16", lambda device: False)
    with pytest.raises(InputError, match="bfloat16 in hardware.*use precision='float32'"):
        est.transform_array(cube.pixels, precision="bfloat16")
    with pytest.raises(InputError, match="bfloat16 in hardware"):
        est.pixel_unmixer("bf16")
    assert est.transform_array(cube.pixels).dtype == np.float32  # float32 is unaffected


def test_bfloat16_hardware_is_read_from_torchs_cpu_probes(monkeypatch):
    """No AMX and no AVX512-BF16 reported: no native bfloat16, whatever oneDNN says."""
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert native_bfloat16(torch.device("cpu")) is False
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert native_bfloat16(torch.device("cpu")) is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_every_input_layout_gives_the_float32_contiguous_numbers(fitted):
    """float32 C-contiguous input is wrapped as it is; any other dtype, byte order, layout or a
    read-only array is converted block by block into one reused buffer: the same numbers."""
    cube, est = fitted
    unmixer = est.pixel_unmixer(chunk_size=50)  # many blocks, the last one partial
    pixels32 = np.ascontiguousarray(cube.pixels, dtype=np.float32)
    expected = unmixer(pixels32)
    frozen = pixels32.copy()
    frozen.flags.writeable = False
    strided = np.asfortranarray(pixels32)  # not C-contiguous (reshaped into a copy, as before)
    inputs = {
        "float64": pixels32.astype(np.float64),
        "read-only float32": frozen,
        "big-endian float32": pixels32.astype(">f4"),
        "Fortran order": strided,
    }
    for name, pixels in inputs.items():
        np.testing.assert_array_equal(unmixer(pixels), expected, err_msg=name)
    counts = np.round(pixels32 * 1000).astype(np.uint16)  # integer input converts like astype(float32)
    np.testing.assert_array_equal(unmixer(counts), unmixer(counts.astype(np.float32)))
    assert frozen.flags.writeable is False and np.array_equal(frozen, pixels32)  # input left untouched
