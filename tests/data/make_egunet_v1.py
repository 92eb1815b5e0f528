"""Wrote the legacy checkpoints in this folder with EGUNet at commit ef645b5 (before issue 13).

Kept for the record; rerunning it with later code writes different files. Run from the repository root.
"""

import numpy as np

from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet

cube = make_demo(10, 12, 16, 3, seed=7)
image = np.asarray(cube.image, dtype=np.float64)
arrays = {"image": image, "wavelengths": np.asarray(cube.wavelengths, dtype=np.float64)}
small = dict(
    epochs=2, progress=False, batch_size=64, encoder_widths=(12, 8, 4), decoder_widths=(4, 8, 12), num_threads=1
)
for variant in ("pw", "ss"):
    extra = dict(conv_width=8, decoder_widths=(4, 8, 8)) if variant == "ss" else {}
    est = EGUNet(variant, 3, seed=5, **{**small, **extra}).fit(cube)
    est.save(f"tests/data/egunet_v1_{variant}.pt")
    arrays[f"{variant}_abundances"] = est.transform(cube)
    arrays[f"{variant}_endmembers"] = est.endmembers_
    if variant == "ss":
        arrays["ss_unmixing"] = est.transform(cube, stream="unmixing")
np.savez_compressed("tests/data/egunet_v1_expected.npz", **arrays)
