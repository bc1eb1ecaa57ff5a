"""The replication timestamp file (``--rts``): where a replica resumes, exactly.

ttserver keeps one decimal number in this file, the timestamp of the last
entry it applied, and resumes after it. That skips entries that share the
timestamp, and an entry applied just before a crash is applied again. This
file keeps ttserver's first line (ttserver can read it) and adds:

* a second line ``doqu-rts 1 n=N seq=S crc=C``: N entries with that
  timestamp have been applied (resume at the timestamp and skip N), S
  counts applied entries, C protects both lines;
* a sidecar ``FILE.pending`` written *before* an entry is applied: its
  position, the entry itself and, for entries that are not idempotent, the
  record as it was before. A crash between applying and committing leaves a
  pending record with ``seq == S + 1``, which :mod:`.replication` completes
  at start-up before the server takes requests.

Both files are written in place with one ``pwrite`` each and never fsynced:
they survive the process being killed, as the database does; after an
operating-system crash or power loss neither is guaranteed.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import NamedTuple

__all__ = ["Position", "Pending", "PendingFile", "RtsError", "RtsFile", "Undo"]

_SIZE = 128  # bytes of the main file, always rewritten whole
_PENDING_MAGIC = b"doqu-rts-pending 1\n"
_PENDING_HEAD = struct.Struct(">QQIIIIQBI")  # seq ts n sid mid logfile logoffset undo keylen
_U32 = struct.Struct(">I")
_SHRINK_OVER = 1 << 16

UNDO_NONE = 0  # idempotent entry: nothing to restore
UNDO_RAW = 1  # the key's (first) value before, or absent
UNDO_DUPS = 2  # every value of a B+ tree key before


class RtsError(ValueError):
    """The file exists but cannot be understood (it is not left as it was found)."""


class Position(NamedTuple):
    """Replication position: ``ts`` of the newest entry applied and ``n``
    entries with exactly that timestamp received so far. ``n is None``:
    a plain ttserver file, resume after ``ts``."""

    ts: int = 0
    n: int | None = 0

    def request_ts(self) -> int:
        """The timestamp to send in REPL for this position."""
        if self.n is None:
            return self.ts + 1
        return max(self.ts, 1)

    def skip(self) -> int:
        """How many entries with timestamp ``ts`` the master will resend."""
        return 0 if self.n is None else self.n

    def after(self, ts: int) -> Position:
        """The position once one more entry with timestamp ``ts`` is received."""
        if ts > self.ts:
            return Position(ts, 1)
        if ts == self.ts and self.n is not None:
            return Position(ts, self.n + 1)
        return self  # an older entry (out-of-order log) or after a ttserver position


class Undo(NamedTuple):
    """How to put a key back as it was before an entry that is not idempotent."""

    kind: int = UNDO_NONE
    key: bytes = b""
    values: tuple[bytes, ...] | None = None  # None: the key was absent


class Pending(NamedTuple):
    """An entry about to be applied, written before it is."""

    seq: int
    position: Position  # the position once this entry is applied
    sid: int  # the server the write came from
    mid: int  # the master it came through
    log_position: tuple[int, int] | None  # this server's update log before the entry
    undo: Undo = Undo()
    payload: bytes = b""


class PendingFile:
    """One :class:`Pending` record, rewritten in place before each entry."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd = -1
        self._size = 0

    def load(self) -> Pending | None:
        """The record, or None (no file, or a torn or foreign one: written
        before a crash that came before the entry was applied)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RtsError(f"cannot read {self.path}: {exc.strerror}") from None
        return _parse_pending(data)

    def write(self, pending: Pending) -> None:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        data = _format_pending(pending)
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(self._fd, view[offset:], offset)
        if self._size > max(2 * len(data), _SHRINK_OVER):
            os.ftruncate(self._fd, len(data))
            self._size = len(data)
        else:
            self._size = max(self._size, len(data))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class RtsFile:
    """The position file and its pending sidecar (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.pending = PendingFile(self.path + ".pending")
        self._fd = -1

    # -- reading ------------------------------------------------------------------------

    def load(self) -> tuple[Position, int, Pending | None]:
        """The committed position, its sequence number, and the pending entry
        that was being applied when the server stopped (None if there was none).

        A missing or empty file is position 0. Raises :class:`RtsError` when
        the file holds something else than a position.
        """
        try:
            with open(self.path, "rb") as f:
                data = f.read(4096)
        except FileNotFoundError:
            return Position(), 0, None
        except OSError as exc:
            raise RtsError(f"cannot read {self.path}: {exc.strerror}") from None
        position, seq = _parse_main(data, self.path)
        pending = self.pending.load()
        if pending is not None and pending.seq != seq + 1:
            pending = None  # committed already (or from an older run)
        return position, seq, pending

    # -- writing ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the main file for writing (creating it)."""
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def commit(self, position: Position, seq: int) -> None:
        """Record ``position`` as applied (one write of the whole main file)."""
        if self._fd < 0:
            self.open()
        data = _format_main(position, seq)
        written = os.pwrite(self._fd, data, 0)
        if written != len(data):
            raise OSError(f"short write to {self.path}")
        if os.fstat(self._fd).st_size != len(data):
            os.ftruncate(self._fd, len(data))

    def begin(self, pending: Pending) -> None:
        """Record the entry about to be applied (one write)."""
        self.pending.write(pending)

    def discard_pending(self) -> None:
        """Forget the pending record (its entry will be fetched again)."""
        self.pending.close()
        try:
            os.truncate(self.pending.path, 0)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.pending.close()


# -- formats -------------------------------------------------------------------------------


def _crc(*parts: bytes) -> int:
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def _format_main(position: Position, seq: int) -> bytes:
    line1 = b"%d\n" % position.ts
    if position.n is None:
        fields = b"n=- seq=%d" % seq
    else:
        fields = b"n=%d seq=%d" % (position.n, seq)
    line2 = b"doqu-rts 1 %s crc=%08x\n" % (fields, _crc(line1, fields))
    data = line1 + line2
    return data + b" " * (_SIZE - 1 - len(data)) + b"\n"


def _parse_main(data: bytes, path: str) -> tuple[Position, int]:
    if not data.strip():
        return Position(), 0
    line1, sep, rest = data.partition(b"\n")
    text = line1.strip()
    if not text.isdigit() or not sep and len(data) > 32:
        raise RtsError(f"{path} does not start with a replication timestamp (a decimal number)")
    ts = int(text)
    line2 = rest.split(b"\n", 1)[0].strip()
    if not line2:
        return Position(ts, None), 0  # ttserver's file: resume after ts
    words = line2.split()
    if len(words) != 5 or words[:2] != [b"doqu-rts", b"1"]:
        raise RtsError(f"{path}: unrecognised second line {line2[:60]!r}")
    try:
        n_text = words[2].removeprefix(b"n=")
        seq = int(words[3].removeprefix(b"seq="))
        crc = int(words[4].removeprefix(b"crc="), 16)
        count = None if n_text == b"-" else int(n_text)
    except ValueError:
        raise RtsError(f"{path}: malformed second line {line2[:60]!r}") from None
    if crc != _crc(line1 + b"\n", b" ".join(words[2:4])):
        raise RtsError(f"{path}: checksum mismatch (the file was damaged or edited)")
    return Position(ts, count), seq


def _format_pending(pending: Pending) -> bytes:
    position, undo = pending.position, pending.undo
    logfile, logoffset = pending.log_position or (0, 0)
    count = 0xFFFFFFFF if position.n is None else position.n
    parts = [
        _PENDING_HEAD.pack(
            pending.seq, position.ts, count, pending.sid, pending.mid,
            0xFFFFFFFF if pending.log_position is None else logfile, logoffset,
            undo.kind, len(undo.key),
        ),
        undo.key,
    ]  # fmt: skip
    values = undo.values
    parts.append(_U32.pack(0xFFFFFFFF if values is None else len(values)))
    for value in values or ():
        parts.append(_U32.pack(len(value)))
        parts.append(value)
    parts.append(_U32.pack(len(pending.payload)))
    parts.append(pending.payload)
    body = b"".join(parts)
    return _PENDING_MAGIC + body + _U32.pack(_crc(body))


def _parse_pending(data: bytes) -> Pending | None:
    if not data.startswith(_PENDING_MAGIC):
        return None
    pos = len(_PENDING_MAGIC)
    try:
        seq, ts, count, sid, mid, logfile, logoffset, kind, klen = _PENDING_HEAD.unpack_from(
            data, pos
        )
        pos += _PENDING_HEAD.size
        key = data[pos : pos + klen]
        pos += klen
        (nvalues,) = _U32.unpack_from(data, pos)
        pos += 4
        values: list[bytes] | None = None
        if nvalues != 0xFFFFFFFF:
            values = []
            for _ in range(nvalues):
                (size,) = _U32.unpack_from(data, pos)
                values.append(data[pos + 4 : pos + 4 + size])
                pos += 4 + size
        (size,) = _U32.unpack_from(data, pos)
        payload = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
        (crc,) = _U32.unpack_from(data, pos)
    except struct.error:
        return None
    body = data[len(_PENDING_MAGIC) : pos]
    if len(key) != klen or len(payload) != size or crc != _crc(body):
        return None
    return Pending(
        seq=seq,
        position=Position(ts, None if count == 0xFFFFFFFF else count),
        sid=sid,
        mid=mid,
        log_position=None if logfile == 0xFFFFFFFF else (logfile, logoffset),
        undo=Undo(kind, key, None if values is None else tuple(values)),
        payload=payload,
    )
