"""What the server keeps: a :class:`~.cabinet.Cabinet` that never acknowledges
a write it will not keep, and recovers after a crash.

Tokyo Cabinet leaves four holes, closed here (see "Durability and recovery"
in ``docs/server.rst``):

* **The fatal state.** After some failures (a COPY onto a directory or an
  over-long name, an OPTIMIZE that cannot create its temporary file, an I/O
  error) the library marks the database *fatal* and from then on silently
  stops writing parts of it -- a B+ tree's pages, a table's indexes -- while
  still acknowledging every write. :class:`DurableCabinet` looks at the flag
  after each failed call and at every commit point, and reopens the database
  at once; COPY and OPTIMIZE targets are checked first (:mod:`.preflight`)
  so that the usual causes never reach the library.
* **B+ trees are not crash-safe.** Writing back cached pages is not atomic, so
  a kill -9 during SYNC (or any page flush) can lose records that an earlier
  SYNC had made durable. Here a B+ tree always has a Tokyo Cabinet
  transaction open; its write-ahead log rolls back to the last commit at the
  next open. SYNC, COPY, OPTIMIZE, VANISH and :meth:`DurableCabinet.commit`
  (which the server calls every ``commit_interval`` seconds) are the commit
  points.
* **Table indexes are B+ trees updated in memory.** After an unclean shutdown
  (the engine's "open" header flag still set) they may miss records or hold
  stale ones, and updates of such records then fail. They are rebuilt from
  the rows when the database is opened; stray temporary files of an
  interrupted OPTIMIZE are removed.

* **Hash databases and table rows are changed in several steps per write.**
  A kill in between breaks a bucket's tree of records. Each write runs in
  an engine transaction of its own (:mod:`.atomic`), so that a kill leaves
  the file as it was before the write or after it.

A fixed-length database keeps its records too, but its header's record count
and ID range are those of the last SYNC or clean close: after an unclean
shutdown they are recounted from the records before the file is opened
(:mod:`.fixedlen`).

A B+ tree's commits can also record where the server stood
(:meth:`DurableCabinet.stamp_commits`): up to 64 bytes written into the
header's user region (the half of Tokyo Cabinet's *opaque* field the library
leaves to its users) just before each commit, so that they are committed, or
rolled back, with the data they describe (see :mod:`.checkpoint`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

from . import cabinet as c
from . import fixedlen, paths
from .atomic import AtomicRowsCabinet, repair_wal
from .cabinet import ADBOBDB, ADBOFDB, ADBOHDB, ADBOTDB, Cabinet
from .preflight import optimize_problem

__all__ = ["DurableCabinet", "open_database"]

log = logging.getLogger("doqu_tyrant.server")

_MAGIC = b"ToKyO CaBiNeT"
_FLAGS_OFFSET = 33  # the header byte of additional flags, in every file kind
_FLAG_OPEN = 1  # set while a writer has the file open: still set after a crash
_FLAG_FATAL = 2
# the engines' flag getters, without argtypes (called with a c_void_p only: see
# cabinet._undeclared); checked after every failed call, so kept cheap
_FLAGS = {omode: c._undeclared(name) for omode, name in (
    (ADBOHDB, "tchdbflags"), (ADBOBDB, "tcbdbflags"), (ADBOFDB, "tcfdbflags"),
    (ADBOTDB, "tctdbflags"))}  # fmt: skip
_INDEX_TYPES = {"lex": b"0", "dec": b"1", "tok": b"2", "qgr": b"3"}
# kinds that keep a transaction open (see the module docstring). Not fixed-length:
# after a kill -9 inside a transaction, Tokyo Cabinet 1.4.48 rolls the file back
# shorter than its mapping and the next write past the end dies of SIGBUS.
_TRANSACTIONAL = frozenset({ADBOBDB})
# Cabinet state that outlives a reopen (DurableCabinet._recover): the lock and
# what waits on it, the size buffer, the name
_KEPT_ON_REOPEN = frozenset({"_lock", "_drained", "_shared", "_wanted", "_scanning", "_size",
                             "_sizep", "_name", "__weakref__"})
# misc functions that rewrite the whole database: commit points
_WHOLE_DB_MISC = frozenset({b"sync", b"optimize", b"vanish", b"cacheclear"})
# the B+ tree header's user region (the library uses the first half of its opaque field)
_tcbdbopaque = c._lib["tcbdbopaque"]
_tcbdbopaque.restype = ctypes.c_void_p
_tcbdbopaque.argtypes = [ctypes.c_void_p]
STAMP_SIZE = 64
_NO_STAMP: Callable[[], bytes] = bytes
_UNLOCKED: AbstractContextManager[object] = contextlib.nullcontext()


def open_database(db: paths.DatabasePath) -> DurableCabinet:
    """Open a checked database name for the server (:func:`.paths.open_database`),
    recovering from an unclean shutdown first."""
    return cast(DurableCabinet, paths.open_database(db, DurableCabinet))


class DurableCabinet(AtomicRowsCabinet):
    """A :class:`Cabinet` with crash recovery, fatal-error recovery and, for a
    B+ tree, a standing transaction committed at every commit point.

    The library's own ``tranbegin``/``trancommit``/``tranabort`` are not
    available on a B+ tree: the transaction is this class's.
    """

    __slots__ = ("_tran", "_copying", "_recover_later", "_files_base", "_probe", "recoveries",
                 "rebuild_seconds", "unclean", "committed_stamp", "_stamp", "_outer",
                 "_writer")  # fmt: skip

    def __init__(self, name: str | bytes | os.PathLike[str]) -> None:
        self._tran = False
        self._copying = 0
        self._recover_later = False
        self._probe: tuple[Any, ctypes.c_void_p] | None = None
        self._stamp = _NO_STAMP
        self._outer = _UNLOCKED
        self._writer = False
        self.recoveries = 0
        """How often the database was reopened after a fatal error."""
        self.rebuild_seconds: float | None = None
        """Time the start-up index rebuild took (None: no rebuild was needed)."""
        self.unclean = False
        """Whether the last writer did not close the file (a kill, a crash)."""
        self.committed_stamp = b""
        """A B+ tree's stamp of its last commit as opened (see :meth:`stamp_commits`)."""
        raw = os.fsencode(name)
        path, params = c._parse_open_name(raw)
        self._files_base = b"" if path in (b"*", b"+", b"") else os.path.abspath(path)
        writer = self._writer = _is_writer(params)
        unclean = fatal = False
        if writer and self._files_base and os.path.exists(path):
            headers = [(fname, _read_flags(fname)) for fname in self._files()]
            unclean = bool((headers[0][1] or 0) & _FLAG_OPEN)
            fatal = any(flags is not None and flags & _FLAG_FATAL for _, flags in headers)
            if fatal and not unclean:  # no writer has the file: the flag can go now
                for fname, flags in headers:
                    if flags is not None and flags & _FLAG_FATAL:
                        _write_flags(fname, flags & ~_FLAG_FATAL)
            if fatal:
                log.warning("%s was marked fatal by an earlier run; its indexes are rebuilt",
                            os.fsdecode(path))
            if unclean and _file_type(path) == fixedlen.FIXED_TYPE:
                fixedlen.recount(path)
            elif unclean:
                repair_wal(os.path.abspath(path))
        super().__init__(raw)
        self._set_probe()
        self.unclean = unclean
        if not writer:
            return
        if self._is_fatal():  # left set by a writer that died: reopen, which clears it
            self._recover(rebuild=False)
        if unclean:
            log.warning("%s was not closed cleanly; recovering", os.fsdecode(path))
        self._remove_stray_files()
        if self._table and (unclean or fatal) and self._indexes:
            self._rebuild_indexes()
        if self._omode in _TRANSACTIONAL:
            self.committed_stamp = self._read_stamp()
            self._tran = bool(c._tcadbtranbegin(self._handle()))

    # -- stamps ---------------------------------------------------------------------------

    def stamp_commits(self, stamp: Callable[[], bytes],
                      lock: AbstractContextManager[object]) -> None:
        """Write ``stamp()`` (at most :data:`STAMP_SIZE` bytes) into the header
        of a :attr:`transactional` database at every commit point, just
        before the commit: it is committed, or rolled back by a kill, together
        with the writes it describes. Every commit point takes ``lock`` first
        (re-entrant, taken before the database's own lock), so that ``stamp``
        sees a state no write is halfway through."""
        self._stamp = stamp
        self._outer = lock

    def _read_stamp(self) -> bytes:
        bdb = c._tcadbreveal(self._handle())
        region = _tcbdbopaque(bdb) if bdb else None
        return ctypes.string_at(region, STAMP_SIZE) if region else b""

    def _write_stamp(self) -> None:
        """Put the current stamp into the header (lock held; a no-op without one)."""
        if self._stamp is _NO_STAMP or self._adb is None:
            return
        try:
            data = self._stamp()[:STAMP_SIZE]
        except Exception:  # an empty stamp: recovery then assumes nothing
            log.exception("cannot stamp the commit of %s", os.fsdecode(self._name))
            data = b""
        bdb = c._tcadbreveal(self._adb)
        region = _tcbdbopaque(bdb) if bdb else None
        if region:
            ctypes.memmove(region, data.ljust(STAMP_SIZE, b"\0"), STAMP_SIZE)

    # -- commit points ------------------------------------------------------------------

    @property
    def transactional(self) -> bool:
        """Whether writes are kept in a transaction until the next commit point."""
        return self._tran

    def commit(self) -> bool:
        """Make every acknowledged write survive a kill -9 (no fsync); a no-op
        unless :attr:`transactional`."""
        with self._outer, self._lock:
            if not self._tran:
                return True
            self._exclusive()  # (a commit takes the engine's write lock: no shared read runs)
            ok = self._suspend()
            self._resume()
            return ok

    def _suspend(self) -> bool:
        """Commit the standing transaction, stamped (lock held); it stays
        closed until :meth:`_resume`."""
        if not self._tran or self._adb is None:
            return True
        self._tran = False
        self._write_stamp()
        if c._tcadbtrancommit(self._adb):
            return True
        self._recover(rebuild=False)  # the commit is lost: back to the previous one
        return False

    def _resume(self, stamp: bool = True) -> None:
        """Open the next transaction; ``stamp``: write the stamp first (VANISH
        clears the header's user region, outside any transaction)."""
        if self._omode in _TRANSACTIONAL and not self._tran and self._adb is not None:
            if stamp:
                self._write_stamp()
            self._tran = bool(c._tcadbtranbegin(self._adb))
            if not self._tran:
                self._on_failure()
                if self._adb is not None and not self._tran:
                    self._tran = bool(c._tcadbtranbegin(self._adb))

    def sync(self) -> bool:
        """Commit, then flush to the device (``tcadbsync``)."""
        with self._outer, self._lock:
            self._exclusive()
            ok = self._suspend()
            ok = bool(c._tcadbsync(self._handle())) and ok
            self._resume()
            if not ok or self._is_fatal():
                self._recover(rebuild=False)
                return False
            return True

    def optimize(self, params: str | bytes = b"") -> bool:
        """Rebuild the file (``tcadboptimize``) unless it would fail for want of
        room or permission, which would leave the engine fatal."""
        with self._outer, self._lock:
            problem = optimize_problem(self)
            if problem is not None:
                log.warning("OPTIMIZE refused: %s", problem)
                return False
            ok = self._suspend()
            ok = super().optimize(params) and ok
            self._resume()
            return self._checked(ok)

    def vanish(self) -> bool:
        with self._outer, self._lock:
            ok = self._suspend()
            ok = super().vanish() and ok
            self._resume()
            return self._checked(ok)

    def copy(self, path: str | bytes | os.PathLike[str]) -> bool:
        """Hot backup (``tcadbcopy``) of the committed state.

        Hash and table databases are copied without holding the lock: the
        library lets reads proceed meanwhile and holds writes back itself.
        """
        raw = os.fsencode(path)
        shared = self._omode in (ADBOHDB, ADBOTDB)
        with self._outer, self._lock:
            ok = self._suspend()
            adb = self._handle()
            if not shared:
                ok = bool(c._tcadbcopy(adb, raw)) and ok
                self._resume()
                return self._checked(ok)
            self._copying += 1
            self._shared += 1  # other threads' writes wait without holding the lock
        try:
            ok = bool(c._tcadbcopy(adb, raw)) and ok
        finally:
            with self._lock:
                self._copying -= 1
                self._leave_shared()
                if self._recover_later and not self._copying and not self._shared:
                    self._recover_later = False
                    self._recover(rebuild=True)
        return self._checked(ok)

    def misc(self, name: str | bytes, args: Sequence[bytes] = ()) -> list[bytes] | None:
        raw = name.encode() if isinstance(name, str) else name
        if raw not in _WHOLE_DB_MISC:
            return super().misc(raw, args)
        with self._outer, self._lock:
            if raw == b"optimize":
                problem = optimize_problem(self)
                if problem is not None:
                    log.warning("misc optimize refused: %s", problem)
                    return None
            committed = self._suspend()
            result = super().misc(raw, args)
            self._resume()
            if result is not None and self._is_fatal():
                self._recover(rebuild=False)
                return None
            return result if committed or raw != b"sync" else None

    def close(self) -> bool:
        with self._outer, self._lock:
            if self._adb is None:
                return True
            ok = self._suspend()
            return super().close() and ok

    def tranbegin(self) -> bool:
        """Refused on a B+ tree: its transaction belongs to this class."""
        return False if self._omode in _TRANSACTIONAL else super().tranbegin()

    def trancommit(self) -> bool:
        return False if self._omode in _TRANSACTIONAL else super().trancommit()

    def tranabort(self) -> bool:
        return False if self._omode in _TRANSACTIONAL else super().tranabort()

    # -- the fatal state ----------------------------------------------------------------

    def _set_probe(self) -> None:
        """Find the engine's flags function and object, for :meth:`_is_fatal`."""
        flags = _FLAGS.get(self._omode)
        engine = c._tcadbreveal(self._adb) if self._adb is not None else None
        self._probe = (flags, ctypes.c_void_p(engine)) if flags is not None and engine else None
        self._protect_rows(self._writer and bool(self._files_base))

    def _is_fatal(self) -> bool:
        probe = self._probe
        if probe is None or self._adb is None:  # closed: the engine object is gone
            return False
        return bool(probe[0](probe[1]) & _FLAG_FATAL)

    def _on_failure(self) -> None:
        if self._is_fatal():
            self._recover(rebuild=True)

    def _readers_done(self) -> None:
        if self._recover_later and not self._copying:
            self._recover_later = False
            self._recover(rebuild=True)

    def _checked(self, ok: bool) -> bool:
        """``ok``, after reopening the database if the call left it fatal."""
        if not ok and self._is_fatal():
            with self._lock:
                self._recover(rebuild=False)
        return ok

    def _recover(self, *, rebuild: bool) -> None:
        """Close the fatal handle and open the database again (lock held).

        A B+ tree's open transaction is rolled back to its last commit, which
        is what a kill -9 would have cost. ``rebuild``: rebuild a table's
        indexes too (the failure may have hit them half-way).
        """
        if self._copying or self._shared:
            self._recover_later = True  # a copy or a shared read still uses the handle
            return
        adb = self._adb
        if adb is None or not self._is_fatal():
            return
        error = self._misc(adb, b"error", []) or [b"?"]
        log.error("Tokyo Cabinet reported a fatal error on %s (%s); reopening it",
                  os.fsdecode(self._name), error[0].decode("utf-8", "replace"))
        self._adb = None
        self._probe = None
        self._tran = False
        c._tcadbclose(adb)
        c._tcadbdel(adb)
        for fname in self._files():
            flags = _read_flags(fname)
            if flags is not None and flags & _FLAG_FATAL:
                _write_flags(fname, flags & ~_FLAG_FATAL)
        try:
            fresh = Cabinet(_without_truncation(self._name))
        except (OSError, ValueError) as exc:
            log.critical("cannot reopen %s after a fatal error (%s); every request fails "
                         "until the server is restarted", os.fsdecode(self._name), exc)
            return
        for slot in Cabinet.__slots__:
            if slot not in _KEPT_ON_REOPEN:
                setattr(self, slot, getattr(fresh, slot))
        fresh._adb = None
        self._set_probe()
        self.recoveries += 1
        if rebuild and self._table and self._indexes:
            self._rebuild_indexes()
        self._resume(stamp=False)  # rolled back to the last commit, and to its stamp

    # -- start-up recovery ----------------------------------------------------------------

    def _files(self) -> list[bytes]:
        """The database file and (tables) its index files."""
        base = self._files_base
        if not base:
            return []
        directory, name = os.path.split(base)
        try:
            names = os.listdir(directory)
        except OSError:
            return [base]
        prefix = name + b".idx."
        return [base] + [os.path.join(directory, n) for n in sorted(names)
                         if n.startswith(prefix) and not n.endswith(b".wal")]

    def _remove_stray_files(self) -> None:
        """Remove ``<db>.tmp.<number>`` files that an interrupted OPTIMIZE left
        (and a table index's ``<db>.idx.<column>.<type>.tmp.<number>``).

        Only a writer that holds the database's lock gets here, so no other
        process can be optimizing it.
        """
        base = self._files_base
        if not base:
            return
        directory, name = os.path.split(base)
        stray = re.compile(re.escape(name) + rb"(\.idx\.[^/]+)?\.tmp\.\d+(\.wal)?\Z")
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for fname in names:
            if stray.match(fname):
                full = os.path.join(directory, fname)
                try:
                    os.unlink(full)
                    log.warning("removed %s, left by an interrupted OPTIMIZE", os.fsdecode(full))
                except OSError as exc:
                    log.warning("cannot remove %s: %s", os.fsdecode(full), exc)

    def _rebuild_indexes(self) -> None:
        """Rebuild every index of the table from its rows.

        Setting an index of the type it already has rebuilds it in one call, so
        a kill meanwhile leaves the index defined (and rebuilt at the next start).
        """
        start = time.perf_counter()
        for column, kind in sorted(self._indexes.items()):
            if Cabinet.misc(self, b"setindex", [column, _INDEX_TYPES[kind]]) is None:
                log.error("could not rebuild the %s index of column %r", kind, column)
        self.rebuild_seconds = time.perf_counter() - start
        log.warning("rebuilt the indexes of %s after an unclean shutdown in %.2f s",
                    os.fsdecode(self._name), self.rebuild_seconds)


# -- file headers ------------------------------------------------------------------------


def _file_type(path: bytes) -> int | None:
    """The database type byte of a Tokyo Cabinet file's header."""
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError:
        return None
    return head[32] if len(head) > 32 and head.startswith(_MAGIC) else None


def _read_flags(path: bytes) -> int | None:
    """The additional-flags byte of a Tokyo Cabinet file, None if it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(_FLAGS_OFFSET + 1)
    except OSError:
        return None
    if len(head) <= _FLAGS_OFFSET or not head.startswith(_MAGIC):
        return None
    return head[_FLAGS_OFFSET]


def _write_flags(path: bytes, flags: int) -> None:
    """Rewrite the flags byte of a file no handle has open."""
    try:
        with open(path, "r+b") as f:
            f.seek(_FLAGS_OFFSET)
            f.write(bytes((flags,)))
    except OSError as exc:
        log.warning("cannot clear the fatal flag of %s: %s", os.fsdecode(path), exc)


def _is_writer(params: list[tuple[bytes, bytes]]) -> bool:
    modes = [value for key, value in params if key == b"mode"]
    return not modes or b"w" in modes[-1].lower()


def _without_truncation(name: bytes) -> bytes:
    """``name`` with the truncate flag (``#mode=...t``) dropped, for a reopen."""
    path, *parts = name.split(b"#")
    kept = []
    for part in parts:
        key, sep, value = part.partition(b"=")
        if sep and key.lower() == b"mode":
            part = key + b"=" + value.replace(b"t", b"").replace(b"T", b"")
        kept.append(part)
    return b"#".join([path, *kept])

