"""The asyncio failover group: :class:`AsyncFailoverTyrant`.

The same rules as :mod:`.failover` (and the same :class:`~.failover.ServerGroup`
policy) over :class:`~.aio.AsyncTyrant` clients:
``AsyncTyrant.from_url("tyrant://a:1978,b:1978")`` or
``AsyncTyrant(servers=[...])``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from . import commands as c
from .aio import AsyncPipeline, AsyncTyrant
from .errors import TyrantConnectionError
from .failover import (
    _UID_CHUNK,
    DEFAULT_MAX_RETRY_INTERVAL,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_UID_GAP,
    ONCE,
    READ,
    RETRY,
    ServerGroup,
    UidGuard,
    command_name,
    is_failure,
    retry_kind,
    servers_list,
    split_url,
    uncertain,
)

__all__ = ["AsyncFailoverTyrant", "AsyncFailoverPipeline"]

R = TypeVar("R")


class AsyncFailoverTyrant(AsyncTyrant):
    """A failover group of :class:`~.aio.AsyncTyrant` clients with their API
    (options as for :class:`~.failover.FailoverTyrant`)."""

    def __init__(self, host: str | None = None, port: int | None = None,
                 timeout: float | None = None, *, servers: Iterable[Any],
                 connect_timeout: float | None = None, pool_size: int = 8,
                 pool_timeout: float | None = 20.0, retry_reads: bool = True,
                 retry_interval: float = DEFAULT_RETRY_INTERVAL,
                 max_retry_interval: float = DEFAULT_MAX_RETRY_INTERVAL,
                 read_from: str = "active", unique_ids: bool = False,
                 uid_gap: int = DEFAULT_UID_GAP) -> None:
        if host is not None or port is not None:
            raise TypeError("give either host and port or servers=[...], not both")
        addresses = servers_list(servers)
        self.timeout = timeout
        self.retry_reads = retry_reads
        self.clients = [
            AsyncTyrant(h, prt, timeout, connect_timeout=connect_timeout, pool_size=pool_size,
                        pool_timeout=pool_timeout, retry_reads=retry_reads)
            for h, prt in addresses
        ]
        self.group: ServerGroup[AsyncTyrant] = ServerGroup(
            self.clients, addresses, retry_interval=retry_interval,
            max_retry_interval=max_retry_interval, read_from=read_from)
        self.unique_ids = bool(unique_ids)
        self._uids = UidGuard(uid_gap)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncFailoverTyrant:
        servers, parsed, group = split_url(url)
        parsed.pop("health_check_interval", None)
        parsed.update(group)
        parsed.update(options)
        return cls(servers=servers, **parsed)

    @property  # type: ignore[override]
    def host(self) -> str:
        return self.clients[self.group.active].host

    @host.setter
    def host(self, value: str) -> None:
        raise AttributeError("a failover group's host is its active server's")

    @property  # type: ignore[override]
    def port(self) -> int:
        return self.clients[self.group.active].port

    @port.setter
    def port(self, value: int) -> None:
        raise AttributeError("a failover group's port is its active server's")

    def __repr__(self) -> str:
        return (f"<AsyncFailoverTyrant {', '.join(self.group.addresses)} "
                f"active={self.host}:{self.port}>")

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    close = aclose

    # -- the one request path ---------------------------------------------------------

    async def _call(self, kind: int, what: str,
                    fn: Callable[[AsyncTyrant], Awaitable[R]]) -> tuple[R, int]:
        group = self.group
        errors: list[tuple[int, BaseException]] = []
        for i in group.plan(kind):
            try:
                result = await fn(self.clients[i])
            except BaseException as exc:
                if not is_failure(exc):
                    raise
                group.failed(i, exc)
                if kind == ONCE and getattr(exc, "request_sent", True):
                    raise uncertain(what, group.addresses[i], exc) from exc
                errors.append((i, exc))
                continue
            group.succeeded(i, kind)
            return result, i
        raise group.exhausted(what, errors) from errors[-1][1]

    async def _run(self, cmd: c.Cmd) -> Any:
        return (await self._call(retry_kind(cmd), command_name(cmd),
                                 lambda t: t._run(cmd)))[0]

    def _stream(self, frame: bytes, command: int, label: str) -> AsyncIterator[list]:
        return self._each_item(lambda t: t._stream(frame, command, label), label)

    @property
    def _pool(self) -> Any:  # type: ignore[override]
        raise AttributeError("a failover group has no pool of its own: requests go through "
                             "its _run/_stream (one of its clients')")

    def iterkeys(self, batch: int = 256) -> AsyncGenerator[bytes, None]:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        return self._each_item(lambda t: t.iterkeys(batch), "iterkeys")

    async def _each_item(self, make: Callable[[AsyncTyrant], AsyncIterator[Any]],
                         what: str) -> AsyncGenerator[Any, None]:
        group = self.group
        errors: list[tuple[int, BaseException]] = []
        for i in group.plan(READ):
            started = False
            items = make(self.clients[i])
            try:
                async for item in items:
                    started = True
                    yield item
            except BaseException as exc:
                close = getattr(items, "aclose", None)
                if close is not None:
                    await close()
                if not is_failure(exc):
                    raise
                group.failed(i, exc)
                if started:
                    raise
                errors.append((i, exc))
                continue
            group.succeeded(i, READ)
            return
        raise group.exhausted(what, errors) from errors[-1][1]

    def pipeline(self) -> AsyncFailoverPipeline:
        return AsyncFailoverPipeline(self)

    # -- generated numbers --------------------------------------------------------------

    async def genuid(self) -> int:
        if not self.unique_ids:
            return await self._run(c.genuid())  # type: ignore[no-any-return]
        uids = self._uids
        for _ in range(len(self.clients) + 1):
            n, member = await self._call(RETRY, "misc genuid", lambda t: t._run(c.genuid()))
            need = uids.needed(member, n)
            if need:
                try:
                    n = await self._skip_ids(self.clients[member], need)
                except BaseException as exc:
                    if not is_failure(exc):
                        raise
                    self.group.failed(member, exc)
                    continue
            uids.taken(n)
            return n
        raise TyrantConnectionError("genuid: the servers kept failing while numbers were skipped")

    async def genuids(self, count: int) -> list[int]:
        """See :meth:`FailoverTyrant.genuids <.failover.FailoverTyrant.genuids>`."""
        if not self.unique_ids or not c.genuids(count).size:  # type: ignore[attr-defined]
            return await super().genuids(count)
        uids = self._uids
        for _ in range(len(self.clients) + 1):
            numbers, member = await self._call(RETRY, "misc genuid",
                                               lambda t: t.genuids(count))
            need = uids.needed(member, numbers[0])
            if need:
                client = self.clients[member]
                try:
                    if need > count:
                        await self._skip_ids(client, need - count)
                    numbers = await client.genuids(count)
                except BaseException as exc:
                    if not is_failure(exc):
                        raise
                    self.group.failed(member, exc)
                    continue
            uids.taken(numbers[-1])
            return numbers
        raise TyrantConnectionError("genuid: the servers kept failing while numbers were skipped")

    @staticmethod
    async def _skip_ids(client: AsyncTyrant, count: int) -> int:
        last = 0
        while count > 0:
            step = min(count, _UID_CHUNK)
            last = (await client.genuids(step))[-1]
            count -= step
        return last

    async def vanish(self) -> None:
        await self._run(c.vanish())
        self._uids.reset()


class AsyncFailoverPipeline(AsyncPipeline):
    """Queued commands sent to one server of the group (as
    :class:`~.failover.FailoverPipeline`)."""

    def __init__(self, client: AsyncFailoverTyrant) -> None:
        super().__init__(client)
        self._group = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        cmds = self._take()
        if not cmds:
            return []
        kind = max(retry_kind(cmd) for cmd in cmds)

        async def run(client: AsyncTyrant) -> list[Any]:
            pipe = client.pipeline()
            pipe._cmds = list(cmds)
            return await pipe.execute(raise_on_error)

        return (await self._group._call(kind, f"a pipeline of {len(cmds)} commands", run))[0]
