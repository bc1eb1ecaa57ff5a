"""Exit statuses and the error every command reports through."""

from __future__ import annotations

PROG = "doqu-tyrant"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_INPUT = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # as a shell reports a filter killed by SIGPIPE


class CliError(Exception):
    """An error to report as ``doqu-tyrant: error: MESSAGE`` with an exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, Ctrl-C (a client may wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
