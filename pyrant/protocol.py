"""pyrant's low-level API: :class:`TyrantProtocol`, one method per command.

A thin layer over :class:`doqu_tyrant.tyrant.Tyrant` (its connection pool,
codec and query builder) that keeps pyrant 0.6's signatures, return values
and errors: replies come back as text (``str``; bytes where ``literal=True``
is asked for), and any failure status of the server raises
:class:`~pyrant.exceptions.InvalidOperation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from doqu_tyrant.tyrant import protocol as _p
from doqu_tyrant.tyrant.client import Tyrant as _Client
from doqu_tyrant.tyrant.commands import HINT_PREFIX
from doqu_tyrant.tyrant.errors import TyrantCommandError

from . import exceptions
from ._values import query_text, wire

__all__ = ["TyrantProtocol", "DB_BTREE", "DB_TABLE", "DB_MEMORY", "DB_HASH",
           "TABLE_COLUMN_SEP", "ENCODING", "ENCODING_ERROR_HANDLING", "MAGIC_NUMBER"]

MAGIC_NUMBER = 0xC8
#: How replies are decoded; set ``ENCODING_ERROR_HANDLING`` to ``"replace"``
#: or ``"ignore"`` to read text that is not valid UTF-8.
ENCODING = "UTF-8"
ENCODING_ERROR_HANDLING = "strict"

# Database types as STAT names them.
DB_BTREE = "B+ tree"
DB_TABLE = "table"
DB_MEMORY = "on-memory hash"
DB_HASH = "hash"

TABLE_COLUMN_SEP = "\x00"

_MISSING = object()
_INDEX_TYPES = {"lexical": 0, "decimal": 1, "token": 2, "q-gram": 3}


def _decode(data: bytes) -> str:
    return data.decode(ENCODING, ENCODING_ERROR_HANDLING)


@contextmanager
def _failure_is_invalid(command: str) -> Iterator[None]:
    """Turn the client's failure status into pyrant's exception."""
    try:
        yield
    except TyrantCommandError as exc:
        raise exceptions.InvalidOperation(f"{command}: the server reported failure") from exc


def _invalid(command: str) -> exceptions.InvalidOperation:
    return exceptions.InvalidOperation(f"{command}: the server reported failure")


class TyrantProtocol:
    """The commands of the Tyrant protocol, close to the C API.

    ``TyrantProtocol(host, port, timeout=None)`` connects at once (an
    ``OSError`` if nothing listens there). :meth:`from_client` wraps an
    existing :class:`doqu_tyrant.tyrant.Tyrant` instead, sharing its pool.
    """

    # Protocol commands (the codes of the one codec)
    PUT = _p.PUT
    PUTKEEP = _p.PUTKEEP
    PUTCAT = _p.PUTCAT
    PUTSHL = _p.PUTSHL
    PUTNR = _p.PUTNR
    OUT = _p.OUT
    GET = _p.GET
    MGET = _p.MGET
    VSIZ = _p.VSIZ
    ITERINIT = _p.ITERINIT
    ITERNEXT = _p.ITERNEXT
    FWMKEYS = _p.FWMKEYS
    ADDINT = _p.ADDINT
    ADDDOUBLE = _p.ADDDOUBLE
    EXT = _p.EXT
    SYNC = _p.SYNC
    VANISH = _p.VANISH
    COPY = _p.COPY
    RESTORE = _p.RESTORE
    SETMST = _p.SETMST
    RNUM = _p.RNUM
    SIZE = _p.SIZE
    STAT = _p.STAT
    MISC = _p.MISC

    # Query conditions
    RDBQCSTREQ = 0
    RDBQCSTRINC = 1
    RDBQCSTRBW = 2
    RDBQCSTREW = 3
    RDBQCSTRAND = 4
    RDBQCSTROR = 5
    RDBQCSTROREQ = 6
    RDBQCSTRRX = 7
    RDBQCNUMEQ = 8
    RDBQCNUMGT = 9
    RDBQCNUMGE = 10
    RDBQCNUMLT = 11
    RDBQCNUMLE = 12
    RDBQCNUMBT = 13
    RDBQCNUMOREQ = 14
    RDBQCFTSPH = 15
    RDBQCFTSAND = 16
    RDBQCFTSOR = 17
    RDBQCFTSEX = 18
    RDBQCNEGATE = 1 << 24
    RDBQCNOIDX = 1 << 25

    # Order types
    RDBQOSTRASC = 0
    RDBQOSTRDESC = 1
    RDBQONUMASC = 2
    RDBQONUMDESC = 3

    # Metasearch operations
    TDBMSUNION = 0
    TDBMSISECT = 1
    TDBMSDIFF = 2

    # MISC option: leave the call out of the update log
    RDBMONOULOG = 1

    # EXT options
    RDBXOLCKREC = 1
    RDBXOLCKGLB = 2

    # Index types
    TDBITLEXICAL = 0
    TDBITDECIMAL = 1
    TDBITTOKEN = 2
    TDBITQGRAM = 3
    TDBITOPT = 9998
    TDBITVOID = 9999
    TDBITKEEP = 1 << 24

    def __init__(self, host: str, port: int, timeout: float | None = None) -> None:
        client = _Client(host, port, timeout)
        self._attach(client)
        # pyrant opened its socket here: fail now if nothing listens.
        pool = client._pool
        conn = pool.acquire()
        try:
            if not conn.connected:
                conn.connect()
        finally:
            pool.release(conn)

    @classmethod
    def from_client(cls, client: _Client) -> TyrantProtocol:
        """A ``TyrantProtocol`` over ``client`` (same connections, nothing sent)."""
        self = cls.__new__(cls)
        self._attach(client)
        return self

    def _attach(self, client: _Client) -> None:
        self.client = client
        self.host = client.host
        self.port = client.port

    def __repr__(self) -> str:
        return f"<TyrantProtocol {self.host}:{self.port}>"

    def close(self) -> None:
        """Close the sockets (later calls reconnect). Not in pyrant 0.6."""
        self.client.close()

    # -- key-value commands -------------------------------------------------------------

    def put(self, key: Any, value: Any) -> None:
        """Store ``value`` under ``key``."""
        with _failure_is_invalid("put"):
            self.client.put(key, value)

    def putkeep(self, key: Any, value: Any) -> None:
        """Store only if ``key`` is absent (``InvalidOperation`` if it exists)."""
        if not self.client.putkeep(key, value):
            raise _invalid("putkeep")

    def putcat(self, key: Any, value: Any) -> None:
        """Append ``value`` to the value of ``key`` (created if absent)."""
        with _failure_is_invalid("putcat"):
            self.client.putcat(key, value)

    def putshl(self, key: Any, value: Any, width: int) -> None:
        """Append, then keep only the last ``width`` bytes."""
        with _failure_is_invalid("putshl"):
            self.client.putshl(key, value, width)

    def putnr(self, key: Any, value: Any) -> None:
        """Store without waiting for an answer."""
        self.client.putnr(key, value)

    def out(self, key: Any) -> None:
        """Remove ``key`` (``InvalidOperation`` if missing)."""
        if not self.client.out(key):
            raise _invalid("out")

    def genuid(self) -> str:
        """A new unique primary key (text) from a table's counter."""
        res = self.misc("genuid", [])
        if len(res) != 1 or not res[0]:
            raise ValueError(f"Could not generate primary key: {res!r}")
        return res[0]

    def get(self, key: Any, literal: bool = False) -> str | bytes:
        """The value of ``key`` (``InvalidOperation`` if missing); bytes with
        ``literal=True``."""
        value = self.client.get(key, _MISSING)
        if value is _MISSING:
            raise _invalid("get")
        return value if literal else _decode(value)  # type: ignore[arg-type, return-value]

    def getint(self, key: Any) -> int:
        """The number stored by :meth:`addint`."""
        return self.addint(key)

    def getdouble(self, key: Any) -> float:
        """The number stored by :meth:`adddouble`."""
        return self.adddouble(key)

    def mget(self, keys: Iterable[Any], literal: bool = False) -> list[tuple[Any, Any]]:
        """``(key, value)`` for each of ``keys`` that exists, in request order."""
        found = self.client.mget([wire(k) for k in keys])
        if literal:
            return list(found.items())
        return [(_decode(k), _decode(v)) for k, v in found.items()]

    def vsiz(self, key: Any) -> int:
        """The size of the value of ``key`` (``InvalidOperation`` if missing)."""
        size = self.client.vsiz(key, _MISSING)
        if size is _MISSING:
            raise _invalid("vsiz")
        return size  # type: ignore[return-value]

    def iterinit(self) -> None:
        """Start iterating over the keys (one iterator per server)."""
        with _failure_is_invalid("iterinit"):
            self.client.iterinit()

    def iternext(self) -> str:
        """The next key; ``InvalidOperation`` at the end."""
        key = self.client.iternext()
        if key is None:
            raise _invalid("iternext")
        return _decode(key)

    def fwmkeys(self, prefix: Any, maxkeys: int = -1) -> list[str]:
        """At most ``maxkeys`` keys starting with ``prefix`` (negative: all)."""
        return [_decode(k) for k in self.client.fwmkeys(prefix, maxkeys)]

    def addint(self, key: Any, num: int = 0) -> int:
        """Add ``num`` to the integer under ``key``; return the sum."""
        with _failure_is_invalid("addint"):
            return self.client.addint(key, num)

    def adddouble(self, key: Any, num: float = 0.0) -> float:
        """Add ``num`` to the real number under ``key``; return the sum."""
        with _failure_is_invalid("adddouble"):
            return self.client.adddouble(key, num)

    def ext(self, func: Any, opts: int, key: Any, value: Any) -> str:
        """Call the server's script function ``func(key, value)``; ``opts``:
        ``RDBXOLCKREC`` and/or ``RDBXOLCKGLB``."""
        with _failure_is_invalid("ext"):
            result = self.client.ext(func, key, value, lock_record=bool(opts & self.RDBXOLCKREC),
                                     lock_global=bool(opts & self.RDBXOLCKGLB))
        return _decode(result)

    def sync(self) -> None:
        """Flush the database to disk."""
        with _failure_is_invalid("sync"):
            self.client.sync()

    def vanish(self) -> None:
        """Remove every record."""
        with _failure_is_invalid("vanish"):
            self.client.vanish()

    def copy(self, path: Any) -> None:
        """Hot-copy the database to ``path`` on the server host."""
        with _failure_is_invalid("copy"):
            self.client.copy(path)

    def restore(self, path: Any, msec: int) -> None:
        """Replay the update logs in ``path`` from timestamp ``msec``."""
        with _failure_is_invalid("restore"):
            self.client.restore(path, msec)

    def setmst(self, host: Any, port: int) -> None:
        """Replicate from the master ``host:port``."""
        with _failure_is_invalid("setmst"):
            self.client.setmst(host, port)

    def rnum(self) -> int:
        """The number of records."""
        return self.client.rnum()

    def size(self) -> int:
        """The size of the database in bytes."""
        return self.client.size()

    def stat(self) -> str:
        """The server's status text (``name<TAB>value`` lines)."""
        return "".join(f"{name}\t{value}\n" for name, value in self.client.stat().items())

    # -- table indexes ------------------------------------------------------------------

    def _setindex(self, name: Any, kind: int, keep: bool = False) -> bool:
        try:
            return self.client.setindex(name, kind, keep=keep)
        except TyrantCommandError:
            return False

    def add_index(self, name: Any, kind: str | None = None, keep: bool = False) -> bool:
        """Index column ``name``: ``kind`` is ``lexical`` (default), ``decimal``,
        ``token`` or ``q-gram``; ``keep=True`` leaves an existing index alone.
        True if the server did it."""
        kind = "lexical" if kind is None else kind
        if kind not in _INDEX_TYPES:
            raise AssertionError(f'unknown index type "{kind}"')
        return self._setindex(name, _INDEX_TYPES[kind], keep)

    def optimize_index(self, name: Any) -> bool:
        """Optimize the index of column ``name``; False if there is none."""
        return self._setindex(name, self.TDBITOPT)

    def drop_index(self, name: Any) -> bool:
        """Remove the index of column ``name``; False if there is none."""
        return self._setindex(name, self.TDBITVOID)

    # -- search and MISC ----------------------------------------------------------------

    def search(self, conditions: Sequence[tuple[Any, int, Any]], limit: int | None = 10,
               offset: int | None = 0, order_type: int = 0, order_column: Any = None,
               opts: int = 0, ms_conditions: Sequence[Sequence[tuple[Any, int, Any]]] | None = None,
               ms_type: int | None = None, columns: Iterable[Any] | None = None,
               out: bool = False, count: bool = False, hint: bool = False) -> list[str]:
        """Run a table search and return its result list.

        ``conditions`` are ``(column, op, expr)`` triples (``op`` one of the
        ``RDBQC*`` codes), all of which must hold; with ``ms_type``
        (``TDBMS*``) and ``ms_conditions`` (lists of triples) the result is
        combined with further sub-queries. The order and the limit belong to
        the last sub-query, as pyrant sent them. The result is the primary
        keys; the selected ``columns`` of each record; the count; or nothing
        (``out``); with ``hint`` the server's explanation is the last element.
        """
        if limit is not None and limit < 0:
            raise AssertionError(f'wrong limit value "{limit}"')
        if offset is not None and offset < 0:
            raise AssertionError(f'wrong offset value "{offset}"')
        if offset and not limit:
            raise ValueError("Offset cannot be specified without limit.")
        if ms_type not in (None, self.TDBMSUNION, self.TDBMSISECT, self.TDBMSDIFF):
            raise AssertionError(f"unknown metasearch type {ms_type!r}")
        if order_type not in (0, 1, 2, 3):
            raise AssertionError(f"unknown order type {order_type!r}")
        parts = [self._part(conditions)]
        if ms_type is not None and ms_conditions:
            parts.extend(self._part(conds) for conds in ms_conditions)
        last = parts[-1]
        if order_column:
            last = _ordered(last, order_column, order_type)
        if limit:
            last = last.limit(limit, offset or 0)
        parts[-1] = last
        query = parts[0]
        if len(parts) > 1:
            combine = (query.union, query.intersect, query.minus)[ms_type]  # type: ignore[index]
            query = combine(*parts[1:])
        args = query.build("keys")[2]
        if columns:
            args.append(b"\0".join([b"get", *(wire(c) for c in columns)]))
        if out:
            args.append(b"out")
        if count:
            args.append(b"count")
        with _failure_is_invalid("misc search"):
            items = self.client.misc("search", args, opts)
        if not hint and items and items[-1].startswith(HINT_PREFIX):
            items.pop()  # the native builder always asks for the hint
        return [_decode(item) for item in items]

    def _part(self, conditions: Iterable[tuple[Any, int, Any]]) -> Any:
        query = self.client.query
        for column, op, expr in conditions:
            query = query.condition(wire(column), int(op), query_text(expr))
        return query

    def misc(self, func: Any, args: Iterable[Any], opts: int = 0) -> list[str]:
        """Call MISC function ``func`` (``putlist``, ``outlist``, ``getlist``;
        on tables also ``setindex``, ``search``, ``genuid``, …) and return its
        result list. ``opts=RDBMONOULOG`` keeps it out of the update log."""
        with _failure_is_invalid(f"misc {func}"):
            items = self.client.misc(func, [wire(a) for a in args], opts)
        return [_decode(item) for item in items]


def _ordered(query: Any, column: Any, order_type: int) -> Any:
    name = column.decode(ENCODING) if isinstance(column, bytes) else str(column)
    if order_type in (0, 2) and name.startswith("-"):
        raise ValueError(f"cannot sort ascending by column {name!r}: a leading '-' means "
                         "descending to the client's order_by")
    descending = "-" if order_type in (1, 3) else ""
    return query.order_by(descending + name, numeric=order_type >= 2)
