"""``export`` and ``import``: whole databases as JSON lines (:mod:`.jsonlines`)."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shlex
import stat as stat_module
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from itertools import chain
from typing import IO, Any

from doqu_tyrant.tyrant import (
    Tyrant,
    TyrantCommandError,
    TyrantConnectionError,
    TyrantError,
    TyrantTimeout,
    TyrantUnsafeWrite,
)
from doqu_tyrant.tyrant.options import check_output_file

from . import connect
from .jsonlines import LineError, parse_line, record_to_json, value_to_json
from .progress import Progress, terminal
from .status import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    PROG,
    CliError,
    interrupted,
)

DEFAULT_BATCH = 1000
# A batch is also sent once its input reaches this many bytes, so one request
# stays far below the server's frame limit whatever the record sizes.
BATCH_BYTES = 8 << 20


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")


def _say(message: str, quiet: bool) -> None:
    """A summary line on stderr, shown only on a terminal."""
    if terminal(quiet) is not None:
        print(message, file=sys.stderr)


# ---------------------------------------------------------------------------
# export


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    """stdout, or ``path`` written through a temporary file renamed at the end,
    so a failed or interrupted export leaves any existing file as it was."""
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if os.path.exists(path) and not os.path.isfile(path):  # a device or a pipe: as it is
        with open(path, "wb", buffering=1 << 20) as f:
            yield f
        return
    target = os.path.realpath(path)  # a symbolic link: replace the file it names
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".partial",
                               dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
    to_file = args.output not in (None, "-")
    if to_file:
        try:
            check_output_file(args.output)  # before a whole export is spent on it
        except ValueError as exc:
            raise CliError(f"export: {exc}", EXIT_USAGE) from None
    start = time.monotonic()
    with connect.client(args) as client:
        table = connect.db_type(client) == "table"
        # The bar only when the data does not go to the terminal or into a pipe.
        stream = terminal(args.quiet) if to_file else None
        total = client.rnum() if stream is not None else None
        progress = Progress("export", stream, total)
        try:
            with _output(args.output) as out:
                done = (_export_table if table else _export_kv)(client, out, progress)
        finally:
            progress.finish()
    if to_file:
        _say(f"exported {_records(done)} to {args.output} in "
             f"{time.monotonic() - start:.1f} s", args.quiet)
    return EXIT_OK


# ---------------------------------------------------------------------------
# import


_Batch = tuple["concurrent.futures.Future[None]", int, int, int]  # future, records, lines


class _ImportState:
    """How far an import got: what the server acknowledged, for the messages."""

    def __init__(self, args: argparse.Namespace, source: str) -> None:
        self.args = args
        self.source = source
        # (records acknowledged, last line acknowledged, batch on its way), replaced
        # in one assignment so that Ctrl-C never finds it half updated.
        self.ack: tuple[int, int, _Batch | None] = (0, 0, None)
        self.unknown: tuple[int, int] | None = None  # lines whose fate is not known

    @property
    def imported(self) -> int:
        return self.ack[0]

    @property
    def last_line(self) -> int:
        return self.ack[1]

    def done_text(self) -> str:
        if not self.imported:
            return "nothing was imported"
        return (f"imported {_records(self.imported)} (every record through line "
                f"{self.last_line} of {self.source})")

    def resume_text(self, line: int, fix: bool = False) -> str:
        """How to go on from input line ``line``."""
        lead = "fix it and " if fix else ""
        if self.source == "stdin":
            return f"{lead}send lines {line} onwards again"
        command = [PROG, "--url", self.args.url, "import"]
        if self.args.batch != DEFAULT_BATCH:
            command += ["--batch", str(self.args.batch)]
        return (f"{lead}resume with: tail -n +{line} {shlex.quote(self.source)} | "
                f"{shlex.join(command)}")


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
        if stat_module.S_ISREG(st.st_mode) and st.st_size:
            size = st.st_size
    state = _ImportState(args, source)
    start = time.monotonic()
    progress = Progress("import", terminal(args.quiet))
    try:
        with connect.client(args) as client, stream:
            table = True if args.dry_run else connect.db_type(client) == "table"
            _import(client, args, table, stream, state, progress, size)
    except BaseException as exc:
        progress.finish()
        if not interrupted(exc):
            raise
        message = f"{PROG}: interrupted; {state.done_text()}"
        if state.unknown is not None:
            first, last = state.unknown
            message += (f"; lines {first}-{last} were on their way and may or may not be "
                        "stored (sending them again is harmless)")
        print(f"{message}; {state.resume_text(state.last_line + 1)}", file=sys.stderr)
        return EXIT_INTERRUPTED
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


def _in_background(call: Callable[[], None]) -> concurrent.futures.Future[None]:
    """Run ``call`` in a daemon thread (one that never keeps the process alive
    after an interrupted import has reported)."""
    future: concurrent.futures.Future[None] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            call()
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=run, name="import-batch", daemon=True).start()
    return future


def _import(client: Tyrant, args: argparse.Namespace, table: bool, stream: IO[bytes],
            state: _ImportState, progress: Progress, size: int | None) -> None:
    """Read, check and send; one batch is on its way while the next is read.

    A batch counts as imported only once the server has acknowledged it.
    When the import stops early (Ctrl-C included), the batch on its way is
    waited for, so the count and the line to resume from are exact.
    """
    batch: list[tuple[Any, Any]] = []
    batch_bytes = 0
    batch_first = 0
    read = 0
    last_line = 0

    def settle() -> None:
        """Wait for the batch on its way; account for it or report its failure.
        An interrupted wait leaves it on its way (the ``finally`` below)."""
        imported, acked, pending = state.ack
        if pending is None:
            return
        future, count, first, last = pending
        try:
            future.result()
        except TyrantError as exc:
            state.ack = (imported, acked, None)
            if isinstance(exc, TyrantUnsafeWrite):  # refused before sending: nothing stored
                raise CliError(f"lines {first}-{last} were not sent: {exc}; "
                               f"{state.done_text()}; {state.resume_text(first, fix=True)}",
                               EXIT_FAILED) from None
            if isinstance(exc, TyrantCommandError):
                raise CliError(
                    f"the server refused the batch of lines {first}-{last} ({exc}); it may "
                    f"be partly stored; {state.done_text()}; {state.resume_text(first)}",
                    EXIT_FAILED,
                ) from None
            code = EXIT_UNREACHABLE if isinstance(exc, TyrantConnectionError | TyrantTimeout) \
                else EXIT_FAILED
            raise CliError(
                f"{exc} while sending lines {first}-{last}, which may or may not be stored; "
                f"{state.done_text()}; {state.resume_text(first)}", code
            ) from None
        state.ack = (imported + count, last, None)

    def send() -> None:
        nonlocal batch, batch_bytes
        if not batch:
            return
        settle()
        imported, acked, _ = state.ack
        if args.dry_run:
            state.ack = (imported + len(batch), last_line, None)
        else:
            items = batch
            future = _in_background(lambda: _send_batch(client, table, items))
            state.ack = (imported, acked, (future, len(items), batch_first, last_line))
        batch = []
        batch_bytes = 0
        progress.update(state.imported, read / size if size else None)

    try:
        for lineno, line in enumerate(stream, 1):
            read += len(line)
            if not line.strip():
                continue
            try:
                item = parse_line(line, table, first=lineno == 1)
            except LineError as exc:
                send()  # everything before the bad line goes in: the report is exact
                settle()
                progress.finish()
                raise CliError(
                    f"line {lineno} of {state.source}: {exc}; {state.done_text()}; "
                    f"nothing from line {lineno} on was sent; "
                    f"{state.resume_text(lineno, fix=True)}", EXIT_BAD_INPUT
                ) from None
            if not batch:
                batch_first = lineno
            batch.append(item)
            batch_bytes += len(line)
            last_line = lineno
            if len(batch) >= args.batch or batch_bytes >= BATCH_BYTES:
                send()
        send()
        settle()
    finally:
        imported, acked, pending = state.ack
        if pending is not None:  # stopped early: wait for the batch on its way
            future, count, first, last = pending
            try:
                future.result()  # ends by itself: the request has a timeout
            except (Exception, KeyboardInterrupt):  # failed, or a second Ctrl-C
                state.unknown = (first, last)
                state.ack = (imported, acked, None)
            else:
                state.ack = (imported + count, last, None)
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
