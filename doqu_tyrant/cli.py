"""The ``doqu-tyrant`` command line (also ``python -m doqu_tyrant``).

Subcommands: ``serve`` (the bundled server), ``stat``, ``get``, ``put``,
``query``, ``export`` and ``import``. Every subcommand but ``serve`` talks to
the server named by ``--url`` (default ``$TYRANT_URL``, else
``tyrant://127.0.0.1:1978``) through :class:`doqu_tyrant.tyrant.Tyrant`.

Export format: JSON lines, one record per line::

    {"key": "u1", "record": {"name": "Alice", "age": "30"}}

Columns keep their stored order. A record whose key, column names or values
are not valid UTF-8 is written with ``"encoding": "base64"``, and then the
key, every column name and every value are base64 of the raw bytes, so any
table survives ``export | import`` byte for byte. A key-value database (hash,
B+ tree, fixed-length, on-memory) exports ``{"key": ..., "value": ...}``.

Exit status: 0 success; 1 the server refused or lacks what was asked (a
missing key, an existing key with ``put --keep``, a failed batch); 2 bad
usage (unknown option or lookup, malformed ``col=value``); 3 the server
cannot be reached (refused, timed out, dropped); 4 malformed input to
``import`` (the message names the line); 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import concurrent.futures
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import IO, Any

from doqu_tyrant.tyrant import (
    Tyrant,
    TyrantCommandError,
    TyrantConnectionError,
    TyrantError,
    TyrantTimeout,
    TyrantUnsafeWrite,
    parse_url,
)

__all__ = [
    "main",
    "build_parser",
    "record_to_json",
    "parse_line",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_UNREACHABLE",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
]

PROG = "doqu-tyrant"
DEFAULT_URL = "tyrant://127.0.0.1:1978"
DEFAULT_TIMEOUT = 60.0
DEFAULT_BATCH = 1000
# A batch is also sent once its input reaches this many bytes, so one request
# stays far below the server's frame limit whatever the record sizes.
BATCH_BYTES = 8 << 20

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_INPUT = 4
EXIT_INTERRUPTED = 130

_FIELDS_TABLE = ("key", "record", "encoding")
_FIELDS_KV = ("key", "value", "encoding")
_CELL_WIDTH = 40


class CliError(Exception):
    """An error to report as ``doqu-tyrant: error: MESSAGE`` with an exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class LineError(ValueError):
    """One input line of ``import`` cannot be imported as it stands."""


# ---------------------------------------------------------------------------
# The JSON lines format


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# The json module's own string encoder (C-accelerated), as ``json.dumps(...,
# ensure_ascii=False)`` uses it: export lines are built from it directly.
_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]


def record_to_json(key: bytes, record: dict[bytes, bytes]) -> str:
    """One export line (without newline) for a table record given as bytes."""
    q = _quote
    try:
        columns = ",".join([q(n.decode()) + ":" + q(v.decode()) for n, v in record.items()])
        return '{"key":' + q(key.decode()) + ',"record":{' + columns + "}}"
    except UnicodeDecodeError:
        obj = {
            "key": _b64(key),
            "record": {_b64(name): _b64(value) for name, value in record.items()},
            "encoding": "base64",
        }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def value_to_json(key: bytes, value: bytes) -> str:
    """One export line (without newline) for a key-value record."""
    try:
        obj: dict[str, Any] = {"key": key.decode(), "value": value.decode()}
    except UnicodeDecodeError:
        obj = {"key": _b64(key), "value": _b64(value), "encoding": "base64"}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _text_field(obj: dict[str, Any], name: str, what: str, b64: bool) -> str | bytes:
    value = obj[name] if name in obj else None
    if not isinstance(value, str):
        got = "nothing" if name not in obj else f"{type(value).__name__} {value!r}"[:60]
        raise LineError(f"{what} must be a JSON string, got {got}")
    if not b64:
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LineError(f"{what} is not valid base64: {value[:40]!r}") from None


def parse_line(line: bytes, table: bool = True) -> tuple[str | bytes, Any]:
    """Validate one import line; return ``(key, record)`` (``(key, value)`` when
    ``table`` is false). Raises :class:`LineError` saying what is wrong."""
    try:
        obj = json.loads(line.decode())
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise LineError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {type(obj).__name__}")
    fields = _FIELDS_TABLE if table else _FIELDS_KV
    for name in obj:
        if name not in fields:
            if name == ("value" if table else "record"):
                kind = "table" if table else "key-value"
                raise LineError(
                    f"field {name!r} does not fit a {kind} database "
                    f"(expected the fields {', '.join(fields)})"
                )
            raise LineError(f"unknown field {name!r} (expected {', '.join(fields)})")
    encoding = obj.get("encoding")
    if encoding not in (None, "base64"):
        raise LineError(f"unknown encoding {encoding!r} (only \"base64\" is known)")
    b64 = encoding == "base64"
    key = _text_field(obj, "key", "the key", b64)
    if not key:
        raise LineError("the key is empty")
    if table and ("\0" in key if isinstance(key, str) else b"\0" in key):
        raise LineError("the key contains a NUL character")
    if not table:
        return key, _text_field(obj, "value", "the value", b64)
    record = obj.get("record")
    if not isinstance(record, dict):
        got = "nothing" if "record" not in obj else type(record).__name__
        raise LineError(f"the record must be a JSON object of column: value, got {got}")
    if not b64:
        for name, value in record.items():
            if not name:
                raise LineError("a column name is empty")
            if not isinstance(value, str):
                raise LineError(
                    f"column {name!r} must be a string, got {type(value).__name__} "
                    f"{json.dumps(value)[:40]}; write it as {json.dumps(str(value))[:40]}"
                )
            if "\0" in name or "\0" in value:
                raise LineError(f"column {name!r} contains a NUL character")
        return key, record
    out: dict[bytes, bytes] = {}
    for name in record:
        name_b = _text_field({"n": name}, "n", "a column name", True)
        value_b = _text_field(record, name, f"column {name!r}", True)
        assert isinstance(name_b, bytes) and isinstance(value_b, bytes)
        if not name_b:
            raise LineError("a column name is empty")
        if b"\0" in name_b or b"\0" in value_b:
            raise LineError(f"column {name_b!r} contains a NUL byte")
        out[name_b] = value_b
    return key, out


# ---------------------------------------------------------------------------
# Progress on a terminal


class Progress:
    """A one-line progress bar on ``stream``, redrawn at most ten times a second.

    Disabled (every call a no-op) when ``stream`` is None.
    """

    def __init__(self, label: str, stream: IO[str] | None, total: int | None = None) -> None:
        self.label = label
        self.stream = stream
        self.total = total
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, done: int, fraction: float | None = None, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        if fraction is None and self.total:
            fraction = done / self.total
        rate = done / max(now - self.started, 1e-6)
        text = f"{self.label} {done:,} records  {rate:,.0f}/s"
        width = shutil.get_terminal_size((80, 24)).columns
        if fraction is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            bar_width = max(10, min(40, width - len(text) - 10))
            filled = int(bar_width * fraction)
            text = f"{self.label} {fraction:4.0%} [{'#' * filled}{' ' * (bar_width - filled)}]" \
                f" {done:,} records  {rate:,.0f}/s"
        self.stream.write("\r" + text[: width - 1] + "\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        """Erase the bar."""
        if self.stream is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _terminal(quiet: bool) -> IO[str] | None:
    """stderr when it is a terminal (and not ``--quiet``): where progress goes."""
    if quiet:
        return None
    try:
        return sys.stderr if sys.stderr.isatty() else None
    except (AttributeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Helpers


def _client(args: argparse.Namespace) -> Tyrant:
    url = args.url if "//" in args.url else "tyrant://" + args.url  # HOST:PORT is fine too
    try:
        host, port, options = parse_url(url)
    except ValueError as exc:
        raise CliError(f"bad --url {args.url!r}: {exc}", EXIT_USAGE) from None
    options.setdefault("timeout", args.timeout)
    options.setdefault("pool_size", 2)
    client = Tyrant(host, port, **options)
    return client


def _db_type(client: Tyrant) -> str:
    return client.stat().get("type", "")


def _is_table(db_type: str) -> bool:
    return db_type == "table"


def _need_table(client: Tyrant, args: argparse.Namespace, what: str) -> None:
    db_type = _db_type(client)
    if not _is_table(db_type):
        raise CliError(
            f"{what} works on table databases; the server at {args.url} holds a "
            f"{db_type or 'non-table'} database"
        )


def _cell(text: str, width: int = _CELL_WIDTH) -> str:
    """A value made safe for one table cell: control characters escaped, cut to width."""
    if not text.isprintable():
        text = "".join(
            ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
            for ch in text
        )
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text


def _print_table(rows: list[tuple[str, dict[str, str]]], out: IO[str]) -> None:
    columns: dict[str, None] = {}
    for _, record in rows:
        for name in record:
            columns.setdefault(name, None)
    header = ["key", *columns]
    lines = [header] + [
        [_cell(pk)] + [_cell(record.get(name, "")) for name in columns] for pk, record in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def _decode_record(pk: bytes, record: dict[bytes, bytes]) -> tuple[str, dict[str, str]]:
    """For display: invalid UTF-8 shown with replacement characters."""
    return pk.decode("utf-8", "replace"), {
        n.decode("utf-8", "replace"): v.decode("utf-8", "replace") for n, v in record.items()
    }


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "n", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _conditions(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    """``--where col__lookup=value`` arguments as lookup keyword arguments."""
    lookups: dict[str, Any] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep:
            raise CliError(
                f"{option} {item!r}: expected COLUMN[__LOOKUP]=VALUE, e.g. age__gt=30",
                EXIT_USAGE,
            )
        if name.endswith("__exists") or name.endswith("__exists__noidx"):
            try:
                lookups[name] = _parse_bool(value)
            except ValueError as exc:
                raise CliError(f"{option} {item!r}: {exc}", EXIT_USAGE) from None
        else:
            lookups[name] = value
    return lookups


def _build_query(client: Tyrant, args: argparse.Namespace) -> Any:
    query = client.query
    try:
        for item in args.where or ():
            query = query.filter(**_conditions([item], "--where"))
        for item in args.exclude or ():
            query = query.exclude(**_conditions([item], "--exclude"))
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


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    """stdout, or ``path`` written through a temporary file renamed at the end,
    so a failed export never leaves a truncated file behind."""
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")


def _say(message: str, quiet: bool) -> None:
    """A summary line on stderr, shown only on a terminal."""
    if _terminal(quiet) is not None:
        print(message, file=sys.stderr)


# ---------------------------------------------------------------------------
# Subcommands


def cmd_stat(args: argparse.Namespace) -> int:
    with _client(args) as client:
        stat = client.stat()
    if args.json:
        print(json.dumps(stat, ensure_ascii=False))
    else:
        width = max((len(name) for name in stat), default=0)
        for name, value in stat.items():
            print(f"{name.ljust(width)}  {value}")
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    key = os.fsencode(args.key)  # the bytes given, even when they are not UTF-8
    with _client(args) as client:
        db_type = _db_type(client)
        if _is_table(db_type):
            record: Any = client.table_get(key, raw=True)
            if record is None:
                raise CliError(f"no record with key {args.key!r}", EXIT_FAILED)
            if args.json:
                print(record_to_json(key, record))
            else:
                pk, text = _decode_record(key, record)
                width = max((len(name) for name in text), default=0)
                for name, value in text.items():
                    print(f"{_cell(name, 1 << 30).ljust(width)}  {_cell(value, 1 << 30)}")
            return EXIT_OK
        data: Any = client.get(key)
        if data is None:
            raise CliError(f"no record with key {args.key!r}", EXIT_FAILED)
        if args.json:
            print(value_to_json(key, data))
        else:
            sys.stdout.buffer.write(data)
            if sys.stdout.isatty() and not data.endswith(b"\n"):
                sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_put(args: argparse.Namespace) -> int:
    key = os.fsencode(args.key)
    record: dict[bytes, bytes] = {}
    for item in args.columns:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"put: expected COLUMN=VALUE, got {item!r}", EXIT_USAGE)
        record[os.fsencode(name)] = os.fsencode(value)
    try:
        from doqu_tyrant.tyrant.commands import pk_bytes, record_args

        record_args(record, pk_bytes(key))
    except (ValueError, TypeError) as exc:
        raise CliError(f"put: {exc}", EXIT_USAGE) from None
    with _client(args) as client:
        _need_table(client, args, "put")
        if args.keep:
            if not client.table_putkeep(key, record):
                raise CliError(f"a record with key {args.key!r} exists (--keep)", EXIT_FAILED)
        elif args.merge:
            current: Any = client.table_get(key, {}, raw=True)
            current.update(record)
            client.table_put(key, current)
        else:
            client.table_put(key, record)
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _need_table(client, args, "query")
        query = _build_query(client, args)
        out = sys.stdout
        if args.count:
            print(query.count())
            return EXIT_OK
        if args.keys:
            for pk in query.iter_keys(raw=True):
                out.write(pk.decode("utf-8", "replace") + "\n")
            return EXIT_OK
        items = query.iter_items(raw=True)
        if args.json:
            buf = sys.stdout.buffer
            for pk, record in items:
                buf.write(record_to_json(pk, record).encode() + b"\n")
            buf.flush()
            return EXIT_OK
        rows = [_decode_record(pk, record) for pk, record in items]
        if rows:
            _print_table(rows, out)
        _say(f"({_records(len(rows))})", args.quiet)
    return EXIT_OK


def _export_table(client: Tyrant, out: IO[bytes], progress: Progress) -> int:
    done = 0
    lines: list[bytes] = []
    for pk, record in client.query.iter_items(raw=True):
        lines.append(record_to_json(pk, record).encode())
        done += 1
        if len(lines) >= 512:
            lines.append(b"")
            out.write(b"\n".join(lines))
            lines.clear()
            progress.update(done)
    if lines:
        lines.append(b"")
        out.write(b"\n".join(lines))
    return done


def _export_kv(client: Tyrant, out: IO[bytes], progress: Progress) -> int:
    done = 0
    batch: list[bytes] = []

    def flush() -> int:
        values = client.mget(batch)
        written = 0
        for key in dict.fromkeys(batch):
            value = values.get(key)
            if value is None:  # removed since the key was listed
                continue
            out.write(value_to_json(key, value).encode() + b"\n")
            written += 1
        batch.clear()
        return written

    for key in client.iterkeys(batch=512):
        batch.append(key)
        if len(batch) >= 512:
            done += flush()
            progress.update(done)
    if batch:
        done += flush()
    return done


def cmd_export(args: argparse.Namespace) -> int:
    start = time.monotonic()
    with _client(args) as client:
        db_type = _db_type(client)
        # The bar only when the data does not go to the terminal or into a pipe.
        to_file = args.output not in (None, "-")
        stream = _terminal(args.quiet) if to_file else None
        total = client.rnum() if stream is not None else None
        progress = Progress("export", stream, total)
        with _output(args.output) as out:
            if _is_table(db_type):
                done = _export_table(client, out, progress)
            else:
                done = _export_kv(client, out, progress)
        progress.finish()
    if to_file:
        _say(f"exported {_records(done)} to {args.output} in "
             f"{time.monotonic() - start:.1f} s", args.quiet)
    return EXIT_OK


class _ImportState:
    """How far an import got, for the message when it stops early."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.imported = 0
        self.batch_first = 0  # first input line of the pending batch
        self.last_line = 0  # last line of the last batch the server acknowledged

    def done_text(self) -> str:
        if not self.imported:
            return "nothing was imported"
        return (f"imported {_records(self.imported)} (every record through line "
                f"{self.last_line} of {self.source})")


def cmd_import(args: argparse.Namespace) -> int:
    path = args.input
    source = "stdin" if path in (None, "-") else path
    try:
        stream: IO[bytes] = (sys.stdin.buffer if path in (None, "-")
                             else open(path, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    size: int | None = None
    with contextlib.suppress(OSError, ValueError):
        st = os.fstat(stream.fileno())
        import stat as stat_module

        if stat_module.S_ISREG(st.st_mode) and st.st_size:
            size = st.st_size
    state = _ImportState(source)
    start = time.monotonic()
    progress = Progress("import", _terminal(args.quiet))
    try:
        with _client(args) as client, stream:
            table = True if args.dry_run else _is_table(_db_type(client))
            _import(client, args, table, stream, state, progress, size)
    except KeyboardInterrupt:
        progress.finish()
        print(f"{PROG}: interrupted; {state.done_text()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.finish()
    if args.dry_run:
        _say(f"checked {_records(state.imported)}: all valid (nothing was sent)", args.quiet)
    else:
        _say(f"imported {_records(state.imported)} in {time.monotonic() - start:.1f} s",
             args.quiet)
    return EXIT_OK


def _send_batch(client: Tyrant, table: bool, batch: list[tuple[Any, Any]]) -> None:
    if table:
        # MISC putlist with records serialised here: every line was checked
        # already, so the client need not check them again.
        client.misc("putlist", _putlist_args(batch))
    else:
        with client.pipeline() as pl:
            for key, value in batch:
                pl.put(key, value)
            pl.execute()


def _import(client: Tyrant, args: argparse.Namespace, table: bool, stream: IO[bytes],
            state: _ImportState, progress: Progress, size: int | None) -> None:
    """Read, check and send; one batch is on its way while the next is read."""
    batch: list[tuple[Any, Any]] = []
    batch_bytes = 0
    read = 0
    last_line = 0
    in_flight: tuple[concurrent.futures.Future[None], int, int, int] | None = None

    def settle() -> None:
        """Wait for the batch on its way; account for it or report its failure."""
        nonlocal in_flight
        if in_flight is None:
            return
        future, count, first, last = in_flight
        in_flight = None
        try:
            future.result()
        except TyrantUnsafeWrite as exc:
            raise CliError(f"lines {first}-{last} were not sent: {exc}; {state.done_text()}",
                           EXIT_FAILED) from None
        except TyrantCommandError as exc:
            raise CliError(
                f"the server refused the batch of lines {first}-{last} ({exc}); it may be "
                f"partly stored; {state.done_text()}", EXIT_FAILED
            ) from None
        except TyrantError as exc:
            code = EXIT_UNREACHABLE if isinstance(exc, TyrantConnectionError | TyrantTimeout) \
                else EXIT_FAILED
            raise CliError(
                f"{exc} while sending lines {first}-{last}, which may or may not be stored; "
                f"{state.done_text()}", code
            ) from None
        state.imported += count
        state.last_line = last

    def send() -> None:
        nonlocal batch, batch_bytes, in_flight
        if not batch:
            return
        settle()
        if args.dry_run:
            state.imported += len(batch)
            state.last_line = last_line
        else:
            future = sender.submit(_send_batch, client, table, batch)
            in_flight = (future, len(batch), state.batch_first, last_line)
        batch = []
        batch_bytes = 0
        progress.update(state.imported, read / size if size else None)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="import") as sender:
        try:
            for lineno, line in enumerate(stream, 1):
                read += len(line)
                if not line.strip():
                    continue
                try:
                    item = parse_line(line, table)
                except LineError as exc:
                    send()  # everything before the bad line goes in: the report is exact
                    settle()
                    progress.finish()
                    resume = (f"fix it and resume with: tail -n +{lineno} {state.source} | "
                              f"{PROG} --url {args.url} import" if state.source != "stdin" else
                              f"fix it and send lines {lineno} onwards again")
                    raise CliError(
                        f"line {lineno} of {state.source}: {exc}; {state.done_text()}; "
                        f"nothing from line {lineno} on was sent; {resume}", EXIT_BAD_INPUT
                    ) from None
                if not batch:
                    state.batch_first = lineno
                batch.append(item)
                batch_bytes += len(line)
                last_line = lineno
                if len(batch) >= args.batch or batch_bytes >= BATCH_BYTES:
                    send()
            send()
            settle()
        finally:
            if in_flight is not None:  # stopped early: let the request on its way finish
                future, count, _first, last = in_flight
                if not future.cancel():
                    with contextlib.suppress(Exception):
                        future.result()
                        state.imported += count
                        state.last_line = last
    progress.update(state.imported, 1.0 if size else None, force=True)


def _putlist_args(batch: list[tuple[Any, Any]]) -> list[bytes]:
    """``pk, serialized record, ...`` for MISC putlist (spec §6.4 and §5.1)."""
    args: list[bytes] = []
    append = args.append
    for key, record in batch:
        if isinstance(key, str):
            append(key.encode())
            append("\0".join(chain.from_iterable(record.items())).encode())
        else:
            append(key)
            append(b"\0".join(chain.from_iterable(record.items())))
    return args


def cmd_serve(argv: list[str]) -> int:
    """Run the bundled server with the server's own options."""
    try:
        from doqu_tyrant.server import __main__ as server_main
    except (ImportError, OSError) as exc:
        raise CliError(
            f"the bundled server cannot start: {exc}. It needs the Tokyo Cabinet library "
            "(Debian: apt-get install libtokyocabinet9)", EXIT_FAILED
        ) from None
    return int(server_main.main(argv) or 0)


# ---------------------------------------------------------------------------
# The parser


EPILOG = """\
exit status: 0 ok; 1 refused or not found; 2 bad usage or lookup;
3 server unreachable; 4 malformed import input; 130 interrupted.

examples:
  doqu-tyrant serve people.tct                  # a server on 127.0.0.1:1978
  doqu-tyrant put u1 name=Alice age=30
  doqu-tyrant query --where age__gt=25 --order -age --numeric --limit 10
  doqu-tyrant export -o people.jsonl
  doqu-tyrant --url tyrant://backup:1978 import people.jsonl
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
to keep the server from using an index.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Command line for Tokyo Tyrant table databases: run the bundled "
        "server, read, write, query, export and import records.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", default=os.environ.get("TYRANT_URL") or DEFAULT_URL,
        help="server to talk to, tyrant://HOST:PORT (default: $TYRANT_URL, else "
        f"{DEFAULT_URL})",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="give up on a silent server after this long (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar or summary, even on a terminal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "serve", help="run the bundled Tyrant server on a database file",
        description="Run the bundled server: doqu-tyrant serve [--host H] [--port P] "
        "[--dump-dir DIR] ... PATH. The options are those of python -m doqu_tyrant.server; "
        "see doqu-tyrant serve --help.", add_help=False,
    )  # fmt: skip

    p = sub.add_parser("stat", help="show the server's status report")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("get", help="show one record")
    p.add_argument("key", metavar="KEY")
    p.add_argument("--json", action="store_true", help="as an export line")
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
    p.add_argument("-n", "--numeric", action="store_true", help="sort as numbers, not text")
    p.add_argument("--limit", type=_non_negative, metavar="N", help="at most N records")
    p.add_argument("--offset", type=_non_negative, metavar="N", help="skip the first N")
    p.add_argument("--columns", metavar="A,B", help="show only these columns")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true",
                       help="JSON lines, the export format (pipe into import)")
    shape.add_argument("--count", action="store_true", help="print only how many match")
    shape.add_argument("--keys", action="store_true", help="print only the keys")
    _quiet_option(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "export", help="write every record as JSON lines",
        description='Write every record as a JSON line {"key": ..., "record": {...}} '
        "to FILE or stdout. Records that are not UTF-8 carry \"encoding\": \"base64\".",
    )  # fmt: skip
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    _quiet_option(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="store records from JSON lines",
        description="Store the records of JSON lines (the export format) read from FILE "
        "or stdin, in batches. A malformed line stops the import: everything before it is "
        "stored, nothing from it on, and the message names the line.",
    )  # fmt: skip
    p.add_argument("input", nargs="?", metavar="FILE", help="read FILE (default: stdin)")
    p.add_argument("--batch", type=_positive, default=DEFAULT_BATCH, metavar="N",
                   help="records per request (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="check every line, send nothing")
    _quiet_option(p)
    p.set_defaults(func=cmd_import)
    return parser


def _quiet_option(parser: argparse.ArgumentParser) -> None:
    """``-q`` also after the subcommand (it then wins over the global one)."""
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bar or summary")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _split_serve(argv: list[str]) -> list[str] | None:
    """The server's arguments when the subcommand is ``serve``, else None.

    ``serve`` hands everything after it to the server's own parser, so it is
    found before argparse sees the line.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--url", "--timeout"):
            i += 2
        elif arg.startswith(("--url=", "--timeout=")) or arg in ("-q", "--quiet"):
            i += 1
        elif arg == "serve":
            return argv[i + 1:]
        else:
            return None
    return None


def _glue_order(argv: list[str]) -> list[str]:
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


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        serve_args = _split_serve(args_list)
        if serve_args is not None:
            return cmd_serve(serve_args)
        parser = build_parser()
        args, extras = parser.parse_known_args(_glue_order(args_list))
        if extras:
            # ``put KEY --merge a=1``: argparse leaves the columns after an option over.
            if args.command == "put" and not any(x.startswith("-") for x in extras):
                args.columns.extend(extras)
            else:
                parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return int(args.func(args))
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except TyrantTimeout as exc:
        print(f"{PROG}: error: the server at {_url(args_list)} did not answer in time: "
              f"{exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except TyrantConnectionError as exc:
        print(f"{PROG}: error: cannot reach the Tyrant server at {_url(args_list)}: {exc}. "
              f"Start one with '{PROG} serve PATH', or point --url (or TYRANT_URL) at one.",
              file=sys.stderr)
        return EXIT_UNREACHABLE
    except TyrantCommandError as exc:
        print(f"{PROG}: error: the server refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TyrantError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, like other filters.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _url(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--url" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--url="):
            return arg[len("--url="):]
    return os.environ.get("TYRANT_URL") or DEFAULT_URL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
