"""EGU-Net engine (PyTorch): spectral bundles, networks, trainer with events, estimator.

Imports nothing from widgets or IPython; progress reaches displays only through training events.
"""

from .bundles import SpectralBundles, extract_bundles
from .estimator import PRESETS, EGUNet, resolve_hyperparameters, run_egu
from .events import TrainingControl, TrainingEvent

__all__ = [
    "EGUNet",
    "PRESETS",
    "SpectralBundles",
    "TrainingControl",
    "TrainingEvent",
    "extract_bundles",
    "resolve_hyperparameters",
    "run_egu",
]
