"""One blocking client over many Tyrant servers: :class:`ShardedTyrant`.

Keys are placed on shards by a consistent-hash ring (:mod:`.ring`); each
shard is a :class:`~.client.Tyrant` (or a failover group, or any client with
the Tyrant API). The sharded client has the Tyrant API wherever it means
something:

* key commands go to the key's shard (``put``, ``get``, ``addint``, the
  table layer ``t[pk]``, ``table_get`` …);
* bulk commands (``mget``, ``getlist``, ``putlist``, ``outlist``) are split
  per shard and sent to all shards at once, from a small thread pool: one
  round trip of wall time;
* ``rnum``/``size`` are summed; ``vanish``, ``sync``, ``optimize``,
  ``setindex`` run on every shard; ``stat`` returns each shard's report;
  iteration and ``fwmkeys`` cover every shard;
* table queries (:attr:`query`, and raw ``misc("search", ...)``) are
  scattered and merged so that the answer is the one server holding all
  the records would give (:mod:`.scatter`);
* ``genuid`` takes numbers from the first shard's counter only, so
  generated keys are unique across shards; the record then goes where its
  key hashes. While that shard is down, generating keys fails (with
  :class:`~.errors.TyrantConnectionError`); everything else still works.

Nothing spans shards atomically: a bulk write or a delete that fails on one
shard has been applied on the others (the exception says which failed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain
from typing import Any, TypeVar

from . import commands as c
from .client import Tyrant
from .kinds import check_item, is_table, require_table
from .query import Query
from .ring import DEFAULT_VNODES
from .scatter import Batch, Replies, Search, search, stream_args
from .searchargs import parse
from .shard_pipeline import ShardedPipeline
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
from .table import Table

__all__ = ["ShardedTyrant"]

T = TypeVar("T")


class ShardedTyrant(ShardedBase):
    """A Tyrant client over ``shards`` (URLs, mappings or clients; see
    :mod:`.shards`), keys placed by a version-``ring_version`` consistent-hash
    ring with ``vnodes`` points per unit of weight.

    Other keyword options (``timeout``, ``pool_size``, …) are passed to
    :meth:`Tyrant.from_url <doqu_tyrant.tyrant.client.Tyrant.from_url>` for
    every shard given by URL.
    """

    def __init__(self, shards: Iterable[Any], *, vnodes: int = DEFAULT_VNODES,
                 ring_version: int = 1, **options: Any) -> None:
        super().__init__(shards, Tyrant.from_url, vnodes=vnodes, ring_version=ring_version,
                         options=options)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._cursor = 0

    def close(self) -> None:
        """Close every shard's connections; later calls reconnect."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        for client in self._clients:
            client.close()

    def __enter__(self) -> ShardedTyrant:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- running on several shards at once ------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                executor = self._executor
                if executor is None:
                    executor = self._executor = ThreadPoolExecutor(
                        max_workers=max(2, 2 * len(self._clients)),
                        thread_name_prefix="doqu-tyrant-shard")
        return executor

    def _parallel(self, tasks: list[Callable[[], T]]) -> list[T]:
        """Run ``tasks`` at once (the first on this thread); their results in
        order. The first failure (in task order) is raised after all ended."""
        if len(tasks) == 1:
            return [tasks[0]()]
        pool = self._pool()
        futures = [pool.submit(task) for task in tasks[1:]]
        results: list[Any] = [None] * len(tasks)
        error: BaseException | None = None
        try:
            results[0] = tasks[0]()
        except BaseException as exc:
            error = exc
        for i, future in enumerate(futures, 1):
            try:
                results[i] = future.result()
            except BaseException as exc:
                if error is None:
                    error = exc
        if error is not None:
            raise error
        return results

    def _on_all(self, method: str, *args: Any) -> list[Any]:
        return self._parallel([partial(getattr(client, method), *args)
                               for client in self._clients])

    def _on_groups(self, groups: Mapping[int, T], run: Callable[[Any, T], Any]) -> dict[int, Any]:
        indexes = list(groups)
        results = self._parallel([partial(run, self._clients[i], groups[i]) for i in indexes])
        return dict(zip(indexes, results))

    def _calls(self, client: Any, calls: list[tuple[bytes, list[bytes], int]]) -> list[Any]:
        if len(calls) == 1:
            return [client.misc(*calls[0])]
        pipeline = getattr(client, "pipeline", None)
        if pipeline is None:
            return [client.misc(*call) for call in calls]
        with pipeline() as pl:
            for call in calls:
                pl.misc(*call)
            return pl.execute()  # type: ignore[no-any-return]

    def _run_batch(self, batch: Batch) -> Replies:
        return self._on_groups(batch, self._calls)

    def _drive(self, gen: Search) -> list[bytes]:
        try:
            batch = next(gen)
            while True:
                batch = gen.send(self._run_batch(batch))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def pipeline(self) -> ShardedPipeline:
        """Queue key commands and send each shard's share in one write, all shards
        at once: ``with t.pipeline() as pl: pl.put(...); results = pl.execute()``."""
        return ShardedPipeline(self)

    # -- key-value commands ---------------------------------------------------

    def put(self, key: c.Key, value: c.Key) -> None:
        """Store ``value`` under ``key`` on its shard."""
        self.client_for(key).put(key, value)

    def putkeep(self, key: c.Key, value: c.Key) -> bool:
        """Store only if ``key`` is absent; False if it exists."""
        return self.client_for(key).putkeep(key, value)  # type: ignore[no-any-return]

    def putcat(self, key: c.Key, value: c.Key) -> None:
        """Append ``value`` to the value of ``key``."""
        self.client_for(key).putcat(key, value)

    def putshl(self, key: c.Key, value: c.Key, width: int) -> None:
        """Append, then keep the last ``width`` bytes."""
        self.client_for(key).putshl(key, value, width)

    def putnr(self, key: c.Key, value: c.Key) -> None:
        """Store without waiting for an answer."""
        self.client_for(key).putnr(key, value)

    def out(self, key: c.Key) -> bool:
        """Remove ``key``; False if it was missing."""
        return self.client_for(key).out(key)  # type: ignore[no-any-return]

    def get(self, key: c.Key, default: T | None = None) -> bytes | T | None:
        """The value of ``key``, or ``default``."""
        return self.client_for(key).get(key, default)  # type: ignore[no-any-return]

    def vsiz(self, key: c.Key, default: T | None = None) -> int | T | None:
        """Size of the value of ``key``, or ``default``."""
        return self.client_for(key).vsiz(key, default)  # type: ignore[no-any-return]

    def addint(self, key: c.Key, num: int = 0) -> int:
        """Add to an integer record on its shard; return the sum."""
        return self.client_for(key).addint(key, num)  # type: ignore[no-any-return]

    def adddouble(self, key: c.Key, num: float = 0.0) -> float:
        """Add to a real-number record on its shard; return the sum."""
        return self.client_for(key).adddouble(key, num)  # type: ignore[no-any-return]

    def ext(self, name: c.Key, key: c.Key = b"", value: c.Key = b"", *,
            lock_record: bool = False, lock_global: bool = False) -> bytes:
        """Call script function ``name`` on the shard of ``key``."""
        return self.client_for(key).ext(  # type: ignore[no-any-return]
            name, key, value, lock_record=lock_record, lock_global=lock_global)

    def call_func(self, func: c.Key, key: c.Key = b"", value: c.Key = b"",
                  record_locking: bool = False, global_locking: bool = False) -> bytes:
        """pyrant's :meth:`ext`, on the shard of ``key``."""
        c.call_func(func, key, value, record_locking, global_locking)
        return self.client_for(key).call_func(  # type: ignore[no-any-return]
            func, key, value, record_locking, global_locking)

    def mput(self, items: Mapping[Any, c.Key] | Iterable[tuple[Any, c.Key]]) -> None:
        """Store many key-value pairs, each shard's share in one request, all at once."""
        groups = self._putlist_groups(c.pairs_arg(items, "items"), table=False)
        self._on_groups(groups, lambda cl, args: cl.misc(b"putlist", args, 0))

    def mout(self, keys: Iterable[c.Key]) -> None:
        """Remove many keys, all shards at once (missing ones are ignored)."""
        wanted = keys_arg(keys, "keys", c.key_bytes)
        self._on_groups(self._split_bytes(wanted), lambda cl, ks: cl.misc(b"outlist", ks, 0))

    def mget(self, keys: Iterable[c.Key]) -> dict[bytes, bytes]:
        """Values of the existing ``keys``, asked of all their shards at once."""
        wanted = keys_arg(keys, "keys", c.key_bytes)
        found: dict[bytes, bytes] = {}
        for part in self._on_groups(self._split_bytes(wanted),
                                    lambda cl, ks: cl.mget(ks)).values():
            found.update(part)
        return {k: found[k] for k in wanted if k in found}

    def iterinit(self) -> None:
        """Rewind every shard's key iterator (and this client's shard cursor)."""
        with self._lock:
            self._on_all("iterinit")
            self._cursor = 0

    def iternext(self) -> bytes | None:
        """The next key, shard after shard; None at the end."""
        with self._lock:
            while self._cursor < len(self._clients):
                key = self._clients[self._cursor].iternext()
                if key is not None:
                    return key  # type: ignore[no-any-return]
                self._cursor += 1
            return None

    def iterkeys(self, batch: int = 256) -> Generator[bytes, None, None]:
        """Every key of every shard, shard after shard (see :meth:`Tyrant.iterkeys
        <doqu_tyrant.tyrant.client.Tyrant.iterkeys>`)."""
        for client in self._clients:
            yield from client.iterkeys(batch)

    def fwmkeys(self, prefix: c.Key = b"", max: int | None = None) -> list[bytes]:
        """Keys starting with ``prefix`` on every shard, in byte order, at most ``max``."""
        c.fwmkeys(prefix, max)  # checks the arguments before anything is sent
        keys = sorted(chain.from_iterable(self._on_all("fwmkeys", prefix, max)))
        return keys if max is None or max < 0 else keys[:max]

    def sync(self) -> None:
        """Flush every shard to disk."""
        self._on_all("sync")

    def optimize(self, params: c.Key = b"") -> None:
        """Rebuild every shard's database."""
        c.optimize(params)
        self._on_all("optimize", params)

    def vanish(self) -> None:
        """Remove every record of every shard (and reset the key counter)."""
        self._on_all("vanish")

    def copy(self, path: str) -> None:
        """Hot-copy every shard's database: ``path`` must contain ``{shard}``,
        replaced by the shard's position (0, 1, …), unless there is one shard."""
        paths = _shard_paths(path, len(self._clients))
        self._parallel([partial(cl.copy, p) for cl, p in zip(self._clients, paths)])

    def rnum(self) -> int:
        """Number of records, summed over the shards."""
        return sum(self._on_all("rnum"))

    def size(self) -> int:
        """Size of the databases in bytes, summed over the shards."""
        return sum(self._on_all("size"))

    def stat(self) -> dict[str, dict[str, str]]:
        """Each shard's status report, by shard name."""
        return dict(zip(self.names, self._on_all("stat")))

    def misc(self, name: c.Key, args: Iterable[c.Key] = (), opts: int = 0) -> list[bytes]:
        """A MISC call: ``search``/``metasearch`` scattered and merged; key
        functions routed; ``getlist``/``putlist``/``outlist`` split;
        ``genuid`` on the first shard; ``setindex``/``vanish``/``sync``/
        ``optimize`` on every shard. Others raise ``ValueError``."""
        name_b, args_b, opts = misc_parts(name, args, opts)
        if name_b in SEARCH_MISC:
            return self._drive(search(parse(args_b), self.names, self._split_bytes, opts))
        if name_b in ROUTED_MISC:
            if not args_b:
                raise ValueError(f"misc {name_b.decode()} needs a key")
            return self._clients[self.ring.node(args_b[0])].misc(  # type: ignore[no-any-return]
                name_b, args_b, opts)
        if name_b == b"getlist":
            groups = self._split_bytes(args_b)
            found: dict[bytes, bytes] = {}
            for items in self._on_groups(
                    groups, lambda cl, ks: cl.misc(b"getlist", ks, opts)).values():
                found.update(pairs_arg(items, "getlist reply"))
            return list(chain.from_iterable((k, found[k]) for k in args_b if k in found))
        if name_b == b"outlist":
            self._on_groups(self._split_bytes(args_b),
                            lambda cl, ks: cl.misc(b"outlist", ks, opts))
            return []
        if name_b == b"putlist":
            pairs = self._group(pairs_arg(args_b, "misc putlist"), lambda kv: kv[0])
            self._on_groups(pairs, lambda cl, kvs: cl.misc(
                b"putlist", list(chain.from_iterable(kvs)), opts))
            return []
        if name_b == b"genuid":
            return self._clients[0].misc(name_b, args_b, opts)  # type: ignore[no-any-return]
        if name_b in EVERY_MISC:
            return self._on_all("misc", name_b, args_b, opts)[0]  # type: ignore[no-any-return]
        raise unsupported_misc(name_b)

    def _stream_misc(self, name: bytes, args: list[bytes], opts: int) -> Iterator[list]:
        """A MISC call's result in chunks: an unsorted, unlimited search streams
        from each shard in turn; anything else is merged first."""
        if name in SEARCH_MISC:
            shard_args = stream_args(parse(args))
            if shard_args is not None:
                for client in self._clients:
                    stream = getattr(client, "_stream_misc", None)
                    if stream is None:
                        yield client.misc(name, shard_args, opts)
                    else:
                        yield from stream(name, shard_args, opts)
                return
        yield self.misc(name, args, opts)

    # -- table layer ----------------------------------------------------------

    def table_put(self, pk: c.Key, record: c.Record) -> None:
        """Store a whole record on its shard."""
        self.client_for(pk).table_put(pk, record)

    def table_putkeep(self, pk: c.Key, record: c.Record) -> bool:
        """Store a record only if ``pk`` is absent; False if it exists."""
        return self.client_for(pk).table_putkeep(pk, record)  # type: ignore[no-any-return]

    def table_putcat(self, pk: c.Key, record: c.Record) -> None:
        """Add the columns the record does not have yet."""
        self.client_for(pk).table_putcat(pk, record)

    def table_get(self, pk: c.Key, default: T | None = None, *,
                  raw: bool = False) -> dict[str, str] | T | None:
        """The record ``pk`` from its shard, or ``default``."""
        return self.client_for(pk).table_get(pk, default, raw=raw)  # type: ignore[no-any-return]

    def table_out(self, pk: c.Key) -> bool:
        """Remove the record ``pk``; False if it was missing."""
        return self.client_for(pk).table_out(pk)  # type: ignore[no-any-return]

    def getlist(self, pks: Iterable[c.Key], *, raw: bool = False) -> dict[Any, Any]:
        """The existing records among ``pks`` (on key-value shards: values, like
        :meth:`mget`), asked of all their shards at once."""
        kind = self.kind()
        wanted = keys_arg(pks, "pks", c.pk_bytes if is_table(kind) else c.key_bytes)
        found: dict[Any, Any] = {}
        for part in self._on_groups(self._split_bytes(wanted),
                                    lambda cl, ks: cl.getlist(ks, raw=raw)).values():
            found.update(part)
        return self._key_form(kind, found, wanted)

    def putlist(self, records: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Store many records (on key-value shards: values), each shard's share in
        one request, all at once. Everything is checked before anything is sent."""
        pairs, table = bulk_form(records, self.kind())
        self._on_groups(self._putlist_groups(pairs, table),
                        lambda cl, args: cl.misc(b"putlist", args, 0))

    def outlist(self, pks: Iterable[c.Key]) -> None:
        """Remove many records (or keys), all shards at once (missing ones are ignored)."""
        wanted = keys_arg(pks, "pks", c.pk_bytes if is_table(self.kind()) else c.key_bytes)
        self._on_groups(self._split_bytes(wanted), lambda cl, ks: cl.misc(b"outlist", ks, 0))

    def setindex(self, column: c.Key, kind: int | str, *, keep: bool = False) -> bool:
        """Create, rebuild or remove an index on every shard; with ``keep``,
        False when some shard had it already (see :meth:`Tyrant.setindex
        <doqu_tyrant.tyrant.client.Tyrant.setindex>`)."""
        c.setindex(column, kind, keep=keep)
        return all(self._parallel([partial(cl.setindex, column, kind, keep=keep)
                                   for cl in self._clients]))

    def index_kinds(self, columns: Iterable[c.Key]) -> dict[Any, str | None]:
        """The index of each column (see :meth:`Tyrant.index_kinds
        <doqu_tyrant.tyrant.client.Tyrant.index_kinds>`), every shard asked at once;
        a lexical or decimal index on any shard counts."""
        wanted = list(columns)
        return self._index_kinds(self._parallel([
            partial(cl.index_kinds, wanted) for cl in self._clients
            if hasattr(cl, "index_kinds")]))

    def forget_indexes(self, columns: Iterable[c.Key] | None = None) -> None:
        """Forget what every shard's client knows of the indexes (see :meth:`Tyrant.
        forget_indexes <doqu_tyrant.tyrant.client.Tyrant.forget_indexes>`)."""
        wanted = None if columns is None else list(columns)
        for client in self._clients:
            forget = getattr(client, "forget_indexes", None)
            if forget is not None:
                forget(wanted)

    def genuid(self) -> int:
        """A new unique number from the first shard's counter."""
        return self._clients[0].genuid()  # type: ignore[no-any-return]

    def genuids(self, count: int) -> list[int]:
        """``count`` new unique numbers from the first shard's counter, in one round
        trip."""
        return self._clients[0].genuids(count)  # type: ignore[no-any-return]

    @property
    def query(self) -> Query:
        """A query over every shard; refine with ``filter`` & co."""
        return Query(self)  # type: ignore[arg-type]

    @property
    def table(self) -> Table:
        """The records of all shards as a mutable mapping."""
        return Table(self)  # type: ignore[arg-type]

    # Item access and iteration follow the shards' kind (see .kinds).

    def kind(self) -> str:
        """The kind of database the shards hold (they must agree); each shard
        is asked once (one STAT), then remembered."""
        known = self._kind
        return known if known is not None else self._common_kind(list(self.kinds().values()))

    def kinds(self) -> dict[str, str]:
        """Each shard's database kind, by shard name (asked at once)."""
        return dict(zip(self.names, self._parallel([
            getattr(cl, "kind", lambda: "") for cl in self._clients])))

    def _require_table(self, what: str) -> None:
        require_table(self.kind(), what)

    def __getitem__(self, key: c.Key) -> Any:
        return self.client_for(key)[key]

    def __setitem__(self, key: c.Key, value: Any) -> None:
        check_item(value)
        self.client_for(key)[key] = value

    def __delitem__(self, key: c.Key) -> None:
        del self.client_for(key)[key]

    def __contains__(self, key: object) -> bool:
        return self.vsiz(key) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.rnum()

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[Any]:
        """Every key of every shard: a table's as text (a search on each shard), a
        key-value database's as bytes (FWMKEYS on each shard), shard after shard."""
        if is_table(self.kind()):
            return self.query.iter_keys()
        return chain.from_iterable(iter(client) for client in self._clients)

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


def _shard_paths(path: str, count: int) -> list[str]:
    if not isinstance(path, str):
        raise TypeError(f"path must be text, not {type(path).__name__}")
    if "{shard}" not in path:
        if count == 1:
            return [path]
        raise ValueError(f"copy path {path!r} must contain {{shard}}: the {count} shards "
                         "would otherwise copy over each other")
    return [path.replace("{shard}", str(i)) for i in range(count)]
