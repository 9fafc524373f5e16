"""Exceptions raised by sparselite; each also derives from the matching builtin."""


class SparseliteError(Exception):
    """Base class of every sparselite error."""


class InvalidModelError(SparseliteError, ValueError):
    """The .slite bytes failed verification (truncated, corrupted or inconsistent)."""


class UnsupportedError(SparseliteError, NotImplementedError):
    """A valid model or input uses something this version does not support."""


class InputError(SparseliteError, ValueError):
    """An input has the wrong name, shape or dtype."""


class ConversionError(SparseliteError, ValueError):
    """A source model cannot be converted; the message names the op and module."""


def error_for_status(status, message):
    """The exception for a failed C call's sl_status_t (sparselite.h), carrying its message."""
    from ._abi import STATUS

    kinds = {"SL_ERROR_INVALID_ARGUMENT": InputError, "SL_ERROR_INVALID_MODEL": InvalidModelError,
             "SL_ERROR_UNSUPPORTED": UnsupportedError, "SL_ERROR_OUT_OF_MEMORY": MemoryError, "SL_ERROR_IO": OSError}
    name = next((n for n, value in STATUS.items() if value == status), None)
    if name == "SL_ERROR_BUSY":
        message = "the model is running on another thread: share a Model only through its methods, or use one per thread"
    return kinds.get(name, SparseliteError)(message)
