"""The project's exception classes.

Every problem a user can cause (a bad file, a wrong argument, a cube the method cannot handle)
raises a subclass of :class:`EguError` with a message that says what is wrong and how to fix it.
The command line prints that message on one line and exits non-zero; anything else is a bug.
"""

__all__ = [
    "CheckpointError",
    "DataFileError",
    "DatasetError",
    "EguError",
    "InputError",
    "MissingDependencyError",
    "TrainingError",
]


class EguError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(EguError, ValueError):
    """An argument or a cube's values are not usable (NaN pixels, P < 2, wrong shapes...)."""


class DataFileError(EguError, OSError):
    """A file is missing, empty, truncated, corrupted or in a layout we cannot read."""


class DatasetError(EguError, LookupError):
    """A named dataset is unknown, or could not be found or downloaded intact."""


class TrainingError(EguError, RuntimeError):
    """Training could not go on (for example the loss became NaN or infinite)."""


class CheckpointError(EguError, ValueError):
    """A checkpoint is missing, tampered with, or does not match the model."""


class MissingDependencyError(EguError, ImportError):
    """An optional dependency (the widget extra, dask) is needed for what was asked."""
