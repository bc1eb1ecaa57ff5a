"""The storage adapter: doqu documents in a Tokyo Tyrant table database.

::

    db = doqu.get_db({"backend": "doqu_tyrant", "host": "127.0.0.1", "port": 1978})
    pk = Person(name="Alice").save(db)
    db.get(Person, pk)

One record per document: primary key → text columns, written in the format
of the Python 2 doqu (:mod:`doqu_tyrant.converters`). Every method is one
round trip except a save with a generated key (``genuid`` + ``putkeep``).

An unset field is written as an empty column, except where its column has a
lexical or decimal index: Tokyo Cabinet cannot index an empty value (a real
ttserver aborts), so such a column is left out and reads back as ``None``
all the same. The client learns the table's indexes once (one cheap probe,
see :mod:`doqu_tyrant.tyrant.indexes`).
A dropped connection raises
:class:`~doqu_tyrant.tyrant.errors.TyrantConnectionError`; the next call
reconnects by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from doqu.backend_base import BaseStorageAdapter
from doqu.backends import ImproperlyConfigured
from doqu.document import Document
from doqu.utils import normalize_key
from doqu_tyrant import bulk
from doqu_tyrant.converters import UNSET, converter_manager
from doqu_tyrant.lookups import lookup_manager
from doqu_tyrant.query import QueryAdapter
from doqu_tyrant.records import decode_pairs, key_bytes, key_text, parse_serialized
from doqu_tyrant.tyrant.client import Tyrant
from doqu_tyrant.tyrant.commands import serialize_record, serialize_text_record
from doqu_tyrant.tyrant.errors import TyrantCommandError, TyrantError
from doqu_tyrant.tyrant.failover import FailoverTyrant, is_group_url, servers_list, split_url
from doqu_tyrant.tyrant.indexes import ORDERED, UNKNOWN, TableIndexes
from doqu_tyrant.tyrant.kinds import describe, is_table
from doqu_tyrant.tyrant.options import (
    DEFAULT_PORT,
    check_host,
    check_port,
    client_options,
    parse_url,
)
from doqu_tyrant.tyrant.protocol import MAX_COUNT, MAX_LENGTH, MISC_NOULOG
from doqu_tyrant.tyrant.sharding import ShardedTyrant
from doqu_tyrant.tyrant.shards import shard_specs

if TYPE_CHECKING:
    import pyrant

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "StorageAdapter"]

D = TypeVar("D", bound=Document)


DEFAULT_HOST = "127.0.0.1"
#: How many generated keys ``save`` tries before giving up (each taken one
#: belongs to a record saved under that key by hand).
MAX_KEY_ATTEMPTS = 1000
#: Client settings when neither a keyword nor the URL gives them.
CLIENT_DEFAULTS: dict[str, Any] = {
    "timeout": 30.0, "connect_timeout": None, "pool_size": 8, "pool_timeout": 20.0,
    "retry_reads": True, "health_check_interval": 0.05,
}  # fmt: skip
_DEFAULT: Any = object()  # "not given": the URL's value or the default applies


def _name_bytes(name: Any) -> bytes:
    if isinstance(name, str):
        return name.encode()
    if isinstance(name, bytes):
        return name
    raise TypeError(f"column names are text, not {type(name).__name__} {name!r}")


def _group(url: str | None, servers: Any) -> tuple[list[tuple[str, int]] | None,
                                                  dict[str, Any]]:
    """The servers of a failover group given as a URL with several hosts or
    ``servers=[...]`` (None for one server), and the group's URL options."""
    if url is not None and is_group_url(url):
        if servers is not None:
            raise ImproperlyConfigured("give the servers either in the url or as servers=[...]")
        group_servers, _options, group_options = split_url(url)
        return group_servers, group_options
    if servers is None:
        return None, {}
    if url is not None:
        raise ImproperlyConfigured("give either url or servers=[...], not both")
    return servers_list(servers), {}


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_INDEX_SETTINGS = ("lexical", "decimal", "token", "qgram")


def _index_settings(indexes: Mapping[str, str] | None) -> dict[str, str]:
    """The ``indexes`` setting checked: column name → lexical/decimal/token/qgram."""
    if indexes is None:
        return {}
    if not isinstance(indexes, Mapping):
        raise TypeError(f"indexes must map column names to index kinds, not "
                        f"{type(indexes).__name__}")
    out: dict[str, str] = {}
    for column, kind in indexes.items():
        if not isinstance(column, str) or not column or "\0" in column:
            raise ValueError(f"indexes: {column!r} is not a column name")
        name = kind.lower() if isinstance(kind, str) else kind
        if name not in _INDEX_SETTINGS:
            raise ValueError(f"indexes: the kind of {column!r} must be one of "
                             f"{', '.join(_INDEX_SETTINGS)}, not {kind!r}")
        out[column] = name
    return out


def _create_indexes(client: Tyrant, indexes: Mapping[str, str]) -> None:
    """Create the indexes the settings declare and the server lacks (one probe)."""
    kinds = client.index_kinds(list(indexes))
    for column, kind in indexes.items():
        have = kinds[column]
        if have == kind:
            continue
        if have is not None:
            raise ImproperlyConfigured(
                f"the settings declare a {kind} index on {column!r}, but the table has a {have} "
                f"index there; remove it first (client.setindex({column!r}, 'void')) or change "
                "the setting"
            )
        try:
            client.setindex(column, kind)
        except ValueError as exc:  # TyrantUnsafeWrite: empty values in that column
            raise ImproperlyConfigured(
                f"cannot create the {kind} index on {column!r} the settings declare: {exc}"
            ) from None


def _refused(exc: TyrantCommandError, key: str, record: Mapping[Any, Any]) -> TyrantCommandError:
    """The server refused to store ``record``: an error that says so, and why it may have."""
    empty = [name for name, value in record.items() if value == ""]
    why = ""
    if empty:
        why = (
            f"; it holds empty values in {', '.join(map(repr, empty))}, which the server cannot "
            "store if such a column has a lexical or decimal index this client has not seen "
            "(created meanwhile by another client? see Tyrant.forget_indexes)"
        )
    return TyrantCommandError(
        exc.command, exc.code,
        f"the server refused to store the record {key!r} ({exc.command} failed, code "
        f"{exc.code}){why}",
    )


class StorageAdapter(BaseStorageAdapter):
    """A connection to one Tyrant table database.

    Settings (keyword arguments, or the settings dict of ``doqu.get_db``):

    ``host`` (``"127.0.0.1"``), ``port`` (1978)
        where the server listens; or ``url="tyrant://host:port?timeout=5"``
        (options as :func:`~doqu_tyrant.tyrant.options.parse_url` reads them).
    ``url="tyrant://a:1978,b:1978"`` or ``servers=["a:1978", "b:1978"]``
        a failover group (a dual master): see :doc:`/replication`.
    ``timeout`` (30 s), ``connect_timeout``
        seconds to wait for a reply / a connection (``None``: forever).
    ``pool_size`` (8), ``pool_timeout`` (20 s)
        connections shared by the threads using this adapter.
    ``retry_reads`` (True), ``health_check_interval`` (0.05 s)
        as for :class:`~doqu_tyrant.tyrant.Tyrant`.
    ``truncate_microseconds`` (False)
        store datetimes with microseconds by dropping them (else refused).
    ``utc_datetimes`` (False)
        store time-zone aware datetimes converted to UTC (else refused).
    ``indexes`` (none)
        ``{"column": "lexical" | "decimal" | "token" | "qgram"}``: indexes the
        table must have; those missing are created on connect.
    ``shards`` (none)
        a list of shards instead of one server: URLs (``"tyrant://a:1978"``, a
        failover group ``"tyrant://b:1978,c:1978"``) or mappings with ``url``,
        ``name`` and ``weight``; records are spread by key over them and every
        query is answered as one server would (:doc:`/sharding`). Not
        together with ``host``/``port``/``url``/``servers``.

    A setting given as a keyword wins over the same setting in ``url``, as in
    ``Tyrant.from_url``. Every setting is checked here: a bad one raises
    ``TypeError``/``ValueError`` naming it before any connection is made.
    """

    converter_manager = converter_manager
    lookup_manager = lookup_manager
    query_adapter = QueryAdapter

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        url: str | None = None,
        timeout: float | None = _DEFAULT,
        connect_timeout: float | None = _DEFAULT,
        pool_size: int = _DEFAULT,
        pool_timeout: float | None = _DEFAULT,
        retry_reads: bool = _DEFAULT,
        health_check_interval: float = _DEFAULT,
        truncate_microseconds: bool = False,
        utc_datetimes: bool = False,
        servers: Any = None,
        indexes: Mapping[str, str] | None = None,
        shards: Iterable[Any] | None = None,
    ) -> None:
        # One precedence rule, as in Tyrant.from_url: a keyword given here wins
        # over the same setting in the URL, which wins over the default.
        given = {
            "timeout": timeout, "connect_timeout": connect_timeout, "pool_size": pool_size,
            "pool_timeout": pool_timeout, "retry_reads": retry_reads,
            "health_check_interval": health_check_interval,
        }  # fmt: skip
        options = dict(CLIENT_DEFAULTS)
        self.shards = _shard_list(shards, host, port, url, servers)
        self.servers, self.failover_options = _group(url, servers)
        if self.servers is not None:
            if host is not None or port is not None:
                raise ImproperlyConfigured("give either host and port or a group of servers")
            host, port = self.servers[0]
            if url is not None and is_group_url(url):
                options.update(split_url(url)[1])
        elif url is not None:
            url_host, url_port, url_options = parse_url(url)
            options.update(url_options)
            host = url_host if host is None else host
            port = url_port if port is None else port
        options.update(client_options(**{k: v for k, v in given.items() if v is not _DEFAULT}))
        self.host: str = check_host(DEFAULT_HOST if host is None else host)
        self.port: int = check_port(DEFAULT_PORT if port is None else port)
        self.timeout: float | None = options["timeout"]
        self.connect_timeout: float | None = options["connect_timeout"]
        self.pool_size: int = options["pool_size"]
        self.pool_timeout: float | None = options["pool_timeout"]
        self.retry_reads: bool = options["retry_reads"]
        self.health_check_interval: float = options["health_check_interval"]
        self.truncate_microseconds = bool(truncate_microseconds)
        self.utc_datetimes = bool(utc_datetimes)
        self.indexes = _index_settings(indexes)
        self._client: Tyrant | ShardedTyrant | None = None
        settings: dict[str, Any] = (
            {"shards": self.shards} if self.shards else {"host": self.host, "port": self.port})
        if truncate_microseconds:
            settings["truncate_microseconds"] = True
        if utc_datetimes:
            settings["utc_datetimes"] = True
        super().__init__(**settings)

    # -- connection ---------------------------------------------------------------------

    def _connect(self) -> None:
        client: Tyrant | ShardedTyrant
        if self.shards:
            client = ShardedTyrant(
                self.shards, timeout=self.timeout, connect_timeout=self.connect_timeout,
                pool_size=self.pool_size, pool_timeout=self.pool_timeout,
                retry_reads=self.retry_reads, health_check_interval=self.health_check_interval,
            )
        elif self.servers is not None:
            # unique_ids: generated keys stay unique across a failover
            client = FailoverTyrant(
                servers=self.servers, timeout=self.timeout,
                connect_timeout=self.connect_timeout, pool_size=self.pool_size,
                pool_timeout=self.pool_timeout, retry_reads=self.retry_reads,
                health_check_interval=self.health_check_interval,
                **{"unique_ids": True, **self.failover_options},
            )  # fmt: skip
        else:
            client = Tyrant(
                self.host, self.port, self.timeout, connect_timeout=self.connect_timeout,
                pool_size=self.pool_size, pool_timeout=self.pool_timeout,
                retry_reads=self.retry_reads, health_check_interval=self.health_check_interval,
            )
        try:
            # one STAT (per shard), remembered by the client
            kinds = client.kinds() if isinstance(client, ShardedTyrant) else {
                f"{self.host}:{self.port}": client.kind()}
        except BaseException:
            client.close()
            raise
        for where, kind in kinds.items():
            if not is_table(kind):
                client.close()
                raise ImproperlyConfigured(
                    f"the Tyrant server at {where} holds {describe(kind)}; "
                    "doqu_tyrant needs a table database (a .tct file)"
                )
        if self.indexes:
            try:
                _create_indexes(client, self.indexes)  # type: ignore[arg-type]
            except BaseException:
                client.close()
                raise
        self._client = client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def client(self) -> Tyrant:
        """The underlying :class:`~doqu_tyrant.tyrant.Tyrant` client (raw records); a
        :class:`~doqu_tyrant.tyrant.ShardedTyrant` with ``shards``."""
        client = self._client
        if client is None:
            raise RuntimeError(f"{type(self).__name__} is not connected")
        return client  # type: ignore[return-value]  # a ShardedTyrant has the same API

    @property
    def connection(self) -> pyrant.Tyrant:
        """A :class:`pyrant.Tyrant` on this adapter's connections, as doqu 0.28
        offered (made on first use; ``pyrant`` is imported only then)."""
        client = self.client
        if isinstance(client, ShardedTyrant):
            raise TypeError("db.connection is a pyrant.Tyrant, which talks to one server; "
                            "with shards use db.client (a ShardedTyrant)")
        conn: pyrant.Tyrant | None = getattr(self, "_pyrant", None)
        if conn is None or conn.proto.client is not client:
            import pyrant

            conn = pyrant.Tyrant.from_client(client)
            self._pyrant = conn
        return conn

    # -- records ------------------------------------------------------------------------

    def get(self, doc_class: type[D], primary_key: str | int) -> D:
        """The document stored under ``primary_key``; ``KeyError`` if none (one request).

        doqu 0.28's order ``get(primary_key, doc_class)`` works too.
        """
        if not isinstance(doc_class, type) and isinstance(primary_key, type):
            doc_class, primary_key = primary_key, doc_class  # type: ignore[assignment]
        key = primary_key if type(primary_key) is str else normalize_key(primary_key)
        raw = self.client.table_get(key_bytes(key), raw=True)
        if raw is None:
            raise KeyError(primary_key)
        return doc_class.from_storage(self, key, decode_pairs(raw))  # type: ignore[arg-type]

    def get_many(self, doc_class: type[D], primary_keys: Iterable[str | int]) -> list[D]:
        """Documents for ``primary_keys`` in that order, in one request.

        ``KeyError`` names every missing key; no keys give ``[]`` (and no
        request). doqu 0.28's order ``get_many(keys, doc_class)`` works too.
        """
        if not isinstance(doc_class, type) and isinstance(primary_keys, type):
            doc_class, primary_keys = primary_keys, doc_class  # type: ignore[assignment]
        given = list(primary_keys)
        if not given:
            return []
        keys = [normalize_key(k) for k in given]
        wanted = list(dict.fromkeys(keys))
        elements = self.client.misc("getlist", [key_bytes(k) for k in wanted], MISC_NOULOG)
        found: dict[str, dict[Any, Any]] = {}
        it = iter(elements)
        for raw_key, data in zip(it, it):
            found[key_text(raw_key)] = parse_serialized(data)
        missing = [g for g, k in zip(given, keys) if k not in found]
        if missing:
            raise KeyError(missing[0] if len(missing) == 1 else missing)
        build = doc_class.from_storage
        return [build(self, key, found[key]) for key in keys]

    def find(self, doc_class: type[D], **conditions: Any) -> QueryAdapter[D]:
        """A lazy query over ``doc_class`` (see :class:`~doqu_tyrant.query.QueryAdapter`)."""
        return super().find(doc_class, **conditions)  # type: ignore[return-value]

    def save(self, data: Mapping[str, Any], primary_key: str | int | None = None) -> str:
        """Store ``data`` (a complete record) and return its key as text.

        With ``primary_key`` the record under it is replaced. Without, the key
        comes from the table's counter (``genuid``) and the record is written
        with ``putkeep``, so it never overwrites a record saved by hand under
        that key (the next number is tried). Values that are not text yet are
        converted; anything that cannot be stored faithfully raises before a
        request is sent. doqu 0.28's order ``save(key, data)`` works too.
        """
        if type(data) is not dict:  # (a dict is a mapping: skip the ABC checks)
            if not isinstance(data, Mapping) and isinstance(primary_key, Mapping):
                data, primary_key = primary_key, data  # type: ignore[assignment]
            if not isinstance(data, Mapping):
                raise TypeError(f"save() stores a mapping of columns, not {type(data).__name__}")
        record = self._record(data)
        client = self.client
        if "" in record.values():
            record = self._indexable(record)
        if primary_key is not None:
            key = primary_key if type(primary_key) is str else normalize_key(primary_key)
            try:
                client.table_put(key_bytes(key), record)
            except TyrantCommandError as exc:
                raise _refused(exc, key, record) from None
            return key
        for _ in range(MAX_KEY_ATTEMPTS):
            key = str(client.genuid())
            if client.table_putkeep(key, record):
                return key
            if client.vsiz(key) is None:
                # The key is free: the server refused the record itself.
                raise _refused(TyrantCommandError("misc putkeep"), key, record)
            # else: a record was saved by hand under that number; take the next one
        raise TyrantError(
            f"no free generated key after {MAX_KEY_ATTEMPTS} attempts: records were saved "
            "by hand under the next numbers"
        )

    def _record(self, data: Mapping[Any, Any]) -> Mapping[Any, Any]:
        """``data`` checked (and converted where needed) so that the put cannot fail."""
        if type(data) is dict and data and "" not in data:
            # The common case, checked in bulk: text names and values, no NUL
            # inside, encodable (ASCII, or no lone surrogate), no value over
            # the server's size limit (a character is at most 4 bytes).
            try:
                text = "\0".join([*data, *data.values()])
            except TypeError:
                pass
            else:
                if text.count("\0") == 2 * len(data) - 1 and (
                    text.isascii() or _encodable(text)
                ) and len(text) <= MAX_LENGTH // 4:
                    return data
        if len(data) > MAX_COUNT // 2 - 1:
            raise ValueError(f"a record of {len(data)} columns does not fit in one request "
                             f"(at most {MAX_COUNT // 2 - 1})")
        record: dict[Any, Any] = {}
        for name, value in data.items():
            if value.__class__ is not str and value is not UNSET and not isinstance(value, bytes):
                value = self.converter_manager.to_db(value, self)
                if not isinstance(value, (str, bytes)):
                    raise TypeError(f"column {name!r}: a converter returned {value!r}, not text")
            try:
                name_b = name.encode() if name.__class__ is str else _name_bytes(name)
                value_b = value.encode() if isinstance(value, str) else value
            except UnicodeEncodeError as exc:
                raise ValueError(f"column {name!r} cannot be encoded as UTF-8: {exc}") from None
            if not name_b or b"\0" in name_b:
                raise ValueError(
                    f"column name {name!r} " + ("contains a NUL byte" if name_b else "is empty")
                )
            if b"\0" in value_b:
                raise ValueError(f"column {name!r}: the value {value!r} contains a NUL byte")
            if len(value_b) > MAX_LENGTH or len(name_b) > MAX_LENGTH:
                raise ValueError(
                    f"column {name!r}: the {'value' if len(value_b) > MAX_LENGTH else 'name'} "
                    f"is {max(len(value_b), len(name_b))} bytes; the server accepts at most "
                    f"{MAX_LENGTH}"
                )
            record[name] = value
        return record

    def _record_data(self, data: Mapping[Any, Any]) -> tuple[Mapping[Any, Any], bytes]:
        """:meth:`_record` of ``data`` and the record serialised (spec §5.1): a
        record of valid text is checked and serialised in one pass."""
        serialized = serialize_text_record(data) if data else None
        if serialized is not None:
            return data, serialized  # (what _record returns for it: it is all text)
        record = self._record(data)
        return record, serialize_record(record, b"")

    def _indexable(self, record: Mapping[Any, Any],
                   kinds: Mapping[Any, str | None] | None = None) -> Mapping[Any, Any]:
        """``record`` without the unset fields whose column has a lexical or decimal
        index (they read back as None all the same); any other empty value in such
        a column is refused, since Tokyo Cabinet cannot index it (a real ttserver
        aborts). ``kinds``: index kinds known already (the others are asked)."""
        empty = [name for name, value in record.items() if value == ""]
        if kinds is None or not all(name in kinds for name in empty):
            client = self.client
            book = getattr(client, "indexes", None)
            if isinstance(book, TableIndexes):  # what is known already, without a call
                known = {}
                for name in empty:
                    kind = book.kind(name.encode() if name.__class__ is str else name)
                    if kind is UNKNOWN or kind == "ordered":
                        break
                    known[name] = kind
                else:
                    if not ORDERED.intersection(known.values()):
                        return record  # the common case: nothing to leave out
                    kinds = known
            if kinds is None or not all(name in kinds for name in empty):
                index_kinds = getattr(client, "index_kinds", None)
                if index_kinds is None:  # a client without index knowledge: its checks decide
                    return record
                kinds = index_kinds(empty)
        drop = set()
        for name in empty:
            kind = kinds[name]
            if kind not in ORDERED:
                continue
            if record[name] is not UNSET:
                raise ValueError(
                    f"field {name!r} holds an empty value ('' or []), and the server has a "
                    f"{kind} index on that column: Tokyo Cabinet cannot index an empty value (a "
                    "real ttserver aborts). Store None (the column is then left out) or a "
                    "non-empty value; nothing was sent"
                )
            drop.add(name)
        if not drop:
            return record
        return {name: value for name, value in record.items() if name not in drop}

    def save_many(self, documents: Iterable[Document], keep_keys: bool = False) -> list[str]:
        """Save many documents in a few round trips; their keys, in order.

        What ``doc.save(db, keep_keys)`` does for each, in bulk
        (:mod:`doqu_tyrant.bulk`): all documents are validated and converted
        first (nothing is sent if one fails: the error names its position and
        field), the generated keys are taken in one pipelined round trip, and
        the records go out pipelined, never overwriting a record under a
        generated key. A batch that stops part-way raises
        :class:`~doqu_tyrant.bulk.BulkWriteError` saying which documents were
        stored.
        """
        return bulk.save_many(self, documents, keep_keys)

    def delete_many(self, primary_keys: Iterable[str | int]) -> None:
        """Delete many records in one round trip; ``KeyError`` naming the keys that
        had none (the others are deleted)."""
        bulk.delete_many(self, primary_keys)

    def delete(self, primary_key: str | int) -> None:
        """Delete the record; ``KeyError`` if there is none."""
        if not self.client.table_out(key_bytes(primary_key)):
            raise KeyError(primary_key)

    def clear(self) -> None:
        """Delete every record and reset the key counter (next generated key: ``"1"``)."""
        self.client.vanish()

    def sync(self) -> None:
        """Ask the server to flush the database to disk."""
        self.client.sync()

    def __contains__(self, primary_key: object) -> bool:
        try:
            key = key_bytes(primary_key)
        except (TypeError, ValueError):
            return False
        return self.client.vsiz(key) is not None

    def __iter__(self) -> Iterator[str]:
        """Every primary key, fetched in one request."""
        elements = self.client.misc("search", [], MISC_NOULOG)
        return iter([key_text(k) for k in elements])

    def __len__(self) -> int:
        return self.client.rnum()


def _shard_list(shards: Iterable[Any] | None, host: Any, port: Any, url: Any,
                servers: Any) -> list[Any] | None:
    """The ``shards`` setting, checked (a list, not together with one server's address)."""
    if shards is None:
        return None
    if host is not None or port is not None or url is not None or servers is not None:
        raise ImproperlyConfigured("give either shards or host/port/url/servers, not both")
    if isinstance(shards, (str, bytes)) or not isinstance(shards, Iterable):
        raise TypeError(f"shards must be a list of URLs, not {type(shards).__name__}")
    listed = list(shards)
    if not listed:
        raise ValueError("shards must list at least one server")
    shard_specs(listed)  # names, weights and URLs checked before any connection
    return listed
