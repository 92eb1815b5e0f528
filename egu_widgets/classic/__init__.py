"""Classical unmixing baselines on plain arrays: VCA and N-FINDR endmembers, FCLS / NNLS / SUnSAL abundances.

Shapes: pixels (N, B), endmembers (P, B), abundances (N, P); results are float64.
"""

from egu_widgets.classic.fcls import fcls, nnls_unmix, project_simplex
from egu_widgets.classic.nfindr import nfindr
from egu_widgets.classic.sunsal import sunsal
from egu_widgets.classic.vca import vca, vca_batch

__all__ = ["vca", "vca_batch", "nfindr", "fcls", "nnls_unmix", "project_simplex", "sunsal"]
