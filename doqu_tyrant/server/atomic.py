"""Atomic record writes for hash databases and table rows.

A Tokyo Cabinet hash database changes its file in several steps for one
write: a record that grows is turned into a free block where it was, written
again at the end of the file, and then linked into its bucket's tree; a value
overwritten in place is copied over the old one. A process killed between
the steps (kill -9, a crash, the OOM killer) leaves a bucket pointing at a
free block or at half a record: that record and every record below it in the
bucket's tree are gone, the next open reports "read error", and writes into
the damaged tree can lose more.

The engine's own transaction closes the hole. While one is open it copies the
bytes each write overwrites, and the file's old size, into ``<db>.wal`` first;
the next writer to open the file puts them back. :class:`RowWrites` runs each
write call in a transaction of its own: a kill leaves the database as it was
before that call or after it, never in between, and every acknowledged write
stays (no fsync: the page cache survives the process, not the machine).

A table keeps its rows in a hash database of its own (the first two members
of Tokyo Cabinet's ``TCTDB`` are a mutex pointer and that ``TCHDB``); only the
rows' file is covered, as the indexes are rebuilt after an unclean shutdown
anyway (:mod:`.durable`). The row engine found is checked against the
database's path before it is used.

The engine's log has one weakness of its own: a kill can land while an entry
is being appended (a write of a big record is not one atomic step either),
and the engine then refuses the whole log at the next open -- after having
put back the complete entries -- and keeps the header values it read before,
which no longer describe the file. :func:`repair_wal` cuts such a torn last
entry off first. Its write had not begun (each entry is logged before the
bytes it saves are overwritten), so nothing is lost by dropping it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from . import cabinet as c
from .cabinet import ADBOHDB, ADBOTDB

__all__ = ["AtomicRowsCabinet", "RowWrites", "repair_wal", "row_engine"]

log = logging.getLogger("doqu_tyrant.server")
T = TypeVar("T")


def _function(name: str, restype: Any) -> Any:
    func: Any = c._lib[name]
    func.restype = restype
    func.argtypes = [ctypes.c_void_p]
    return func


_tchdbtranbegin = _function("tchdbtranbegin", ctypes.c_bool)
_tchdbtrancommit = _function("tchdbtrancommit", ctypes.c_bool)
_tchdbpath = _function("tchdbpath", ctypes.c_char_p)
_tchdbecode = _function("tchdbecode", ctypes.c_int)
_tchdberrmsg: Any = c._lib["tchdberrmsg"]
_tchdberrmsg.restype = ctypes.c_char_p
_tchdberrmsg.argtypes = [ctypes.c_int]


_WAL_HEAD = 8  # the file size before the transaction (big-endian)
_ENTRY = struct.Struct(">QI")  # each entry: offset, size, then the bytes saved


def repair_wal(db_file: bytes) -> bool:
    """Cut a torn last entry off the write-ahead log of ``db_file`` (before the
    engine opens it, after an unclean shutdown). Returns whether it did."""
    wal = db_file + b".wal"
    try:
        with open(wal, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            end = pos = _WAL_HEAD
            while pos + _ENTRY.size <= size:
                f.seek(pos)
                _off, length = _ENTRY.unpack(f.read(_ENTRY.size))
                pos += _ENTRY.size + length
                if pos > size:
                    break
                end = pos
            if size <= _WAL_HEAD or end == size:
                return False
            f.truncate(end)
    except OSError:
        return False
    log.warning("%s: cut a torn entry off the end of its write-ahead log (%d bytes)",
                os.fsdecode(db_file), size - end)
    return True


def row_engine(adb: ctypes.c_void_p, omode: int) -> int | None:
    """The address of the hash engine (``TCHDB``) that holds the records of a
    hash database or a table's rows; None for other kinds, for an on-memory
    database, or if the engine found does not answer to the database's path."""
    if omode not in (ADBOHDB, ADBOTDB):
        return None
    engine = c._tcadbreveal(adb)
    if not engine:
        return None
    if omode == ADBOTDB:
        engine = ctypes.c_void_p.from_address(engine + ctypes.sizeof(ctypes.c_void_p)).value
        if not engine:
            return None
    path = c._tcadbpath(adb)
    if not path or _tchdbpath(engine) != path:
        return None
    return int(engine)


class RowWrites:
    """Begins and commits the transaction around one write call (the caller
    holds the database's lock and no shared read runs)."""

    __slots__ = ("engine", "path", "_warned")

    def __init__(self, engine: int, path: bytes) -> None:
        self.engine = ctypes.c_void_p(engine)
        self.path = path
        self._warned = False

    def begin(self) -> bool:
        """Open the transaction; False (logged once) if the engine cannot, for
        example because ``<db>.wal`` cannot be created: the write then goes
        ahead unprotected, as it would in ttserver."""
        if _tchdbtranbegin(self.engine):
            return True
        if not self._warned:
            self._warned = True
            code = _tchdbecode(self.engine)
            log.warning("%s: cannot begin a transaction (%d: %s); writes are not "
                        "protected against a crash", os.fsdecode(self.path), code,
                        _tchdberrmsg(code).decode("utf-8", "replace"))
        return False

    def commit(self) -> bool:
        """Commit: the write stays, the log is emptied."""
        return bool(_tchdbtrancommit(self.engine))


class AtomicRowsCabinet(c.Cabinet):
    """A :class:`~.cabinet.Cabinet` whose record writes are atomic (see the
    module docstring) once :meth:`_protect_rows` has found the row engine.

    Each write method runs the inherited one inside :meth:`_atomically`; reads,
    whole-database calls and a caller's own transaction (:meth:`tranbegin`,
    which protects its writes itself) are left alone.
    """

    __slots__ = ("_rows", "_user_tran")

    def __init__(self, name: str | bytes | os.PathLike[str]) -> None:
        self._rows: RowWrites | None = None
        self._user_tran = False
        super().__init__(name)

    def _protect_rows(self, writer: bool) -> None:
        """Find the row engine of the open handle (again after a reopen);
        ``writer``: the database is file-backed and open for writing."""
        adb = self._adb
        engine = row_engine(adb, self._omode) if writer and adb is not None else None
        self._rows = None if engine is None else RowWrites(engine, c._tcadbpath(adb))
        self._user_tran = False  # (a reopen ended any transaction of the caller's)

    @property
    def atomic_writes(self) -> bool:
        """Whether each record write runs in a transaction of its own."""
        return self._rows is not None

    def _atomically(self, call: Callable[..., T], *args: Any) -> T:
        with self._lock:
            rows = self._rows
            if rows is None or self._user_tran:
                return call(*args)
            self._exclusive()
            if not rows.begin():
                return call(*args)
            try:
                return call(*args)
            finally:
                # a fatal error inside the call reopens the database, whose close
                # rolled this transaction back: nothing is left to commit then
                if self._rows is rows and not rows.commit():
                    self._on_failure()

    # -- the write calls --------------------------------------------------------------

    def _store(self, fast: Any, declared: Any, key: bytes, value: bytes, cat: bool) -> bool:
        return self._atomically(super()._store, fast, declared, key, value, cat)

    def putshl(self, key: bytes, value: bytes, width: int) -> bool:
        return self._atomically(super().putshl, key, value, width)

    def out(self, key: bytes) -> bool:
        return self._atomically(super().out, key)

    def addint(self, key: bytes, num: int) -> int:
        return self._atomically(super().addint, key, num)

    def adddouble(self, key: bytes, num: float) -> float:
        return self._atomically(super().adddouble, key, num)

    def putmany(self, items: Iterable[tuple[bytes, bytes]], how: str = "put") -> list[bool]:
        return self._atomically(super().putmany, items, how)

    def misc(self, name: str | bytes, args: Sequence[bytes] = ()) -> list[bytes] | None:
        raw = name.encode() if isinstance(name, str) else name
        if c._reads_only(raw, args) or raw in _UNWRAPPED_MISC:
            return super().misc(raw, args)
        return self._atomically(super().misc, raw, args)

    # -- a caller's transaction ---------------------------------------------------------

    def tranbegin(self) -> bool:
        with self._lock:
            ok = super().tranbegin()
            self._user_tran = self._user_tran or ok
            return ok

    def trancommit(self) -> bool:
        with self._lock:
            ok = super().trancommit()
            self._user_tran = self._user_tran and not ok
            return ok

    def tranabort(self) -> bool:
        with self._lock:
            ok = super().tranabort()
            self._user_tran = self._user_tran and not ok
            return ok


# misc calls that are not record writes, or that must not run inside a transaction
# (whole-database calls, which the engine refuses or runs differently in one)
_UNWRAPPED_MISC = frozenset({b"sync", b"optimize", b"vanish", b"cacheclear", b"defrag",
                             b"setindex", b"error", b"iterinit", b"iternext", b"regex",
                             b"range", b"genuid"})
