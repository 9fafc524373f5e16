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
