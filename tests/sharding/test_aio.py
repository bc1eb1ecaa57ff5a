"""AsyncShardedTyrant over the three session shards (plain asyncio.run): the
blocking client's answers, from coroutines sent together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from doqu_tyrant.tyrant import AsyncShardedTyrant, ShardedTyrant, TyrantConnectionError

KEYS = [f"k{i}" for i in range(40)]
RECORDS = {k: {"name": f"n{i % 7}", "age": str(i), "even": str(i % 2)} for i, k in enumerate(KEYS)}


def run(shard_urls: list[str], body: Callable[[AsyncShardedTyrant], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with AsyncShardedTyrant(shard_urls, timeout=10) as t:
            await t.vanish()
            try:
                return await body(t)
            finally:
                await t.vanish()

    return asyncio.run(main())


def test_records_are_where_the_blocking_client_puts_them(shard_urls: list[str]) -> None:
    sync = ShardedTyrant(shard_urls, timeout=10)

    async def body(t: AsyncShardedTyrant) -> None:
        await t.putlist(RECORDS)
        assert await t.rnum() == len(KEYS) == sync.rnum()
        for key in KEYS:
            assert t.server_for(key) == sync.server_for(key)
            assert sync.client_for(key).table_get(key) == RECORDS[key]
        assert await t.table_get(KEYS[3]) == RECORDS[KEYS[3]]
        assert list(await t.getlist(["none", *KEYS[::-1]])) == KEYS[::-1]
        await t.table_put("x", {"a": "1"})
        assert await t.table_putkeep("x", {"a": "2"}) is False
        assert await t.contains("x") and not await t.contains("y")
        await t.outlist(KEYS[:10])
        assert await t.rnum() == 31
        assert sorted(await t.fwmkeys("k1")) == sorted(
            k.encode() for k in KEYS[10:] if k.startswith("k1"))
        assert len([k async for k in t.iterkeys()]) == 31
        await t.iterinit()
        seen = []
        while (key := await t.iternext()) is not None:
            seen.append(key)
        assert len(seen) == 31
        stats = await t.stat()
        assert list(stats) == list(t.names)
        assert await t.setindex("age", "decimal") is True
        assert await t.setindex("age", "void") is True

    try:
        run(shard_urls, body)
    finally:
        sync.close()


def test_queries_are_merged_as_one_server_answers(shard_urls: list[str]) -> None:
    async def body(t: AsyncShardedTyrant) -> None:
        await t.putlist(RECORDS)
        q = t.query.filter(age__gte=5).order_by("-age", numeric=True)
        assert await q.keys() == [f"k{i}" for i in range(39, 4, -1)]
        assert await q[3:6].keys() == ["k36", "k35", "k34"]
        assert await q.count() == 35
        assert [pk async for pk, _ in q[:3]] == ["k39", "k38", "k37"]
        assert await q.columns("name").values() == [{"name": f"n{i % 7}"}
                                                   for i in range(39, 4, -1)]
        union = t.query.filter(even="1") | t.query.filter(name="n0")
        expected = {k for k, r in RECORDS.items() if r["even"] == "1" or r["name"] == "n0"}
        assert set(await union.keys()) == expected
        assert await union.count() == len(expected)
        limited = t.query.none() | t.query.filter(even="0").order_by("age", numeric=True)
        assert await limited[:4].keys() == ["k0", "k2", "k4", "k6"]
        assert await t.query.filter(even="1").order_by("age", numeric=True)[:5].delete() == 5
        assert await t.rnum() == 35
        assert "k1" not in [k async for k in t.query.iter_keys()]
        hint = await t.query.filter(age="3").hint()
        assert all(f"[{name}]" in hint for name in t.names)

    run(shard_urls, body)


def test_kv_pipeline_and_counter(shard_urls: list[str]) -> None:
    async def body(t: AsyncShardedTyrant) -> None:
        pl = t.pipeline()
        for key in KEYS:
            pl.table_put(key, RECORDS[key])
        pl.table_get(KEYS[0]).table_out(KEYS[1])
        results = await pl.execute()
        assert results[-2:] == [RECORDS[KEYS[0]], True]
        first = await t.genuid()
        assert await t.genuid() == first + 1
        assert await t.shards[0].genuid() == first + 2

    run(shard_urls, body)


def test_pipelined_table_batches(shard_urls: list[str]) -> None:
    async def body(t: AsyncShardedTyrant) -> None:
        assert await t.pipeline().execute() == []
        pl = t.pipeline()
        pl.table_putkeep_many(RECORDS).table_putkeep_many({KEYS[0]: {"name": "x"}})
        pl.table_put_many([(KEYS[1], {"name": "y"})])
        fresh, again, put = await pl.execute()
        assert fresh == [True] * len(KEYS) and again == [False] and put == [None]
        assert await t.table_get(KEYS[0]) == RECORDS[KEYS[0]]
        assert await t.table_get(KEYS[1]) == {"name": "y"}
        assert await t.rnum() == len(KEYS)

    run(shard_urls, body)


def test_a_down_shard_fails_the_commands_that_need_it() -> None:
    async def main() -> None:
        t = AsyncShardedTyrant(["tyrant://127.0.0.1:1"], timeout=2, connect_timeout=1)
        with pytest.raises(TyrantConnectionError):
            await t.rnum()
        await t.aclose()

    asyncio.run(main())
