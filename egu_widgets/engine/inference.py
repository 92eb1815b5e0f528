"""Fast pixel-wise inference: a trained encoder frozen into plain matrices.

After training, the endmember stream (the encoder every variant shares) is a fixed function
pixels → abundances: three linear maps each followed by batch normalisation with stored
statistics and an activation, then a linear map and a softmax. In inference the batch norm is an
affine map, so it folds into the linear map before it (W' = diag(γ/σ) W, b' = β − γμ/σ); dropout
is the identity. What is left is four ``addmm`` calls and in-place activations per chunk of
pixels, with no autograd bookkeeping and no module dispatch.

:class:`PixelUnmixer` holds those matrices. It takes NumPy arrays of any leading shape and returns
float32 abundances, processes large inputs in chunks (memory bounded by the chunk size), can be
pickled to dask workers, and is safe to call from several threads at once. ``precision="bfloat16"``
runs the matrix products in bfloat16 and everything else in float32, for GPUs: on a CPU the
conversions to and from bfloat16 cost what the faster products save, so float32 stays the default
(its error and speed: docs/engine.md, "Inference precision").
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

__all__ = ["PixelUnmixer", "PRECISIONS"]

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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
    """

    def __init__(
        self,
        weights: list[np.ndarray],
        biases: list[np.ndarray],
        *,
        precision: str = "float32",
        chunk_size: int = 65536,
        device: str = "cpu",
    ):
        if precision not in PRECISIONS:
            raise InputError(f"precision={precision!r}; choose one of {', '.join(PRECISIONS)}")
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or int(chunk_size) < 1:
            raise InputError(f"chunk_size must be a whole number of pixels >= 1; got {chunk_size!r}")
        if len(weights) != 4 or len(biases) != 4:
            raise InputError("a PixelUnmixer needs the encoder's four layers")
        self.precision = precision
        self.chunk_size = int(chunk_size)
        self.device = torch.device(device)
        dtype = PRECISIONS[precision]
        # Stored transposed, (in, out), so each layer is one addmm(bias, x, W) without a copy.
        self._weights = [
            torch.as_tensor(np.asarray(w, dtype=np.float32)).t().contiguous().to(self.device, dtype) for w in weights
        ]
        self._biases = [torch.as_tensor(np.asarray(b, dtype=np.float32)).to(self.device) for b in biases]
        self.n_bands = int(self._weights[0].shape[0])
        self.n_endmembers = int(self._weights[-1].shape[1])

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
            weights=[w.float().t().cpu().numpy() for w in self._weights],
            biases=[b.cpu().numpy() for b in self._biases],
            precision=self.precision,
            chunk_size=self.chunk_size,
            device=str(self.device),
        )

    def __setstate__(self, state: dict) -> None:
        self.__init__(
            state["weights"],
            state["biases"],
            precision=state["precision"],
            chunk_size=state["chunk_size"],
            device=state["device"],
        )

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def _chunk(self, x: torch.Tensor) -> torch.Tensor:
        dtype = PRECISIONS[self.precision]
        (w1, w2, w3, w4), (b1, b2, b3, b4) = self._weights, self._biases
        if dtype is torch.float32:
            h = torch.addmm(b1, x, w1).tanh_()
            h = torch.addmm(b2, h, w2).tanh_()
            h = torch.addmm(b3, h, w3).relu_()
            z = torch.addmm(b4, h, w4)
        else:  # products in bfloat16, bias, activations and softmax in float32
            h = torch.mm(x.to(dtype), w1).float().add_(b1).tanh_()
            h = torch.mm(h.to(dtype), w2).float().add_(b2).tanh_()
            h = torch.mm(h.to(dtype), w3).float().add_(b3).relu_()
            z = torch.mm(h.to(dtype), w4).float().add_(b4)
        return torch.softmax(z, dim=1)

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
        elif out.shape != (*lead, self.n_endmembers) or out.dtype != np.float32:
            raise InputError(f"out must be float32 of shape {(*lead, self.n_endmembers)}; got {out.dtype} {out.shape}")
        result = out.reshape(n, self.n_endmembers)
        for start in range(0, n, self.chunk_size):
            block = np.ascontiguousarray(flat[start : start + self.chunk_size], dtype=np.float32)
            if not block.flags.writeable:  # read-only input (a memory map, a dask chunk): torch
                block = block.copy()  # would warn on wrapping it, though nothing writes to it
            result[start : start + len(block)] = self._chunk(torch.from_numpy(block).to(self.device)).cpu().numpy()
        return result.reshape(*lead, self.n_endmembers)

    def __repr__(self) -> str:
        return (
            f"PixelUnmixer(bands={self.n_bands}, endmembers={self.n_endmembers}, precision={self.precision!r}, "
            f"chunk_size={self.chunk_size}, device={str(self.device)!r})"
        )
