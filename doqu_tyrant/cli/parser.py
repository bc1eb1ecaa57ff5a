"""The command line's grammar.

The global options ``--url``, ``--timeout`` and ``-q`` are accepted before
the command and after it (``doqu-tyrant export --url tyrant://h:1978 -o f``);
given in both places, the one after the command wins. ``serve`` hands
everything after it to the server's own parser, so it is recognised before
argparse sees the line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from doqu_tyrant.tyrant.options import (
    ArgumentParser,
    non_negative_int_arg,
    positive_int_arg,
    timeout_arg,
)

from .connect import DEFAULT_TIMEOUT, DEFAULT_URL
from .rebalance import add_parser as add_rebalance
from .records import cmd_get, cmd_put, cmd_query, cmd_stat
from .status import PROG
from .transfer import DEFAULT_BATCH, cmd_export, cmd_import

__all__ = ["build_parser", "split_serve", "glue_order"]


class Parser(ArgumentParser):
    """Every usage error reads ``doqu-tyrant: error: ...`` (status 2)."""

    error_name = PROG


EPILOG = """\
global options (--url, --timeout, -q) go before or after the command.

exit status: 0 ok; 1 refused or not found; 2 bad usage, URL or lookup;
3 server unreachable; 4 malformed import input; 130 interrupted.

examples:
  doqu-tyrant serve people.tct                  # a server on 127.0.0.1:1978
  doqu-tyrant put u1 name=Alice age=30
  doqu-tyrant query --where age__gt=25 --order -age --numeric --limit 10
  doqu-tyrant export -o people.jsonl
  doqu-tyrant import people.jsonl --url tyrant://backup:1978
  doqu-tyrant rebalance --from tyrant://a:1978 tyrant://b:1978 \\
      --to tyrant://a:1978 tyrant://b:1978 tyrant://c:1978
"""

QUERY_HELP = """\
conditions are COLUMN__LOOKUP=VALUE (a bare COLUMN=VALUE is text equality);
an empty COLUMN is the primary key (--where __startswith=user:). Lookups:
  eq contains startswith endswith regex iregex   text
  gt gte lt lte between numeq numoreq            numbers (between=LOW,HIGH)
  in all any                                     comma-separated tokens
  search search_all search_any search_expr       full text
  exists                                         true or false
and the server's operator names (streq, strinc, ..., ftsex); append __noidx
to keep the server from using an index. Keys print escaped where they are
not printable UTF-8 (\\xHH, \\n, \\\\); get -e and put -e read that form.
"""

URL_HELP = ("server to talk to, tyrant://HOST[:PORT][?timeout=S&pool_size=N] (default: "
            f"$TYRANT_URL, else {DEFAULT_URL})")


def _global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--url``, ``--timeout``, ``-q``; after the command they override (SUPPRESS:
    not given there leaves the value given before the command)."""
    default: Callable[[object], object] = (lambda value: value) if top else \
        (lambda value: argparse.SUPPRESS)
    parser.add_argument("--url", default=default(None), metavar="URL", help=URL_HELP)
    parser.add_argument("--timeout", type=timeout_arg, default=default(None),
                        metavar="SECONDS",
                        help="give up on a silent server after this long "
                        f"(default: {DEFAULT_TIMEOUT:g}, or the URL's ?timeout=)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="no progress bar or summary, even on a terminal")


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Command line for Tokyo Tyrant table databases: run the bundled "
        "server, read, write, query, export and import records.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "serve", help="run the bundled Tyrant server on a database file",
        description="Run the bundled server: doqu-tyrant serve [--url tyrant://H:P | --host H "
        "--port P] [--dump-dir DIR] ... PATH. See doqu-tyrant serve --help.", add_help=False,
    )  # fmt: skip

    p = sub.add_parser("stat", help="show the server's status report")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("get", help="show one record")
    p.add_argument("key", metavar="KEY")
    p.add_argument("--json", action="store_true", help="as an export line")
    p.add_argument("-e", "--escaped", action="store_true",
                   help="KEY is in the escaped form that query --keys prints")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "put", help="store a record: put KEY col=value ...",
        description="Store the record KEY with the given columns, replacing any old record.",
    )  # fmt: skip
    p.add_argument("key", metavar="KEY")
    p.add_argument("columns", nargs="*", metavar="COLUMN=VALUE")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--merge", action="store_true",
                      help="update these columns, keep the record's others")
    mode.add_argument("--keep", action="store_true",
                      help="store only if KEY is absent (else exit 1)")
    p.add_argument("-e", "--escaped", action="store_true",
                   help="KEY, columns and values are in the escaped form that get prints")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser(
        "query", help="find records with lookups", epilog=QUERY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--where", action="append", metavar="COND",
                   help="keep records matching COND (repeatable; all must hold)")
    p.add_argument("--exclude", "--where-not", action="append", metavar="COND",
                   help="drop records matching COND (repeatable)")
    p.add_argument("--order", metavar="[-]COLUMN", help="sort by COLUMN; -COLUMN descending")
    p.add_argument("-n", "--numeric", action="store_true",
                   help="sort the --order column as numbers, not text")
    p.add_argument("--limit", type=non_negative_int_arg, metavar="N", help="at most N records")
    p.add_argument("--offset", type=non_negative_int_arg, metavar="N", help="skip the first N")
    p.add_argument("--columns", metavar="A,B", help="show only these columns")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true",
                       help="JSON lines, the export format (pipe into import)")
    shape.add_argument("--count", action="store_true", help="print only how many match")
    shape.add_argument("--keys", action="store_true", help="print only the keys")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "export", help="write every record as JSON lines",
        description='Write every record as a JSON line {"key": ..., "record": {...}} '
        "to FILE or stdout. Records that are not UTF-8 carry \"encoding\": \"base64\".",
    )  # fmt: skip
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="store records from JSON lines",
        description="Store the records of JSON lines (the export format) read from FILE "
        "or stdin, in batches. A malformed line stops the import: everything before it is "
        "stored, nothing from it on, and the message names the line.",
    )  # fmt: skip
    p.add_argument("input", nargs="?", metavar="FILE", help="read FILE (default: stdin)")
    p.add_argument("--batch", type=positive_int_arg, default=DEFAULT_BATCH, metavar="N",
                   help="records per request (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="check every line, send nothing")
    p.set_defaults(func=cmd_import)

    add_rebalance(sub, DEFAULT_BATCH)

    for name, command in sub.choices.items():
        if name != "serve":
            _global_options(command, top=False)
    return parser


def split_serve(argv: list[str]) -> tuple[list[str], dict[str, str | None]] | None:
    """``(server arguments, global options before serve)`` when the command is
    ``serve``, else None."""
    given: dict[str, str | None] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in ("--url", "--timeout"):
            if eq:
                given[name] = value
                i += 1
            else:
                given[name] = argv[i + 1] if i + 1 < len(argv) else None
                i += 2
        elif arg in ("-q", "--quiet"):
            given[arg] = None
            i += 1
        elif arg == "serve":
            return argv[i + 1 :], given
        else:
            return None
    return None


def glue_order(argv: list[str]) -> list[str]:
    """``--order -age`` as ``--order=-age``: argparse would take ``-age`` for an option."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--":
            out.append(arg)
            out.extend(it)
            break
        if arg == "--order":
            value = next(it, None)
            out.append(arg if value is None else f"--order={value}")
        else:
            out.append(arg)
    return out
