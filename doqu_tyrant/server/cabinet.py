"""ctypes binding to Tokyo Cabinet's abstract database API (``tcadb*``).

The Tyrant-compatible server answers with whatever the library answers, so this
module adds no semantics of its own: each :class:`Cabinet` method is one library
call (PUTSHL, which the abstract API lacks, is a get + put under the lock; the
batch methods ``getmany``, ``mget`` and ``putmany`` are one call per element
under one lock acquisition, for pipelined requests).

Long reads -- a table search, MISC ``regex`` or ``range`` -- can also run
through :meth:`Cabinet.misc_shared`, which does not hold the binding's lock
while the library works: other threads' reads go on meanwhile, and their
writes wait until it has finished (see the class docstring).

The one exception is a set of *guards*.  The packaged Tokyo Cabinet 1.4.48 is
built with assertions, and some inputs abort the whole process (protocol spec
section 10).  Those calls are refused here and report the ordinary failure of
the operation (``False`` / ``None``) without reaching the library.

Failure conventions mirror the C API: writes return ``bool``; reads return
``None`` when there is no record; ``vsiz`` returns -1; ``addint`` returns
``INT_MIN`` and ``adddouble`` NaN; ``misc`` returns ``None``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import re
import struct
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from doqu_tyrant.server import noyield
from doqu_tyrant.tyrant.protocol import pack_record, unpack_record

__all__ = [
    "ADBOVOID",
    "ADBOMDB",
    "ADBONDB",
    "ADBOHDB",
    "ADBOBDB",
    "ADBOFDB",
    "ADBOTDB",
    "ADBOSKEL",
    "INT_MIN",
    "LIBRARY_VERSION",
    "Cabinet",
    "CabinetClosedError",
    "pack_record",
    "parse_index_type",
    "unpack_record",
]


def _load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("tokyocabinet")
    if name is None:
        raise ImportError(
            "the Tokyo Cabinet shared library (libtokyocabinet.so.9) was not found; "
            "install the Debian/Ubuntu package libtokyocabinet9"
        )
    try:
        return ctypes.CDLL(name)
    except OSError as exc:  # pragma: no cover - depends on the host
        raise ImportError(
            f"cannot load the Tokyo Cabinet library {name!r} ({exc}); "
            "install the Debian/Ubuntu package libtokyocabinet9"
        ) from exc


_lib = _load_library()
# The library's yield after every write costs a time slice on a busy machine.
noyield.disable(_lib)

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_B = ctypes.c_bool
_D = ctypes.c_double
_U64 = ctypes.c_uint64
_PI = ctypes.POINTER(ctypes.c_int)
_PC = ctypes.POINTER(ctypes.c_char)  # malloc'ed results: sliced to bytes, then tcfree'd

# name: (restype, argtypes).  Every pointer result is c_void_p so that it is never
# truncated to a C int; tcadbpath returns a borrowed string and may be c_char_p.
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "tcadbnew": (_P, []),
    "tcadbdel": (None, [_P]),
    "tcadbopen": (_B, [_P, _S]),
    "tcadbclose": (_B, [_P]),
    "tcadbput": (_B, [_P, _S, _I, _S, _I]),
    "tcadbputkeep": (_B, [_P, _S, _I, _S, _I]),
    "tcadbputcat": (_B, [_P, _S, _I, _S, _I]),
    "tcadbout": (_B, [_P, _S, _I]),
    "tcadbget": (_PC, [_P, _S, _I, _PI]),
    "tcadbvsiz": (_I, [_P, _S, _I]),
    "tcadbiterinit": (_B, [_P]),
    "tcadbiternext": (_PC, [_P, _PI]),
    "tcadbfwmkeys": (_P, [_P, _S, _I, _I]),
    "tcadbaddint": (_I, [_P, _S, _I, _I]),
    "tcadbadddouble": (_D, [_P, _S, _I, _D]),
    "tcadbsync": (_B, [_P]),
    "tcadboptimize": (_B, [_P, _S]),
    "tcadbvanish": (_B, [_P]),
    "tcadbcopy": (_B, [_P, _S]),
    "tcadbtranbegin": (_B, [_P]),
    "tcadbtrancommit": (_B, [_P]),
    "tcadbtranabort": (_B, [_P]),
    "tcadbpath": (_S, [_P]),
    "tcadbrnum": (_U64, [_P]),
    "tcadbsize": (_U64, [_P]),
    "tcadbmisc": (_P, [_P, _S, _P]),
    "tcadbomode": (_I, [_P]),
    "tcadbreveal": (_P, [_P]),
    "tcfree": (None, [_P]),
    "tclistnew": (_P, []),
    "tclistdel": (None, [_P]),
    "tclistnum": (_I, [_P]),
    "tclistval": (_PC, [_P, _I, _PI]),
    "tclistpush": (None, [_P, _S, _I]),
    "tclistdump": (_PC, [_P, _PI]),
    "tclistload": (_P, [_S, _I]),
    # the engines' header flags (bit 1: open, bit 2: fatal error), for :mod:`.durable`
    "tchdbflags": (ctypes.c_uint8, [_P]),
    "tcbdbflags": (ctypes.c_uint8, [_P]),
    "tcfdbflags": (ctypes.c_uint8, [_P]),
    "tctdbflags": (ctypes.c_uint8, [_P]),
}


def _declare(name: str) -> Any:
    func = getattr(_lib, name)
    restype, argtypes = _PROTOTYPES[name]
    func.restype = restype
    func.argtypes = argtypes
    return func


_tcadbnew = _declare("tcadbnew")
_tcadbdel = _declare("tcadbdel")
# tcadbopen through a handle that keeps errno, so that a failed open can say why
# (EAGAIN: another process holds the lock of a no-wait open).
_tcadbopen: Any = ctypes.CDLL(_lib._name, use_errno=True).tcadbopen
_tcadbopen.restype, _tcadbopen.argtypes = _PROTOTYPES["tcadbopen"]
_tcadbclose = _declare("tcadbclose")
_tcadbput = _declare("tcadbput")
_tcadbputkeep = _declare("tcadbputkeep")
_tcadbputcat = _declare("tcadbputcat")
_tcadbout = _declare("tcadbout")
_tcadbget = _declare("tcadbget")
_tcadbvsiz = _declare("tcadbvsiz")
_tcadbiterinit = _declare("tcadbiterinit")
_tcadbiternext = _declare("tcadbiternext")
_tcadbfwmkeys = _declare("tcadbfwmkeys")
_tcadbaddint = _declare("tcadbaddint")
_tcadbadddouble = _declare("tcadbadddouble")
_tcadbsync = _declare("tcadbsync")
_tcadboptimize = _declare("tcadboptimize")
_tcadbvanish = _declare("tcadbvanish")
_tcadbcopy = _declare("tcadbcopy")
_tcadbtranbegin = _declare("tcadbtranbegin")
_tcadbtrancommit = _declare("tcadbtrancommit")
_tcadbtranabort = _declare("tcadbtranabort")
_tcadbpath = _declare("tcadbpath")
_tcadbrnum = _declare("tcadbrnum")
_tcadbsize = _declare("tcadbsize")
_tcadbmisc = _declare("tcadbmisc")
_tcadbomode = _declare("tcadbomode")
_tcadbreveal = _declare("tcadbreveal")
_tcfree = _declare("tcfree")
_tclistnew = _declare("tclistnew")
_tclistdel = _declare("tclistdel")
_tclistnum = _declare("tclistnum")
_tclistval = _declare("tclistval")
_tclistpush = _declare("tclistpush")
_tclistdump = _declare("tclistdump")
_tclistload = _declare("tclistload")
# misc "genuid" of a table without building argument and result lists (Cabinet.genuid).
_tctdbgenuid = _lib.tctdbgenuid
_tctdbgenuid.restype = ctypes.c_int64
_tctdbgenuid.argtypes = [_P]
# The last ID given and setting it (the next one is the seed + 1): many IDs at once.
_tctdbuidseed = _lib.tctdbuidseed
_tctdbuidseed.restype = ctypes.c_int64
_tctdbuidseed.argtypes = [_P]
_tctdbsetuidseed = _lib.tctdbsetuidseed
_tctdbsetuidseed.restype = ctypes.c_bool
_tctdbsetuidseed.argtypes = [_P, ctypes.c_int64]
_INT64_MAX = (1 << 63) - 1


def _undeclared(name: str) -> Any:
    """The same C function without ``argtypes``: ctypes then skips the per-argument
    conversion (about a third of a short call's cost). Only ever called with a
    ``c_void_p`` handle, ``bytes`` and small ``int`` arguments, which ctypes passes
    as pointer, ``char *`` and ``int`` by itself; anything else goes to the
    declared function, which checks its arguments as always."""
    func: Any = _lib[name]  # a new function object, separate from the declared one
    func.restype = _PROTOTYPES[name][0]
    return func


_fast_put = _undeclared("tcadbput")
_fast_putkeep = _undeclared("tcadbputkeep")
_fast_putcat = _undeclared("tcadbputcat")
_fast_out = _undeclared("tcadbout")
_fast_get = _undeclared("tcadbget")
_fast_free = _undeclared("tcfree")  # only ever given a pointer the library returned
_fast_rnum = _undeclared("tcadbrnum")
_fast_size = _undeclared("tcadbsize")
# Cabinet.putmany: (undeclared, declared) function of each store mode.
_STORES = {
    "put": (_fast_put, _tcadbput),
    "putkeep": (_fast_putkeep, _tcadbputkeep),
    "putcat": (_fast_putcat, _tcadbputcat),
}

LIBRARY_VERSION: str = ctypes.c_char_p.in_dll(_lib, "tcversion").value.decode()  # type: ignore[union-attr]
"""Version string of the loaded library (``"1.4.48"``)."""

# Open modes reported by tcadbomode (checked against the library: '*' -> 1, '+' -> 2,
# .tch -> 3, .tcb -> 4, .tcf -> 5, .tct -> 6).
ADBOVOID = 0
ADBOMDB = 1
ADBONDB = 2
ADBOHDB = 3
ADBOBDB = 4
ADBOFDB = 5
ADBOTDB = 6
ADBOSKEL = 7

INT_MIN = -(2**31)
"""Failure sentinel of :meth:`Cabinet.addint` (also a legal sum, as in ttserver)."""

_TYPE_NAMES = {
    ADBOVOID: "void",
    ADBOMDB: "on-memory hash",
    ADBONDB: "on-memory tree",
    ADBOHDB: "hash",
    ADBOBDB: "B+ tree",
    ADBOFDB: "fixed-length",
    ADBOTDB: "table",
    ADBOSKEL: "skeleton",
}

# Table index types as the library numbers them (and names its index files).
_IDX_KEEP = 1 << 24
_IDX_SUFFIXES = {b"lex": 0, b"dec": 1, b"tok": 2, b"qgr": 3}
_IDX_KIND = {0: "lex", 1: "dec", 2: "tok", 3: "qgr"}
_IDX_NAMES = {
    b"lexical": 0, b"lex": 0, b"str": 0,
    b"decimal": 1, b"dec": 1, b"num": 1,
    b"token": 2, b"tok": 2,
    b"qgram": 3, b"qgr": 3, b"fts": 3,
    b"optimize": 9998, b"opt": 9998,
    b"void": 9999, b"null": 9999,
}  # fmt: skip
# A decimal type as the library accepts it: blanks (bytes 1..32) around an optional
# minus sign and digits with an optional fraction; at least one digit.
_IDX_NUMBER = re.compile(rb"[\x01-\x20]*(-?)(\d*)(?:\.(\d*))?[\x01-\x20]*\Z")
# search condition: STREQ with the "no index" flag, so that the check scans records.
_STREQ_NOIDX = b"33554432"


def parse_index_type(text: bytes) -> int | None:
    """Parse a table ``setindex`` type the way Tokyo Cabinet does.

    Returns the type number with the keep flag (1<<24) OR-ed in, or ``None`` when
    the library rejects the text (then setindex fails without touching anything).
    A type outside 0..3, 9998, 9999 (after the keep flag) still reaches the
    library, which fails and drops the column's existing index.
    """
    text = text.split(b"\0", 1)[0]  # the library reads a C string
    keep = 0
    if text[:1] == b"+":
        keep = _IDX_KEEP
        text = text[1:]
    value = _IDX_NAMES.get(text.lower())
    if value is None:
        m = _IDX_NUMBER.match(text)
        if m is None or not (m.group(2) or m.group(3)):
            return None
        value = int(m.group(2) or b"0")
        if m.group(1):
            value = -value
        value %= 1 << 64  # 64-bit accumulation, then truncated to a C int
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    value |= keep
    return value if value >= 0 else None


def _builds_ordered_index(itype: int | None) -> bool:
    """Whether setindex with this parsed type may build a lexical/decimal index."""
    return itype is not None and (itype & ~_IDX_KEEP) in (0, 1)


def _pairs(args: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
    """Name/value arguments of a table misc put: odd tail dropped, last value wins."""
    it = iter(args)
    return list(dict(zip(it, it)).items())


def _parse_open_name(name: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Split ``path#key=value#...`` into the path and its (lower-cased key, value) pairs."""
    path, *rest = name.split(b"#")
    params = []
    for part in rest:
        key, sep, value = part.partition(b"=")
        if sep:
            params.append((key.lower(), value))
    return path, params


def _is_table_path(path: bytes) -> bool:
    return path.lower().endswith((b".tct", b".tdb"))


# MISC functions that Cabinet.misc_shared runs without holding the lock, and
# those that may run beside them (Tokyo Cabinet takes its reader lock for them,
# or none; checked against the library). "out" turns a search into a write.
_SEARCHES = frozenset({b"search", b"metasearch"})
_SHARED_MISC = _SEARCHES | {b"regex", b"range"}
_CONCURRENT_MISC = _SEARCHES | {b"get", b"getlist", b"getpart", b"error"}


def _removes(args: Sequence[bytes]) -> bool:
    """Whether search arguments make it remove what it finds."""
    return any(arg[:3] == b"out" for arg in args)


def _reads_only(name: bytes, args: Sequence[bytes]) -> bool:
    """Whether a MISC call may run beside a shared read."""
    return name in _CONCURRENT_MISC and not (name in _SEARCHES and _removes(args))


# Lists cross the library boundary in one call each way: built with tclistload
# from one buffer, read with tclistdump into one buffer, rather than one
# tclistpush/tclistval call per element. The buffer is the library's list
# serialisation: per element its size as a variable-length number (TC_SETVNUMBUF:
# 7 bits a byte, least significant first, every byte but the last stored as
# -rem-1), then its bytes. The format is checked against the loaded library at
# import (:func:`_list_codec_works`); if it ever differs, the per-element calls
# are used.
_VNUM1 = [bytes((n,)) for n in range(128)]
_LOAD_MAX = 0x7FFFFFFF  # tclistload takes the buffer size as a C int


def _vnum(n: int) -> bytes:
    """``n`` as the library's variable-length size number."""
    if n < 128:
        return _VNUM1[n]
    out = bytearray()
    while n > 0:
        rem = n & 0x7F
        n >>= 7
        out.append(0xFF - rem if n > 0 else rem)  # 0xFF - rem: -rem-1 as a byte
    return bytes(out)


def _list_buffer(items: Iterable[bytes]) -> bytes:
    """The serialisation tclistload reads for ``items``."""
    parts: list[bytes] = []
    append = parts.append
    vnum1 = _VNUM1
    for item in items:
        n = len(item)
        append(vnum1[n] if n < 128 else _vnum(n))
        append(item)
    return b"".join(parts)


def _split_list_buffer(data: bytes) -> list[bytes]:
    """The elements of a tclistdump serialisation."""
    out: list[bytes] = []
    append = out.append
    pos = 0
    end = len(data)
    while pos < end:
        n = data[pos]
        pos += 1
        if n > 127:
            n = 0xFF - n
            base = 128
            while True:
                c = data[pos]
                pos += 1
                if c < 128:
                    n += c * base
                    break
                n += (0xFF - c) * base
                base <<= 7
        append(data[pos : pos + n])
        pos += n
    return out


def _new_list(items: Sequence[bytes]) -> int:
    """A new TCLIST holding ``items`` (free it with tclistdel)."""
    if _LIST_CODEC:
        data = _list_buffer(items)
        if len(data) <= _LOAD_MAX:
            return int(_tclistload(data, len(data)))
    ptr = _tclistnew()
    for item in items:
        _tclistpush(ptr, item, len(item))
    return int(ptr)


def _read_list(ptr: int) -> list[bytes]:
    """The elements of a TCLIST as Python bytes (the list is left alone)."""
    size = ctypes.c_int()
    sizep = ctypes.byref(size)
    if _LIST_CODEC:
        buf = _tclistdump(ptr, sizep)
        try:
            return _split_list_buffer(buf[: size.value])
        finally:
            _tcfree(buf)
    return [_tclistval(ptr, i, sizep)[: size.value] for i in range(_tclistnum(ptr))]


def _read_list_slowly(ptr: int) -> list[bytes]:
    size = ctypes.c_int()
    sizep = ctypes.byref(size)
    return [_tclistval(ptr, i, sizep)[: size.value] for i in range(_tclistnum(ptr))]


def _list_codec_works() -> bool:
    """Whether tclistload/tclistdump use the serialisation assumed above."""
    # sizes of one, two and three bytes, at and around each boundary
    sample = [b"", b"a", b"\0b\0", b"c" * 127, b"d" * 128, b"e" * 300, b"f" * 16383,
              b"g" * 16384, b"h" * 70000, b"i"]  # fmt: skip
    data = _list_buffer(sample)
    ptr = _tclistload(data, len(data))
    try:
        if _read_list_slowly(ptr) != sample:
            return False
        size = ctypes.c_int()
        buf = _tclistdump(ptr, ctypes.byref(size))
        try:
            dumped = buf[: size.value]
        finally:
            _tcfree(buf)
        return dumped == data and _split_list_buffer(dumped) == sample
    finally:
        _tclistdel(ptr)


_LIST_CODEC: bool = _list_codec_works()


class _Args:
    """A TCLIST built from Python bytes, freed with tclistdel."""

    __slots__ = ("ptr",)

    def __init__(self, items: Sequence[bytes]) -> None:
        self.ptr = _new_list(items)

    def __enter__(self) -> int:
        return self.ptr

    def __exit__(self, *exc: object) -> None:
        _tclistdel(self.ptr)


def _take_list(ptr: int) -> list[bytes]:
    """Copy a library-allocated TCLIST into Python bytes and free it."""
    try:
        return _read_list(ptr)
    finally:
        _tclistdel(ptr)


class CabinetClosedError(ValueError):
    """An operation on a closed :class:`Cabinet`."""


class Cabinet:
    """One open Tokyo Cabinet database behind the abstract (``tcadb``) API.

    ``Cabinet(name)`` opens ``name`` exactly as ttserver does (``tcadbopen``):
    ``*`` (on-memory hash), ``+`` (on-memory tree), ``*.tch``, ``*.tcb``,
    ``*.tcf``, ``*.tct``, each optionally followed by ``#key=value`` tuning
    parameters.  The default mode is writer + create.  Raises ``OSError`` when
    the library cannot open it.

    Keys, values and arguments are ``bytes`` passed with their lengths (NUL-safe).
    Every call holds one re-entrant lock: the guards check then act and PUTSHL is
    a read-modify-write, so the lock keeps each of them atomic.  (``tcadbopen``
    also enables the engines' own mutexes; ctypes drops the GIL during calls.)

    :meth:`misc_shared` is the exception: a long read holds the lock only to
    start and to finish. Tokyo Cabinet's own reader-writer lock lets other
    reads (GET, VSIZ, a table's record reads and searches ...) run beside it;
    a write, and any call the library would make wait, first waits -- with
    the lock released -- until no shared read runs, so that one long read
    never holds the lock for everyone. Shared reads that start while a write
    waits wait for it in turn.
    """

    __slots__ = (
        "_lock", "_adb", "_size", "_sizep", "_omode", "_table", "_guarded",
        "_idx_prefix", "_indexes", "_ordered", "_name", "_drained", "_shared", "_wanted",
        "_scanning", "__weakref__",
    )  # fmt: skip

    def __init__(self, name: str | bytes | os.PathLike[str]) -> None:
        self._adb: ctypes.c_void_p | None = None
        self._lock = threading.RLock()
        self._drained = threading.Condition(self._lock)  # shared reads or writers done
        self._shared = 0  # shared reads running (misc_shared)
        self._wanted = 0  # calls waiting for them to finish
        self._scanning = threading.Lock()  # shared reads that move the engine's iterator
        self._size = ctypes.c_int()
        self._sizep = ctypes.byref(self._size)
        self._indexes: dict[bytes, str] = {}
        self._ordered: frozenset[bytes] = frozenset()
        self._idx_prefix = b""
        raw = os.fsencode(name)
        self._name = raw
        if b"\0" in raw:
            raise ValueError("database name contains a NUL byte")
        _refuse_aborting_open(raw)
        adb = _tcadbnew()
        ctypes.set_errno(0)
        if not _tcadbopen(adb, raw):
            err = ctypes.get_errno()
            _tcadbdel(adb)
            message = f"Tokyo Cabinet cannot open {os.fsdecode(raw)!r}"
            raise OSError(err, message) if err else OSError(message)
        self._adb = ctypes.c_void_p(adb)
        self._omode = int(_tcadbomode(adb))
        self._table = self._omode == ADBOTDB
        self._guarded = self._omode in (ADBOHDB, ADBOTDB)
        if self._table:
            path = _tcadbpath(adb) or _parse_open_name(raw)[0]
            self._idx_prefix = os.path.abspath(path) + b".idx."
            self._discover_indexes()

    @classmethod
    def open(cls, name: str | bytes | os.PathLike[str]) -> Cabinet:
        """Open ``name`` (same as the constructor)."""
        return cls(name)

    # -- lifecycle ------------------------------------------------------------------

    def close(self) -> bool:
        """Close and free the database; later calls raise. Closing twice is a no-op."""
        with self._lock:
            if self._adb is None:
                return True
            adb = self._exclusive()
            self._adb = None
            ok = bool(_tcadbclose(adb))
            _tcadbdel(adb)
            return ok

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._adb is None

    def __enter__(self) -> Cabinet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_adb", None) is not None:
                self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "closed" if self._adb is None else self.db_type
        return f"<Cabinet {os.fsdecode(self._name)!r} {state}>"

    def _handle(self) -> ctypes.c_void_p:
        adb = self._adb
        if adb is None:
            raise CabinetClosedError("the database is closed")
        return adb

    def _on_failure(self) -> None:
        """Called (under the lock) after a call reported failure; a hook for
        :class:`~doqu_tyrant.server.durable.DurableCabinet`, which checks
        whether the engine went into its fatal state."""

    # -- shared reads ---------------------------------------------------------------

    def _exclusive(self) -> ctypes.c_void_p:
        """The handle, for a call that must not run beside a shared read (lock
        held): waits, with the lock released meanwhile, until none runs."""
        if self._shared:
            self._wanted += 1
            try:
                while self._shared:
                    self._drained.wait()
            finally:
                self._wanted -= 1
                if not self._wanted:
                    self._drained.notify_all()
        return self._handle()

    def _enter_shared(self) -> ctypes.c_void_p:
        """Count a shared read in (lock held) after any waiting writer; its handle."""
        while self._wanted:
            self._drained.wait()
        adb = self._handle()
        self._shared += 1
        return adb

    def _leave_shared(self) -> None:
        """Count a shared read out (lock held); wake the waiting calls after the last."""
        self._shared -= 1
        if not self._shared:
            self._drained.notify_all()
            self._readers_done()

    def _readers_done(self) -> None:
        """Called (under the lock) when the last shared read has finished; a hook
        for :class:`~doqu_tyrant.server.durable.DurableCabinet`."""

    def misc_shared(self, name: str | bytes, args: Sequence[bytes] = ()) -> list[bytes] | None:
        """:meth:`misc` for a read that may take long: ``search`` and
        ``metasearch`` (without ``out``), ``regex``, ``range``.

        The lock is not held while the library runs it, so other threads'
        reads proceed meanwhile; calls that must not run beside it (writes,
        iteration, :meth:`close`) wait until it has finished. ``regex`` and
        ``range`` move the engine's iterator on some kinds, so two of them
        run one after the other. Any other function runs as :meth:`misc`.
        """
        raw = name.encode() if isinstance(name, str) else name
        if raw not in _SHARED_MISC or (raw in _SEARCHES and _removes(args)):
            return self.misc(raw, args)
        with self._lock:
            adb = self._enter_shared()
        result = None
        try:
            if raw in _SEARCHES:
                result = self._misc(adb, raw, args)
            else:
                with self._scanning:
                    result = self._misc(adb, raw, args)
        finally:
            with self._lock:
                self._leave_shared()
                if result is None and self._adb is not None:
                    self._on_failure()
        return result

    # -- description ----------------------------------------------------------------

    @property
    def omode(self) -> int:
        """The library's open mode (``ADBOMDB`` ... ``ADBOTDB``)."""
        return self._omode

    @property
    def db_type(self) -> str:
        """Database type as ttserver's STAT ``type`` line names it."""
        return _TYPE_NAMES.get(self._omode, "unknown")

    @property
    def path(self) -> bytes:
        """``tcadbpath``: the file path without parameters (``*``/``+`` in memory)."""
        with self._lock:
            path: bytes = _tcadbpath(self._handle()) or b""
            return path

    def rnum(self) -> int:
        """Number of records (B+ tree: every duplicate counts)."""
        with self._lock:
            return int(_tcadbrnum(self._handle()))

    def size(self) -> int:
        """File size, or the approximate memory use of an on-memory database."""
        with self._lock:
            return int(_tcadbsize(self._handle()))

    def extent(self) -> tuple[int, int]:
        """``(rnum(), size())`` at once, cheaply: what a full scan would cover."""
        with self._lock:
            adb = self._adb
            if adb is None:
                raise CabinetClosedError("the database is closed")
            return _fast_rnum(adb), _fast_size(adb)

    def reveal(self) -> int:
        """Address of the underlying engine object (TCHDB*, TCTDB*, ...)."""
        with self._lock:
            return int(_tcadbreveal(self._handle()) or 0)

    @property
    def indexes(self) -> dict[bytes, str]:
        """Table indexes: column name -> ``"lex"``, ``"dec"``, ``"tok"`` or ``"qgr"``."""
        return dict(self._indexes)

    # -- records ----------------------------------------------------------------------

    def _store(self, fast: Any, declared: Any, key: bytes, value: bytes, cat: bool) -> bool:
        """One guarded put-style call; ``fast`` skips ctypes' argument checks for bytes."""
        with self._lock:
            adb = self._adb
            if adb is None or self._shared:
                adb = self._exclusive()
            if self._ordered and self._record_aborts(adb, key, value, cat):
                return False
            call = fast if key.__class__ is bytes and value.__class__ is bytes else declared
            ok: bool = call(adb, key, len(key), value, len(value))
            if not ok:
                self._on_failure()
            return ok

    def put(self, key: bytes, value: bytes) -> bool:
        """Store, overwriting (``tcadbput``)."""
        return self._store(_fast_put, _tcadbput, key, value, False)

    def putkeep(self, key: bytes, value: bytes) -> bool:
        """Store only if the key is absent (``tcadbputkeep``)."""
        return self._store(_fast_putkeep, _tcadbputkeep, key, value, False)

    def putcat(self, key: bytes, value: bytes) -> bool:
        """Append (tables: add only the missing columns) (``tcadbputcat``)."""
        return self._store(_fast_putcat, _tcadbputcat, key, value, True)

    def putshl(self, key: bytes, value: bytes, width: int) -> bool:
        """Append ``value`` and keep the last ``width`` bytes (Tyrant PUTSHL).

        An absent record is created with the whole value.  Tables work on the
        serialized record and re-parse it.  The abstract API has no such call, so
        this is a get + put under the lock.
        """
        if width < 0:
            raise ValueError("width must not be negative")
        with self._lock:
            adb = self._exclusive()
            if self._table and not key:
                return False  # the library asserts on an empty primary key
            old = self._get(adb, key)
            if old is None:
                new = value
            else:
                new = old + value
                if len(new) > width:
                    new = new[len(new) - width :]
            if self._ordered and self._record_aborts(adb, key, new, False):
                return False
            ok: bool = _tcadbput(adb, key, len(key), new, len(new))
            if not ok:
                self._on_failure()
            return ok

    def out(self, key: bytes) -> bool:
        """Remove a record (``tcadbout``); ``False`` if missing."""
        with self._lock:
            adb = self._adb
            if adb is None or self._shared:
                adb = self._exclusive()
            if key.__class__ is bytes:
                ok: bool = _fast_out(adb, key, len(key))
            else:
                ok = _tcadbout(adb, key, len(key))
            if not ok:
                self._on_failure()
            return ok

    def get(self, key: bytes) -> bytes | None:
        """Value of a record (tables: serialized columns) or ``None``."""
        with self._lock:
            adb = self._adb
            if adb is None:
                raise CabinetClosedError("the database is closed")
            if key.__class__ is bytes:
                ptr = _fast_get(adb, key, len(key), self._sizep)
            else:
                ptr = _tcadbget(adb, key, len(key), self._sizep)
            if not ptr:
                return None
            try:
                return ptr[: self._size.value]
            finally:
                _fast_free(ptr)

    def getmany(self, keys: Iterable[bytes]) -> list[bytes | None]:
        """:meth:`get` of each of ``keys`` in turn, under one lock acquisition."""
        values: list[bytes | None] = []
        append = values.append
        size = self._size
        sizep = self._sizep
        free = _fast_free
        with self._lock:
            adb = self._adb
            if adb is None:
                raise CabinetClosedError("the database is closed")
            for key in keys:
                if key.__class__ is bytes:
                    ptr = _fast_get(adb, key, len(key), sizep)
                else:
                    ptr = _tcadbget(adb, key, len(key), sizep)
                if ptr:
                    try:
                        append(ptr[: size.value])
                    finally:
                        free(ptr)
                else:
                    append(None)
        return values

    def mget(self, keys: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of each of ``keys`` that has a record, in order, under
        one lock acquisition (Tyrant MGET)."""
        keys = list(keys)
        return [(k, v) for k, v in zip(keys, self.getmany(keys)) if v is not None]

    def putmany(self, items: Iterable[tuple[bytes, bytes]], how: str = "put") -> list[bool]:
        """:meth:`put` of each ``(key, value)`` in turn under one lock acquisition
        (``how="putkeep"``/``"putcat"``: :meth:`putkeep`/:meth:`putcat`); each one's
        result."""
        fast, declared = _STORES[how]
        cat = how == "putcat"
        results: list[bool] = []
        append = results.append
        with self._lock:
            adb = self._adb
            if adb is None or self._shared:
                adb = self._exclusive()
            ordered = self._ordered
            for key, value in items:
                if ordered and self._record_aborts(adb, key, value, cat):
                    append(False)
                elif key.__class__ is bytes and value.__class__ is bytes:
                    append(fast(adb, key, len(key), value, len(value)))
                else:
                    append(declared(adb, key, len(key), value, len(value)))
            if False in results:
                self._on_failure()
        return results

    def _get(self, adb: ctypes.c_void_p, key: bytes) -> bytes | None:
        ptr = _tcadbget(adb, key, len(key), self._sizep)
        if not ptr:
            return None
        try:
            return ptr[: self._size.value]
        finally:
            _tcfree(ptr)

    def vsiz(self, key: bytes) -> int:
        """Size of a value (tables: internal encoding size), -1 if missing."""
        with self._lock:
            return int(_tcadbvsiz(self._handle(), key, len(key)))

    def iterinit(self) -> bool:
        """Rewind the (single, shared) iterator."""
        with self._lock:
            return _tcadbiterinit(self._exclusive())

    def iternext(self) -> bytes | None:
        """Next key of the iterator, ``None`` at the end."""
        with self._lock:
            ptr = _tcadbiternext(self._exclusive(), self._sizep)
            if not ptr:
                return None
            try:
                return ptr[: self._size.value]
            finally:
                _tcfree(ptr)

    def fwmkeys(self, prefix: bytes, max: int = -1) -> list[bytes]:
        """Keys starting with ``prefix`` in engine order; ``max`` < 0 = no limit."""
        with self._lock:
            ptr = _tcadbfwmkeys(self._exclusive(), prefix, len(prefix), max)
            return _take_list(ptr) if ptr else []

    def addint(self, key: bytes, num: int) -> int:
        """Add to an integer record (tables: column ``_num``); ``INT_MIN`` on failure."""
        with self._lock:
            total = int(_tcadbaddint(self._exclusive(), key, len(key), num))
            if total == INT_MIN:
                self._on_failure()
            return total

    def adddouble(self, key: bytes, num: float) -> float:
        """Add to a real-number record (tables: column ``_num``); NaN on failure.

        A NaN sum is refused before the library is called: Tokyo Cabinet would
        store it (creating the record if missing) and then report the failure.
        That is a NaN ``num``, or an infinity added to the opposite one.
        """
        with self._lock:
            adb = self._exclusive()
            if math.isnan(num) or (math.isinf(num) and self._holds_number(adb, key, -num)):
                return math.nan
            total = float(_tcadbadddouble(adb, key, len(key), num))
            if math.isnan(total):
                self._on_failure()
            return total

    def _holds_number(self, adb: ctypes.c_void_p, key: bytes, num: float) -> bool:
        """Whether ``key``'s record holds exactly ``num`` as adddouble reads it."""
        if self._table:
            cols = self._misc(adb, b"get", [key]) if key else None
            text = dict(zip(cols[0::2], cols[1::2])).get(b"_num") if cols else None
            try:
                return text is not None and float(text) == num
            except ValueError:
                return False
        value = self._get(adb, key)
        return value is not None and len(value) == 8 and struct.unpack("<d", value)[0] == num

    # -- whole database -----------------------------------------------------------------

    def sync(self) -> bool:
        """Flush to the device (``tcadbsync``)."""
        with self._lock:
            return _tcadbsync(self._exclusive())

    def optimize(self, params: str | bytes = b"") -> bool:
        """Rebuild/retune with ``name=value#...`` parameters (``tcadboptimize``)."""
        raw = params.encode() if isinstance(params, str) else params
        with self._lock:
            ok: bool = _tcadboptimize(self._exclusive(), raw)
            if self._table:
                self._discover_indexes()
            return ok

    def vanish(self) -> bool:
        """Remove every record; table index definitions survive."""
        with self._lock:
            return _tcadbvanish(self._exclusive())

    def copy(self, path: str | bytes | os.PathLike[str]) -> bool:
        """Hot backup to ``path`` (``@cmd`` runs a command), as ``tcadbcopy``."""
        raw = os.fsencode(path)
        with self._lock:
            return _tcadbcopy(self._exclusive(), raw)

    def tranbegin(self) -> bool:
        """Begin a transaction (``tcadbtranbegin``)."""
        with self._lock:
            return _tcadbtranbegin(self._exclusive())

    def trancommit(self) -> bool:
        """Commit the transaction (``tcadbtrancommit``)."""
        with self._lock:
            return _tcadbtrancommit(self._exclusive())

    def tranabort(self) -> bool:
        """Abort the transaction (``tcadbtranabort``)."""
        with self._lock:
            ok: bool = _tcadbtranabort(self._exclusive())
            if self._table:
                self._discover_indexes()
            return ok

    # -- misc -------------------------------------------------------------------------------

    def misc(self, name: str | bytes, args: Sequence[bytes] = ()) -> list[bytes] | None:
        """Call a ``tcadbmisc`` function; its result list, or ``None`` on failure."""
        raw = name.encode() if isinstance(name, str) else name
        with self._lock:
            adb = self._handle()
            if self._shared and not _reads_only(raw, args):
                adb = self._exclusive()
            if self._guarded and self._misc_aborts(adb, raw, args):
                return None
            result = self._misc(adb, raw, args)
            if self._table and raw in (b"setindex", b"optimize"):
                self._discover_indexes()
            if result is None:
                self._on_failure()
            return result

    def genuid(self) -> int:
        """The table's next unique ID, as misc ``genuid`` gives it; -1 if not a table."""
        with self._lock:
            adb = self._exclusive()
            if not self._table:
                return -1
            return int(_tctdbgenuid(_tcadbreveal(adb)))

    def genuids(self, count: int) -> list[int]:
        """:meth:`genuid` ``count`` times in a row, under one lock acquisition: the
        next ``count`` IDs taken at once by moving the table's seed past them
        (what as many ``tctdbgenuid`` calls do), or one by one where that fails."""
        with self._lock:
            adb = self._exclusive()
            if not self._table:
                return [-1] * count
            tdb = _tcadbreveal(adb)
            seed = int(_tctdbuidseed(tdb))
            if count > 1 and 0 <= seed <= _INT64_MAX - count and _tctdbsetuidseed(
                    tdb, seed + count):
                return list(range(seed + 1, seed + count + 1))
            genuid = _tctdbgenuid
            return [genuid(tdb) for _ in range(count)]

    @staticmethod
    def _misc(adb: ctypes.c_void_p, name: bytes, args: Sequence[bytes]) -> list[bytes] | None:
        with _Args(args) as lst:
            ptr = _tcadbmisc(adb, name, lst)
        return _take_list(ptr) if ptr else None

    # -- guards (protocol spec section 10) ---------------------------------------------------

    def _misc_aborts(self, adb: ctypes.c_void_p, name: bytes, args: Sequence[bytes]) -> bool:
        """Whether this misc call would trip an assertion of the library."""
        if name == b"iterinit":  # hash and table assert on an empty start key
            return bool(args) and not args[0]
        if not self._table:
            return False
        if name in (b"put", b"putkeep", b"putcat"):
            if not args:
                return False
            if not args[0]:
                return True
            if not self._ordered:
                return False  # nothing but the primary key can abort
            return self._table_put_aborts(adb, args[0], _pairs(args[1:]), name == b"putcat")
        if name == b"putlist":
            last = len(args) - 1  # an odd last argument is no record
            if not self._ordered and b"" not in args[0:last:2]:
                return False  # without lexical/decimal indexes only a primary key can abort
            # records are stored in order; the first failure ends the call
            for i in range(0, last, 2):
                if not args[i]:
                    return True
                value = args[i + 1]
                if b"\0\0" not in value and value[:1] != b"\0" and value[-1:] != b"\0":
                    continue  # no empty column name or value: neither aborts nor fails
                cols = list(unpack_record(value).items())
                if any(not col for col, _ in cols):
                    return False
                if self._table_put_aborts(adb, args[i], cols, False):
                    return True
            return False
        if name == b"setindex":
            for i in range(0, len(args) - 1, 2):
                if _builds_ordered_index(parse_index_type(args[i + 1])):
                    column = args[i].split(b"\0", 1)[0]
                    if self._has_empty_values(adb, column):
                        return True
            return False
        return False

    def _record_aborts(self, adb: ctypes.c_void_p, key: bytes, value: bytes, cat: bool) -> bool:
        """``_table_put_aborts`` for a serialized record, with a cheap pre-check."""
        # An empty column value shows as NUL NUL inside the record or a final NUL.
        if b"\0\0" not in value and value[-1:] != b"\0":
            return False
        return self._table_put_aborts(adb, key, list(unpack_record(value).items()), cat)

    def _table_put_aborts(
        self, adb: ctypes.c_void_p, key: bytes, cols: list[tuple[bytes, bytes]], cat: bool
    ) -> bool:
        """Whether storing ``cols`` puts an empty value into a lexical/decimal index.

        The library matches a column to its index by C string (``strcmp``): a
        MISC column name ``b"a\\0x"`` is indexed as column ``a``.
        """
        ordered = self._ordered
        empty = {col for col, val in cols if not val and col.split(b"\0", 1)[0] in ordered}
        if not empty:
            return False
        if any(not col for col, _ in cols):
            return False  # the library rejects empty column names before indexing
        if cat and key:
            current = self._misc(adb, b"get", [key])
            if current:
                empty.difference_update(current[0::2])
        return bool(empty)

    def _has_empty_values(self, adb: ctypes.c_void_p, column: bytes) -> bool:
        query = [b"addcond\0%s\0%s\0" % (column, _STREQ_NOIDX), b"count"]
        result = self._misc(adb, b"search", query)
        return not result or result[0] != b"0"

    def _discover_indexes(self) -> None:
        """Read the table's indexes from the files the library keeps beside it."""
        self._indexes = _scan_index_files(self._idx_prefix)
        self._ordered = frozenset(
            col for col, kind in self._indexes.items() if kind in ("lex", "dec")
        )


def _scan_index_files(prefix: bytes) -> dict[bytes, str]:
    """Indexes named by files ``<db path>.idx.<url-quoted column>.<lex|dec|tok|qgr>``."""
    directory, base = os.path.split(prefix)
    try:
        names = os.listdir(directory or b".")
    except OSError:
        return {}
    found: dict[bytes, str] = {}
    for fname in names:
        if not fname.startswith(base):
            continue
        quoted, dot, suffix = fname[len(base) :].rpartition(b".")
        if dot and suffix in _IDX_SUFFIXES:
            found[unquote_to_bytes(quoted)] = _IDX_KIND[_IDX_SUFFIXES[suffix]]
    return found


def _refuse_aborting_open(name: bytes) -> None:
    """Refuse ``#idx=col:lex|dec`` on an existing table whose column has empty values.

    The library builds a missing index at open and asserts on an empty value, so
    the table is first opened read-only to look.
    """
    path, params = _parse_open_name(name)
    specs = [value for key, value in params if key == b"idx"]
    if not specs or not _is_table_path(path) or not os.path.exists(path):
        return
    modes = [value for key, value in params if key == b"mode"]
    if modes and (b"w" not in modes[-1].lower() or b"t" in modes[-1].lower()):
        return
    indexed = set(_scan_index_files(os.path.abspath(path) + b".idx."))
    probe: Cabinet | None = None
    try:
        for spec in specs:
            column, colon, text = spec.partition(b":")
            itype = parse_index_type(text) if colon else 0
            if column in indexed or itype is None or (itype & ~_IDX_KEEP) not in _IDX_KIND:
                continue
            indexed.add(column)
            if (itype & ~_IDX_KEEP) not in (0, 1):
                continue
            if probe is None:
                try:
                    probe = Cabinet(path + b"#mode=rf")  # never wait for another's lock
                except OSError:
                    return
            if probe._has_empty_values(probe._handle(), column):
                raise OSError(
                    f"refusing to open {os.fsdecode(name)!r}: column {column!r} has empty "
                    "values and Tokyo Cabinet aborts when it builds a lexical/decimal "
                    "index over them"
                )
    finally:
        if probe is not None:
            probe.close()
