"""Update log: append-only files of write requests, read back for RESTORE and REPL.

A directory holds files ``00000001.ulog``, ``00000002.ulog``, … Each file is a
sequence of entries ``c9 ts:u64 sid:u16 mid:u16 size:u32 payload`` (spec §8)
where the payload is the request frame (MISC without its options field)
followed by one result byte. Entries are encoded and parsed with the codec
(:func:`~doqu_tyrant.tyrant.protocol.ulog_entry`,
:func:`~doqu_tyrant.tyrant.protocol.parse_ulog`).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import NamedTuple

from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.errors import TyrantProtocolError

from .rts import UNDO_NONE, Undo

log = logging.getLogger("doqu_tyrant.server")

SUFFIX = ".ulog"
INTENT = ".pending"  # the write being made (see UpdateLog.begin); not a log file
DEFAULT_LIMIT = 1 << 30  # bytes per file before starting the next one
HEAD_SIZE = len(p.ulog_entry(0, 0, 0, b""))
READ_CHUNK = 1 << 20

# Commands whose requests may appear in an update log and be replayed.
LOGGABLE = frozenset({
    p.PUT, p.PUTKEEP, p.PUTCAT, p.PUTSHL, p.PUTNR, p.OUT, p.ADDINT, p.ADDDOUBLE,
    p.SYNC, p.OPTIMIZE, p.VANISH, p.MISC,
})  # fmt: skip

Entry = tuple[int, int, int, bytes]  # ts, sid, mid, payload

_INTENT_MAGIC = b"DQI1"
_INTENT_HEAD = struct.Struct(">IQHHBI")  # log file, log size, sid, mid, undo kind, payload size
_U32 = struct.Struct(">I")
_NO_VALUES = 0xFFFFFFFF


class Intent(NamedTuple):
    """A logged write that was about to be applied (see :meth:`UpdateLog.begin`)."""

    log_position: tuple[int, int]
    sid: int
    mid: int
    undo: Undo
    payload: bytes  # the log entry's payload, without the result byte


def log_files(directory: str) -> list[str]:
    """The update-log file names of ``directory`` in replay order."""
    names = [n for n in os.listdir(directory) if n.endswith(SUFFIX)]
    return sorted(names, key=lambda n: (len(n), n))


def decode_payload(payload: bytes, max_length: int = p.MAX_LENGTH) -> tuple[p.Request, int] | None:
    """The logged request and its result byte (0 ok, 1 failed); None if malformed."""
    decoder = p.RequestDecoder(max_length, log_format=True)
    decoder.feed(payload)
    event = decoder.next_event()
    if not isinstance(event, p.Request) or decoder.buffered != 1:
        return None
    if event.command not in LOGGABLE:
        return None
    return event, payload[-1]


class UpdateLog:
    """The writer side: one open file, entries appended under a lock.

    Timestamps are microseconds, strictly increasing (also across restarts),
    so that "everything from ts on" is unambiguous for REPL and RESTORE. A
    file is closed and the next one started once it reaches ``limit`` bytes
    (0: never, as ttserver). ``listener`` (if set) is called after every
    append, from the writing thread.

    A write is applied to the database, then appended here; a kill between
    the two would leave it in the database but in no log, so on no replica.
    :meth:`begin` records the write (and what it changes, see
    :mod:`.undo`) before it is applied; at open, :attr:`unfinished` is that
    record if the log did not grow after it, for
    :meth:`~.commands.Commands.recover` to complete.
    """

    def __init__(self, directory: str, sid: int, limit: int = DEFAULT_LIMIT) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = os.path.realpath(directory)
        self.sid = sid
        self.limit = limit if limit > 0 else 1 << 62
        self.listener: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._last_ts = 0
        files = log_files(self.directory)
        self._number = _file_number(files[-1]) if files else 1
        self._fd = -1
        self._size = 0
        if files:
            self._last_ts = _repair_tail(os.path.join(self.directory, files[-1]))
        self._open()
        intent_path = os.path.join(self.directory, INTENT)
        intent = _load_intent(intent_path)
        self.unfinished: Intent | None = (
            intent if intent is not None and intent.log_position == self.position() else None
        )
        self._intent_fd = os.open(intent_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._intent_size = os.fstat(self._intent_fd).st_size

    def _open(self) -> None:
        path = os.path.join(self.directory, f"{self._number:08d}{SUFFIX}")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size

    def begin(self, payload: bytes, undo: Undo, sid: int | None = None, mid: int = 0) -> None:
        """Record the write about to be applied and logged (``payload`` without
        its result byte), in one write. Call with writes serialised."""
        body = [_INTENT_HEAD.pack(self._number, self._size, self.sid if sid is None else sid, mid,
                                  undo.kind, len(payload)), payload]
        if undo.kind != UNDO_NONE:
            body.append(_U32.pack(len(undo.key)))
            body.append(undo.key)
            values = undo.values
            body.append(_U32.pack(_NO_VALUES if values is None else len(values)))
            for value in values or ():
                body.append(_U32.pack(len(value)))
                body.append(value)
        data = b"".join(body)
        data = _INTENT_MAGIC + data + _U32.pack(zlib.crc32(data))
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(self._intent_fd, view[offset:], offset)
        if self._intent_size > max(2 * len(data), 1 << 16):
            os.ftruncate(self._intent_fd, len(data))
            self._intent_size = len(data)
        elif len(data) > self._intent_size:
            self._intent_size = len(data)

    def write(self, payload: bytes, sid: int | None = None, mid: int = 0) -> int:
        """Append one entry; returns its timestamp."""
        with self._lock:
            if self._fd < 0:
                raise ValueError("the update log is closed")
            ts = time.time_ns() // 1000
            if ts <= self._last_ts:
                ts = self._last_ts + 1
            self._last_ts = ts
            entry = p.ulog_entry(ts, self.sid if sid is None else sid, mid, payload)
            view = memoryview(entry)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size += len(entry)
            if self._size >= self.limit:
                os.close(self._fd)
                self._number += 1
                self._open()
        listener = self.listener
        if listener is not None:
            listener()
        return ts

    @property
    def last_ts(self) -> int:
        return self._last_ts

    def position(self) -> tuple[int, int]:
        """(file number, size) of the end of the log: grows with every entry."""
        return self._number, self._size

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._intent_fd >= 0:
                os.close(self._intent_fd)
                self._intent_fd = -1


class LogReader:
    """Reads the entries of a log directory from a timestamp on, resumably.

    :meth:`read` returns whatever complete entries are available now and
    remembers where it stopped, so a REPL stream can poll it. ``stop_at_end``
    freezes the end at construction time (RESTORE from a directory that is
    being written must not chase its own appends).
    """

    def __init__(self, directory: str, ts: int, *, stop_at_end: bool = False) -> None:
        self.directory = directory
        self.ts = ts
        files = log_files(directory)
        self._limits: dict[str, int] | None = None
        if stop_at_end:
            self._limits = {n: os.path.getsize(os.path.join(directory, n)) for n in files}
        # Start with the last file whose first entry is not after ts.
        start = 0
        for i, name in enumerate(files):
            first = _first_timestamp(os.path.join(directory, name))
            if first is not None and first <= ts:
                start = i
        self._file: str | None = files[start] if files else None
        self._offset = 0
        self.caught_up = False  # the last read() reached the end of what exists

    def _files(self) -> list[str]:
        files = log_files(self.directory)
        if self._limits is not None:
            files = [n for n in files if n in self._limits]
        return files

    def read(self, max_bytes: int = READ_CHUNK) -> list[Entry]:
        """Complete entries available now (those at or after ``ts``), about ``max_bytes``.

        Afterwards :attr:`caught_up` tells whether everything written so far
        has been read (an empty result may just mean "older than ``ts``").
        Raises :class:`TyrantProtocolError` on a corrupt file.
        """
        out: list[Entry] = []
        budget = max_bytes
        self.caught_up = False
        while budget > 0:
            if self._file is None:
                files = self._files()
                if not files:
                    self.caught_up = True
                    break
                self._file, self._offset = files[0], 0
            path = os.path.join(self.directory, self._file)
            entries: list[Entry] = []
            try:
                size = os.path.getsize(path) if self._limits is None else self._limits[self._file]
                available = size - self._offset
                if available >= HEAD_SIZE:
                    with open(path, "rb") as f:
                        f.seek(self._offset)
                        head = f.read(HEAD_SIZE)
                        if head[0] != p.ULOG_MAGIC:
                            raise TyrantProtocolError(f"{path} is not an update log")
                        need = HEAD_SIZE + int.from_bytes(head[13:17], "big")
                        if need <= available:
                            more = max(need, min(available, budget)) - HEAD_SIZE
                            entries = p.parse_ulog(head + f.read(more))
            except FileNotFoundError:
                pass
            if entries:
                used = sum(HEAD_SIZE + len(e[3]) for e in entries)
                self._offset += used
                budget -= used
                ts = self.ts
                out.extend(e for e in entries if e[0] >= ts)
                continue
            # Nothing complete here: a later file means this one is finished.
            later = [n for n in self._files() if (len(n), n) > (len(self._file), self._file)]
            if not later:
                self.caught_up = True
                break
            self._file, self._offset = later[0], 0
        return out


def _file_number(name: str) -> int:
    stem = name[: -len(SUFFIX)]
    return int(stem) if stem.isdigit() else 1


def _load_intent(path: str) -> Intent | None:
    """The record :meth:`UpdateLog.begin` wrote; None if absent or torn (a
    torn one was cut by a kill before its write was applied)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(_INTENT_MAGIC):
        return None
    try:
        pos = len(_INTENT_MAGIC)
        number, size, sid, mid, kind, length = _INTENT_HEAD.unpack_from(data, pos)
        pos += _INTENT_HEAD.size
        payload = data[pos : pos + length]
        pos += length
        undo = Undo()
        if kind != UNDO_NONE:
            (klen,) = _U32.unpack_from(data, pos)
            key = data[pos + 4 : pos + 4 + klen]
            pos += 4 + klen
            (count,) = _U32.unpack_from(data, pos)
            pos += 4
            values: list[bytes] | None = None
            if count != _NO_VALUES:
                values = []
                for _ in range(count):
                    (vlen,) = _U32.unpack_from(data, pos)
                    values.append(data[pos + 4 : pos + 4 + vlen])
                    pos += 4 + vlen
            undo = Undo(kind, key, None if values is None else tuple(values))
        (crc,) = _U32.unpack_from(data, pos)
    except struct.error:
        return None
    if len(payload) != length or crc != zlib.crc32(data[len(_INTENT_MAGIC) : pos]):
        return None
    return Intent((number, size), sid, mid, undo, payload)


def _repair_tail(path: str) -> int:
    """Cut a torn last entry (the server was killed mid-append) off ``path``;
    return the timestamp of its last complete entry (0 if none).

    Later appends would otherwise follow the torn bytes and every reader
    would misparse them. Walks the entry heads only.
    """
    last_ts = 0
    good = 0  # end of the last complete entry
    try:
        with open(path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            torn = False
            while not torn:
                f.seek(good)
                chunk = f.read(READ_CHUNK)
                pos = 0  # relative to good; may run past the chunk for a long entry
                while pos + HEAD_SIZE <= len(chunk):
                    if chunk[pos] != p.ULOG_MAGIC:
                        return last_ts  # not a torn append: readers report it
                    end = pos + HEAD_SIZE + int.from_bytes(chunk[pos + 13 : pos + 17], "big")
                    if good + end > size:
                        torn = True
                        break
                    last_ts = int.from_bytes(chunk[pos + 1 : pos + 9], "big")
                    pos = end
                if pos == 0:
                    break
                good += pos
            if good < size:
                log.warning("update log %s: removing a torn entry at its end (%d bytes)",
                            path, size - good)
                f.truncate(good)
    except OSError as exc:
        log.warning("cannot check the end of update log %s: %s", path, exc)
    return last_ts


def _first_timestamp(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_SIZE)
    except OSError:
        return None
    if len(head) < HEAD_SIZE or head[0] != p.ULOG_MAGIC:
        return None
    return int.from_bytes(head[1:9], "big")


def restore(
    directory: str,
    ts: int,
    check: bool,
    apply: Callable[[p.Request, int, int], bool],
    max_length: int = p.MAX_LENGTH,
) -> bool:
    """Replay the entries of ``directory`` with timestamps ≥ ``ts`` through ``apply``.

    ``check`` (the consistency-check option): stop and fail as soon as a
    replayed result differs from the logged one. Fails on unreadable or
    corrupt logs.
    """
    try:
        reader = LogReader(directory, ts, stop_at_end=True)
        while not reader.caught_up:
            for _ts, sid, mid, payload in reader.read():
                decoded = decode_payload(payload, max_length)
                if decoded is None:
                    log.warning("restore: malformed update-log entry in %s", directory)
                    return False
                request, result = decoded
                ok = apply(request, sid, mid)
                if check and ok != (result == 0):
                    log.warning("restore: consistency check failed at ts %d", _ts)
                    return False
        return True
    except (OSError, TyrantProtocolError) as exc:
        log.warning("restore from %s failed: %s", directory, exc)
        return False
