"""Errors a user can act on: the CLI prints them as one line and exits non-zero, without a traceback."""

from typing import TypeVar

# Exit codes of `aloe-bench` and `aloe-train`; here (not in the CLI) so any layer can name them.
EXIT_USER_ERROR = 2
EXIT_FAILED_CONVERSATIONS = 3


class AloeError(Exception):
    """Base class: the message names the problem and the fix."""


class UserInputError(AloeError):
    """Bad command-line input, a malformed file, a missing path."""


class BackendFatalError(AloeError):
    """A backend cannot serve any request (bad key, unknown model, unloadable checkpoint).

    Raised instead of failing conversation after conversation with the same cause.
    """


class StorageError(AloeError):
    """A file or the call cache could not be written (a full disk, a read-only path). The message
    names the path; what finished before stays readable, and re-running the same command resumes."""


T = TypeVar("T")


def required(value: T | None, flag: str) -> T:
    """`value`, known to be set: configs keep required settings optional until `validate()` checks
    them, so readers narrow here (and a config used without `validate()` still fails clearly)."""
    if value is None:
        raise UserInputError(f"{flag} is required")
    return value
