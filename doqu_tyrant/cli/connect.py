"""The client a command talks through, built from ``--url`` and ``--timeout``."""

from __future__ import annotations

import argparse

from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant.options import parse_url

from .status import EXIT_USAGE, CliError

DEFAULT_URL = "tyrant://127.0.0.1:1978"
DEFAULT_TIMEOUT = 60.0


def client(args: argparse.Namespace) -> Tyrant:
    """A client for ``args.url``; the URL's own options win over ``--timeout``'s
    default, an explicit ``--timeout`` wins over the URL (keywords win, as in
    ``Tyrant.from_url``)."""
    try:
        host, port, options = parse_url(args.url)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.timeout is not None:
        options["timeout"] = args.timeout
    options.setdefault("timeout", DEFAULT_TIMEOUT)
    options.setdefault("pool_size", 2)
    return Tyrant(host, port, **options)


def db_type(client: Tyrant) -> str:
    return client.stat().get("type", "")


def need_table(client: Tyrant, args: argparse.Namespace, what: str) -> None:
    kind = db_type(client)
    if kind != "table":
        raise CliError(
            f"{what} works on table databases; the server at {args.url} holds a "
            f"{kind or 'non-table'} database"
        )
