"""The ``doqu-tyrant`` command line (also ``python -m doqu_tyrant``).

Subcommands: ``serve`` (the bundled server), ``stat``, ``get``, ``put``,
``query``, ``export``, ``import`` and ``rebalance`` (between the shard lists
it is given, :mod:`.rebalance`). Every other subcommand but ``serve`` talks to
the server named by ``--url`` (default ``$TYRANT_URL``, else
``tyrant://127.0.0.1:1978``) through :class:`doqu_tyrant.tyrant.Tyrant`.
The global options ``--url``, ``--timeout`` and ``-q`` go before or after
the subcommand.

Export format (:mod:`.jsonlines`): JSON lines, one record per line::

    {"key": "u1", "record": {"name": "Alice", "age": "30"}}

Exit status: 0 success; 1 the server refused or lacks what was asked (a
missing key, an existing key with ``put --keep``, a failed batch), or a
file cannot be written; 2 bad usage (unknown option or lookup, malformed
``col=value``, a bad URL or timeout); 3 the server cannot be reached
(refused, timed out, dropped); 4 malformed input to ``import`` (the message
names the line); 130 interrupted (Ctrl-C); 141 the reader of the output went
away. Every error is one line on stderr, ``doqu-tyrant: error: ...``; no
traceback reaches the shell.

The modules: :mod:`.parser` (the grammar), :mod:`.records` (stat, get, put,
query), :mod:`.transfer` (export, import), :mod:`.rebalance`, :mod:`.serve`,
:mod:`.jsonlines`, :mod:`.text` (reversible escaping), :mod:`.progress`,
:mod:`.conditions`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable

from doqu_tyrant.tyrant import (
    TyrantCommandError,
    TyrantConnectionError,
    TyrantError,
    TyrantTimeout,
)

from .connect import DEFAULT_URL, check_url
from .jsonlines import LineError, parse_line, record_to_json, value_to_json
from .parser import build_parser, glue_order, split_serve
from .serve import cmd_serve
from .status import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    PROG,
    CliError,
    interrupted,
)

__all__ = [
    "main",
    "build_parser",
    "record_to_json",
    "value_to_json",
    "parse_line",
    "LineError",
    "CliError",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_UNREACHABLE",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_BROKEN_PIPE",
]


def _resolve_url(url: str | None) -> str:
    """``--url``, else ``$TYRANT_URL``, else the default; checked (status 2 when bad)."""
    source = "--url"
    if url is None:
        url = os.environ.get("TYRANT_URL") or None
        source = "$TYRANT_URL"
    if url is None:
        return DEFAULT_URL
    try:
        check_url(url)
    except ValueError as exc:
        raise CliError(f"{exc} (from {source})", EXIT_USAGE) from None
    return url


def _run(argv: list[str]) -> int:
    served = split_serve(argv)
    if served is not None:
        serve_args, before = served
        for option in ("--timeout", "-q", "--quiet"):
            if option in before:
                raise CliError(f"{option} is for the client commands; serve does not take "
                               "it (see doqu-tyrant serve --help)", EXIT_USAGE)
        return cmd_serve(serve_args, before.get("--url"))
    parser = build_parser()
    args, extras = parser.parse_known_args(glue_order(argv))
    if extras:
        # ``put KEY --merge a=1``: argparse leaves the columns after an option over.
        if args.command == "put" and not any(x.startswith("-") for x in extras):
            args.columns.extend(extras)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    args.url = _resolve_url(args.url)
    return int(args.func(args))


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args_list)
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except TyrantTimeout as exc:
        _error(f"the server at {_url(args_list)} did not answer in time: {exc}")
        return EXIT_UNREACHABLE
    except TyrantConnectionError as exc:
        if interrupted(exc):
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        _error(f"cannot reach the Tyrant server at {_url(args_list)}: {exc}. Start one with "
               f"'{PROG} serve PATH', or point --url (or TYRANT_URL) at one.")
        return EXIT_UNREACHABLE
    except TyrantCommandError as exc:
        _error(f"the server refused: {exc}")
        return EXIT_FAILED
    except TyrantError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, like other filters.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse: --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except OSError as exc:  # writing the output or reading the input failed
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{(exc.strerror or str(exc)).lower()}")
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line, with what a report needs
        if os.environ.get("DOQU_TYRANT_TRACEBACK"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (run with "
               "DOQU_TYRANT_TRACEBACK=1 to see where, and please report it)")
        return EXIT_FAILED


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _url(argv: list[str]) -> str:
    """The URL in effect, for messages (the last ``--url`` wins)."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--url" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--url="):
            found = arg[len("--url="):]
    return found or os.environ.get("TYRANT_URL") or DEFAULT_URL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
