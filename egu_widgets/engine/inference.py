"""Fast pixel-wise inference: a trained encoder frozen into plain matrices.

After training, the endmember stream (the encoder every variant shares) is a fixed function
pixels → abundances: three linear maps each followed by batch normalisation with stored
statistics and an activation, then a linear map and a softmax. In inference the batch norm is an
affine map, so it folds into the linear map before it (W' = diag(γ/σ) W, b' = β − γμ/σ); dropout
is the identity. What is left is four ``addmm`` calls and in-place activations per block of
pixels, with no autograd bookkeeping and no module dispatch.

:class:`PixelUnmixer` holds those matrices. It takes NumPy arrays of any leading shape and returns
float32 abundances, processes large inputs in blocks (memory bounded by the block), can be
pickled to dask workers, and is safe to call from several threads at once. The time goes to the
matrix products when the activations of a block stay in cache between layers, every layer
writes into a buffer reused for the next block, the softmax over the few outputs runs on their
transpose (rows of a block's length rather than of P), the input is wrapped rather than copied
when it is already C-contiguous float32 (else converted block by block into one reused buffer)
and the abundances are written straight into the output array.

``precision="bfloat16"`` (or ``"bf16"``, the training option's spelling) keeps the weights in
bfloat16 and does the matrix products in it, with bias, activations and softmax in float32: close
to but not equal to float32. Where the processor multiplies bfloat16 in hardware (AMX or
AVX512-BF16) the products take a fraction of float32's time and the float32 passes around them
are what remains; elsewhere torch emulates the products, several to dozens of times slower than
float32, so there bfloat16 is refused with an error that says so (its error and speed:
docs/engine.md, "Inference speed and precision").
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..validation import check_choice, check_int

__all__ = ["PixelUnmixer", "PRECISIONS"]

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: Other accepted spellings: "bf16" is how ``EGUNet(precision=...)`` names bfloat16 training.
ALIASES = {"bf16": "bfloat16"}
#: Pixels per pass of the layers when torch runs one thread: small enough that a pass's
#: activations stay in the core's cache from one layer to the next. With more threads every
#: operation ends in the threads waiting for each other, which small passes multiply, so the
#: default is then one pass per chunk (docs/engine.md, "Inference speed and precision").
BLOCK_SIZE = 2048


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware rather than by emulation.

    On a CPU that needs AMX or AVX512-BF16 as torch's CPU-feature probes report them, and oneDNN
    willing to use them; other devices are left to torch.
    """
    if device.type != "cpu":
        return device.type != "cuda" or torch.cuda.is_bf16_supported()
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if not any(probe is not None and probe() for probe in probes):
        return False
    try:  # a torch built without oneDNN has no such operator
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _fold(linear, norm) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') with W' x + b' = norm(linear(x)) for the norm's stored (eval-mode) statistics,
    computed in float64 so that folding rounds only once."""
    weight = linear.weight.detach().double()
    bias = (
        linear.bias.detach().double() if linear.bias is not None else torch.zeros_like(norm.mean, dtype=torch.float64)
    )
    scale = norm.weight.detach().double() / torch.sqrt(norm.var.double() + norm.eps)
    shift = norm.bias.detach().double() + (bias - norm.mean.double()) * scale
    return (weight * scale[:, None]).cpu().numpy(), shift.cpu().numpy()


class PixelUnmixer:
    """A trained EGU-Net encoder as a function (..., bands) → (..., P) float32 abundances.

    Build it with :meth:`EGUNet.pixel_unmixer <egu_widgets.engine.EGUNet.pixel_unmixer>` (or
    ``PixelUnmixer.from_encoder(model.encoder)`` for an encoder whose norms hold stored statistics).

    Parameters
    ----------
    weights, biases : lists of four arrays
        The folded layers as (out, in) matrices and (out,) vectors.
    precision : {"float32", "bfloat16", "bf16"}
        Of the matrix products (see the module notes); "bf16" is "bfloat16".
    chunk_size : int
        The most pixels per pass.
    block_size : int, optional
        Pixels per pass of the layers, at most ``chunk_size``; None: :data:`BLOCK_SIZE` when torch
        runs one thread, else ``chunk_size``. Any value gives the same numbers to float32 rounding.
    device : str
        Where the matrices live and the products run.
    """

    def __init__(
        self,
        weights: list[np.ndarray],
        biases: list[np.ndarray],
        *,
        precision: str = "float32",
        chunk_size: int = 65536,
        block_size: int | None = None,
        device: str = "cpu",
    ):
        precision = ALIASES.get(check_choice("precision", precision, (*PRECISIONS, *ALIASES)), precision)
        self.chunk_size = check_int("chunk_size", chunk_size, 1)
        self.block_size = None if block_size is None else check_int("block_size", block_size, 1)
        if len(weights) != 4 or len(biases) != 4:
            raise InputError("a PixelUnmixer needs the encoder's four layers")
        self.precision = precision
        self.device = torch.device(device)
        if precision == "bfloat16" and not native_bfloat16(self.device):
            raise InputError(
                f"precision='bfloat16' needs a processor that multiplies bfloat16 in hardware (AMX or "
                f"AVX512-BF16 on a CPU); on this {self.device.type} torch would emulate it, many times "
                f"slower than float32: use precision='float32'"
            )
        dtype = PRECISIONS[precision]
        as_tensor = [torch.as_tensor(np.asarray(w, dtype=np.float32)) for w in weights]
        # The hidden layers stored transposed, (in, out), so each is one addmm(bias, x, W) into
        # its buffer; the last layer as given, (P, in), since it is computed transposed.
        self._weights = [w.t().contiguous().to(self.device, dtype) for w in as_tensor[:3]]
        self._weights.append(as_tensor[3].contiguous().to(self.device, dtype))
        self._biases = [torch.as_tensor(np.asarray(b, dtype=np.float32)).to(self.device) for b in biases]
        self.n_bands = int(self._weights[0].shape[0])
        self.n_endmembers = int(self._weights[3].shape[0])

    @classmethod
    def from_encoder(cls, encoder, **kwargs) -> PixelUnmixer:
        """Fold an :class:`~egu_widgets.engine.networks.Encoder`'s eval-mode batch norms into its layers."""
        folded = [_fold(encoder.fc1, encoder.bn1), _fold(encoder.fc2, encoder.bn2), _fold(encoder.fc3, encoder.bn3)]
        weights = [w for w, _ in folded] + [encoder.fc4.weight.detach().double().cpu().numpy()]
        biases = [b for _, b in folded] + [encoder.fc4.bias.detach().double().cpu().numpy()]
        kwargs.setdefault("device", str(encoder.fc1.weight.device))
        return cls(weights, biases, **kwargs)

    # -------------------------------------------------------------- pickling (dask workers)
    def __getstate__(self) -> dict:
        return dict(
            weights=[w.float().t().cpu().numpy() for w in self._weights[:3]] + [self._weights[3].float().cpu().numpy()],
            biases=[b.cpu().numpy() for b in self._biases],
            precision=self.precision,
            chunk_size=self.chunk_size,
            block_size=self.block_size,
            device=str(self.device),
        )

    def __setstate__(self, state: dict) -> None:
        self.__init__(
            state["weights"],
            state["biases"],
            precision=state["precision"],
            chunk_size=state["chunk_size"],
            block_size=state.get("block_size"),
            device=state["device"],
        )

    # -------------------------------------------------------------- inference
    def _buffers(self, rows: int) -> dict[str, torch.Tensor]:
        """Per-call working memory for up to ``rows`` pixels, as flat tensors viewed per block.
        Allocated per call, so that threads calling the same object never share it.

        float32: the three activations, the transposed logits and two rows of column statistics.
        bfloat16 adds the input and the logits in bfloat16 (the products' operands and results)
        and one float32 scratch as large as the first activation, in which each layer's bias and
        activation are applied before it is rounded back to bfloat16.
        """
        low = PRECISIONS[self.precision]
        widths = [int(w.shape[1]) for w in self._weights[:3]]
        p = self.n_endmembers
        make = dict(device=self.device)
        buffers = {f"h{k + 1}": torch.empty(rows * w, dtype=low, **make) for k, w in enumerate(widths)}
        buffers.update(
            logits=torch.empty(rows * p, **make), top=torch.empty(rows, **make), total=torch.empty(rows, **make)
        )
        if low != torch.float32:
            buffers.update(
                x=torch.empty(rows * self.n_bands, dtype=low, **make),
                z=torch.empty(rows * p, dtype=low, **make),
                scratch=torch.empty(rows * max(widths), **make),
            )
        return buffers

    def _block(self, x: torch.Tensor, buffers: dict[str, torch.Tensor]) -> torch.Tensor:
        """Abundances of one block of float32 pixels, returned transposed as a (P, rows) view of ``buffers``.

        Each layer writes into its preallocated activation. In float32 the bias is added by
        ``addmm`` and the activation applied in place. The last layer is computed transposed,
        (P, rows), so the softmax over the P outputs runs along contiguous rows of ``rows`` values
        instead of over rows of only P; it is the usual max-shifted softmax, written out.
        """
        (w1, w2, w3, w4t), (b1, b2, b3, b4) = self._weights, self._biases
        n, p = x.shape[0], self.n_endmembers
        if n == 1 and self.precision != "float32":
            # A one-row bfloat16 product takes another oneDNN kernel, which rounds differently;
            # computed as two rows, a pixel gets the same numbers in whatever block it falls.
            return self._block(x.expand(2, -1), buffers)[:, :1]

        def view(name, rows, cols):
            return buffers[name][: rows * cols].view(rows, cols)

        h1, h2, h3 = (view(f"h{k + 1}", n, w.shape[1]) for k, w in enumerate((w1, w2, w3)))
        logits, top, total = view("logits", p, n), buffers["top"][:n], buffers["total"][:n]
        if self.precision == "float32":
            h = torch.addmm(b1, x, w1, out=h1).tanh_()
            h = torch.addmm(b2, h, w2, out=h2).tanh_()
            h = torch.addmm(b3, h, w3, out=h3).relu_()
            z = torch.addmm(b4[:, None], w4t, h.t(), out=logits)
        else:
            # Products of bfloat16 operands into bfloat16 results; bias and activation in float32
            # (torch's bfloat16 elementwise kernels are far slower than its float32 ones), rounded
            # back to bfloat16 as the next product's operand.
            h = view("x", n, self.n_bands).copy_(x)
            for w, b, out, act in ((w1, b1, h1, torch.tanh_), (w2, b2, h2, torch.tanh_), (w3, b3, h3, torch.relu_)):
                torch.mm(h, w, out=out)
                h = out.copy_(act(view("scratch", n, w.shape[1]).copy_(out).add_(b)))
            z = logits.copy_(torch.mm(w4t, h.t(), out=view("z", p, n))).add_(b4[:, None])
        z.sub_(torch.amax(z, dim=0, out=top)).exp_()
        return z.div_(torch.sum(z, dim=0, out=total))

    def __call__(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Abundances of ``pixels`` (..., bands) as float32 (..., P); ``out`` may receive them."""
        x = np.asarray(pixels)
        if x.ndim < 1 or x.shape[-1] != self.n_bands:
            raise InputError(
                f"this model takes spectra of {self.n_bands} bands on the last axis; got an array of shape {x.shape}"
            )
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.n_bands)
        n = flat.shape[0]
        if out is None:
            out = np.empty((n, self.n_endmembers), dtype=np.float32)
        elif out.shape != (*lead, self.n_endmembers) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise InputError(
                f"out must be a C-contiguous float32 array of shape {(*lead, self.n_endmembers)}; "
                f"got {out.dtype} {out.shape}{'' if out.flags.c_contiguous else ' (not contiguous)'}"
            )
        result = out.reshape(n, self.n_endmembers)
        block = self.block_size
        if block is None:
            block = BLOCK_SIZE if torch.get_num_threads() == 1 else self.chunk_size
        step = max(1, min(self.chunk_size, block, n))
        on_cpu = self.device.type == "cpu"
        # Wrapped as it is when already float32, C-contiguous and writable (torch warns on wrapping
        # a read-only array, a memory map or a dask chunk, though nothing writes to it); otherwise
        # each block is converted into one reused float32 buffer, as astype(float32) would.
        direct = flat.dtype == np.float32 and flat.flags.c_contiguous and flat.flags.writeable
        staging = None if direct else np.empty((step, self.n_bands), dtype=np.float32)
        with torch.inference_mode():
            buffers = self._buffers(step if self.precision == "float32" else max(step, 2))
            target = torch.from_numpy(result) if on_cpu and result.flags.writeable else None
            for start in range(0, n, step):
                rows = min(step, n - start)
                if direct:
                    block = flat[start : start + rows]
                else:
                    block = staging[:rows]
                    np.copyto(block, flat[start : start + rows], casting="unsafe")
                abundances = self._block(torch.from_numpy(block).to(self.device), buffers).t()
                if target is not None:
                    target[start : start + rows].copy_(abundances)
                else:
                    result[start : start + rows] = abundances.cpu().numpy()
        return result.reshape(*lead, self.n_endmembers)

    def __repr__(self) -> str:
        return (
            f"PixelUnmixer(bands={self.n_bands}, endmembers={self.n_endmembers}, precision={self.precision!r}, "
            f"chunk_size={self.chunk_size}, block_size={self.block_size}, device={str(self.device)!r})"
        )
