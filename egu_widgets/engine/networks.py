"""EGU-Net's networks in PyTorch: the shared encoder, the decoders, and the two-stream models.

Architecture (Hong et al., "Endmember-guided unmixing network (EGU-Net)", IEEE TNNLS 2021; read
from the paper and the authors' TensorFlow code, written anew here):

- **Encoder** (shared by both streams): bands → 256 → 128 → 32 → P, each hidden layer a linear map,
  batch norm and tanh, tanh, ReLU, with dropout (0.1) after the first batch norm; a softmax turns
  the last layer into abundances, which makes them non-negative and sum to one.
- **Endmember stream**: bundle spectra → encoder → abundances, trained with cross-entropy against
  the bundles' pseudo-abundances.
- **Unmixing stream** (pw): pixels → the *same* encoder → abundances → decoder P → 32 → 128 → 256 →
  bands (linear, batch norm, sigmoid) → reconstruction, trained with mean squared error.
- **ss**: the unmixing stream becomes convolutional: 5×5 conv, batch norm, dropout, 2×2 average
  pooling, tanh; 3×3 conv, batch norm, pooling, tanh; the encoder's third layer (128 → 32 and its
  batch norm, as a 1×1 convolution — the weights shared with the endmember stream), pooling,
  ReLU; a transposed convolution (×8) back to full size, softmax; a convolutional decoder (1×1,
  1×1, 3×3, 5×5). Any H×W works: the image is reflect-padded to a multiple of 8 and the outputs
  are cropped back. The endmember stream stays pixel-wise. One deliberate change: the transposed
  convolution has an 8×8 kernel; the authors' 1×1 kernel with stride 8 writes only one pixel in
  every 8×8 block and leaves the other 63 at the bias.
- **ae** (ablation): the pw unmixing stream alone, without the endmember stream.

Batch normalisation: the two streams share the encoder's batch-norm parameters but each
normalises with its own batch statistics while training (as the authors' shared TensorFlow
layers do). The authors read the final abundances with batch statistics computed over *all*
pixels of the image; here those whole-image statistics are stored after training
(:func:`calibrate`), so inference in ``eval()`` mode gives those abundances on the training image
and applies the same fixed normalisation to any other cube. In ss the shared third layer sees
pixels in one stream and the convolutional features of the whole image in the other, so it keeps
two sets of statistics: its own (``encoder.bn3.mean``/``var``, the pixels') and
``image_bn3`` (:class:`NormStatistics`, the image's), used when it runs inside the image stream.
With every image-path statistic stored, the image stream is a fixed function of the pixels near
each output, which is what lets :meth:`SpatialSpectralEGUNet.tiled_image_stream` process a large
image in tiles and match the whole-image pass. Linear and convolution layers that feed a batch
norm have no bias: batch norm subtracts the mean, so such a bias has no effect and receives zero
gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

__all__ = [
    "NormStatistics",
    "Norm",
    "InputMoments",
    "MaskDropout",
    "Encoder",
    "Decoder",
    "PixelwiseEGUNet",
    "SpatialSpectralEGUNet",
    "calibrate",
    "batch_statistics",
    "build_model",
]


class _Collected(Exception):
    """Raised by a Norm that has gathered what calibration needs, to skip the rest of a forward."""


class NormStatistics(nn.Module):
    """Population statistics (``mean``, ``var`` buffers) of one batch norm, and their calibration state.

    Every :class:`Norm` is one (its own statistics). On its own it is a second set of statistics
    for a Norm that two paths share but that sees differently distributed inputs on each: the
    path passes it to the Norm's forward, which then reads, records and accumulates statistics
    here instead of in the Norm. Being a module with buffers, it is saved in the state dict.
    """

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("var", torch.ones(width))
        self._collect: list | None = None  # [sum, sum of squares, count] while calibrating
        self._record = False


class Norm(NormStatistics):
    """Batch normalisation over all axes but the channel axis (1), for (N, C) or (N, C, H, W).

    In training mode (or inside :func:`batch_statistics`) it normalises with the batch's own
    statistics and keeps no running averages, because the endmember stream and the unmixing
    stream share this layer but see very different batches (bundle spectra vs. pixels); a running
    average would blend the two. Population statistics are set once, after training, by
    :func:`calibrate`, and used in ``eval()`` mode: the Norm's own, or the
    :class:`NormStatistics` passed as ``statistics`` by a path that keeps its own set.
    """

    def __init__(self, width: int, eps: float = 1e-3):
        super().__init__(width)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.force_batch = False

    def forward(self, x: torch.Tensor, statistics: NormStatistics | None = None) -> torch.Tensor:
        stats = self if statistics is None else statistics
        if stats._collect is not None:
            dims = [0] + list(range(2, x.dim()))
            xd = x.detach().double()
            stats._collect[0] += xd.sum(dim=dims)
            stats._collect[1] += (xd * xd).sum(dim=dims)
            stats._collect[2] += x.numel() // x.shape[1]
            raise _Collected
        if stats._record:  # single-batch calibration: this batch is the whole population
            dims = [0] + list(range(2, x.dim()))
            stats.mean.copy_(x.detach().mean(dim=dims))
            stats.var.copy_(x.detach().var(dim=dims, unbiased=False))
        if self.training or self.force_batch or stats._record:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, stats.mean, stats.var, self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class MaskDropout(nn.Module):
    """Inverted dropout whose masks come from explicit, seeded generators.

    ``nn.Dropout`` can only use the global random stream; private generators (set by the trainer)
    keep runs reproducible without touching the user's global seed. On the CPU the mask is drawn
    from a NumPy PCG64 generator as 16-bit integers (four per 64-bit draw), which costs half of
    ``torch.rand`` on the same tensor; an element is dropped when its integer is below
    round(p·65536), i.e. with probability p to within 1/131072. On a GPU ``torch.rand`` with a
    device generator is used.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {p}")
        self.p = float(p)
        self.generator: torch.Generator | None = None
        self.rng: np.random.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        scale = 1.0 / (1.0 - self.p)
        if x.device.type == "cpu" and self.rng is not None:
            n = x.numel()
            bits = self.rng.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n]
            # The mask is made as floats (0 or 1/(1-p)) in one NumPy pass: a boolean mask
            # converted by torch costs twice as much on a 8000x256 batch.
            mask = np.multiply(bits >= int(round(self.p * 65536)), np.float32(scale), dtype=np.float32)
            return x * torch.from_numpy(mask).view(x.shape).to(x.dtype)
        mask = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        # In place: 1.0 where kept, then the 1/(1-p) rescaling, so one buffer serves both.
        mask.ge_(self.p).mul_(scale)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _xavier(generator: torch.Generator | None) -> Callable[[nn.Module], None]:
    """Glorot-uniform weights and zero biases (the authors' initialisation)."""

    def init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    return init


class InputMoments:
    """Mean and (biased) covariance of a fixed batch, for :meth:`Encoder.forward`'s folded first layer.

    The endmember stream sees the same bundle set at every training step, so the batch-norm
    statistics of its first layer, a linear map of fixed inputs, follow from these moments and
    the weights alone: mean = W·m, var = diag(W·C·Wᵀ). Computed once in float64.
    """

    def __init__(self, x: torch.Tensor):
        xd = x.detach().double()
        mean = xd.mean(dim=0)
        centred = xd - mean
        self.mean = mean.to(x.dtype)
        self.cov = (centred.T @ centred / max(x.shape[0], 1)).to(x.dtype)


class Encoder(nn.Module):
    """bands → w1 → w2 → w3 → P logits (softmax of them = abundances)."""

    def __init__(
        self,
        n_bands: int,
        n_endmembers: int,
        widths: Sequence[int] = (256, 128, 32),
        dropout: float = 0.1,
        eps: float = 1e-3,
    ):
        super().__init__()
        w1, w2, w3 = (int(w) for w in widths)
        self.fc1 = nn.Linear(n_bands, w1, bias=False)
        self.bn1 = Norm(w1, eps)
        self.drop = MaskDropout(dropout)
        self.fc2 = nn.Linear(w1, w2, bias=False)
        self.bn2 = Norm(w2, eps)
        self.fc3 = nn.Linear(w2, w3, bias=False)
        self.bn3 = Norm(w3, eps)
        self.fc4 = nn.Linear(w3, n_endmembers)

    def forward(self, x: torch.Tensor, moments: InputMoments | None = None) -> torch.Tensor:
        """Logits of ``x``; ``moments`` (of ``x`` itself) lets training fold the first batch norm.

        With batch statistics, BN(x·Wᵀ) = x·(W·s)ᵀ + (β − s·W·m) with s = γ / √(diag(W·C·Wᵀ) + ε):
        the same function of the weights, computed by one matrix product whose output is already
        normalised, so the pass that measures the batch's statistics, the pass that normalises
        and their two backward passes disappear. It is used only while training on batch
        statistics (calibration and ``eval()`` take the ordinary path).
        """
        bn1 = self.bn1
        if moments is not None and self.training and bn1._collect is None and not bn1._record:
            w = self.fc1.weight
            var = ((w @ moments.cov) * w).sum(dim=1)
            scale = bn1.weight * torch.rsqrt(var + bn1.eps)
            shift = bn1.bias - scale * (w @ moments.mean)
            z = torch.addmm(shift, x, (w * scale[:, None]).T)
        else:
            z = bn1(self.fc1(x))
        # Dropout sits between batch norm and tanh, where the authors put it.
        h = torch.tanh(self.drop(z))
        h = torch.tanh(self.bn2(self.fc2(h)))
        h = torch.relu(self.bn3(self.fc3(h)))
        return self.fc4(h)


class Decoder(nn.Module):
    """P → d1 → d2 → d3 → bands, each layer linear + batch norm + sigmoid."""

    def __init__(self, n_endmembers: int, n_bands: int, widths: Sequence[int] = (32, 128, 256), eps: float = 1e-3):
        super().__init__()
        dims = [n_endmembers, *(int(w) for w in widths), n_bands]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(Norm(b, eps) for b in dims[1:])

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        for layer, norm in zip(self.layers, self.norms):
            a = torch.sigmoid(norm(layer(a)))
        return a


class _EGUBase(nn.Module):
    variant = "?"

    def set_generator(self, generator: torch.Generator | None, rng: np.random.Generator | None = None) -> None:
        """Random sources for dropout: a torch generator (GPU) and a NumPy generator (CPU)."""
        for m in self.modules():
            if isinstance(m, MaskDropout):
                m.generator = generator
                m.rng = rng

    def weight_penalty(self) -> torch.Tensor:
        """½ Σ‖W‖² over every linear/convolution weight (the authors' ``tf.nn.l2_loss`` sum)."""
        weights = [m.weight for m in self.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
        return 0.5 * sum(w.pow(2).sum() for w in weights)

    def bundle_logits(self, spectra: torch.Tensor, moments: InputMoments | None = None) -> torch.Tensor:
        """Endmember stream: bundle spectra (K, B) → logits (K, P) (``moments``: see :meth:`Encoder.forward`)."""
        return self.encoder(spectra, moments)

    def unmix(self, pixels: torch.Tensor) -> torch.Tensor:
        """The endmember stream applied to pixels (N, B) → abundances (N, P) (the API's answer)."""
        return torch.softmax(self.encoder(pixels), dim=1)

    def pixel_norms(self) -> list[Norm]:
        """Norms on the path pixels → abundances, in forward order (calibrated on pixels)."""
        return [self.encoder.bn1, self.encoder.bn2, self.encoder.bn3]


class PixelwiseEGUNet(_EGUBase):
    """EGU-Net-pw (and, trained without bundles, the ``ae`` ablation).

    Both streams run through the same :class:`Encoder` module, so in this variant every encoder
    weight is shared; the endmember stream's abundances on pixels and the unmixing stream's are
    the same function once the batch statistics are fixed.
    """

    variant = "pw"

    def __init__(
        self,
        n_bands: int,
        n_endmembers: int,
        *,
        encoder_widths=(256, 128, 32),
        decoder_widths=(32, 128, 256),
        dropout: float = 0.1,
        bn_eps: float = 1e-3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_bands, self.n_endmembers = int(n_bands), int(n_endmembers)
        self.encoder = Encoder(n_bands, n_endmembers, encoder_widths, dropout, bn_eps)
        self.decoder = Decoder(n_endmembers, n_bands, decoder_widths, bn_eps)
        self.apply(_xavier(generator))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmixing stream: pixels (N, B) → (abundances (N, P), reconstruction (N, B))."""
        ab = self.unmix(pixels)
        return ab, self.decoder(ab)

    def decode(self, abundances: torch.Tensor) -> torch.Tensor:
        return self.decoder(abundances)


class SpatialSpectralEGUNet(_EGUBase):
    """EGU-Net-ss: pixel-wise endmember stream + convolutional unmixing stream on the whole image.

    Shared with the endmember stream: the encoder's third layer (w2 → w3 linear map and its batch
    norm), used as a 1×1 convolution, as in the authors' code. The convolutional stream's own
    first two layers, transposed convolution and decoder are not shared. Inside the image stream
    the shared batch norm normalises with ``image_bn3``'s statistics (the image's) in eval mode;
    its weight and bias, and its batch statistics while training, are the shared layer's.
    """

    variant = "ss"
    scale = 8  # three 2×2 poolings
    default_tile = 256  # core pixels per tile side in tiled_image_stream (a multiple of scale)

    def __init__(
        self,
        n_bands: int,
        n_endmembers: int,
        *,
        encoder_widths=(256, 128, 32),
        decoder_widths=(32, 128, 256),
        dropout: float = 0.1,
        bn_eps: float = 1e-3,
        kernels: Sequence[int] = (5, 3),
        conv_width: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_bands, self.n_endmembers = int(n_bands), int(n_endmembers)
        w1, w2, w3 = (int(w) for w in encoder_widths)
        k1, k2 = (int(k) for k in kernels)
        # The first convolution's width is free (the authors use w1); its output only feeds the
        # second convolution, whose width w2 must match the shared layer's input.
        c1 = w1 if conv_width is None else int(conv_width)
        self.encoder = Encoder(n_bands, n_endmembers, encoder_widths, dropout, bn_eps)
        self.conv1 = nn.Conv2d(n_bands, c1, k1, padding=k1 // 2, bias=False)
        self.cbn1 = Norm(c1, bn_eps)
        self.cdrop = MaskDropout(dropout)
        self.conv2 = nn.Conv2d(c1, w2, k2, padding=k2 // 2, bias=False)
        self.cbn2 = Norm(w2, bn_eps)
        self.up = nn.ConvTranspose2d(w3, n_endmembers, kernel_size=self.scale, stride=self.scale)
        d1, d2, d3 = (int(w) for w in decoder_widths)
        chans = [n_endmembers, d1, d2, d3, n_bands]
        ks = [1, 1, k2, k1]  # mirror of the encoder: 1×1, 1×1, 3×3, 5×5
        self.dec = nn.ModuleList(
            nn.Conv2d(a, b, k, padding=k // 2, bias=False) for a, b, k in zip(chans[:-1], chans[1:], ks)
        )
        self.dec_norms = nn.ModuleList(Norm(b, bn_eps) for b in chans[1:])
        # The image stream's statistics for the shared encoder.bn3, whose own buffers hold the
        # pixels' (the endmember stream's); see the module doc.
        self.image_bn3 = NormStatistics(w3)
        self.apply(_xavier(generator))

    def _pad(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        h, w = image.shape[-2:]
        ph = (-h) % self.scale
        pw = (-w) % self.scale
        top, left = ph // 2, pw // 2
        pads = (left, pw - left, top, ph - top)
        if ph == 0 and pw == 0:
            return image, pads
        # Reflection keeps edge statistics natural; it needs the pad to be smaller than the side.
        mode = "reflect" if max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h else "replicate"
        return F.pad(image, pads, mode=mode), pads

    def _padded_stream(self, x: torch.Tensor, reconstruct: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The unmixing stream on (1, B, H, W) with H and W multiples of ``scale``, no padding or crop.

        ``reconstruct=False`` skips the decoder (most of the work and memory when B is large) and
        returns None for the reconstruction.
        """
        x = torch.tanh(F.avg_pool2d(self.cdrop(self.cbn1(self.conv1(x))), 2))
        x = torch.tanh(F.avg_pool2d(self.cbn2(self.conv2(x)), 2))
        shared = self.encoder.fc3.weight  # (w3, w2): the endmember stream's layer, as a 1×1 conv
        x = self.encoder.bn3(F.conv2d(x, shared[:, :, None, None]), self.image_bn3)
        x = torch.relu(F.avg_pool2d(x, 2))
        ab = torch.softmax(self.up(x), dim=1)
        if not reconstruct:
            return ab, None
        r = ab
        for conv, norm in zip(self.dec, self.dec_norms):
            r = torch.sigmoid(norm(conv(r)))
        return ab, r

    def image_stream(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmixing stream on (1, B, H, W) → (abundance maps (1, P, H, W), reconstruction (1, B, H, W))."""
        h, w = image.shape[-2:]
        x, (left, _, top, _) = self._pad(image)
        ab, r = self._padded_stream(x)
        crop = (slice(None), slice(None), slice(top, top + h), slice(left, left + w))
        return ab[crop], r[crop]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_stream(image)

    def image_norms(self) -> list[NormStatistics]:
        """Statistics the image stream normalises with, in forward order (calibrated on the image)."""
        return [self.cbn1, self.cbn2, self.image_bn3, *self.dec_norms]

    @property
    def receptive_radius(self) -> int:
        """How far (pixels) beyond a tile core, aligned to the ``scale`` grid, its outputs read input.

        Abundances are constant per transposed-convolution block (stride = kernel = scale, so each
        output pixel depends on one 1/8-resolution cell only). A cell covering input [8c, 8c+8)
        reads, through the poolings, conv2 (radius r2, at 1/2 resolution) and conv1 (radius r1):
        [8c - 2·r2 - r1, 8c + 8 + 2·r2 + r1). The decoder's convolutions (radii summing to d) read
        abundances up to d pixels away, i.e. the blocks up to ceil(d/8)·8 pixels beyond the core.
        So the radius is ceil(d/8)·8 + r1 + 2·r2: 8 + 2 + 2 = 12 for kernels (5, 3).
        """
        r1, r2 = self.conv1.padding[0], self.conv2.padding[0]
        decoder = sum(conv.padding[0] for conv in self.dec)
        return -(-decoder // self.scale) * self.scale + r1 + 2 * r2

    def _check_tiling(self, tile: object, halo: object) -> tuple[int, int]:
        s = self.scale
        if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile <= 0 or tile % s:
            raise InputError(
                f"tile={tile!r}: the tile core size must be a positive multiple of {s} (the network "
                f"pools three times by 2), e.g. {self.default_tile}"
            )
        needed = -(-self.receptive_radius // s) * s
        if halo is None:
            return int(tile), needed
        if isinstance(halo, bool) or not isinstance(halo, (int, np.integer)) or halo < 0 or halo % s:
            raise InputError(
                f"halo={halo!r}: the halo must be a whole number >= 0 and a multiple of {s} (tile "
                f"origins must stay on the {s}-pixel grid); use {needed} or leave it None"
            )
        if halo < self.receptive_radius:
            raise InputError(
                f"halo={halo} is smaller than the network's receptive radius ({self.receptive_radius} "
                f"pixels), so tile edges would show; use halo >= {needed} or leave it None"
            )
        return int(tile), int(halo)

    def tiled_image_stream(
        self, image: torch.Tensor, tile: int = default_tile, halo: int | None = None, reconstruct: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`image_stream` computed in overlapping tiles, in eval mode: the same maps, bounded memory.

        The image is reflect-padded to a multiple of ``scale`` as in :meth:`image_stream`, then cut
        into cores of ``tile`` × ``tile`` pixels (a multiple of ``scale``, so that every tile's
        poolings and transposed convolution line up with the whole-image pass; border cores are
        smaller). Each core is run with ``halo`` pixels of real neighbours on every side (None:
        the receptive radius rounded up to a multiple of ``scale``, 16 for kernels (5, 3)), except
        at the image's border, where the tile ends at the border so the convolutions' zero padding
        falls where it does in the whole-image pass; the outputs are cropped to the core. With the
        stored (eval-mode) statistics every output depends only on inputs within the halo, so the
        result equals the whole-image eval pass to float rounding. Working memory is that of one
        (tile + 2·halo)² pass, besides the padded input and the outputs; the reconstruction output
        is as large as the image, so ``reconstruct=False`` (abundances only, None in its place;
        the decoder is skipped too) is the way to unmix a large image in bounded memory.
        """
        tile, halo = self._check_tiling(tile, halo)
        if self.training or any(m.force_batch for m in self.modules() if isinstance(m, Norm)):
            raise InputError(
                "tiled_image_stream needs the stored statistics: call model.eval() first, outside "
                "batch_statistics() (with batch statistics every tile would be normalised differently)"
            )
        h, w = image.shape[-2:]
        with torch.no_grad():
            x, (left, _, top, _) = self._pad(image)
            hp, wp = x.shape[-2:]
            ab = x.new_empty((1, self.n_endmembers, h, w))
            rec = x.new_empty((1, x.shape[1], h, w)) if reconstruct else None
            for y0 in range(0, hp, tile):
                y1 = min(y0 + tile, hp)
                ty0, ty1 = max(y0 - halo, 0), min(y1 + halo, hp)
                # The part of this core inside the unpadded image, in output coordinates.
                oy0, oy1 = max(y0 - top, 0), min(y1 - top, h)
                for x0 in range(0, wp, tile):
                    x1 = min(x0 + tile, wp)
                    tx0, tx1 = max(x0 - halo, 0), min(x1 + halo, wp)
                    ox0, ox1 = max(x0 - left, 0), min(x1 - left, w)
                    tab, trec = self._padded_stream(x[:, :, ty0:ty1, tx0:tx1], reconstruct)
                    core = (
                        slice(None),
                        slice(None),
                        slice(oy0 + top - ty0, oy1 + top - ty0),
                        slice(ox0 + left - tx0, ox1 + left - tx0),
                    )
                    ab[:, :, oy0:oy1, ox0:ox1] = tab[core]
                    if reconstruct:
                        rec[:, :, oy0:oy1, ox0:ox1] = trec[core]
        return ab, rec

    def decode(self, abundances: torch.Tensor) -> torch.Tensor:
        """Decoder response to spatially uniform abundances (N, P) → spectra (N, B).

        The decoder is convolutional; on a uniform image every convolution acts like its kernel
        summed over space. A (N, P, k, k) block, k the decoder's receptive field, is decoded and
        its centre pixel, which the zero padding at the block's edges cannot reach, is read.
        """
        k = 1 + sum(c.kernel_size[0] - 1 for c in self.dec)
        r = abundances[:, :, None, None].expand(-1, -1, k, k)
        for conv, norm in zip(self.dec, self.dec_norms):
            r = torch.sigmoid(norm(conv(r)))
        return r[:, :, k // 2, k // 2]


class batch_statistics:
    """Context manager: every Norm in ``model`` uses the current batch's statistics.

    Used to evaluate with the authors' semantics (statistics of the whole image) during training,
    before any statistics are stored, and for ss models from checkpoints that predate the image
    stream's stored statistics (their image stream then runs on the whole image at once).
    """

    def __init__(self, model: nn.Module):
        self.norms = [m for m in model.modules() if isinstance(m, Norm)]

    def __enter__(self):
        self.saved = [n.force_batch for n in self.norms]
        for n in self.norms:
            n.force_batch = True
        return self

    def __exit__(self, *exc):
        for n, s in zip(self.norms, self.saved):
            n.force_batch = s
        return False


@torch.no_grad()
def calibrate(
    norms: Sequence[NormStatistics],
    forward: Callable[[torch.Tensor], object],
    chunks: Iterable[torch.Tensor] | Sequence[torch.Tensor],
) -> None:
    """Store population statistics in ``norms`` so that eval mode equals whole-data batch norm.

    ``forward`` runs the model on one chunk; the model must be in eval mode. With one chunk the
    chunk is the population and a single pass records every norm's batch statistics. With
    several chunks the norms are calibrated one at a time in forward order: while norm i
    accumulates sums over all chunks, norms before it already use their population statistics,
    so the result is exactly what one pass over all data in training-mode batch norm would give.
    ``norms`` may hold a :class:`NormStatistics` that a path passes to a shared Norm: it is
    calibrated where that path runs the Norm, and the Norm's own statistics are left alone.
    """
    chunks = list(chunks)
    if len(chunks) == 1:
        for n in norms:
            n._record = True
        try:
            forward(chunks[0])
        finally:
            for n in norms:
                n._record = False
        return
    for norm in norms:
        acc = [torch.zeros_like(norm.mean, dtype=torch.float64), torch.zeros_like(norm.mean, dtype=torch.float64), 0]
        norm._collect = acc
        try:
            for chunk in chunks:
                with contextlib.suppress(_Collected):  # raised once the statistics are collected
                    forward(chunk)
        finally:
            norm._collect = None
        count = max(acc[2], 1)
        mean = acc[0] / count
        var = (acc[1] / count - mean * mean).clamp_min(0.0)
        norm.mean.copy_(mean.to(norm.mean.dtype))
        norm.var.copy_(var.to(norm.var.dtype))


def build_model(
    variant: str, n_bands: int, n_endmembers: int, hp: dict, generator: torch.Generator | None = None
) -> _EGUBase:
    """The network for ``variant`` ("pw", "ss" or "ae") with hyperparameters ``hp``."""
    common = dict(
        encoder_widths=tuple(hp["encoder_widths"]),
        decoder_widths=tuple(hp["decoder_widths"]),
        dropout=float(hp["dropout"]),
        bn_eps=float(hp["bn_eps"]),
        generator=generator,
    )
    if variant in ("pw", "ae"):
        model = PixelwiseEGUNet(n_bands, n_endmembers, **common)
    elif variant == "ss":
        model = SpatialSpectralEGUNet(
            n_bands, n_endmembers, kernels=tuple(hp["kernels"]), conv_width=hp.get("conv_width"), **common
        )
    else:
        raise ValueError(f"unknown variant {variant!r}")
    model.variant = variant
    return model
