"""A fixed-length database after a kill: count its records again.

Tokyo Cabinet writes a fixed-length database's records into the file mapping
at once, but its record count and its least and greatest IDs only into the
memory of the process, copying them to the file's header at SYNC and at a
clean close. After a ``kill -9`` the header still describes the last SYNC:
RNUM counts what was there then, and iteration, which walks from the least
to the greatest ID, misses every record stored past the old greatest ID.
:func:`recount` reads the record area and rewrites those three fields, before
the library opens the file.

Facts of the file format used here: a 256-byte header holding, as 8-byte
integers in the library's byte order, the record count at offset 48, the
value width at 64 and the least and greatest IDs at 80 and 88; then one slot
per ID from 1 on: the value's size (1 byte when the width is below 256, 2
below 65,536, else 4), then ``width`` bytes of value. A slot holds a record
when its size or its first value byte is not zero (an empty value is stored
as size 0 with a non-zero first byte; a removed one is all zeros there).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from typing import Literal

__all__ = ["FIXED_TYPE", "recount"]

log = logging.getLogger("doqu_tyrant.server")

FIXED_TYPE = 2  # the header's database type byte (offset 32) of a fixed-length file
_HEAD = 256
_RNUM, _WIDTH, _MIN, _MAX = 48, 64, 80, 88
_CHUNK = 1 << 22  # bytes of record area read at a time
# struct flock (Linux, 64-bit): type, whence, start, len, pid
_FLOCK = struct.Struct("hhqqi4x")
Order = Literal["little", "big"]


def recount(path: str | bytes) -> tuple[int, int, int] | None:
    """Rewrite the header's record count and ID range from the records of
    the fixed-length database ``path``; returns the new (count, least,
    greatest), or None when the header was right or the file was left alone
    (not a fixed-length file, or another open handle holds its lock).

    Call it only with no handle of this process open on the file.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        log.warning("cannot recount %s: %s", os.fsdecode(path), exc.strerror)
        return None
    try:
        if not _lock(fd):
            return None
        head = os.pread(fd, _HEAD, 0)
        if len(head) < _HEAD or head[32] != FIXED_TYPE:
            return None
        order = _byte_order(head)
        if order is None:
            return None
        width = _field(head, _WIDTH, order)
        before = tuple(_field(head, off, order) for off in (_RNUM, _MIN, _MAX))
        after = _scan(fd, width)
        if after == before:
            return None
        for offset, value in zip((_RNUM, _MIN, _MAX), after):
            os.pwrite(fd, value.to_bytes(8, order), offset)
        log.warning("%s: the header counted %d records (IDs %d-%d) from before the unclean "
                    "shutdown; corrected to %d (IDs %d-%d)", os.fsdecode(path), *before, *after)
        return after
    finally:
        os.close(fd)  # also drops the lock


def _lock(fd: int) -> bool:
    """Take the file's write lock without waiting, as an open-file-description
    lock: it conflicts with the lock a Tokyo Cabinet handle holds in any
    process, this one included (a classic POSIX lock would not, and closing
    ``fd`` would drop that handle's lock)."""
    ofd = getattr(fcntl, "F_OFD_SETLK", None)
    if ofd is None:  # not Linux: no way to tell a handle of this process
        return False
    try:
        fcntl.fcntl(fd, ofd, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    except OSError:
        return False
    return True


def _byte_order(head: bytes) -> Order | None:
    """The byte order of the header's integers: the one in which the width
    (1 to 2**31) reads as less than 2**32; read the other way its low bytes
    become high ones."""
    orders: tuple[Order, ...] = ("little", "big")
    for order in orders:
        if 1 <= int.from_bytes(head[_WIDTH:_WIDTH + 8], order) < 1 << 32:
            return order
    return None


def _field(head: bytes, offset: int, order: Order) -> int:
    return int.from_bytes(head[offset:offset + 8], order)


def _scan(fd: int, width: int) -> tuple[int, int, int]:
    """(records, least ID, greatest ID) of the record area (0, 0, 0 if empty)."""
    wsiz = 1 if width < 1 << 8 else 2 if width < 1 << 16 else 4
    rsiz = width + wsiz
    slots = (os.fstat(fd).st_size - _HEAD) // rsiz
    per_read = max(1, _CHUNK // rsiz)
    count = least = greatest = 0
    for start in range(0, max(slots, 0), per_read):
        n = min(per_read, slots - start)
        data = os.pread(fd, n * rsiz, _HEAD + start * rsiz)
        n = len(data) // rsiz
        if n == 0:
            break
        # one byte per slot: non-zero where any of its size bytes or its first
        # value byte is (bytes sliced with a stride, combined as big integers)
        acc = 0
        for j in range(wsiz + 1):
            acc |= int.from_bytes(data[j:n * rsiz:rsiz], "big")
        used = acc.to_bytes(n, "big")
        present = n - used.count(0)
        if present:
            count += present
            if not least:
                least = start + n - len(used.lstrip(b"\0")) + 1
            greatest = start + len(used.rstrip(b"\0"))
    return count, least, greatest
