"""The blocking Tyrant client.

:class:`Connection` is one socket and its reply decoder. :class:`Tyrant` is
the client applications use: one method per command, a bounded pool of
connections (so one instance can be shared by threads), a table layer with
records as ``dict[str, str]``, native queries (:attr:`Tyrant.query`) and
explicit pipelining (:meth:`Tyrant.pipeline`).

Return and error conventions:

* reads of a missing key return a default (``get``, ``vsiz``,
  ``table_get``: None unless given); ``t[pk]`` raises ``KeyError``;
* ``putkeep``/``table_putkeep`` return False when the key exists,
  ``out``/``table_out`` return False when it is missing;
* any other failure status raises :class:`TyrantCommandError` carrying the
  C client's error code (spec §1.3);
* a dropped connection raises :class:`TyrantConnectionError`, a timeout
  :class:`TyrantTimeout`; the socket is then discarded and the next call
  reconnects. A read is retried once on a fresh connection when the old one
  broke; a write is retried only when it certainly never left the client
  (wrap the client in :class:`~.retry.RetryingClient` to retry more).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from . import commands as c
from . import indexes as ix
from . import kinds as k
from . import protocol as p
from .connection import Connection
from .errors import (
    TyrantCommandError,
    TyrantConnectError,
    TyrantConnectionError,
    TyrantError,
)
from .options import DEFAULT_PORT, check_host, check_port, client_options, parse_url
from .pool import ConnectionPool
from .query import Query
from .table import Table

__all__ = ["Connection", "Tyrant", "Table", "Pipeline", "DEFAULT_PORT", "parse_url"]

T = TypeVar("T")

_ITERNEXT = p.encode_simple(p.ITERNEXT)
_ITERINIT = p.encode_simple(p.ITERINIT)


class Tyrant:
    """A Tokyo Tyrant client; thread-safe, with a bounded connection pool.

    ``timeout`` (seconds, None = wait forever) bounds every wait for a reply;
    ``connect_timeout`` defaults to it. ``pool_size`` connections at most
    are opened; a thread finding all of them busy waits up to
    ``pool_timeout`` seconds. Keys and values are ``str`` (UTF-8) or bytes.
    """

    def __new__(cls, *args: Any, servers: Iterable[Any] | None = None, **kwargs: Any) -> Tyrant:
        # Tyrant(servers=[...]) is a failover group (tyrant/failover.py).
        if servers is not None and cls is Tyrant:
            from .failover import FailoverTyrant

            return super().__new__(FailoverTyrant)
        return super().__new__(cls)

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 timeout: float | None = None, *, connect_timeout: float | None = None,
                 pool_size: int = 8, pool_timeout: float | None = 20.0,
                 retry_reads: bool = True, health_check_interval: float = 0.05,
                 servers: Iterable[Any] | None = None) -> None:
        if servers is not None:
            raise TypeError(f"servers=[...] makes a failover group; {type(self).__name__} "
                            "is a single-server client")
        self.host = check_host(host)
        self.port = check_port(port)
        checked = client_options(
            timeout=timeout, connect_timeout=connect_timeout, pool_size=pool_size,
            pool_timeout=pool_timeout, retry_reads=retry_reads,
            health_check_interval=health_check_interval,
        )  # fmt: skip
        timeout = checked["timeout"]
        connect_timeout = checked["connect_timeout"]
        health_check_interval = checked["health_check_interval"]
        self.timeout = timeout
        self.retry_reads = retry_reads

        def factory() -> Connection:
            return Connection(host, self.port, timeout, connect_timeout, health_check_interval)

        self._pool: ConnectionPool[Connection] = ConnectionPool(factory, pool_size, pool_timeout)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Tyrant:
        """A client for ``tyrant://host:port`` (query options allowed:
        ``?timeout=5&pool_size=4``, see :func:`~.options.parse_url`); keyword
        options override the URL's. ``tyrant://a:1978,b:1978`` gives a failover
        group (:class:`~.failover.FailoverTyrant`)."""
        from .failover import is_group_url

        if is_group_url(url):
            from .failover import FailoverTyrant

            return FailoverTyrant.from_url(url, **options)
        host, port, parsed = parse_url(url)
        parsed.update(options)
        return cls(host, port, **parsed)

    def __repr__(self) -> str:
        return f"<Tyrant {self.host}:{self.port}>"

    def close(self) -> None:
        """Close all sockets. The client stays usable: later calls reconnect."""
        self._pool.close()

    def __enter__(self) -> Tyrant:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the one request path -----------------------------------------------

    def _run(self, cmd: c.Cmd) -> Any:
        if cmd.__class__ is not tuple:
            return self._run_guarded(cmd)
        frame, command, parse, arg, idempotent = cmd
        pool = self._pool
        conn = pool.acquire()
        try:
            try:
                reply = conn.request(frame, command)
            except TyrantConnectionError as exc:
                if (exc.__class__ is TyrantConnectError
                        or (exc.request_sent and not (idempotent and self.retry_reads))):
                    raise
                # once, on a fresh connection, within the same deadline
                reply = conn.request(frame, command, conn.deadline())
        finally:
            pool._idle.append(conn)
            if pool._waiters:
                pool.wake()
        return parse(reply, arg)

    def _run_guarded(self, cmd: c.Cmd) -> Any:
        """A write that may be a spec §10 input: checked first, learned from after."""
        self._check([cmd])
        try:
            result = self._run(tuple(cmd))  # type: ignore[arg-type]
        except TyrantError as exc:
            ix.learn_results(self.indexes, [cmd], [exc])
            raise
        ix.learn_results(self.indexes, [cmd], [result])
        return result

    def _check(self, cmds: list[c.Cmd]) -> bool:
        """Refuse (``ValueError``, nothing sent) a spec §10 input among ``cmds``,
        asking the server about its indexes first when needed. Whether any of
        ``cmds`` needed checking."""
        risks = c.risks(cmds)
        if not risks:
            return False
        book = self.indexes
        if book.safe(risks):
            return True
        flow = ix.check(book, risks)
        try:
            questions = next(flow)
            while True:
                questions = flow.send(self._ask(questions))
        except StopIteration:
            pass
        return True

    def _ask(self, cmds: list[c.Cmd]) -> list[Any]:
        """Send read-only requests in one round trip; their parsed results."""
        pipeline = Pipeline(self)
        pipeline._cmds = list(cmds)
        return pipeline.execute(raise_on_error=False)

    @property
    def indexes(self) -> ix.TableIndexes:
        """What this client knows of the table's indexes (shared by its pool); see
        :mod:`~doqu_tyrant.tyrant.indexes`."""
        book = self.__dict__.get("_indexes")
        if book is None:
            book = self.__dict__.setdefault("_indexes", ix.TableIndexes())
        return book  # type: ignore[no-any-return]

    def index_kinds(self, columns: Iterable[c.Key]) -> dict[Any, str | None]:
        """The index of each column: ``"lexical"``, ``"decimal"``, ``"token"``,
        ``"qgram"`` or None, from what the client knows, asking the server about
        the rest in one round trip (a probe that reads no record)."""
        given, names, known, unknown = ix.kinds_plan(self.indexes, columns)
        answers = self._ask([ix.probe(n) for n in unknown]) if unknown else []
        return ix.kinds_result(self.indexes, given, names, known, unknown, answers)

    def forget_indexes(self, columns: Iterable[c.Key] | None = None) -> None:
        """Forget what is known of the indexes of ``columns`` (None: all), e.g. after
        another client changed them; they are probed again when it matters."""
        self.indexes.forget(None if columns is None else [ix.column_name(col)
                                                          for col in columns])

    def _stream_misc(self, name: bytes, args: list[bytes], opts: int) -> Iterator[list]:
        """A MISC call whose reply list is yielded chunk by chunk."""
        frame = c.misc(name, args, opts)[0]
        return self._stream(frame, p.MISC, f"misc {name.decode('latin-1')}")

    def _stream(self, frame: bytes, command: int, name: str) -> Iterator[list]:
        """A request with a list reply (MISC, FWMKEYS), yielded chunk by chunk."""
        pool = self._pool
        conn = pool.acquire()
        try:
            yield from conn.stream(frame, command, name)
        finally:
            pool.release(conn)

    # -- the kind of database -----------------------------------------------

    _kind: str | None = None

    def kind(self) -> str:
        """The kind of database the server holds, as STAT names it: ``"table"``,
        ``"hash"``, ``"B+ tree"``, ``"fixed-length"``, ``"on-memory hash"`` or
        ``"on-memory tree"``. Asked once (one STAT), then remembered; item
        access, iteration and the bulk calls depend on it (:mod:`.kinds`)."""
        kind = self._kind
        if kind is None:
            kind = self._kind = k.kind_of(self.stat())
        return kind

    def _require_table(self, what: str) -> None:
        k.require_table(self._kind if self._kind is not None else self.kind(), what)

    def pipeline(self) -> Pipeline:
        """Queue commands and send them in one write: ``with t.pipeline() as pl:
        pl.put(...); pl.get(...); results = pl.execute()``."""
        return Pipeline(self)

    # -- key-value commands -------------------------------------------------

    def put(self, key: c.Key, value: c.Key) -> None:
        """Store ``value`` under ``key``, replacing any old value."""
        return self._run(c.put(key, value))  # type: ignore[no-any-return]

    def putkeep(self, key: c.Key, value: c.Key) -> bool:
        """Store only if ``key`` is absent; False if it exists."""
        return self._run(c.putkeep(key, value))  # type: ignore[no-any-return]

    def putcat(self, key: c.Key, value: c.Key) -> None:
        """Append ``value`` to the value of ``key`` (creating it)."""
        return self._run(c.putcat(key, value))  # type: ignore[no-any-return]

    def putshl(self, key: c.Key, value: c.Key, width: int) -> None:
        """Append, then keep only the last ``width`` bytes (``key`` must not be empty)."""
        return self._run(c.putshl(key, value, width))  # type: ignore[no-any-return]

    def putnr(self, key: c.Key, value: c.Key) -> None:
        """Store without waiting for (or getting) an answer."""
        cmd = c.putnr(key, value)
        if cmd.__class__ is not tuple:
            self._check([cmd])
        frame = cmd[0]
        conn = self._pool.acquire()
        try:
            conn.request(frame, p.PUTNR)
        finally:
            self._pool.release(conn)

    def out(self, key: c.Key) -> bool:
        """Remove ``key``; False if it was missing."""
        return self._run(c.out(key))  # type: ignore[no-any-return]

    def get(self, key: c.Key, default: T | None = None) -> bytes | T | None:
        """The value of ``key``, or ``default`` if missing."""
        return self._run(c.get(key, default))  # type: ignore[no-any-return]

    def mget(self, keys: Iterable[c.Key]) -> dict[bytes, bytes]:
        """Values of the existing ``keys`` (missing ones left out), one round trip."""
        return self._run(c.mget(keys))  # type: ignore[no-any-return]

    def vsiz(self, key: c.Key, default: T | None = None) -> int | T | None:
        """Size of the value of ``key`` (tables: the internal size), or ``default``."""
        return self._run(c.vsiz(key, default))  # type: ignore[no-any-return]

    def iterinit(self) -> None:
        """Rewind the server's key iterator (one per server, shared by all clients)."""
        return self._run(c.iterinit())  # type: ignore[no-any-return]

    def iternext(self) -> bytes | None:
        """The next key of the server's iterator, None at the end."""
        return self._run(c.iternext())  # type: ignore[no-any-return]

    def iterkeys(self, batch: int = 256) -> Generator[bytes, None, None]:
        """Every key, via ITERINIT and ITERNEXT pipelined ``batch`` at a time on
        one connection. The server has one iterator for all its clients, so
        concurrent iterations disturb each other; prefer :meth:`fwmkeys` or a
        query when that matters."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        pool = self._pool
        conn = pool.acquire()
        try:
            if not conn.request(_ITERINIT, p.ITERINIT).ok:
                raise TyrantCommandError("iterinit")
            frame = _ITERNEXT * batch
            commands = [p.ITERNEXT] * batch
            while True:
                for reply in conn.request_many(frame, commands):
                    if not reply.ok:
                        return
                    yield reply.value  # type: ignore[misc]
        finally:
            pool.release(conn)

    def fwmkeys(self, prefix: c.Key = b"", max: int | None = None) -> list[bytes]:
        """Keys starting with ``prefix`` (at most ``max``; None: all)."""
        return self._run(c.fwmkeys(prefix, max))  # type: ignore[no-any-return]

    def addint(self, key: c.Key, num: int = 0) -> int:
        """Add to an integer record and return the sum (tables: column ``_num``)."""
        return self._run(c.addint(key, num))  # type: ignore[no-any-return]

    def adddouble(self, key: c.Key, num: float = 0.0) -> float:
        """Add to a real-number record and return the sum."""
        return self._run(c.adddouble(key, num))  # type: ignore[no-any-return]

    def ext(self, name: c.Key, key: c.Key = b"", value: c.Key = b"", *,
            lock_record: bool = False, lock_global: bool = False) -> bytes:
        """Call the server's script function ``name``; return its result."""
        return self._run(  # type: ignore[no-any-return]
            c.ext(name, key, value, lock_record=lock_record, lock_global=lock_global))

    def call_func(self, func: c.Key, key: c.Key = b"", value: c.Key = b"",
                  record_locking: bool = False, global_locking: bool = False) -> bytes:
        """pyrant's :meth:`ext`: ``call_func(func, key, value, record_locking,
        global_locking)``, positionally or by those names."""
        return self._run(  # type: ignore[no-any-return]
            c.call_func(func, key, value, record_locking, global_locking))

    def mput(self, items: Mapping[Any, c.Key] | Iterable[tuple[Any, c.Key]]) -> None:
        """Store many key-value pairs (``{key: value}``) in one round trip."""
        return self._run(c.mput(items))  # type: ignore[no-any-return]

    def mout(self, keys: Iterable[c.Key]) -> None:
        """Remove many keys in one round trip (missing ones are ignored)."""
        return self._run(c.mout(keys))  # type: ignore[no-any-return]

    def sync(self) -> None:
        """Flush the database to disk."""
        return self._run(c.sync())  # type: ignore[no-any-return]

    def optimize(self, params: c.Key = b"") -> None:
        """Rebuild the database (``params`` like ``"bnum=1000000#opts=l"``)."""
        return self._run(c.optimize(params))  # type: ignore[no-any-return]

    def vanish(self) -> None:
        """Remove every record."""
        return self._run(c.vanish())  # type: ignore[no-any-return]

    def copy(self, path: c.Key) -> None:
        """Hot-copy the database file to ``path`` on the server host."""
        return self._run(c.copy(path))  # type: ignore[no-any-return]

    def restore(self, path: c.Key, ts: int = 0, *, check: bool = False) -> None:
        """Replay the update logs in ``path`` (server host) from timestamp ``ts`` (µs)."""
        return self._run(c.restore(path, ts, check=check))  # type: ignore[no-any-return]

    def setmst(self, host: c.Key = b"", port: int = 0, ts: int = 0, *,
               check: bool = False) -> None:
        """Replicate from master ``host:port`` from ``ts`` (µs); empty host: stop."""
        return self._run(c.setmst(host, port, ts, check=check))  # type: ignore[no-any-return]

    def rnum(self) -> int:
        """Number of records."""
        return self._run(c.rnum())  # type: ignore[no-any-return]

    def size(self) -> int:
        """Size of the database in bytes."""
        return self._run(c.size())  # type: ignore[no-any-return]

    def stat(self) -> dict[str, str]:
        """The server's status report as a dict of text."""
        return self._run(c.stat())  # type: ignore[no-any-return]

    def misc(self, name: c.Key, args: Iterable[c.Key] = (), opts: int = 0) -> list[bytes]:
        """Call MISC function ``name`` (``opts=MISC_NOULOG`` keeps it out of the
        update log); return its result list."""
        return self._run(c.misc(name, args, opts))  # type: ignore[no-any-return]

    # -- table layer --------------------------------------------------------

    def table_put(self, pk: c.Key, record: c.Record) -> None:
        """Store a whole record, replacing any old one (MISC ``put``)."""
        return self._run(c.table_put(pk, record))  # type: ignore[no-any-return]

    def table_putkeep(self, pk: c.Key, record: c.Record) -> bool:
        """Store a record only if ``pk`` is absent; False if it exists."""
        return self._run(c.table_putkeep(pk, record))  # type: ignore[no-any-return]

    def table_putcat(self, pk: c.Key, record: c.Record) -> None:
        """Add the columns the record does not have yet (existing ones are kept)."""
        return self._run(c.table_putcat(pk, record))  # type: ignore[no-any-return]

    def table_get(self, pk: c.Key, default: T | None = None, *,
                  raw: bool = False) -> dict[str, str] | T | None:
        """The record ``pk`` (one round trip), or ``default``. ``raw=True`` gives
        bytes names and values; otherwise invalid UTF-8 raises
        :class:`~.errors.TyrantDecodeError`."""
        return self._run(c.table_get(pk, default, raw=raw))  # type: ignore[no-any-return]

    def table_out(self, pk: c.Key) -> bool:
        """Remove the record ``pk``; False if it was missing."""
        return self._run(c.table_out(pk))  # type: ignore[no-any-return]

    def getlist(self, pks: Iterable[c.Key], *, raw: bool = False) -> dict[Any, Any]:
        """The existing records among ``pks``, in one round trip; on a key-value
        database their values (``{key: value}`` as bytes, like :meth:`mget`)."""
        return self._run(k.getlist(self._kind or self.kind(), pks, raw))  # type: ignore[no-any-return]

    def putlist(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Store many records (``{pk: record}``) in one round trip; on a key-value
        database many values (``{key: str or bytes}``, like :meth:`mput`)."""
        bulk = k.BulkPut(records)
        return self._run(bulk.for_kind(self._kind or self.kind()))  # type: ignore[no-any-return]

    def outlist(self, pks: Iterable[c.Key]) -> None:
        """Remove many records (or keys) in one round trip (missing ones are ignored)."""
        return self._run(k.outlist(self._kind or self.kind(), pks))  # type: ignore[no-any-return]

    def setindex(self, column: c.Key, kind: int | str, *, keep: bool = False) -> bool:
        """Create or rebuild an index: ``kind`` is ``"lexical"``, ``"decimal"``,
        ``"token"``, ``"qgram"``, ``"optimize"`` or ``"void"`` (remove), or its
        code. With ``keep=True`` an existing index is left alone and False is
        returned; other failures raise :class:`TyrantCommandError`."""
        return self._run(c.setindex(column, kind, keep=keep))  # type: ignore[no-any-return]

    def genuid(self) -> int:
        """A new unique number from the table's ID sequence."""
        return self._run(c.genuid())  # type: ignore[no-any-return]

    def genuids(self, count: int) -> list[int]:
        """``count`` new unique numbers from the table's ID sequence, in order, in
        one round trip (pipelined ``genuid``)."""
        return list(self._run_batch(c.genuids(count)))

    def table_put_many(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Store many table records (``{pk: record}`` or pairs), each replacing any
        record of its key, in one round trip: pipelined binary PUTs, which a
        server handles faster than the one MISC of :meth:`putlist`."""
        self._require_table("table_put_many")
        self._run_batch(c.table_put_many(records))

    def table_putkeep_many(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]
                           ) -> list[bool]:
        """Store many table records, each only if its key is absent, in one round
        trip (pipelined PUTKEEPs); whether each was stored."""
        self._require_table("table_putkeep_many")
        return list(self._run_batch(c.table_putkeep_many(records)))

    def _run_batch(self, cmd: c.Cmd) -> c.BatchResults:
        if not cmd.size:  # type: ignore[attr-defined]
            return c.BatchResults()
        pipeline = self.pipeline()
        pipeline._cmds.append(cmd)
        return pipeline.execute()[0]  # type: ignore[no-any-return]

    @property
    def query(self) -> Query:
        """A query matching every record; refine with ``filter`` & co."""
        return Query(self)

    @property
    def table(self) -> Table:
        """The records as a mutable mapping ``pk -> dict[str, str]``."""
        return Table(self)

    # Item access and iteration follow the database's kind (see .kinds): records
    # (dicts of text) on a table, values (bytes) on a key-value database.

    def __getitem__(self, key: c.Key) -> Any:
        found = self._run(k.item_get(self._kind or self.kind(), key))
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: c.Key, value: Any) -> None:
        k.check_item(value)
        self._run(k.item_set(self._kind or self.kind(), key, value))

    def __delitem__(self, key: c.Key) -> None:
        if not self._run(k.item_del(self._kind or self.kind(), key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._run(c.vsiz(key, None)) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.rnum()

    def __bool__(self) -> bool:
        return True  # not len(): truth must not cost a round trip

    def __iter__(self) -> Iterator[Any]:
        """Every key: a table's as text (one search), a key-value database's as
        bytes (one FWMKEYS), streamed while they arrive."""
        kind = self._kind or self.kind()
        if k.is_table(kind):
            return self.query.iter_keys()
        return self._iter_kv_keys(kind)

    def _iter_kv_keys(self, kind: str) -> Iterator[bytes]:
        for chunk in self._stream(k.all_keys_frame(kind), p.FWMKEYS, "fwmkeys"):
            yield from chunk

    # -- pyrant names -------------------------------------------------------

    multi_get = getlist
    multi_set = putlist
    multi_del = outlist
    prefix_keys = fwmkeys
    get_stats = stat
    generate_key = genuid
    get_size = vsiz
    concat = putcat
    clear = vanish


class Pipeline(c.PipelineBase):
    """Commands queued on the client side and sent together on one connection.

    Every command method of :class:`Tyrant` is available and returns the
    pipeline (calls can be chained). :meth:`execute` writes all requests at
    once, reads all replies and returns their results in order. A failing
    command does not stop the others: its exception is raised after all
    replies have been read (or returned in its place with
    ``raise_on_error=False``).
    """

    def __init__(self, client: Tyrant) -> None:
        super().__init__()
        self._client = client

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reset()

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the queued commands and return their results; the queue is emptied."""
        cmds = self._take()
        if not cmds:
            return []
        guarded = self._client._check(cmds)
        frame, commands = c.pipeline_frame(cmds)
        pool = self._client._pool
        conn = pool.acquire()
        try:
            try:
                replies = conn.request_many(frame, commands)
            except TyrantConnectError:
                raise
            except TyrantConnectionError as exc:
                idempotent = all(cmd[4] for cmd in cmds)
                if exc.request_sent and not (idempotent and self._client.retry_reads):
                    raise
                replies = conn.request_many(frame, commands)
        finally:
            pool.release(conn)
        if not guarded:
            return c.pipeline_results(cmds, replies, raise_on_error)
        results = c.pipeline_results(cmds, replies, False)
        ix.learn_results(self._client.indexes, cmds, results)
        return c.raise_first_error(results) if raise_on_error else results

