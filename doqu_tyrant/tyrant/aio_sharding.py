"""The asyncio sharded client: :class:`AsyncShardedTyrant`.

The API of :class:`~.sharding.ShardedTyrant` as coroutines, over
:class:`~.aio.AsyncTyrant` shards (or failover groups); requests to several
shards are sent together with ``asyncio.gather``. Searches are merged by the
same code (:mod:`.scatter`) as the blocking client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable, Mapping
from itertools import chain
from typing import Any, TypeVar

from . import commands as c
from .aio import AsyncTyrant
from .kinds import is_table, require_table
from .query import AsyncQuery
from .ring import DEFAULT_VNODES
from .scatter import Batch, Replies, Search, search, stream_args
from .searchargs import parse
from .shard_pipeline import AsyncShardedPipeline
from .sharding import _shard_paths
from .shards import (
    EVERY_MISC,
    ROUTED_MISC,
    SEARCH_MISC,
    ShardedBase,
    bulk_form,
    keys_arg,
    misc_parts,
    pairs_arg,
    unsupported_misc,
)

__all__ = ["AsyncShardedTyrant"]

T = TypeVar("T")


class AsyncShardedTyrant(ShardedBase):
    """An asyncio Tyrant client over ``shards`` (see :class:`~.sharding.ShardedTyrant`);
    keyword options go to :meth:`AsyncTyrant.from_url
    <doqu_tyrant.tyrant.aio.AsyncTyrant.from_url>`."""

    def __init__(self, shards: Iterable[Any], *, vnodes: int = DEFAULT_VNODES,
                 ring_version: int = 1, **options: Any) -> None:
        super().__init__(shards, AsyncTyrant.from_url, vnodes=vnodes,
                         ring_version=ring_version, options=options)
        self._cursor = 0

    async def aclose(self) -> None:
        """Close every shard's connections; later calls reconnect."""
        await self._parallel([client.aclose() for client in self._clients])

    close = aclose

    async def __aenter__(self) -> AsyncShardedTyrant:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- running on several shards at once ------------------------------------

    async def _parallel(self, coros: list[Awaitable[T]]) -> list[T]:
        """Await ``coros`` together; results in order, the first failure raised
        after all ended."""
        if len(coros) == 1:
            return [await coros[0]]
        results = await asyncio.gather(*coros, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    async def _on_all(self, method: str, *args: Any) -> list[Any]:
        return await self._parallel([getattr(cl, method)(*args) for cl in self._clients])

    async def _on_groups(self, groups: Mapping[int, Any], run: Any) -> dict[int, Any]:
        indexes = list(groups)
        results = await self._parallel([run(self._clients[i], groups[i]) for i in indexes])
        return dict(zip(indexes, results))

    @staticmethod
    async def _calls(client: Any, calls: list[tuple[bytes, list[bytes], int]]) -> list[Any]:
        if len(calls) == 1:
            return [await client.misc(*calls[0])]
        pipeline = getattr(client, "pipeline", None)
        if pipeline is None:
            return [await client.misc(*call) for call in calls]
        pl = pipeline()
        for call in calls:
            pl.misc(*call)
        return await pl.execute()  # type: ignore[no-any-return]

    async def _run_batch(self, batch: Batch) -> Replies:
        return await self._on_groups(batch, self._calls)

    async def _drive(self, gen: Search) -> list[bytes]:
        try:
            batch = next(gen)
            while True:
                batch = gen.send(await self._run_batch(batch))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def pipeline(self) -> AsyncShardedPipeline:
        """Queue key commands; ``await pl.execute()`` sends every shard's share at once."""
        return AsyncShardedPipeline(self)

    # -- key-value commands ---------------------------------------------------

    async def put(self, key: c.Key, value: c.Key) -> None:
        await self.client_for(key).put(key, value)

    async def putkeep(self, key: c.Key, value: c.Key) -> bool:
        return await self.client_for(key).putkeep(key, value)  # type: ignore[no-any-return]

    async def putcat(self, key: c.Key, value: c.Key) -> None:
        await self.client_for(key).putcat(key, value)

    async def putshl(self, key: c.Key, value: c.Key, width: int) -> None:
        await self.client_for(key).putshl(key, value, width)

    async def putnr(self, key: c.Key, value: c.Key) -> None:
        await self.client_for(key).putnr(key, value)

    async def out(self, key: c.Key) -> bool:
        return await self.client_for(key).out(key)  # type: ignore[no-any-return]

    async def get(self, key: c.Key, default: T | None = None) -> bytes | T | None:
        return await self.client_for(key).get(key, default)  # type: ignore[no-any-return]

    async def vsiz(self, key: c.Key, default: T | None = None) -> int | T | None:
        return await self.client_for(key).vsiz(key, default)  # type: ignore[no-any-return]

    async def addint(self, key: c.Key, num: int = 0) -> int:
        return await self.client_for(key).addint(key, num)  # type: ignore[no-any-return]

    async def adddouble(self, key: c.Key, num: float = 0.0) -> float:
        return await self.client_for(key).adddouble(key, num)  # type: ignore[no-any-return]

    async def ext(self, name: c.Key, key: c.Key = b"", value: c.Key = b"", *,
                  lock_record: bool = False, lock_global: bool = False) -> bytes:
        return await self.client_for(key).ext(  # type: ignore[no-any-return]
            name, key, value, lock_record=lock_record, lock_global=lock_global)

    async def call_func(self, func: c.Key, key: c.Key = b"", value: c.Key = b"",
                        record_locking: bool = False, global_locking: bool = False) -> bytes:
        c.call_func(func, key, value, record_locking, global_locking)
        return await self.client_for(key).call_func(  # type: ignore[no-any-return]
            func, key, value, record_locking, global_locking)

    async def mput(self, items: Mapping[Any, c.Key] | Iterable[tuple[Any, c.Key]]) -> None:
        groups = self._putlist_groups(c.pairs_arg(items, "items"), table=False)
        await self._on_groups(groups, lambda cl, args: cl.misc(b"putlist", args, 0))

    async def mout(self, keys: Iterable[c.Key]) -> None:
        wanted = keys_arg(keys, "keys", c.key_bytes)
        await self._on_groups(self._split_bytes(wanted),
                              lambda cl, ks: cl.misc(b"outlist", ks, 0))

    async def mget(self, keys: Iterable[c.Key]) -> dict[bytes, bytes]:
        wanted = keys_arg(keys, "keys", c.key_bytes)
        found: dict[bytes, bytes] = {}
        for part in (await self._on_groups(self._split_bytes(wanted),
                                           lambda cl, ks: cl.mget(ks))).values():
            found.update(part)
        return {k: found[k] for k in wanted if k in found}

    async def iterinit(self) -> None:
        await self._on_all("iterinit")
        self._cursor = 0

    async def iternext(self) -> bytes | None:
        while self._cursor < len(self._clients):
            key = await self._clients[self._cursor].iternext()
            if key is not None:
                return key  # type: ignore[no-any-return]
            self._cursor += 1
        return None

    async def iterkeys(self, batch: int = 256) -> AsyncGenerator[bytes, None]:
        for client in self._clients:
            async for key in client.iterkeys(batch):
                yield key

    async def fwmkeys(self, prefix: c.Key = b"", max: int | None = None) -> list[bytes]:
        c.fwmkeys(prefix, max)
        keys = sorted(chain.from_iterable(await self._on_all("fwmkeys", prefix, max)))
        return keys if max is None or max < 0 else keys[:max]

    async def sync(self) -> None:
        await self._on_all("sync")

    async def optimize(self, params: c.Key = b"") -> None:
        c.optimize(params)
        await self._on_all("optimize", params)

    async def vanish(self) -> None:
        await self._on_all("vanish")

    async def copy(self, path: str) -> None:
        paths = _shard_paths(path, len(self._clients))
        await self._parallel([cl.copy(p) for cl, p in zip(self._clients, paths)])

    async def rnum(self) -> int:
        return sum(await self._on_all("rnum"))

    async def size(self) -> int:
        return sum(await self._on_all("size"))

    async def stat(self) -> dict[str, dict[str, str]]:
        return dict(zip(self.names, await self._on_all("stat")))

    async def misc(self, name: c.Key, args: Iterable[c.Key] = (), opts: int = 0) -> list[bytes]:
        """See :meth:`ShardedTyrant.misc <doqu_tyrant.tyrant.sharding.ShardedTyrant.misc>`."""
        name_b, args_b, opts = misc_parts(name, args, opts)
        if name_b in SEARCH_MISC:
            return await self._drive(search(parse(args_b), self.names, self._split_bytes, opts))
        if name_b in ROUTED_MISC:
            if not args_b:
                raise ValueError(f"misc {name_b.decode()} needs a key")
            return await self._clients[  # type: ignore[no-any-return]
                self.ring.node(args_b[0])].misc(name_b, args_b, opts)
        if name_b == b"getlist":
            found: dict[bytes, bytes] = {}
            for items in (await self._on_groups(
                    self._split_bytes(args_b),
                    lambda cl, ks: cl.misc(b"getlist", ks, opts))).values():
                found.update(pairs_arg(items, "getlist reply"))
            return list(chain.from_iterable((k, found[k]) for k in args_b if k in found))
        if name_b == b"outlist":
            await self._on_groups(self._split_bytes(args_b),
                                  lambda cl, ks: cl.misc(b"outlist", ks, opts))
            return []
        if name_b == b"putlist":
            pairs = self._group(pairs_arg(args_b, "misc putlist"), lambda kv: kv[0])
            await self._on_groups(pairs, lambda cl, kvs: cl.misc(
                b"putlist", list(chain.from_iterable(kvs)), opts))
            return []
        if name_b == b"genuid":
            return await self._clients[0].misc(name_b, args_b, opts)  # type: ignore[no-any-return]
        if name_b in EVERY_MISC:
            return (await self._on_all("misc", name_b, args_b, opts))[0]  # type: ignore[no-any-return]
        raise unsupported_misc(name_b)

    async def _stream_misc(self, name: bytes, args: list[bytes],
                           opts: int) -> AsyncIterator[list]:
        if name in SEARCH_MISC:
            shard_args = stream_args(parse(args))
            if shard_args is not None:
                for client in self._clients:
                    stream = getattr(client, "_stream_misc", None)
                    if stream is None:
                        yield await client.misc(name, shard_args, opts)
                    else:
                        async for chunk in stream(name, shard_args, opts):
                            yield chunk
                return
        yield await self.misc(name, args, opts)

    # -- table layer ----------------------------------------------------------

    async def table_put(self, pk: c.Key, record: c.Record) -> None:
        await self.client_for(pk).table_put(pk, record)

    async def table_putkeep(self, pk: c.Key, record: c.Record) -> bool:
        return await self.client_for(pk).table_putkeep(pk, record)  # type: ignore[no-any-return]

    async def table_putcat(self, pk: c.Key, record: c.Record) -> None:
        await self.client_for(pk).table_putcat(pk, record)

    async def table_get(self, pk: c.Key, default: T | None = None, *,
                        raw: bool = False) -> dict[str, str] | T | None:
        return await self.client_for(pk).table_get(  # type: ignore[no-any-return]
            pk, default, raw=raw)

    async def table_out(self, pk: c.Key) -> bool:
        return await self.client_for(pk).table_out(pk)  # type: ignore[no-any-return]

    async def getlist(self, pks: Iterable[c.Key], *, raw: bool = False) -> dict[Any, Any]:
        kind = await self.kind()
        wanted = keys_arg(pks, "pks", c.pk_bytes if is_table(kind) else c.key_bytes)
        found: dict[Any, Any] = {}
        for part in (await self._on_groups(self._split_bytes(wanted),
                                           lambda cl, ks: cl.getlist(ks, raw=raw))).values():
            found.update(part)
        return self._key_form(kind, found, wanted)

    async def putlist(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs, table = bulk_form(records, await self.kind())
        await self._on_groups(self._putlist_groups(pairs, table),
                              lambda cl, args: cl.misc(b"putlist", args, 0))

    async def outlist(self, pks: Iterable[c.Key]) -> None:
        kind = await self.kind()
        wanted = keys_arg(pks, "pks", c.pk_bytes if is_table(kind) else c.key_bytes)
        await self._on_groups(self._split_bytes(wanted),
                              lambda cl, ks: cl.misc(b"outlist", ks, 0))

    async def setindex(self, column: c.Key, kind: int | str, *, keep: bool = False) -> bool:
        c.setindex(column, kind, keep=keep)
        return all(await self._parallel([cl.setindex(column, kind, keep=keep)
                                         for cl in self._clients]))

    async def index_kinds(self, columns: Iterable[c.Key]) -> dict[Any, str | None]:
        """See :meth:`ShardedTyrant.index_kinds
        <doqu_tyrant.tyrant.sharding.ShardedTyrant.index_kinds>`."""
        wanted = list(columns)
        return self._index_kinds(await self._parallel([
            cl.index_kinds(wanted) for cl in self._clients if hasattr(cl, "index_kinds")]))

    def forget_indexes(self, columns: Iterable[c.Key] | None = None) -> None:
        wanted = None if columns is None else list(columns)
        for client in self._clients:
            forget = getattr(client, "forget_indexes", None)
            if forget is not None:
                forget(wanted)

    async def genuid(self) -> int:
        return await self._clients[0].genuid()  # type: ignore[no-any-return]

    async def genuids(self, count: int) -> list[int]:
        """``count`` new unique numbers from the first shard's counter, in one round
        trip."""
        return await self._clients[0].genuids(count)  # type: ignore[no-any-return]

    async def kind(self) -> str:
        """The kind of database the shards hold (they must agree)."""
        known = self._kind
        return known if known is not None else self._common_kind(
            list((await self.kinds()).values()))

    async def kinds(self) -> dict[str, str]:
        """Each shard's database kind, by shard name (asked at once)."""
        return dict(zip(self.names, await self._parallel([cl.kind() for cl in self._clients])))

    async def _require_table(self, what: str) -> None:
        require_table(await self.kind(), what)

    def __aiter__(self) -> AsyncIterator[Any]:
        """Every key of every shard (a table's as text, a key-value database's as bytes)."""
        return self._iter_keys()

    async def _iter_keys(self) -> AsyncIterator[Any]:
        if is_table(await self.kind()):
            async for key in self.query.iter_keys():
                yield key
            return
        for client in self._clients:
            async for key in client:
                yield key

    async def contains(self, key: c.Key) -> bool:
        """Whether ``key`` exists (VSIZ on its shard)."""
        return await self.vsiz(key) is not None

    @property
    def query(self) -> AsyncQuery:
        """A query over every shard."""
        return AsyncQuery(self)  # type: ignore[arg-type]

    # -- pyrant names ---------------------------------------------------------

    multi_get = getlist
    multi_set = putlist
    multi_del = outlist
    prefix_keys = fwmkeys
    get_stats = stat
    generate_key = genuid
    get_size = vsiz
    concat = putcat
    clear = vanish
