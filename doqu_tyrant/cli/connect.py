"""The client a command talks through, built from ``--url`` and ``--timeout``."""

from __future__ import annotations

import argparse
from typing import Any

from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant.failover import is_group_url, split_url
from doqu_tyrant.tyrant.options import parse_url

from .status import EXIT_USAGE, CliError

DEFAULT_URL = "tyrant://127.0.0.1:1978"
DEFAULT_TIMEOUT = 60.0


def check_url(url: str) -> dict[str, Any]:
    """The client options of ``url`` (one server, or a failover group
    ``tyrant://a:1978,b:1978``); ``ValueError`` when it is malformed."""
    if is_group_url(url):
        return split_url(url)[1]
    return parse_url(url)[2]


def client(args: argparse.Namespace) -> Tyrant:
    """A client for ``args.url``; the URL's own options win over ``--timeout``'s
    default, an explicit ``--timeout`` wins over the URL (keywords win, as in
    ``Tyrant.from_url``)."""
    try:
        options = check_url(args.url)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    given: dict[str, Any] = {}
    if args.timeout is not None:
        given["timeout"] = args.timeout
    elif "timeout" not in options:
        given["timeout"] = DEFAULT_TIMEOUT
    if "pool_size" not in options:
        given["pool_size"] = 2
    return Tyrant.from_url(args.url, **given)


def db_type(client: Tyrant) -> str:
    return client.stat().get("type", "")


def need_table(client: Tyrant, args: argparse.Namespace, what: str) -> None:
    kind = db_type(client)
    if kind != "table":
        raise CliError(
            f"{what} works on table databases; the server at {args.url} holds a "
            f"{kind or 'non-table'} database"
        )
