"""User-facing errors.

A :class:`NumpynetsError` carries a one-line message that says what is wrong
and how to fix it. The command line prints it without a traceback and exits
with status 2; library callers can catch it like any exception.
"""


class NumpynetsError(Exception):
    """An error caused by the user's input (files, options, data)."""


class DataError(NumpynetsError):
    """Missing, corrupt or unreadable data files."""


class ModelFileError(NumpynetsError):
    """A model file that cannot be read, or that does not fit the model."""


class ConfigError(NumpynetsError):
    """Nonsense hyperparameters, unknown names, bad JSON configurations."""


class ShapeError(NumpynetsError, ValueError):
    """An input whose shape does not fit a layer."""


class TrainingDiverged(NumpynetsError):
    """The loss became NaN or infinite."""
