"""One exception hierarchy for everything that talks Tyrant."""

from __future__ import annotations

__all__ = [
    "TyrantError",
    "TyrantConnectionError",
    "TyrantTimeout",
    "TyrantConnectError",
    "TyrantUncertainWriteError",
    "TyrantProtocolError",
    "TyrantCommandError",
    "TyrantDecodeError",
    "TyrantPoolTimeout",
    "TyrantKindError",
    "TyrantUnsafeWrite",
    "EINVALID",
    "ENOHOST",
    "EREFUSED",
    "ESEND",
    "ERECV",
    "EKEEP",
    "ENOREC",
    "EMISC",
]

# Error codes as the official C client reports them (spec §1.3).
SUCCESS = 0
EINVALID = 1
ENOHOST = 2
EREFUSED = 3
ESEND = 4
ERECV = 5
EKEEP = 6
ENOREC = 7
EMISC = 9999


class TyrantError(Exception):
    """Base class of every error raised by the Tyrant client and codec."""


class TyrantConnectionError(TyrantError, ConnectionError):
    """The connection could not be made, or broke while in use.

    ``request_sent`` tells whether the request may have reached the server
    (False: it certainly did not, e.g. the connect itself failed).
    """

    request_sent: bool = False


class TyrantConnectError(TyrantConnectionError):
    """The connection could not be opened (refused, unreachable, unknown host);
    nothing was sent."""


class TyrantUncertainWriteError(TyrantConnectionError):
    """A write that is not idempotent lost its server after the request was
    sent: it **may or may not have been applied**.

    Raised by failover groups (:mod:`.failover`) instead of repeating the
    write on another server, where it could be applied twice (``putcat``,
    ``addint``, ``genuid``, ``putkeep`` …). ``command`` names the command,
    ``server`` is ``"host:port"``; the original error is ``__cause__``.
    """

    request_sent = True

    def __init__(self, message: str, command: str = "", server: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.server = server


class TyrantTimeout(TyrantError, TimeoutError):
    """Connecting or waiting for a reply took longer than the timeout.

    ``request_sent`` is False when connecting timed out (nothing was sent).
    """

    request_sent: bool = True


class TyrantPoolTimeout(TyrantTimeout):
    """Every connection of the pool stayed busy for longer than ``pool_timeout``."""


class TyrantProtocolError(TyrantError):
    """The peer sent bytes that do not form a valid frame."""


class TyrantCommandError(TyrantError):
    """The server answered a command with a failure status.

    ``code`` is the error code the official C client would report for the
    same failure (``EKEEP`` for an existing record, ``ENOREC`` for a missing
    one, ``EMISC`` otherwise); ``command`` names the command.
    """

    def __init__(self, command: str, code: int = EMISC, message: str | None = None) -> None:
        self.command = command
        self.code = code
        super().__init__(message or f"{command} failed (code {code})")


class TyrantDecodeError(TyrantError, ValueError):
    """A table key or column is not valid UTF-8.

    Ask for bytes instead (``raw=True``) to read such records. ``key`` is the
    primary key (bytes) and ``column`` the column name (bytes, or None when
    the key itself is undecodable).
    """

    def __init__(self, key: bytes, column: bytes | None, reason: str = "invalid UTF-8") -> None:
        self.key = key
        self.column = column
        where = f"primary key {key!r}" if column is None else f"column {column!r} of {key!r}"
        super().__init__(f"{where}: {reason}; pass raw=True to read bytes")


class TyrantKindError(TyrantError, TypeError):
    """The operation does not fit the kind of database the server holds: table
    records or queries on a key-value (hash, B+ tree, fixed-length, on-memory)
    database, or a record where a key-value database stores one value.

    ``kind`` is the server's database kind (STAT ``type``).
    """

    def __init__(self, message: str, kind: str) -> None:
        self.kind = kind
        super().__init__(message)


class TyrantUnsafeWrite(TyrantError, ValueError):
    """A write refused before anything was sent: a real ttserver aborts on it (spec
    §10), e.g. an empty value in a column with a lexical or decimal index."""
