"""pyrant's exception classes: one per error code of the Tyrant C client.

The wire carries only success or failure, so every failure the server
reports reaches pyrant code as :class:`InvalidOperation` (code 1), exactly
as with pyrant 0.6. Connection problems are not :class:`TyrantError`: they
surface as ``OSError`` (``socket.error``), here as the client's
:class:`~doqu_tyrant.tyrant.TyrantConnectionError` or
:class:`~doqu_tyrant.tyrant.TyrantTimeout`, both ``OSError`` subclasses.
"""

from __future__ import annotations

__all__ = ["Success", "InvalidOperation", "HostNotFound", "ConnectionRefused",
           "SendError", "ReceiveError", "RecordExists", "RecordNotFound",
           "MiscellaneousError", "get_for_code"]


class TyrantError(Exception):
    """Base class of the errors below (not of connection errors)."""


class Success(TyrantError):
    """Code 0; exists because the C client has a constant for it."""


class InvalidOperation(TyrantError):
    """Code 1: the server answered with a failure status."""


class HostNotFound(TyrantError):
    """Code 2."""


class ConnectionRefused(TyrantError):
    """Code 3."""


class SendError(TyrantError):
    """Code 4."""


class ReceiveError(TyrantError):
    """Code 5."""


class RecordExists(TyrantError):
    """Code 6."""

    message = "Record already exists"


class RecordNotFound(TyrantError):
    """Code 7."""


class MiscellaneousError(TyrantError):
    """Code 9999."""


ERROR_CODE_TO_CLASS: dict[int, type[TyrantError]] = {
    0: Success,
    1: InvalidOperation,
    2: HostNotFound,
    3: ConnectionRefused,
    4: SendError,
    5: ReceiveError,
    6: RecordExists,
    7: RecordNotFound,
    9999: MiscellaneousError,
}


def get_for_code(error_code: int, message: str | None = None) -> TyrantError:
    """An instance of the exception class of ``error_code`` (with ``message``).

    ``TypeError`` if the code is not a number, ``ValueError`` if it is not one
    of the known codes.
    """
    try:
        int(error_code)
    except ValueError:
        raise TypeError(f'Could not map error code to exception class: expected a number, '
                        f'got "{error_code}"') from None
    try:
        cls = ERROR_CODE_TO_CLASS[error_code]
    except KeyError:
        raise ValueError(f'Unknown error code "{error_code}"') from None
    return cls(message) if message else cls()
