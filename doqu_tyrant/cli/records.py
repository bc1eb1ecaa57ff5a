"""The commands on single records and queries: ``stat``, ``get``, ``put``, ``query``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from doqu_tyrant.tyrant.commands import pk_bytes, record_args

from . import connect
from .conditions import conditions
from .jsonlines import record_to_json, value_to_json
from .progress import terminal
from .status import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .text import escape, print_table, unescape


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")


def _argument(args: argparse.Namespace, text: str, what: str) -> bytes:
    """An argument's bytes: as given, or decoded from the escaped form (``-e``)."""
    raw = os.fsencode(text)  # the bytes given, even when they are not UTF-8
    if getattr(args, "escaped", False):
        try:
            raw = unescape(raw)
        except ValueError as exc:
            raise CliError(f"{what} {text!r}: {exc}", EXIT_USAGE) from None
    return raw


def _key(args: argparse.Namespace) -> bytes:
    key = _argument(args, args.key, "the key")
    if not key:
        raise CliError("the key is empty", EXIT_USAGE)
    return key


def cmd_stat(args: argparse.Namespace) -> int:
    with connect.client(args) as client:
        stat = client.stat()
    if args.json:
        print(json.dumps(stat, ensure_ascii=False))
    else:
        width = max((len(name) for name in stat), default=0)
        for name, value in stat.items():
            print(f"{name.ljust(width)}  {value}")
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    key = _key(args)
    shown = escape(key)
    with connect.client(args) as client:
        if connect.db_type(client) == "table":
            record: Any = client.table_get(key, raw=True)
            if record is None:
                raise CliError(f"no record with key {shown!r}", EXIT_FAILED)
            if args.json:
                print(record_to_json(key, record))
            else:
                names = {name: escape(name) for name in record}
                width = max((len(n) for n in names.values()), default=0)
                for name, value in record.items():
                    print(f"{names[name].ljust(width)}  {escape(value)}")
            return EXIT_OK
        data: Any = client.get(key)
        if data is None:
            raise CliError(f"no record with key {shown!r}", EXIT_FAILED)
        if args.json:
            print(value_to_json(key, data))
        else:
            sys.stdout.buffer.write(data)
            if sys.stdout.isatty() and not data.endswith(b"\n"):
                sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_put(args: argparse.Namespace) -> int:
    key = _key(args)
    if not args.columns:
        raise CliError("put: no COLUMN=VALUE given; nothing would be stored but an empty "
                       "record (write put KEY COLUMN=VALUE ...)", EXIT_USAGE)
    record: dict[bytes, bytes] = {}
    for item in args.columns:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"put: expected COLUMN=VALUE, got {item!r}", EXIT_USAGE)
        column = _argument(args, name, "the column")
        if column in record:
            raise CliError(f"put: column {escape(column)!r} is given twice", EXIT_USAGE)
        record[column] = _argument(args, value, f"the value of {name!r}")
    try:
        record_args(record, pk_bytes(key))
    except (ValueError, TypeError) as exc:
        raise CliError(f"put: {exc}", EXIT_USAGE) from None
    with connect.client(args) as client:
        connect.need_table(client, args, "put")
        if args.keep:
            if not client.table_putkeep(key, record):
                raise CliError(f"a record with key {escape(key)!r} exists (--keep)",
                               EXIT_FAILED)
        elif args.merge:
            current: Any = client.table_get(key, {}, raw=True)
            current.update(record)
            client.table_put(key, current)
        else:
            client.table_put(key, record)
    return EXIT_OK


def build_query(client: Any, args: argparse.Namespace) -> Any:
    """The native query of ``query``'s options; ``CliError`` (status 2) when bad."""
    if args.numeric and not args.order:
        raise CliError("--numeric sorts the --order column as numbers; give --order COLUMN",
                       EXIT_USAGE)
    where = conditions(args.where, "--where")
    exclude = conditions(args.exclude, "--exclude")
    query = client.query
    try:
        for lookup in where:
            query = query.filter(**lookup)
        for lookup in exclude:
            query = query.exclude(**lookup)
        if args.order:
            query = query.order_by(args.order, numeric=args.numeric)
        if args.limit is not None or args.offset:
            query = query.limit(args.limit, args.offset or 0)
        if args.columns:
            names = [n for n in args.columns.split(",") if n]
            query = query.columns("", *names)
    except (ValueError, TypeError) as exc:
        message = str(exc).split(" (use .condition()", 1)[0]
        raise CliError(f"bad query: {message}", EXIT_USAGE) from None
    return query


def cmd_query(args: argparse.Namespace) -> int:
    with connect.client(args) as client:
        query = build_query(client, args)
        connect.need_table(client, args, "query")
        out = sys.stdout
        if args.count:
            print(query.count())
            return EXIT_OK
        if args.keys:
            for pk in query.iter_keys(raw=True):
                out.write(escape(pk) + "\n")
            return EXIT_OK
        items = query.iter_items(raw=True)
        if args.json:
            buf = sys.stdout.buffer
            for pk, record in items:
                buf.write(record_to_json(pk, record).encode() + b"\n")
            buf.flush()
            return EXIT_OK
        rows = list(items)
        if rows:
            print_table(rows, out)
        if terminal(args.quiet) is not None:
            print(f"({_records(len(rows))})", file=sys.stderr)
    return EXIT_OK
