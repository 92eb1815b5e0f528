"""The ``nfindr-fcls`` method: N-FINDR endmembers, FCLS abundances.

A stronger classical baseline than ``vca-fcls``: N-FINDR starts from VCA's picks for the same seed
and swaps pixels only while the simplex volume grows, so its endmembers are at least as extreme as
VCA's. This module is also the worked example of adding a method (see CONTRIBUTING.md): one
adapter here, one line in :mod:`egu_widgets.methods`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from egu_widgets.classic.adapters import CubeUnmixer, valid_pixels
from egu_widgets.classic.nfindr import nfindr
from egu_widgets.validation import check_seed

__all__ = ["NFindrFcls"]


class NFindrFcls(CubeUnmixer):
    """Endmembers by N-FINDR on the valid pixels (started from VCA with ``seed``), abundances by FCLS."""

    name = "nfindr-fcls"

    def _endmembers(self, cube: Any) -> tuple[np.ndarray, dict[str, Any]]:
        p = self._n_endmembers(cube)
        seed = check_seed(self.seed)
        em, _ = nfindr(valid_pixels(cube), p, seed=seed)
        return em, {"n_endmembers": p, "seed": seed}
