"""Pipelines over shards: key commands queued, each shard's share sent in one
write, all shards at once; results in the order queued.

Only commands about one key can be queued (``put``, ``get``, ``addint``,
``table_put``, ``t[pk] = ...``, ``misc`` of ``put``/``get``/``out``/…),
``genuid`` (the first shard's counter), and the table batches
``table_put_many``/``table_putkeep_many`` (each shard's share one batch, the
results in the order of the records); the others concern every shard and are
not pipelined (call them on the client).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from . import commands as c
from .errors import TyrantError
from .shards import ROUTED_MISC

if TYPE_CHECKING:
    from .aio_sharding import AsyncShardedTyrant
    from .sharding import ShardedTyrant

__all__ = ["ShardedPipeline", "AsyncShardedPipeline", "KEY_COMMANDS"]

#: Commands a sharded pipeline accepts, and the position of their key argument.
KEY_COMMANDS: dict[str, int] = {
    "put": 0, "putkeep": 0, "putcat": 0, "putshl": 0, "putnr": 0, "out": 0, "get": 0,
    "vsiz": 0, "addint": 0, "adddouble": 0, "ext": 1, "table_put": 0, "table_putkeep": 0,
    "table_putcat": 0, "table_out": 0, "table_get": 0, "misc": -1, "genuid": -2,
    "concat": 0, "get_size": 0, "call_func": 1,
}

#: Table batches a sharded pipeline splits by shard, and the command of one record.
BATCHES: dict[str, str] = {"table_put_many": "table_put", "table_putkeep_many": "table_putkeep"}
_BATCH = -1  # in the order of results: a batch, by its number in _Queue._batches


class _Queue:
    """Queued commands: for each, its shard and its position there."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._order: list[tuple[int, int]] = []
        self._pipes: dict[int, Any] = {}  # shard index -> native pipeline or list of calls
        # per batch, per record: its shard, the position of its share there, and
        # its place in the share (a shard without pipelines: None, one call each)
        self._batches: list[list[tuple[int, int, int | None]]] = []

    def __len__(self) -> int:
        return len(self._order)

    def __bool__(self) -> bool:
        return True

    def reset(self) -> None:
        """Forget the queued commands."""
        self._order = []
        self._pipes = {}
        self._batches = []

    def _pipe(self, index: int) -> Any:
        """The queue of shard ``index``: its native pipeline, or a list of calls."""
        pipe = self._pipes.get(index)
        if pipe is None:
            maker = getattr(self._client._clients[index], "pipeline", None)
            pipe = self._pipes[index] = maker() if maker is not None else []
        return pipe

    def _queue(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        at = KEY_COMMANDS[name]
        index: int | None = None
        if at == -2:  # genuid: the first shard's counter
            index, key = 0, b""
        elif at < 0:  # misc: routed by its first argument
            fname = c.to_bytes(args[0] if args else kwargs.get("name", b""), "function name")
            if fname not in ROUTED_MISC:
                known = ", ".join(sorted(n.decode() for n in ROUTED_MISC))
                raise TypeError(f"misc {fname!r} cannot be pipelined over shards; only the "
                                f"key functions {known}")
            margs = list(args[1] if len(args) > 1 else kwargs.get("args", ()))
            if not margs:
                raise ValueError(f"misc {fname.decode()} needs a key")
            key = margs[0]
            args = (fname, margs, *args[2:])
        else:
            key = args[at] if len(args) > at else kwargs.get("key", kwargs.get("pk", b""))
        if index is None:
            index = self._client._index(key)
        pipe = self._pipe(index)
        if isinstance(pipe, list):
            builder = c.BUILDERS[c.ALIASES.get(name, name)]
            builder(*args, **kwargs)  # checks the arguments now
            pipe.append((name, args, kwargs))
            position = len(pipe) - 1
        else:
            getattr(pipe, name)(*args, **kwargs)
            position = len(pipe) - 1
        self._order.append((index, position))
        return self

    def __setitem__(self, pk: c.Key, record: c.Record) -> None:
        self._queue("table_put", (pk, record), {})

    def _queue_batch(self, name: str, records: Any) -> Any:
        """Queue a table batch split by shard: every share is built (and so
        checked) before any is queued, so a bad record queues nothing."""
        pairs = list(records.items() if isinstance(records, Mapping)
                     else c.pairs_arg(records, "records"))
        index_of = self._client._index
        shares: dict[int, list[tuple[Any, Any]]] = {}
        spots: list[tuple[int, int]] = []
        for pair in pairs:
            index = index_of(pair[0])
            share = shares.setdefault(index, [])
            spots.append((index, len(share)))
            share.append(pair)
        built = {index: c.BUILDERS[name](share) for index, share in shares.items()}
        starts: dict[int, tuple[int, bool]] = {}
        for index, share in shares.items():
            pipe = self._pipe(index)
            if isinstance(pipe, list):
                starts[index] = (len(pipe), True)
                pipe.extend((BATCHES[name], pair, {}) for pair in share)
            else:
                pipe._cmds.append(built[index])
                starts[index] = (len(pipe) - 1, False)
        batch: list[tuple[int, int, int | None]] = []
        for index, j in spots:
            start, one_by_one = starts[index]
            batch.append((index, start + j, None) if one_by_one else (index, start, j))
        self._order.append((_BATCH, len(self._batches)))
        self._batches.append(batch)
        return self

    def table_put_many(self, records: Any, scan: Any = None) -> Any:
        """Queue :meth:`~.client.Tyrant.table_put_many`, each shard's share as one
        batch; its result is one per record, in order. (A ``scan`` of all the
        records is not of any share: each share is checked on its own.)"""
        return self._queue_batch("table_put_many", records)

    def table_putkeep_many(self, records: Any, scan: Any = None) -> Any:
        """Queue :meth:`~.client.Tyrant.table_putkeep_many` (see :meth:`table_put_many`)."""
        return self._queue_batch("table_putkeep_many", records)

    def _results(self, per_shard: dict[int, list[Any]], raise_on_error: bool) -> list[Any]:
        results = [per_shard[i][j] if i != _BATCH else self._batch_results(per_shard, j)
                   for i, j in self._order]
        self.reset()
        if raise_on_error:
            for result in results:
                for one in result if isinstance(result, _BatchResult) else (result,):
                    if isinstance(one, TyrantError):
                        raise one
        return [list(r) if isinstance(r, _BatchResult) else r for r in results]

    def _batch_results(self, per_shard: dict[int, list[Any]], number: int) -> _BatchResult:
        out = _BatchResult()
        for index, position, j in self._batches[number]:
            result = per_shard[index][position]
            out.append(result if j is None or isinstance(result, BaseException) else result[j])
        return out


class _BatchResult(list):  # type: ignore[type-arg]
    """The results of one queued batch (told apart from a command's own list)."""


def _method(name: str) -> Callable[..., Any]:
    def method(self: _Queue, *args: Any, **kwargs: Any) -> Any:
        return self._queue(name, args, kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Queue ``{name}`` on the shard of its key."
    return method


for _name in KEY_COMMANDS:
    setattr(_Queue, _name, _method(_name))
del _name


def _sequential(shard: Any, calls: list[tuple[str, tuple, dict]]) -> list[Any]:
    out: list[Any] = []
    for name, args, kwargs in calls:
        try:
            out.append(getattr(shard, name)(*args, **kwargs))
        except TyrantError as exc:
            out.append(exc)
    return out


class ShardedPipeline(_Queue):
    """Key commands queued for :class:`~.sharding.ShardedTyrant`;
    :meth:`execute` sends every shard's share at once."""

    _client: ShardedTyrant

    def __enter__(self) -> ShardedPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reset()

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the queued commands; their results (or exceptions) in order."""
        clients = self._client._clients

        def run(index: int, pipe: Any) -> list[Any]:
            if isinstance(pipe, list):
                return _sequential(clients[index], pipe)
            return pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

        indexes = list(self._pipes)
        if not indexes:  # nothing queued (or only empty batches)
            return self._results({}, raise_on_error)
        results = self._client._parallel([partial(run, i, self._pipes[i]) for i in indexes])
        return self._results(dict(zip(indexes, results)), raise_on_error)


class AsyncShardedPipeline(_Queue):
    """Key commands queued for :class:`~.aio_sharding.AsyncShardedTyrant`;
    ``await execute()`` sends every shard's share at once."""

    _client: AsyncShardedTyrant

    async def __aenter__(self) -> AsyncShardedPipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.reset()

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the queued commands; their results (or exceptions) in order."""
        clients = self._client._clients

        async def run(index: int, pipe: Any) -> list[Any]:
            if isinstance(pipe, list):
                out: list[Any] = []
                for name, args, kwargs in pipe:
                    try:
                        out.append(await getattr(clients[index], name)(*args, **kwargs))
                    except TyrantError as exc:
                        out.append(exc)
                return out
            return await pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

        indexes = list(self._pipes)
        if not indexes:  # nothing queued (or only empty batches)
            return self._results({}, raise_on_error)
        results = await self._client._parallel([run(i, self._pipes[i]) for i in indexes])
        return self._results(dict(zip(indexes, results)), raise_on_error)
