"""Item access, iteration and bulk calls follow the kind of database the server
holds: records on a table, values on the key-value kinds (hash, B+ tree,
fixed-length, on-memory hash and tree); what does not fit is refused before
anything is sent, and the kind is learned with one STAT per client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, TyrantKindError
from doqu_tyrant.tyrant.kinds import describe
from tests.servers import KINDS, ServerProcess, db_path

KV_KINDS = {"hash": "hash", "btree": "B+ tree", "fixed": "fixed-length",
            "memhash": "on-memory hash", "memtree": "on-memory tree"}


@pytest.fixture(scope="module", params=list(KV_KINDS))
def kv_server(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(kind, url): a bundled server of each key-value kind ($TYRANT_HASH_URL
    for the hash kind when it is set)."""
    name = request.param
    assert name in KINDS
    if name == "hash" and os.environ.get("TYRANT_HASH_URL"):
        yield name, os.environ["TYRANT_HASH_URL"]
        return
    server = ServerProcess(db_path(name, tmp_path_factory.mktemp(name), "kv"))
    try:
        yield name, server.url
    finally:
        server.close()


@pytest.fixture
def kv(kv_server: tuple[str, str]) -> Iterator[Tyrant]:
    name, url = kv_server
    client = Tyrant.from_url(url, timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()


def _keys(t: Tyrant) -> list[str]:
    # fixed-length databases take decimal IDs only
    return ["1", "2", "10"] if t.kind() == "fixed-length" else ["a", "b", "c\0d"]


def _counter(t: Tyrant, name: str) -> int:
    return int(t.stat()[f"cnt_{name}"])


def test_kind_is_stat_type(kv: Tyrant, kv_server: tuple[str, str]) -> None:
    assert kv.kind() == KV_KINDS[kv_server[0]]
    assert describe(kv.kind()).startswith("an " if kv.kind().startswith("on") else "a ")


def test_item_access_stores_values(kv: Tyrant) -> None:
    one, two, _ = _keys(kv)
    kv[one] = b"\0\xffbytes"
    kv[two] = "text ✓"
    assert kv[one] == b"\0\xffbytes" and kv[two] == "text ✓".encode()
    assert one in kv and len(kv) == 2
    del kv[one]
    assert one not in kv and kv.get(one) is None
    with pytest.raises(KeyError):
        kv[one]
    with pytest.raises(KeyError):
        del kv[one]


def test_a_record_is_refused_not_stored(kv: Tyrant) -> None:
    one = _keys(kv)[0]
    before = _counter(kv, "put") + _counter(kv, "misc")
    with pytest.raises(TyrantKindError) as info:
        kv[one] = {"a": "1"}
    assert info.value.kind == kv.kind() and describe(kv.kind()) in str(info.value)
    with pytest.raises(TyrantKindError):
        kv.putlist({one: {"a": "1"}})
    with pytest.raises(TypeError):
        kv[one] = 5  # type: ignore[assignment]
    assert _counter(kv, "put") + _counter(kv, "misc") == before  # nothing was sent
    assert kv.rnum() == 0


def test_iteration_lists_every_key_once(kv: Tyrant) -> None:
    keys = _keys(kv)
    for i, key in enumerate(keys):
        kv.put(key, str(i))
    if kv.kind() == "B+ tree":
        kv.misc("putdup", [keys[0], "again"])  # a duplicate is still one key
    iterinits = _counter(kv, "iterinit")
    assert sorted(kv) == sorted(key.encode() for key in keys)
    assert sorted(iter(kv)) == sorted(list(kv))
    assert _counter(kv, "iterinit") == iterinits  # not the server's shared iterator


def test_bulk_calls_take_values(kv: Tyrant) -> None:
    one, two, three = _keys(kv)
    assert kv.putlist({one: b"1", two: "2"}) is None
    kv.multi_set([(three, b"3")])  # pyrant's name, pairs accepted too
    assert kv.getlist([one, two, three, "99"]) == {one.encode(): b"1", two.encode(): b"2",
                                                 three.encode(): b"3"}
    assert kv.multi_get([one]) == {one.encode(): b"1"}
    kv.outlist([one, "99"])
    kv.multi_del([two])
    assert kv.mget([one, two, three]) == {three.encode(): b"3"}
    kv.mput({one: b"x"})
    kv.mout([three])
    assert kv.mget([one, three]) == {one.encode(): b"x"}


def test_table_layer_is_refused_with_the_reason(kv: Tyrant) -> None:
    with pytest.raises(TyrantKindError, match="t.table needs a table database"):
        list(kv.table)
    fresh = Tyrant(kv.host, kv.port, timeout=10)  # has not asked for the kind yet
    try:
        with pytest.raises(TyrantKindError, match="a query needs a table database"):
            fresh.query.filter(a="1").keys()
        with pytest.raises(TyrantKindError, match="a query needs a table database"):
            list(fresh.query)
    finally:
        fresh.close()


def test_kind_is_learned_once_per_client(kv: Tyrant) -> None:
    probe = Tyrant(kv.host, kv.port, timeout=10)
    one = _keys(kv)[0]
    try:
        base = _counter(probe, "stat")
        base = _counter(probe, "stat") - base  # what probing itself adds
        before = _counter(probe, "stat")
        fresh = Tyrant(kv.host, kv.port, timeout=10)
        fresh[one] = b"v"
        assert fresh[one] == b"v"
        list(fresh)
        fresh.putlist({one: b"w"})
        fresh.getlist([one])
        del fresh[one]
        fresh.close()
        assert _counter(probe, "stat") - before - base == 1
    finally:
        probe.close()


def test_table_database_keeps_the_table_layer(t: Tyrant) -> None:
    t["u1"] = {"name": "alice"}
    assert t["u1"] == {"name": "alice"} and list(t) == ["u1"]
    t.putlist({"u2": {"name": "bob"}})
    assert t.getlist(["u1", "u2"]) == {"u1": {"name": "alice"}, "u2": {"name": "bob"}}
    with pytest.raises(TyrantKindError, match="mappings of column names"):
        t["u3"] = "a value"
    with pytest.raises(TyrantKindError, match="mappings of column names"):
        t.putlist({"u3": b"a value"})
    assert t.kind() == "table" and len(t) == 2


def test_async_client_follows_the_kind(kv_server: tuple[str, str]) -> None:
    url = kv_server[1]

    async def main() -> None:
        async with AsyncTyrant.from_url(url, timeout=10) as t:
            await t.vanish()
            kind = await t.kind()
            assert kind == KV_KINDS[kv_server[0]]
            keys = ["1", "2"] if kind == "fixed-length" else ["a", "b"]
            await t.putlist({keys[0]: b"1", keys[1]: "2"})
            assert sorted([k async for k in t]) == [k.encode() for k in keys]
            assert await t.getlist(keys) == {keys[0].encode(): b"1", keys[1].encode(): b"2"}
            await t.outlist(keys[:1])
            assert await t.mget(keys) == {keys[1].encode(): b"2"}
            with pytest.raises(TyrantKindError):
                await t.putlist({keys[0]: {"a": "1"}})
            with pytest.raises(TyrantKindError, match="a query needs a table"):
                await t.query.keys()
            assert await t.rnum() == 1

    asyncio.run(main())


def test_async_client_on_a_table(tyrant_url: str) -> None:
    async def main() -> None:
        async with AsyncTyrant.from_url(tyrant_url, timeout=10) as t:
            await t.vanish()
            await t.putlist({"u1": {"a": "1"}, "u2": {}})
            assert sorted([k async for k in t]) == ["u1", "u2"]
            assert await t.getlist(["u1"]) == {"u1": {"a": "1"}}
            with pytest.raises(TyrantKindError):
                await t.putlist({"u3": "value"})
            await t.vanish()

    asyncio.run(main())
