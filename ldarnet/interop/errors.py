"""The one error class of the interop commands."""

from __future__ import annotations

from ldarnet.foundation.errors import InputError


class InteropError(InputError):
    """Input an interop command cannot use: the message says what, where, and how to fix it."""
