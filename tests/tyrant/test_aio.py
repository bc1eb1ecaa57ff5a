"""AsyncTyrant against the bundled server (plain asyncio.run, no plugin)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import pytest

from doqu_tyrant.tyrant import (
    AsyncPipeline,
    AsyncTyrant,
    RetryingClient,
    TyrantCommandError,
    TyrantConnectionError,
    TyrantTimeout,
)
from doqu_tyrant.tyrant import protocol as p
from tests.tyrant.conftest import PEOPLE


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_kv_commands(hash_url: str) -> None:
    async def main() -> None:
        async with AsyncTyrant.from_url(hash_url, timeout=10) as t:
            await t.vanish()
            await t.put("k", "v")
            assert await t.get("k") == b"v"
            assert await t.get("nope") is None
            assert await t.putkeep("k", "x") is False
            await t.putcat("k", "w")
            await t.putshl("k", "xyz", 4)
            assert await t.get("k") == b"wxyz"
            await t.putnr("nr", "1")
            assert await t.mget(["k", "nr", "zz"]) == {b"k": b"wxyz", b"nr": b"1"}
            assert await t.vsiz("k") == 4
            assert sorted(await t.fwmkeys("")) == [b"k", b"nr"]
            assert await t.addint("n", 3) == 3
            assert await t.adddouble("d", 0.5) == 0.5
            assert sorted([k async for k in t.iterkeys(batch=2)]) == [b"d", b"k", b"n", b"nr"]
            await t.iterinit()
            assert await t.iternext() is not None
            assert await t.rnum() == 4 and await t.size() > 0
            assert (await t.stat())["type"] == "hash"
            await t.sync()
            await t.optimize()
            assert await t.misc("get", ["k"], p.MISC_NOULOG) == [b"wxyz"]
            with pytest.raises(TyrantCommandError):
                await t.ext("nofunc")
            with pytest.raises(TyrantCommandError):
                await t.addint("nr", 1)
            assert await t.out("k") and not await t.out("k")
            assert await t.contains("nr") and not await t.contains("k")
            await t.setmst("", 0)
            with pytest.raises(TyrantCommandError):
                await t.copy("")
            with pytest.raises(TyrantCommandError):
                await t.restore("/nonexistent", 0)
            await t.vanish()

    run(main())


def test_table_and_query(tyrant_url: str) -> None:
    async def main() -> None:
        t = AsyncTyrant.from_url(tyrant_url, timeout=10)
        await t.vanish()
        await t.putlist(PEOPLE)
        assert await t.table_get("u1") == PEOPLE["u1"]
        assert await t.table_get("zz") is None
        assert await t.table_putkeep("u1", {}) is False
        await t.table_put("n", {"a": "1"})
        await t.table_putcat("n", {"a": "2", "b": "3"})
        assert await t.table_get("n", raw=True) == {b"a": b"1", b"b": b"3"}
        assert await t.table_out("n") is True
        assert await t.getlist(["u1", "u2"]) == {"u1": PEOPLE["u1"], "u2": PEOPLE["u2"]}
        assert await t.multi_get(["u3"]) == {"u3": PEOPLE["u3"]}
        await t.outlist(["u6"])
        assert isinstance(await t.genuid(), int)
        assert await t.setindex("name", "lexical")
        assert await t.setindex("name", "void")
        q = t.query.filter(city="tokyo")
        assert sorted(await q.keys()) == ["u1", "u3"]
        assert await q.count() == 2
        assert await q.exists()
        assert sorted([pk async for pk, _ in q]) == ["u1", "u3"]
        assert (await q.order_by("name").items())[0] == ("u1", PEOPLE["u1"])
        assert await q.order_by("name").columns("name").values() == [{"name": "alice"},
                                                                     {"name": "carol"}]
        assert (await q.order_by("name")[1]) == ("u3", PEOPLE["u3"])
        with pytest.raises(IndexError):
            await q[5]
        assert (await q.order_by("-name").first())[0] == "u3"  # type: ignore[index]
        assert "result set size" in await q.hint()
        both = q | t.query.filter(age=30)
        assert sorted(await both.keys()) == ["u1", "u3", "u5"]
        assert await both.count() == 3
        assert [r["name"] for r in await both.order_by("name").values()] == ["Eve", "alice",
                                                                            "carol"]
        assert await (q - t.query.filter(age=30)).delete() == 1
        assert await t.query.filter(name="bob").delete(returning=True) == [("u2", PEOPLE["u2"])]
        assert await t.query.filter(name="dave").delete(count=False) is None
        assert sorted(await t.query.keys()) == ["u1", "u5"]
        await t.vanish()
        await t.aclose()

    run(main())


def test_pipeline_and_concurrency(tyrant_url: str) -> None:
    async def main() -> None:
        t = AsyncTyrant.from_url(tyrant_url, timeout=20, pool_size=4)
        await t.vanish()
        pl = t.pipeline()
        assert isinstance(pl, AsyncPipeline)
        pl.put("a", "1").get("a").putnr("b", "2").get("b").rnum().misc("nosuch")
        results = await pl.execute(raise_on_error=False)
        assert results[:5] == [None, b"", None, b"", 2]  # table db: a bare value has no columns
        assert isinstance(results[5], TyrantCommandError)
        async with t.pipeline() as pl2:
            pl2.addint("x", 1)
            with pytest.raises(TyrantCommandError):
                pl2.misc("nosuch")
                await pl2.execute()
        assert await pl2.execute() == []

        async def task(n: int) -> None:
            for i in range(40):
                pk = f"a{n}-{i}"
                record = {"n": str(n), "i": str(i), "pad": "p" * (n * 13 % 300)}
                await t.table_put(pk, record)
                assert await t.table_get(pk) == record
                if i % 8 == 0:
                    got = await t.pipeline().table_get(pk).vsiz(pk).execute()
                    assert got[0] == record and got[1] > 0

        await asyncio.gather(*(task(n) for n in range(64)))
        assert await t.rnum() == 64 * 40 + 3  # + a, b and x
        assert len(t._pool._conns) <= 4
        values = await asyncio.gather(*(t.table_get(f"a{n}-5") for n in range(64)))
        assert [v["n"] for v in values] == [str(n) for n in range(64)]  # type: ignore[index]
        await t.vanish()
        await t.aclose()

    run(main())


def test_streaming_and_cancellation(tyrant_url: str) -> None:
    async def main() -> None:
        t = AsyncTyrant.from_url(tyrant_url, timeout=20, pool_size=2)
        await t.vanish()
        pl = t.pipeline()
        for i in range(20000):
            pl.table_put(f"k{i:05d}", {"n": str(i), "pad": "x" * 200})
        await pl.execute()
        n = 0
        async for pk, record in t.query.order_by(""):
            assert pk == f"k{n:05d}" and record["n"] == str(n)
            n += 1
        assert n == 20000
        it = t.query.iter_items()
        await it.__anext__()
        await it.aclose()  # abandoned: that connection is discarded
        assert await t.query.count() == 20000
        # a cancelled request discards its connection (its reply is still on
        # the way); CancelledError reaches the caller as itself
        one = AsyncTyrant.from_url(tyrant_url, timeout=20, pool_size=1)
        await one.rnum()
        conn = one._pool._conns[0]
        task = asyncio.ensure_future(one.fwmkeys(""))
        await asyncio.sleep(0)
        assert conn.busy
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert conn.closed
        assert await one.rnum() == 20000  # on a new connection
        assert one._pool._conns != [conn] and len(one._pool._conns) == 1
        await one.aclose()
        await t.vanish()
        await t.aclose()

    run(main())


def test_client_survives_several_event_loops(tyrant_url: str) -> None:
    t = AsyncTyrant.from_url(tyrant_url, timeout=10)
    run(t.put("loop", "1"))
    run(t.put("loop", "2"))  # a new loop: connections of the old one are dropped
    assert run(t.get("loop")) == b""  # table db
    run(t.out("loop"))


def _silent_listener(replies: dict[int, bytes]) -> tuple[socket.socket, list[int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    seen: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            index = len(seen)
            seen.append(index)
            threading.Thread(target=handle, args=(conn, index), daemon=True).start()

    def handle(conn: socket.socket, index: int) -> None:
        with conn:
            try:
                conn.recv(65536)
                if index in replies:
                    conn.sendall(replies[index])
                time.sleep(2)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return sock, seen


def test_timeout_discards_connection() -> None:
    sock, seen = _silent_listener({1: p.reply_u64(7)})
    port = sock.getsockname()[1]

    async def main() -> None:
        t = AsyncTyrant("127.0.0.1", port, timeout=0.3)
        with pytest.raises(TyrantTimeout):
            await t.rnum()
        assert await t.rnum() == 7  # on a new connection
        await t.aclose()

    try:
        run(main())
        assert len(seen) == 2
    finally:
        sock.close()


def test_dropped_connection_and_restart(server_factory: Callable) -> None:
    srv = server_factory("hash")

    async def main() -> None:
        t = AsyncTyrant.from_url(srv.url, timeout=10)
        await t.put("k", "v")
        srv.restart()
        await asyncio.sleep(0.05)
        assert await t.get("k") == b"v"  # reconnects by itself
        srv.kill()
        with pytest.raises(TyrantConnectionError):
            await t.get("k")
        srv.start()
        assert await t.get("k") == b"v"
        wrapped = RetryingClient(t, attempts=2)
        assert await wrapped.get("k") == b"v"
        await t.aclose()

    run(main())
