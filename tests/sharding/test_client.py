"""ShardedTyrant's API over three bundled servers: routing, bulk commands split
and sent at once, sums and broadcasts, iteration, generated keys, pipelines,
bad input."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import (
    FailoverTyrant,
    ShardedTyrant,
    Tyrant,
    TyrantCommandError,
    TyrantConnectionError,
    TyrantKindError,
)
from doqu_tyrant.tyrant.shards import url_name
from tests.servers import ServerProcess

KEYS = [f"key{i}" for i in range(60)] + ["キー", "ключ", "a b,c"]


@pytest.fixture(scope="module")
def dump_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("dumps"))


@pytest.fixture(scope="module")
def kv_urls(dump_dir: str) -> Iterator[list[str]]:
    """Three bundled in-memory B+ tree databases (COPY into ``dump_dir``), for
    key-value commands."""
    servers = [ServerProcess("+", dump_dir=dump_dir) for _ in range(3)]
    try:
        yield [s.url for s in servers]
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def kv(kv_urls: list[str]) -> Iterator[ShardedTyrant]:
    client = ShardedTyrant(kv_urls, timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()


def holders(t: ShardedTyrant, key: str) -> list[str]:
    """Names of the shards that hold ``key`` (asking each one directly)."""
    return [name for name, shard in zip(t.names, t.shards) if shard.vsiz(key) is not None]


def test_each_key_lives_on_exactly_its_shard(kv: ShardedTyrant) -> None:
    for key in KEYS:
        kv.put(key, key.upper())
    for key in KEYS:
        assert holders(kv, key) == [kv.server_for(key)]
        assert kv.get(key) == key.upper().encode()
        assert kv.client_for(key) is kv.shards[kv.names.index(kv.server_for(key))]
    assert {kv.server_for(k) for k in KEYS} == set(kv.names)
    assert kv.rnum() == len(KEYS) == len(kv)
    assert kv.rnum() == sum(s.rnum() for s in kv.shards)
    assert kv.size() == sum(s.size() for s in kv.shards)


def test_key_commands_are_routed(kv: ShardedTyrant) -> None:
    t = kv
    assert t.putkeep("a", "1") and not t.putkeep("a", "2")
    t.putcat("a", "2")
    t.put("s", "abc")
    t.putshl("s", "def", 4)
    assert t.get("a") == b"12" and t.get("s") == b"cdef"
    assert t.addint("n", 5) == 5 and t.addint("n", 2) == 7
    assert t.adddouble("d", 1.5) == 1.5
    assert t.vsiz("a") == 2 and t.vsiz("missing") is None and t.get("missing", b"-") == b"-"
    t.putnr("nr", "x")
    assert t.get("nr") == b"x"
    assert t.out("a") and not t.out("a")
    for key in ("s", "n", "d", "nr"):
        assert holders(t, key) == [t.server_for(key)]


def test_the_table_layer(sharded: ShardedTyrant) -> None:
    t = sharded
    t["u1"] = {"name": "ann", "age": "30"}
    t.table_put("u2", {"name": "bob"})
    assert t["u1"] == {"name": "ann", "age": "30"}
    assert t.table_get("u2", raw=True) == {b"name": b"bob"}
    assert t.table_get("nobody", "?") == "?"
    assert not t.table_putkeep("u1", {"x": "y"})
    t.table_putcat("u2", {"name": "zed", "age": "9"})
    assert t["u2"] == {"name": "bob", "age": "9"}
    assert "u1" in t and "nobody" not in t
    table = t.table
    table.update({f"t{i}": {"i": str(i)} for i in range(30)})
    assert len(table) == 32
    assert sorted(table) == sorted(["u1", "u2", *(f"t{i}" for i in range(30))])
    assert dict(table.items())["t7"] == {"i": "7"}
    del t["u1"]
    with pytest.raises(KeyError):
        del t["u1"]
    with pytest.raises(KeyError):
        t["u1"]
    with pytest.raises(TypeError):
        t["x"] = "not a record"  # type: ignore[assignment]


def test_bulk_commands_are_split_and_keep_the_request_order(sharded: ShardedTyrant) -> None:
    t = sharded
    records = {k: {"k": k, "n": str(i)} for i, k in enumerate(KEYS)}
    t.putlist(records)
    for key in KEYS:
        assert holders(t, key) == [t.server_for(key)]
    wanted = ["missing", *KEYS[::-1], "gone"]
    got = t.getlist(wanted)
    assert list(got) == KEYS[::-1] and got["キー"] == records["キー"]
    assert list(t.getlist([k.encode() for k in KEYS[:5]], raw=True)) == [
        k.encode() for k in KEYS[:5]]
    t.outlist(KEYS[:40] + ["never"])
    assert sorted(t.getlist(KEYS)) == sorted(KEYS[40:])
    raw = t.misc("getlist", [b"missing", KEYS[45].encode(), KEYS[41].encode()])
    assert raw[::2] == [KEYS[45].encode(), KEYS[41].encode()]
    t.misc("putlist", [b"m1", b"a\0x", b"m2", b"b\0y"])
    assert t["m1"] == {"a": "x"} and t["m2"] == {"b": "y"}
    t.misc("outlist", [b"m1", b"m2"])
    assert "m1" not in t and "m2" not in t


def test_bad_input_is_refused_before_anything_is_sent(sharded: ShardedTyrant) -> None:
    t = sharded
    records = {k: {"v": "1"} for k in KEYS}
    records["bad"] = {"v": "x\0y"}
    with pytest.raises(ValueError, match="NUL"):
        t.putlist(records)
    assert t.rnum() == 0  # no shard got its share
    with pytest.raises(ValueError):
        t.outlist(["ok", ""])
    with pytest.raises(TypeError):
        t.getlist("one key")
    with pytest.raises(ValueError, match="no meaning over shards"):
        t.misc("iternext")
    with pytest.raises(ValueError, match="key,? value pairs|pairs"):
        t.misc("putlist", [b"odd"])
    with pytest.raises(ValueError, match="needs a key"):
        t.misc("get", [])
    with pytest.raises(ValueError, match="shard"):
        t.copy("/tmp/no-placeholder.tct")
    with pytest.raises(ValueError):
        t.setindex("name", "no such kind")
    with pytest.raises(ValueError):
        t.fwmkeys(b"", 1 << 40)


def test_copy_writes_one_file_per_shard(kv: ShardedTyrant, dump_dir: str) -> None:
    for key in KEYS:
        kv.put(key, "v")
    kv.copy("copy-{shard}.tcb")
    for i in range(3):
        assert os.path.getsize(os.path.join(dump_dir, f"copy-{i}.tcb")) > 0
    with pytest.raises(ValueError, match="shard"):
        kv.copy("one-file.tcb")


def test_commands_on_every_shard(sharded: ShardedTyrant) -> None:
    t = sharded
    t.putlist({k: {"name": k} for k in KEYS})
    assert t.setindex("name", "lexical")
    assert not t.setindex("name", "lexical", keep=True)
    for shard in t.shards:
        hint = shard.query.filter(name="key1").hint()
        assert "using an index" in hint
    assert "using an index" in t.query.filter(name="key1").hint()
    assert t.setindex("name", "void")
    t.sync()
    t.optimize()
    stats = t.stat()
    assert list(stats) == list(t.names)
    assert all(s["type"] == "table" for s in stats.values())
    assert sum(int(s["rnum"]) for s in stats.values()) == len(KEYS)
    t.vanish()
    assert t.rnum() == 0 and all(s.rnum() == 0 for s in t.shards)


def test_mget_splits_and_keeps_the_request_order(kv: ShardedTyrant) -> None:
    for key in KEYS:
        kv.put(key, key)
    wanted = ["none", *KEYS[::-1]]
    assert list(kv.mget(wanted).items()) == [(k.encode(), k.encode()) for k in KEYS[::-1]]
    # B+ trees: each shard's first keys are its smallest, so the merge is exact
    assert kv.fwmkeys("key", 7) == sorted(k.encode() for k in KEYS if k.startswith("key"))[:7]


def test_iteration_and_prefixes_cover_every_shard(sharded: ShardedTyrant) -> None:
    t = sharded
    for key in KEYS:
        t[key] = {"v": key}
    assert sorted(t.iterkeys(batch=7)) == sorted(k.encode() for k in KEYS)
    t.iterinit()
    seen = []
    while (key := t.iternext()) is not None:
        seen.append(key)
    assert sorted(seen) == sorted(k.encode() for k in KEYS)
    assert t.fwmkeys("key1") == sorted(k.encode() for k in KEYS if k.startswith("key1"))
    five = t.fwmkeys("key", 5)  # each table shard gives its first five, in its own order
    assert len(five) == 5 and five == sorted(five) and all(k.startswith(b"key") for k in five)
    assert t.fwmkeys("key", -1) == t.fwmkeys("key")
    assert sorted(list(t)) == sorted(KEYS)  # table iteration: a search on each shard


def test_generated_keys_come_from_the_first_shard(sharded: ShardedTyrant) -> None:
    t = sharded
    numbers = [t.genuid() for _ in range(30)]
    assert numbers == list(range(numbers[0], numbers[0] + 30))
    assert t.shards[0].genuid() == numbers[-1] + 1  # one counter, on the first shard
    assert t.id_shard == t.names[0]
    for n in numbers:
        t[str(n)] = {"n": str(n)}
    assert len({t.server_for(str(n)) for n in numbers}) == 3  # stored where they hash
    for n in numbers:
        assert holders(t, str(n)) == [t.server_for(str(n))]
    t.vanish()
    assert t.genuid() == 1  # vanish resets the counter (on the first shard)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_without_the_first_shard_only_generated_keys_fail(shard_urls: list[str]) -> None:
    dead = f"tyrant://127.0.0.1:{_free_port()}"
    t = ShardedTyrant([dead, *shard_urls[1:]], timeout=5, connect_timeout=2)
    try:
        with pytest.raises(TyrantConnectionError):
            t.genuid()
        alive = next(k for k in KEYS if t.server_for(k) != url_name(dead))
        t[alive] = {"ok": "1"}
        assert t[alive] == {"ok": "1"}
        with pytest.raises(TyrantConnectionError):
            t.rnum()  # a command for every shard needs every shard
        del t[alive]
    finally:
        t.close()


def test_pipelined_table_batches_are_split_by_shard(sharded: ShardedTyrant) -> None:
    """Each shard's share of a batch goes as one batch of its own; the results
    come back one per record, in order, beside the other queued commands."""
    t = sharded
    t["key7"] = {"name": "kept"}
    records = [(key, {"name": key, "i": str(i)}) for i, key in enumerate(KEYS)]
    with t.pipeline() as pl:
        pl.table_get("key7")
        pl.table_putkeep_many(records)
        pl.table_put_many({"key7": {"name": "replaced"}, "key8": b"name\0raw"})
        pl.table_putkeep_many([])
        got, kept, put, empty = pl.execute()
    assert got == {"name": "kept"}
    assert kept == [key != "key7" for key in KEYS] and put == [None, None] and empty == []
    for key, record in records:
        assert holders(t, key) == [t.server_for(key)]
        if key not in ("key7", "key8"):
            assert t[key] == record
    assert t["key7"] == {"name": "replaced"} and t["key8"] == {"name": "raw"}
    assert len({t.server_for(key) for key in KEYS}) == 3  # (the batch did span them)
    # a bad record anywhere queues nothing, on any shard
    pl = t.pipeline()
    with pytest.raises(ValueError, match="must not be empty"):
        pl.table_put_many([("new1", {"a": "1"}), ("new2", {"": "x"})])
    assert len(pl) == 0 and pl.execute() == [] and t.get("new1") is None


def test_pipelines_route_each_command(kv: ShardedTyrant) -> None:
    t = kv
    with t.pipeline() as pl:
        for key in KEYS:
            pl.put(key, key)
        pl.misc("put", ["m", "1"]).misc("get", ["m"])
        pl.get(KEYS[3]).addint("n", 3).vsiz("m")
        results = pl.execute()
    assert results[:len(KEYS)] == [None] * len(KEYS)
    assert results[len(KEYS):] == [[], [b"1"], KEYS[3].encode(), 3, 1]
    for key in [*KEYS, "m", "n"]:
        assert holders(t, key) == [t.server_for(key)]
    pl = t.pipeline()
    pl.putkeep(KEYS[0], "again").get("nothing")
    assert len(pl) == 2
    assert pl.execute() == [False, None]
    with pytest.raises(TypeError, match="pipelined"):
        t.pipeline().misc("search", [])
    with pytest.raises(AttributeError):
        t.pipeline().rnum()  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        t.pipeline().putshl("", "x", 1)
    t.put("notanumber", "abc")
    pl = t.pipeline().addint("notanumber", 1).get("notanumber")
    with pytest.raises(TyrantCommandError):
        pl.execute()
    pl = t.pipeline().addint("notanumber", 1).get("notanumber")
    failed, value = pl.execute(raise_on_error=False)
    assert isinstance(failed, TyrantCommandError) and value == b"abc"


def test_table_pipelines(sharded: ShardedTyrant) -> None:
    with sharded.pipeline() as pl:
        for key in KEYS:
            pl[key] = {"k": key}
        pl.table_get(KEYS[0]).table_out(KEYS[1]).table_putkeep(KEYS[2], {"x": "y"})
        results = pl.execute()
    assert results[len(KEYS):] == [{"k": KEYS[0]}, True, False]
    assert sharded.rnum() == len(KEYS) - 1
    for key in KEYS[2:]:
        assert holders(sharded, key) == [sharded.server_for(key)]


@pytest.mark.parametrize(("shards", "error"), [
    ([], "at least one"),
    ("tyrant://a:1", "not a single"),
    (["tyrant://a:1", "tyrant://A:1"], "unique"),
    (["http://a:1"], "tyrant://"),
    (["tyrant://a:99999"], "port"),
    ([{"url": "tyrant://a:1", "weight": 0}], "weight"),
    ([{"url": "tyrant://a:1", "colour": "red"}], "unknown shard setting"),
    ([{"name": "x"}], "exactly one of url and client"),
    ([42], "URL, a mapping or a client"),
])
def test_bad_shard_lists_are_refused(shards: object, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        ShardedTyrant(shards)  # type: ignore[arg-type]


def test_names_weights_and_clients(shard_urls: list[str]) -> None:
    clients = [Tyrant.from_url(u, timeout=5) for u in shard_urls]
    t = ShardedTyrant([{"client": clients[0], "name": "one", "weight": 2},
                       f"two={shard_urls[1]}", clients[2]], timeout=5)
    try:
        assert t.names == ("one", "two", url_name(shard_urls[2]))
        assert t.shards[0] is clients[0]
        assert t.ring.weights == (2.0, 1.0, 1.0)
        t.vanish()
        t["k"] = {"v": "1"}
        assert t.client_for("k")["k"] == {"v": "1"}
    finally:
        t.vanish()
        t.close()
    assert url_name("tyrant://Example.COM") == "example.com:1978"
    assert url_name("tyrant://a:1,[::1]:2") == "a:1,[::1]:2"


class DelayingProxy:
    """A loopback TCP proxy that holds every reply chunk back ``delay`` seconds."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream, self.delay = upstream, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"tyrant://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closed = False
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.delay),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while data := src.recv(1 << 16):
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def slow_shards(shard_urls: list[str]) -> Iterator[ShardedTyrant]:
    proxies = []
    for url in shard_urls:
        host, _, port = url[len("tyrant://"):].rpartition(":")
        proxies.append(DelayingProxy((host, int(port)), 0.4))
    t = ShardedTyrant([{"url": p.url, "name": f"slow{i}"} for i, p in enumerate(proxies)],
                      timeout=10)
    try:
        yield t
    finally:
        t.close()
        for proxy in proxies:
            proxy.close()


def test_bulk_requests_reach_all_shards_at_once(slow_shards: ShardedTyrant) -> None:
    """Every shard answers 0.4 s late: one after the other, three shards would
    take 1.2 s; sent at once, a bulk command takes one delay (bound: 1 s)."""
    t = slow_shards
    t.vanish()  # (and connect everywhere first)
    assert t.kind() == "table"  # asked once, then remembered
    keys = [f"k{i}" for i in range(30)]
    assert len({t.server_for(k) for k in keys}) == 3
    for run in (lambda: t.putlist({k: {"v": k} for k in keys}), lambda: t.getlist(keys),
                lambda: t.query.filter(v__startswith="k").order_by("v").keys(),
                lambda: t.outlist(keys)):
        started = time.monotonic()
        run()
        assert time.monotonic() - started < 1.0
    assert t.rnum() == 0


def test_key_value_shards_follow_their_kind(kv: ShardedTyrant, shard_urls: list[str]) -> None:
    assert kv.kind() == "on-memory tree"
    assert set(kv.kinds().values()) == {"on-memory tree"}
    kv.putlist({k: k.upper() for k in KEYS})
    assert kv.getlist(["none", *KEYS[:3]]) == {k.encode(): k.upper().encode() for k in KEYS[:3]}
    kv["x"] = "y"
    assert kv["x"] == b"y"
    del kv["x"]
    assert sorted(kv) == sorted(k.encode() for k in KEYS)  # bytes keys, every shard
    kv.mput({"m1": "1", "m2": b"2"})
    assert kv.mget(["m1", "m2"]) == {b"m1": b"1", b"m2": b"2"}
    kv.mout(["m1", "m2"])
    kv.outlist(KEYS[:10])
    assert kv.rnum() == len(KEYS) - 10
    with pytest.raises(TyrantKindError):
        kv.putlist({"r": {"a": "1"}})  # a record, on key-value shards
    with pytest.raises(TyrantKindError):
        kv["r"] = {"a": "1"}
    with pytest.raises(TyrantKindError):
        kv.query.keys()
    mixed = ShardedTyrant([kv_url := kv.specs[0].url, shard_urls[0]], timeout=5)
    try:
        with pytest.raises(TyrantKindError, match="different kinds"):
            mixed.kind()
        assert mixed.kinds() == {url_name(kv_url or ""): "on-memory tree",
                                 url_name(shard_urls[0]): "table"}
    finally:
        mixed.close()


def test_a_shard_can_be_a_failover_group(shard_urls: list[str]) -> None:
    addresses = [u[len("tyrant://"):] for u in shard_urls]
    group = f"tyrant://{addresses[1]},{addresses[2]}"
    t = ShardedTyrant([group, shard_urls[0]], timeout=5)
    try:
        assert t.names == (f"{addresses[1]},{addresses[2]}", addresses[0])
        assert isinstance(t.shards[0], FailoverTyrant)
        assert t.shards[0].unique_ids  # the key counter's group: unique across a failover
        t.vanish()
        keys = [k for k in KEYS if t.server_for(k) == t.names[0]][:5]
        for key in keys:
            t[key] = {"v": key}
        direct = Tyrant.from_url(shard_urls[1], timeout=5)  # the group's active server
        assert all(direct.table_get(k) == {"v": k} for k in keys)
        direct.close()
        assert t.genuid() + 1 == t.genuid()
    finally:
        t.vanish()
        t.close()
    later = ShardedTyrant([shard_urls[0], group], timeout=5)
    assert not later.shards[1].unique_ids  # only the first shard generates keys
    later.close()


def test_generated_keys_in_a_pipeline_come_from_the_first_shard(sharded: ShardedTyrant) -> None:
    with sharded.pipeline() as pl:
        for _ in range(5):
            pl.genuid()
        numbers = pl.execute()
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    assert sharded.shards[0].genuid() == numbers[-1] + 1


def test_index_knowledge_covers_every_shard(sharded: ShardedTyrant) -> None:
    t = sharded
    assert t.index_kinds(["name", "age"]) == {"name": None, "age": None}
    t.shards[2].setindex("name", "lexical")  # one shard only: a record may land there
    t.shards[1].setindex("age", "token")
    try:
        t.forget_indexes()
        assert t.index_kinds(["name", "age"]) == {"name": "lexical", "age": "token"}
    finally:
        t.shards[2].setindex("name", "void")
        t.shards[1].setindex("age", "void")
    t.forget_indexes(["name"])
    assert t.index_kinds(["name"]) == {"name": None}
