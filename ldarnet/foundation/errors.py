"""The one error family of the project, and the one way to tell the user about an input.

Every error a user can fix (a malformed file, a wrong config value, a missing input, a
damaged checkpoint) is a :class:`LdarnetError`. The ``ldarnet`` command turns exactly
this family into one line ``ldarnet <command>: error: <message>`` and exit status 2;
anything else escaping a command is a bug in ldarnet and is shown with its traceback and
a request to report it. A hand-kept list of "user" exception classes would drift from
the classes that exist (it did: 26 listed of 33), so the rule is structural: derive
from this base, or be treated as a bug.

Domain errors keep a built-in base beside this one (``ValueError`` for bad values,
``FileNotFoundError`` for missing inputs, ``RuntimeError`` for downloads) so that code
catching the built-in types keeps working.

This module is part of the foundation: it imports nothing from the project.
"""

from __future__ import annotations

import sys


class LdarnetError(Exception):
    """Base of every error caused by input, configuration or environment a user can fix.

    The message says what is wrong, where (file and line, or config file and key) and
    how to fix it; it is printed without a traceback.
    """


class InputError(LdarnetError, ValueError):
    """A value, file content or configuration that cannot be used."""


class MissingInputError(LdarnetError, FileNotFoundError):
    """A file or directory named as an input that does not exist."""


class OutputError(LdarnetError, OSError):
    """An output that cannot be written (permissions, a directory in the way, a full disk)."""


class UserError(InputError):
    """Flags that cannot be used together (or other command-line input); one line, exit 2.

    Here, in the foundation, so that every command module raises it without importing
    the module that assembles the commands.
    """


def note(message: str) -> None:
    """Tell the user about an input that was accepted but normalised (CRLF, spaces, ...).

    A documented normalisation is not an error, but it must not be silent either: the
    note goes to stderr (the job's log under Snakemake), one line per input.
    """
    print(f"ldarnet: note: {message}", file=sys.stderr, flush=True)
