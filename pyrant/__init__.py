"""pyrant 0.6's API on Python 3, over doqu-tyrant's client.

Code written for pyrant keeps working unchanged::

    import pyrant
    t = pyrant.Tyrant(host="127.0.0.1", port=1978)
    t["key"] = {"name": "foo"}          # a table database: records are dicts
    t["key"]["name"]                    # 'foo'
    t.query.filter(name="foo").order_by("-age", numeric=True)[:10]

Text is ``str`` where pyrant gave ``unicode`` (bytes with ``literal=True``).
The differences from pyrant 0.6.5 — fixes of bugs that lost data, hung or
killed the server — are listed in the documentation ("Keep using pyrant").
Everything goes through one :class:`doqu_tyrant.tyrant.Tyrant` client:
:meth:`Tyrant.from_client` wraps an existing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from doqu_tyrant.tyrant.client import Tyrant as _Client

from . import exceptions, protocol, query, utils
from ._values import is_iterable, wire

__version__ = "0.6.5"
__all__ = ["Tyrant"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1978

_ITER_BATCH = 1024  # ITERNEXT requests per round trip in iterkeys()
_CHUNK_SIZE = 1000  # keys per getlist in iteritems()


class Tyrant:
    """A dict-like view of a Tokyo Tyrant database.

    :param host: the server's address
    :param port: its port
    :param separator: if set, lists are stored joined by it and values
        containing it are read back as lists (for a table database: column
        values). A table database otherwise uses ``"\\x00"``.
    :param literal: if True, ``t[key]`` and query results are bytes instead
        of text.

    On a table database items are records (``dict``); on the others values
    are text. :attr:`proto` is the :class:`~pyrant.protocol.TyrantProtocol`
    underneath.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 separator: Any = None, literal: bool = False) -> None:
        self.proto = protocol.TyrantProtocol(host, port)
        self._setup(separator, literal)

    @classmethod
    def from_client(cls, client: _Client, separator: Any = None,
                    literal: bool = False) -> Tyrant:
        """A pyrant ``Tyrant`` over an existing :class:`doqu_tyrant.tyrant.Tyrant`
        (its connection pool, timeouts and settings). Not in pyrant 0.6."""
        self = cls.__new__(cls)
        self.proto = protocol.TyrantProtocol.from_client(client)
        self._setup(separator, literal)
        return self

    def _setup(self, separator: Any, literal: bool) -> None:
        self._kind: str | None = None
        self.separator = separator
        if not separator and self._db_kind() == protocol.DB_TABLE:
            self.separator = protocol.TABLE_COLUMN_SEP
        self.literal = literal

    @property
    def _client(self) -> _Client:
        return self.proto.client

    def _db_kind(self) -> str:
        # The database type is asked once; pyrant asked before every read.
        if self._kind is None:
            self._kind = self.db_type
        return self._kind

    def _is_table(self) -> bool:
        return self._db_kind() == protocol.DB_TABLE

    def close(self) -> None:
        """Close the sockets (later calls reconnect). Not in pyrant 0.6."""
        self.proto.close()

    # -- mapping protocol ---------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        try:
            self.proto.vsiz(key)
        except exceptions.TyrantError:
            return False
        return True

    def __delitem__(self, key: Any) -> None:
        try:
            self.proto.out(key)
        except exceptions.TyrantError:
            raise KeyError(key) from None

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, (str, bytes)):
            raise TypeError(f'Primary key must be a string, got {type(key).__name__} "{key}"')
        try:
            elem = self.proto.get(key, self.literal)
        except exceptions.TyrantError:
            raise KeyError(key) from None
        return utils.to_python(elem, self._db_kind(), self.separator)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` if there is none."""
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self.iterkeys())

    def __len__(self) -> int:
        return self.proto.rnum()

    def __repr__(self) -> str:
        return f"<Tyrant {self.proto.host}:{self.proto.port}>"

    def __setitem__(self, key: Any, value: Any) -> None:
        """Store ``value``: a dict as a table record (values through
        :func:`~pyrant.utils.from_python`), a list or tuple joined by the
        separator, anything else as it is."""
        if isinstance(value, dict):
            if not all(wire(k) for k in value):
                raise KeyError(f"Empty keys are not allowed ({value!r}).")
            if not self._is_table():
                raise TypeError(
                    f"a dict is stored as a table record, but this is a {self._db_kind()} "
                    "database; store text (or a list, with a separator)")
            record = self._record(value, utils.from_python)
            with protocol._failure_is_invalid("misc put"):
                self._client.table_put(_key(key), record)
            return
        if isinstance(value, (list, tuple)):
            if not self.separator:
                raise AssertionError("Separator is not set")
            value = self._joined(value)
        self.proto.put(key, value)

    def _separator_bytes(self) -> bytes:
        sep = self.separator
        if isinstance(sep, str):
            return sep.encode("utf-8")
        if isinstance(sep, bytes):
            return sep
        raise TypeError(f"the separator must be text, not {type(sep).__name__}")

    def _joined(self, items: Iterable[Any]) -> bytes:
        """``separator.join(items)``: the items must be text (or bytes)."""
        parts: list[bytes] = []
        for item in items:
            if not isinstance(item, (str, bytes)):
                raise TypeError(f"sequence item {len(parts)}: expected str instance, "
                                f"{type(item).__name__} found")
            parts.append(wire(item))
        return self._separator_bytes().join(parts)

    def _record(self, value: dict[Any, Any], convert: Any = None) -> dict[Any, Any]:
        """A dict as a table record of text or bytes (``convert`` first applied
        to each value); a dict of text only is used as it is."""
        if all(type(v) is str for v in value.values()) and all(type(k) is str for k in value):
            return value
        if convert is not None:
            return {wire(k): self._column(convert(v)) for k, v in value.items()}
        return {wire(k): self._column(v) for k, v in value.items()}

    def _column(self, value: Any) -> bytes:
        """One column value of a table record as bytes."""
        if isinstance(value, (list, tuple)):
            if not self.separator or self.separator == protocol.TABLE_COLUMN_SEP:
                raise TypeError(
                    f"cannot store the list {value!r} in a column without a separator: give "
                    "Tyrant(..., separator=', ') or join the items yourself")
            return self._separator_bytes().join(wire(item) for item in value)
        return wire(value)

    # -- database information -----------------------------------------------------------

    @property
    def db_type(self) -> str:
        """The type of the database as the server names it (``"table"``,
        ``"hash"``, ``"B+ tree"``, …)."""
        stats = self.get_stats()
        kind = stats.get("type")
        if not kind:
            raise AssertionError("statistics must provide a valid database type")
        return kind

    @property
    def db_path(self) -> str:
        """The database file on the server."""
        stats = self.get_stats()
        if "path" not in stats:
            raise AssertionError("statistics must provide a database path")
        return stats["path"]

    @property
    def table_enabled(self) -> bool:
        """True for a table database (records, queries)."""
        return self.db_type == protocol.DB_TABLE

    # -- commands -----------------------------------------------------------------------

    def call_func(self, func: Any, key: Any, value: Any, record_locking: bool = False,
                  global_locking: bool = False) -> str:
        """Call the server's script function ``func(key, value)``; return its result."""
        opts = ((protocol.TyrantProtocol.RDBXOLCKREC if record_locking else 0)
                | (protocol.TyrantProtocol.RDBXOLCKGLB if global_locking else 0))
        return self.proto.ext(func, opts, key, value)

    def clear(self) -> None:
        """Remove every record."""
        self.proto.vanish()

    def concat(self, key: Any, value: Any, width: int | None = None) -> None:
        """Append ``value`` to the value of ``key``; with ``width`` keep only
        the last ``width`` bytes."""
        if width is None:
            self.proto.putcat(key, value)
        else:
            self.proto.putshl(key, value, width)

    def generate_key(self) -> Any:
        """A new unique primary key (text) from a table's counter."""
        try:
            return self.proto.genuid()
        except ValueError:
            return uuid.uuid4()

    def get_size(self, key: Any) -> int:
        """The size of the stored value of ``key``; ``KeyError`` if missing."""
        try:
            return self.proto.vsiz(key)
        except exceptions.TyrantError:
            raise KeyError(key) from None

    def get_stats(self) -> dict[str, str]:
        """The server's status report as a dict of text."""
        return dict(self._client.stat())

    def iterkeys(self) -> Iterator[str]:
        """Every key, through the server's key iterator (shared by all its
        clients)."""
        client = self._client
        self.proto.iterinit()
        size = 16  # ITERNEXT requests per round trip, doubling up to _ITER_BATCH
        while True:
            batch = client.pipeline()
            for _ in range(size):
                batch.iternext()
            for key in batch.execute():
                if key is None:
                    return
                yield protocol._decode(key)
            size = min(size * 2, _ITER_BATCH)

    def keys(self) -> list[str]:
        """Every key, as a list."""
        return list(self.iterkeys())

    def itervalues(self) -> Iterator[Any]:
        for _, value in self.iteritems():
            yield value

    def values(self) -> list[Any]:
        return list(self.itervalues())

    def iteritems(self) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs; values are fetched 1000 keys at a time."""
        chunk: list[str] = []
        for key in self.iterkeys():
            chunk.append(key)
            if len(chunk) >= _CHUNK_SIZE:
                yield from self.multi_get(chunk)
                chunk = []
        if chunk:
            yield from self.multi_get(chunk)

    def items(self) -> list[tuple[str, Any]]:
        return list(self.iteritems())

    def has_key(self, key: Any) -> bool:
        return key in self

    def setdefault(self, key: Any, value: Any) -> Any:
        """Store ``value`` unless ``key`` exists; return what is stored."""
        if key not in self:
            self[key] = value
        return self[key]

    def update(self, mapping: Any = None, **kwargs: Any) -> None:
        """Store the records of a dict or a list of pairs, and keyword arguments
        (one request, :meth:`multi_set`)."""
        self.multi_set(dict(mapping or {}, **kwargs))

    def multi_add(self, values: Iterable[Any], chunk_size: int = 1000,
                  no_update_log: bool = False) -> list[Any]:
        """Store each of ``values`` under a generated key; return the keys.
        The records are written with :meth:`multi_set`, ``chunk_size`` + 1 at a
        time (0: all in one request)."""
        if not is_iterable(values):
            raise AssertionError("values must be an iterable")
        keys: list[Any] = []
        chunk: list[tuple[Any, Any]] = []
        for value in values:
            key = self.generate_key()
            keys.append(key)
            chunk.append((key, value))
            if 0 < chunk_size < len(chunk):
                self.multi_set(chunk, no_update_log=no_update_log)
                chunk = []
        self.multi_set(chunk, no_update_log=no_update_log)
        return keys

    def multi_del(self, keys: Iterable[Any], no_update_log: bool = False) -> None:
        """Remove the records of ``keys`` (missing ones are ignored)."""
        if isinstance(keys, (str, bytes)):
            raise TypeError(f"multi_del() takes a list of keys, not the single key {keys!r}")
        opts = protocol.TyrantProtocol.RDBMONOULOG if no_update_log else 0
        self.proto.misc("outlist", list(keys), opts)

    def multi_get(self, keys: Iterable[Any]) -> list[tuple[str, Any]]:
        """``(key, value)`` for each of ``keys`` that exists (one request)."""
        if not is_iterable(keys):
            raise AssertionError(f"expected iterable, got {keys}")
        data = self.proto.misc("getlist", list(keys), 0)
        kind, sep = self._db_kind(), self.separator
        return [(k, utils.to_python(v, kind, sep)) for k, v in zip(data[::2], data[1::2])]

    def multi_set(self, items: Any, no_update_log: bool = False) -> None:
        """Store many values (a dict, or ``(key, value)`` pairs) in one request.
        Dicts are table records; other iterables are joined by the separator;
        values are stored as ``str()`` gives them."""
        opts = protocol.TyrantProtocol.RDBMONOULOG if no_update_log else 0
        pairs = items.items() if isinstance(items, dict) else iter(items)
        if self._is_table():
            self._multi_set_table(pairs, opts)
            return
        args: list[Any] = []
        for key, value in pairs:
            if isinstance(value, dict):
                value = [x for pair in value.items() for x in pair]
            if is_iterable(value):
                if not self.separator:
                    raise AssertionError("Separator is not set")
                value = self._separator_bytes().join(wire(x) for x in value)
            args.extend((key, value))
        self.proto.misc("putlist", args, opts)

    def _multi_set_table(self, pairs: Iterable[tuple[Any, Any]], opts: int) -> None:
        records: list[tuple[bytes, Any]] = []
        all_records = True
        for key, value in pairs:
            if isinstance(value, dict):
                value = self._record(value)
            else:
                all_records = False
                if is_iterable(value):
                    value = self._separator_bytes().join(wire(x) for x in value)
            records.append((_key(key), value))
        if all_records and not opts:
            with protocol._failure_is_invalid("misc putlist"):
                self._client.putlist(records)
            return
        args: list[bytes] = []
        for key, value in records:
            args.append(key)
            args.append(_serialized(key, value) if isinstance(value, dict) else wire(value))
        self.proto.misc("putlist", args, opts)

    def prefix_keys(self, prefix: Any, maxkeys: int | None = None) -> list[str]:
        """The keys starting with ``prefix``, at most ``maxkeys`` (None: all)."""
        if maxkeys is None:
            maxkeys = min(len(self), (1 << 31) - 1)
        return self.proto.fwmkeys(prefix, maxkeys)

    def sync(self) -> None:
        """Ask the server to flush the database to disk."""
        self.proto.sync()

    @property
    def query(self) -> query.Query:
        """A :class:`~pyrant.query.Query` matching every record (table databases
        only; ``TypeError`` otherwise)."""
        kind = self._db_kind()
        if kind != protocol.DB_TABLE:
            raise TypeError(f"Query only works with table databases but {self.db_path} is a "
                            f"{kind} database.")
        return query.Query(self.proto, kind, self.literal)


def _key(key: Any) -> bytes:
    """A primary key of a table write: not empty (that aborts a real ttserver)."""
    data = wire(key)
    if not data:
        raise ValueError("an empty primary key cannot be stored in a table database "
                         "(it would abort the server)")
    if b"\0" in data:
        raise ValueError(f"primary key {data!r} contains a NUL byte")
    return data


def _serialized(key: bytes, record: dict[Any, Any]) -> bytes:
    """A record as ``name\\0value...``; names and values must not hold NUL."""
    parts: list[bytes] = []
    for name, value in record.items():
        name_b, value_b = wire(name), wire(value)
        if not name_b or b"\0" in name_b or b"\0" in value_b:
            raise ValueError(f"record {key!r}: column {name!r} is empty or holds a NUL byte")
        parts += (name_b, value_b)
    return b"\0".join(parts)
