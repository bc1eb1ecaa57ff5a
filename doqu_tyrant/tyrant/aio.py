"""The asyncio Tyrant client: the same commands as coroutines, the same codec.

:class:`AsyncTyrant` keeps a bounded pool of connections shared by all the
tasks that use it (see :mod:`.aioconnection`): a connection carries one
batch of requests at a time, and while every connection the pool may open
is busy, further requests queue on the least busy one for its next batch.
``timeout`` bounds each call from its start: connecting, sending and the
whole reply. A timeout, a cancellation or any other interruption discards
the connection it happened on; ``CancelledError``, ``KeyboardInterrupt``
and the like propagate as themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any, TypeVar

from . import commands as c
from . import indexes as ix
from . import kinds as k
from . import protocol as p
from .aioconnection import AsyncConnection, AsyncConnectionPool, conn_error, expire
from .aiotimeout import within
from .errors import (
    TyrantCommandError,
    TyrantConnectError,
    TyrantConnectionError,
    TyrantError,
    TyrantTimeout,
)
from .options import DEFAULT_PORT, check_host, check_port, client_options, parse_url
from .query import AsyncQuery

__all__ = ["AsyncTyrant", "AsyncPipeline", "AsyncConnection", "AsyncConnectionPool"]

T = TypeVar("T")

_ITERNEXT = p.encode_simple(p.ITERNEXT)


class AsyncTyrant:
    """The asyncio Tyrant client; the API of :class:`~.client.Tyrant` as coroutines.

    Item assignment cannot be awaited, so the table layer is the ``table_*``
    methods (``await t.table_get(pk)``) and :attr:`query`; ``async for key in
    t`` iterates over the keys, and the bulk calls follow the database's kind
    as the blocking client's do.
    """

    def __new__(cls, *args: Any, servers: Iterable[Any] | None = None,
                **kwargs: Any) -> AsyncTyrant:
        # AsyncTyrant(servers=[...]) is a failover group (tyrant/aio_failover.py).
        if servers is not None and cls is AsyncTyrant:
            from .aio_failover import AsyncFailoverTyrant

            return super().__new__(AsyncFailoverTyrant)
        return super().__new__(cls)

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 timeout: float | None = None, *, connect_timeout: float | None = None,
                 pool_size: int = 8, pool_timeout: float | None = 20.0,
                 retry_reads: bool = True, servers: Iterable[Any] | None = None) -> None:
        if servers is not None:
            raise TypeError(f"servers=[...] makes a failover group; {type(self).__name__} "
                            "is a single-server client")
        self.host = check_host(host)
        self.port = check_port(port)
        checked = client_options(timeout=timeout, connect_timeout=connect_timeout,
                                 pool_size=pool_size, pool_timeout=pool_timeout,
                                 retry_reads=retry_reads)
        timeout = checked["timeout"]
        connect_timeout = checked["connect_timeout"]
        pool_timeout = checked["pool_timeout"]
        self.timeout = timeout
        self.retry_reads = retry_reads
        self._pool = AsyncConnectionPool(host, self.port, pool_size,
                                         timeout if connect_timeout is None else connect_timeout,
                                         pool_timeout)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncTyrant:
        """See :meth:`Tyrant.from_url <.client.Tyrant.from_url>`; several hosts
        give a failover group (:class:`~.aio_failover.AsyncFailoverTyrant`)."""
        from .failover import is_group_url

        if is_group_url(url):
            from .aio_failover import AsyncFailoverTyrant

            return AsyncFailoverTyrant.from_url(url, **options)
        host, port, parsed = parse_url(url)
        parsed.pop("health_check_interval", None)
        parsed.update(options)
        return cls(host, port, **parsed)

    def __repr__(self) -> str:
        return f"<AsyncTyrant {self.host}:{self.port}>"

    async def aclose(self) -> None:
        """Close all connections; later calls reconnect."""
        self._pool.close()

    close = aclose

    async def __aenter__(self) -> AsyncTyrant:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the one request path -----------------------------------------------

    def _timed_out(self, conn: AsyncConnection) -> TyrantTimeout:
        conn.abort(conn_error(f"connection to {conn.name} discarded after a timeout", True))
        return TyrantTimeout(f"no reply from {conn.name} within {self.timeout} s; "
                             "the connection was closed")

    async def _attempt(self, frame: bytes, commands: list[int],
                       deadline: float | None) -> list[p.Reply]:
        """One request on one connection, by ``deadline`` (loop time)."""
        pool = self._pool
        loop = asyncio.get_running_loop()
        conn = pool.take() or pool.pick()
        if conn is None:
            conn = await pool.acquire(None if deadline is None else deadline - loop.time())
        waiter = conn.send(frame, commands)
        try:
            if deadline is None:
                return await waiter.future  # type: ignore[no-any-return]
            # a timer on the reply's own future, not wait_for: cheaper, and a
            # cancellation is never lost (see aiotimeout)
            timer = loop.call_later(deadline - loop.time(), expire, waiter.future, _Expired)
            try:
                return await waiter.future  # type: ignore[no-any-return]
            except _Expired:
                raise self._timed_out(conn) from None
            finally:
                timer.cancel()
        except BaseException:
            conn.abandon(waiter)
            raise

    async def _request_many(self, frame: bytes, commands: list[int],
                            idempotent: bool) -> list[p.Reply]:
        deadline = None
        if self.timeout is not None:
            deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            return await self._attempt(frame, commands, deadline)
        except TyrantConnectError:
            raise
        except TyrantConnectionError as exc:
            if exc.request_sent and not (idempotent and self.retry_reads):
                raise
        # once more on a fresh connection (the broken one is gone), same deadline
        return await self._attempt(frame, commands, deadline)

    async def _run(self, cmd: c.Cmd) -> Any:
        if cmd.__class__ is not tuple:
            return await self._run_guarded(cmd)
        frame, command, parse, arg, idempotent = cmd
        replies = await self._request_many(frame, [command], idempotent)
        return parse(replies[0], arg)

    async def _run_guarded(self, cmd: c.Cmd) -> Any:
        """A write that may be a spec §10 input: checked first, learned from after."""
        await self._check([cmd])
        try:
            result = await self._run(tuple(cmd))  # type: ignore[arg-type]
        except TyrantError as exc:
            ix.learn_results(self.indexes, [cmd], [exc])
            raise
        ix.learn_results(self.indexes, [cmd], [result])
        return result

    async def _check(self, cmds: list[c.Cmd]) -> bool:
        """Refuse (``ValueError``, nothing sent) a spec §10 input among ``cmds``
        (see ``Tyrant._check``)."""
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
                questions = flow.send(await self._ask(questions))
        except StopIteration:
            pass
        return True

    async def _ask(self, cmds: list[c.Cmd]) -> list[Any]:
        """Send read-only requests in one round trip; their parsed results."""
        frame, commands = c.pipeline_frame(cmds)
        replies = await self._request_many(frame, commands, True)
        return c.pipeline_results(cmds, replies, False)

    @property
    def indexes(self) -> ix.TableIndexes:
        """What this client knows of the table's indexes; see ``Tyrant.indexes``."""
        book = self.__dict__.get("_indexes")
        if book is None:
            book = self.__dict__.setdefault("_indexes", ix.TableIndexes())
        return book  # type: ignore[no-any-return]

    async def index_kinds(self, columns: Iterable[c.Key]) -> dict[Any, str | None]:
        """The index kind of each column (see ``Tyrant.index_kinds``), one round trip
        for the columns not known yet."""
        given, names, known, unknown = ix.kinds_plan(self.indexes, columns)
        answers = await self._ask([ix.probe(n) for n in unknown]) if unknown else []
        return ix.kinds_result(self.indexes, given, names, known, unknown, answers)

    def forget_indexes(self, columns: Iterable[c.Key] | None = None) -> None:
        """Forget what is known of the indexes of ``columns`` (None: all)."""
        self.indexes.forget(None if columns is None else [ix.column_name(col)
                                                          for col in columns])

    def _stream_misc(self, name: bytes, args: list[bytes], opts: int) -> AsyncIterator[list]:
        frame = c.misc(name, args, opts)[0]
        return self._stream(frame, p.MISC, f"misc {name.decode('latin-1')}")

    async def _stream(self, frame: bytes, command: int, label: str) -> AsyncIterator[list]:
        """A request with a list reply (MISC, FWMKEYS), yielded chunk by chunk;
        ``timeout`` bounds the wait for each chunk. Abandoning the iteration
        discards the connection (the rest of the reply is still on its way)."""
        timeout = self.timeout
        conn = await self._pool.acquire(timeout, share=False)
        queue: asyncio.Queue = asyncio.Queue()
        waiter = conn.send(frame, [command], queue)
        done = False
        try:
            while True:
                if timeout is None:
                    item = await queue.get()
                else:
                    try:
                        item = await within(queue.get(), timeout)
                    except asyncio.TimeoutError:
                        raise self._timed_out(conn) from None
                conn.resume(queue)
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, p.Reply):
                    done = True
                    if not item.ok:
                        raise TyrantCommandError(label)
                    if item.value:
                        yield item.value  # type: ignore[misc]
                    return
                yield item
        finally:
            if not done:
                conn.abandon(waiter)

    def pipeline(self) -> AsyncPipeline:
        """Queue commands, then ``await pl.execute()`` sends them in one write."""
        return AsyncPipeline(self)

    # -- the kind of database -----------------------------------------------

    _kind: str | None = None

    async def kind(self) -> str:
        """The kind of database the server holds (STAT ``type``), asked once and
        remembered; see ``Tyrant.kind``."""
        kind = self._kind
        if kind is None:
            kind = self._kind = k.kind_of(await self.stat())
        return kind

    async def _require_table(self, what: str) -> None:
        k.require_table(self._kind if self._kind is not None else await self.kind(), what)

    def __aiter__(self) -> AsyncIterator[Any]:
        """Every key: a table's as text (one search), a key-value database's as
        bytes (one FWMKEYS), streamed while they arrive."""
        return self._iter_keys()

    async def _iter_keys(self) -> AsyncIterator[Any]:
        kind = self._kind if self._kind is not None else await self.kind()
        if k.is_table(kind):
            async for key in self.query.iter_keys():
                yield key
            return
        async for chunk in self._stream(k.all_keys_frame(kind), p.FWMKEYS, "fwmkeys"):
            for key in chunk:
                yield key

    # -- key-value commands -------------------------------------------------

    async def put(self, key: c.Key, value: c.Key) -> None:
        return await self._run(c.put(key, value))  # type: ignore[no-any-return]

    async def putkeep(self, key: c.Key, value: c.Key) -> bool:
        return await self._run(c.putkeep(key, value))  # type: ignore[no-any-return]

    async def putcat(self, key: c.Key, value: c.Key) -> None:
        return await self._run(c.putcat(key, value))  # type: ignore[no-any-return]

    async def putshl(self, key: c.Key, value: c.Key, width: int) -> None:
        return await self._run(c.putshl(key, value, width))  # type: ignore[no-any-return]

    async def putnr(self, key: c.Key, value: c.Key) -> None:
        return await self._run(c.putnr(key, value))  # type: ignore[no-any-return]

    async def out(self, key: c.Key) -> bool:
        return await self._run(c.out(key))  # type: ignore[no-any-return]

    async def get(self, key: c.Key, default: T | None = None) -> bytes | T | None:
        return await self._run(c.get(key, default))  # type: ignore[no-any-return]

    async def mget(self, keys: Iterable[c.Key]) -> dict[bytes, bytes]:
        return await self._run(c.mget(keys))  # type: ignore[no-any-return]

    async def vsiz(self, key: c.Key, default: T | None = None) -> int | T | None:
        return await self._run(c.vsiz(key, default))  # type: ignore[no-any-return]

    async def iterinit(self) -> None:
        return await self._run(c.iterinit())  # type: ignore[no-any-return]

    async def iternext(self) -> bytes | None:
        return await self._run(c.iternext())  # type: ignore[no-any-return]

    async def iterkeys(self, batch: int = 256) -> AsyncGenerator[bytes, None]:
        """Every key via ITERINIT + pipelined ITERNEXT (see ``Tyrant.iterkeys``)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        await self.iterinit()
        frame = _ITERNEXT * batch
        commands = [p.ITERNEXT] * batch
        while True:
            for reply in await self._request_many(frame, commands, False):
                if not reply.ok:
                    return
                yield reply.value  # type: ignore[misc]

    async def fwmkeys(self, prefix: c.Key = b"", max: int | None = None) -> list[bytes]:
        return await self._run(c.fwmkeys(prefix, max))  # type: ignore[no-any-return]

    async def addint(self, key: c.Key, num: int = 0) -> int:
        return await self._run(c.addint(key, num))  # type: ignore[no-any-return]

    async def adddouble(self, key: c.Key, num: float = 0.0) -> float:
        return await self._run(c.adddouble(key, num))  # type: ignore[no-any-return]

    async def ext(self, name: c.Key, key: c.Key = b"", value: c.Key = b"", *,
                  lock_record: bool = False, lock_global: bool = False) -> bytes:
        return await self._run(  # type: ignore[no-any-return]
            c.ext(name, key, value, lock_record=lock_record, lock_global=lock_global))

    async def call_func(self, func: c.Key, key: c.Key = b"", value: c.Key = b"",
                        record_locking: bool = False, global_locking: bool = False) -> bytes:
        """pyrant's ``call_func(func, key, value, record_locking, global_locking)``."""
        return await self._run(  # type: ignore[no-any-return]
            c.call_func(func, key, value, record_locking, global_locking))

    async def mput(self, items: Mapping[Any, c.Key] | Iterable[tuple[Any, c.Key]]) -> None:
        return await self._run(c.mput(items))  # type: ignore[no-any-return]

    async def mout(self, keys: Iterable[c.Key]) -> None:
        return await self._run(c.mout(keys))  # type: ignore[no-any-return]

    async def sync(self) -> None:
        return await self._run(c.sync())  # type: ignore[no-any-return]

    async def optimize(self, params: c.Key = b"") -> None:
        return await self._run(c.optimize(params))  # type: ignore[no-any-return]

    async def vanish(self) -> None:
        return await self._run(c.vanish())  # type: ignore[no-any-return]

    async def copy(self, path: c.Key) -> None:
        return await self._run(c.copy(path))  # type: ignore[no-any-return]

    async def restore(self, path: c.Key, ts: int = 0, *, check: bool = False) -> None:
        return await self._run(c.restore(path, ts, check=check))  # type: ignore[no-any-return]

    async def setmst(self, host: c.Key = b"", port: int = 0, ts: int = 0, *,
                     check: bool = False) -> None:
        return await self._run(  # type: ignore[no-any-return]
            c.setmst(host, port, ts, check=check))

    async def rnum(self) -> int:
        return await self._run(c.rnum())  # type: ignore[no-any-return]

    async def size(self) -> int:
        return await self._run(c.size())  # type: ignore[no-any-return]

    async def stat(self) -> dict[str, str]:
        return await self._run(c.stat())  # type: ignore[no-any-return]

    async def misc(self, name: c.Key, args: Iterable[c.Key] = (), opts: int = 0) -> list[bytes]:
        return await self._run(c.misc(name, args, opts))  # type: ignore[no-any-return]

    # -- table layer --------------------------------------------------------

    async def table_put(self, pk: c.Key, record: c.Record) -> None:
        return await self._run(c.table_put(pk, record))  # type: ignore[no-any-return]

    async def table_putkeep(self, pk: c.Key, record: c.Record) -> bool:
        return await self._run(c.table_putkeep(pk, record))  # type: ignore[no-any-return]

    async def table_putcat(self, pk: c.Key, record: c.Record) -> None:
        return await self._run(c.table_putcat(pk, record))  # type: ignore[no-any-return]

    async def table_get(self, pk: c.Key, default: T | None = None, *,
                        raw: bool = False) -> dict[str, str] | T | None:
        return await self._run(c.table_get(pk, default, raw=raw))  # type: ignore[no-any-return]

    async def table_out(self, pk: c.Key) -> bool:
        return await self._run(c.table_out(pk))  # type: ignore[no-any-return]

    async def getlist(self, pks: Iterable[c.Key], *, raw: bool = False) -> dict[Any, Any]:
        """Records (table) or values (key-value database) of the existing ``pks``."""
        kind = self._kind if self._kind is not None else await self.kind()
        return await self._run(k.getlist(kind, pks, raw))  # type: ignore[no-any-return]

    async def putlist(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Many records (table) or values (key-value database) in one round trip."""
        bulk = k.BulkPut(records)
        kind = self._kind if self._kind is not None else await self.kind()
        return await self._run(bulk.for_kind(kind))  # type: ignore[no-any-return]

    async def outlist(self, pks: Iterable[c.Key]) -> None:
        kind = self._kind if self._kind is not None else await self.kind()
        return await self._run(k.outlist(kind, pks))  # type: ignore[no-any-return]

    async def setindex(self, column: c.Key, kind: int | str, *, keep: bool = False) -> bool:
        return await self._run(c.setindex(column, kind, keep=keep))  # type: ignore[no-any-return]

    async def genuid(self) -> int:
        return await self._run(c.genuid())  # type: ignore[no-any-return]

    async def genuids(self, count: int) -> list[int]:
        return list(await self._run_batch(c.genuids(count)))

    async def table_put_many(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]
                             ) -> None:
        await self._require_table("table_put_many")
        await self._run_batch(c.table_put_many(records))

    async def table_putkeep_many(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]
                                 ) -> list[bool]:
        await self._require_table("table_putkeep_many")
        return list(await self._run_batch(c.table_putkeep_many(records)))

    async def _run_batch(self, cmd: c.Cmd) -> c.BatchResults:
        if not cmd.size:  # type: ignore[attr-defined]
            return c.BatchResults()
        pipeline = self.pipeline()
        pipeline._cmds.append(cmd)
        return (await pipeline.execute())[0]  # type: ignore[no-any-return]

    async def contains(self, key: c.Key) -> bool:
        """Whether ``key`` exists (VSIZ)."""
        return await self._run(c.vsiz(key, None)) is not None

    @property
    def query(self) -> AsyncQuery:
        return AsyncQuery(self)

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


class AsyncPipeline(c.PipelineBase):
    """Queued commands sent in one write; ``await pl.execute()`` returns the results."""

    def __init__(self, client: AsyncTyrant) -> None:
        super().__init__()
        self._client = client

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.reset()

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        cmds = self._take()
        if not cmds:
            return []
        guarded = await self._client._check(cmds)
        frame, commands = c.pipeline_frame(cmds)
        idempotent = all(cmd[4] for cmd in cmds)
        replies = await self._client._request_many(frame, commands, idempotent)
        if not guarded:
            return c.pipeline_results(cmds, replies, raise_on_error)
        results = c.pipeline_results(cmds, replies, False)
        ix.learn_results(self._client.indexes, cmds, results)
        return c.raise_first_error(results) if raise_on_error else results


class _Expired(Exception):
    """Set on a reply's future when its deadline passes."""
