"""The one error class of the interop commands (listed in ``ldarnet.cli.user_errors``)."""

from __future__ import annotations


class InteropError(ValueError):
    """Input an interop command cannot use: the message says what, where, and how to fix it."""
