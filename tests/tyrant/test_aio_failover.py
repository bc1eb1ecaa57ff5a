"""The asyncio failover group: the same rules as the blocking one (plain asyncio.run)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from doqu_tyrant.tyrant import (
    AsyncFailoverTyrant,
    AsyncTyrant,
    Tyrant,
    TyrantConnectionError,
    TyrantUncertainWriteError,
)
from tests.replicas import Blackhole, free_port
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]


def addr(server: ServerProcess) -> str:
    return f"{server.host}:{server.port}"


def test_urls_and_servers_make_groups() -> None:
    t = AsyncTyrant.from_url("tyrant://127.0.0.1:1,127.0.0.1:2?timeout=2&retry_interval=1")
    assert isinstance(t, AsyncFailoverTyrant) and isinstance(t, AsyncTyrant)
    assert [c.timeout for c in t.clients] == [2.0, 2.0] and t.group.retry_interval == 1.0
    g = AsyncTyrant(servers=[("127.0.0.1", 3), "127.0.0.1:4"], read_from="any")
    assert isinstance(g, AsyncFailoverTyrant) and g.group.read_from == "any"
    with pytest.raises(TypeError, match="not both"):
        AsyncTyrant("a", 1, servers=["b:2"])


def test_reads_writes_queries_and_pipelines_move_on(server_factory: ServerFactory) -> None:
    a, b = server_factory("table"), server_factory("table")
    for server in (a, b):
        with Tyrant(*server.address, timeout=5) as t:
            t.putlist({f"p{i}": {"age": str(i)} for i in range(10)})

    async def main() -> None:
        async with AsyncTyrant(servers=[addr(a), addr(b)], timeout=5) as g:
            assert await g.table_get("p1") == {"age": "1"}
            a.kill()
            assert await g.table_get("p2") == {"age": "2"}  # from B
            assert await g.query.filter(age__gte=5).count() == 5
            assert sorted([k async for k in g.query.iter_keys()])[:2] == ["p0", "p1"]
            assert len([k async for k in g.iterkeys()]) == 10
            await g.table_put("new", {"age": "99"})
            assert await g.pipeline().table_get("new").rnum().execute() == [{"age": "99"}, 11]
            assert (g.host, g.port) == (b.host, b.port)

    asyncio.run(main())
    with Tyrant(*b.address, timeout=5) as t:
        assert t["new"] == {"age": "99"}


def test_the_rules_for_writes(server_factory: ServerFactory) -> None:
    b = server_factory("hash")

    async def main() -> None:
        async with AsyncTyrant(servers=[f"127.0.0.1:{free_port()}", addr(b)], timeout=5) as g:
            await g.putcat("cat", "ab")  # never left: moved to B
        with Blackhole(close_after_read=True) as hole:

            def group() -> AsyncTyrant:  # a fresh one starts on the half-dead server
                return AsyncTyrant(servers=[hole.address, addr(b)], timeout=5)

            async with group() as g:
                with pytest.raises(TyrantUncertainWriteError, match="may or may not"):
                    await g.addint("n", 1)
                assert (g.host, g.port) == (b.host, b.port)
            async with group() as g:
                with pytest.raises(TyrantUncertainWriteError):
                    await g.pipeline().put("x", "1").putcat("cat", "zz").execute()
            async with group() as g:
                await g.put("put", "1")  # idempotent: repeated on B
            async with group() as g:
                await g.pipeline().put("p1", "1").out("nothing").execute()
        with Blackhole() as hole:
            async with AsyncTyrant(servers=[hole.address, addr(b)], timeout=0.5) as g:
                start = time.monotonic()
                assert await g.get("cat") == b"ab"
                assert time.monotonic() - start < 3.0

    asyncio.run(main())
    with Tyrant(*b.address, timeout=5) as t:
        assert t.get("cat") == b"ab" and t.get("n") is None and t.get("x") is None
        assert t.get("put") == b"1" and t.get("p1") == b"1"


def test_unique_ids_and_exhaustion(server_factory: ServerFactory) -> None:
    a, b = server_factory("table"), server_factory("table")

    async def main() -> None:
        async with AsyncTyrant(servers=[addr(a), addr(b)], timeout=5, unique_ids=True,
                               uid_gap=10) as g:
            assert [await g.genuid() for _ in range(2)] == [1, 2]
            a.kill()
            assert await g.genuid() > 2 + 10 - 1
            b.kill()
            with pytest.raises(TyrantConnectionError, match="no server of the group"):
                await g.get("k")

    asyncio.run(main())
