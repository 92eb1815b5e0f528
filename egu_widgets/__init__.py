"""egu_widgets: EGU-Net hyperspectral unmixing, usable, teachable and reproducible in Jupyter.

The core (cubes, classical baselines, metrics, results, the PyTorch engine) imports no widget
library; the views live in :mod:`egu_widgets.widgets` and need the ``widgets`` extra.
"""

from importlib.metadata import PackageNotFoundError, version

from .cube import HyperCube, dataset_names, open_cube
from .errors import EguError
from .results import UnmixingResult

try:  # the version is written once, in pyproject.toml
    __version__ = version("egu_widgets")
except PackageNotFoundError:  # a source tree used without installing it
    __version__ = "0+unknown"

__all__ = ["EguError", "HyperCube", "UnmixingResult", "dataset_names", "open_cube", "unmix", "__version__"]


def __getattr__(name):
    # unmix pulls in torch only when an EGU-Net method is used; keep `import egu_widgets` light.
    if name == "unmix":
        from .unmixing import unmix

        return unmix
    raise AttributeError(f"module 'egu_widgets' has no attribute {name!r}")
