"""The blocking client against the bundled server: every command, the table
layer, pipelines, conventions for missing keys and failures."""

from __future__ import annotations

import math
import socket

import pytest

from doqu_tyrant.tyrant import (
    EKEEP,
    EMISC,
    MISC_NOULOG,
    Pipeline,
    Table,
    Tyrant,
    TyrantCommandError,
    TyrantConnectError,
    TyrantConnectionError,
    TyrantDecodeError,
    parse_url,
)
from tests.tyrant.conftest import PEOPLE

# -- key-value commands -------------------------------------------------------


def test_put_get_out(kv: Tyrant) -> None:
    kv.put(b"k", b"v")
    assert kv.get(b"k") == b"v"
    assert kv.get("k") == b"v"  # str keys are UTF-8
    assert kv.get(b"missing") is None
    assert kv.get(b"missing", b"dflt") == b"dflt"
    assert kv.out(b"k") is True
    assert kv.out(b"k") is False


def test_str_bytes_and_buffers(kv: Tyrant) -> None:
    kv.put("clé", "välue ✓")
    assert kv.get("clé".encode()) == "välue ✓".encode()
    kv.put(bytearray(b"ba"), memoryview(b"mv"))
    assert kv.get(b"ba") == b"mv"
    kv.put(b"", b"empty key")
    assert kv.get(b"") == b"empty key"
    kv.put(b"nul\0key", b"\0\xff\0")
    assert kv.get(b"nul\0key") == b"\0\xff\0"


def test_putkeep_putcat_putshl_putnr(kv: Tyrant) -> None:
    assert kv.putkeep("k", "1") is True
    assert kv.putkeep("k", "2") is False
    kv.putcat("k", "23")
    assert kv.get("k") == b"123"
    kv.putshl("k", "456", 4)
    assert kv.get("k") == b"3456"
    kv.putnr("nr", "x")
    assert kv.get("nr") == b"x"  # the next request's reply is the next thing on the wire


def test_mget_vsiz_fwmkeys(kv: Tyrant) -> None:
    for i in range(5):
        kv.put(f"p{i}", "v" * i)
    kv.put("q", "x")
    assert kv.mget(["p1", "nope", "p3"]) == {b"p1": b"v", b"p3": b"vvv"}
    assert kv.mget([]) == {}
    assert kv.vsiz("p4") == 4
    assert kv.vsiz("nope") is None
    assert sorted(kv.fwmkeys("p")) == [b"p0", b"p1", b"p2", b"p3", b"p4"]
    assert len(kv.fwmkeys("p", 2)) == 2
    assert kv.fwmkeys("p", 0) == []
    assert sorted(kv.fwmkeys()) == sorted([b"p0", b"p1", b"p2", b"p3", b"p4", b"q"])
    assert kv.prefix_keys("q") == [b"q"]  # pyrant name


def test_iteration(kv: Tyrant) -> None:
    keys = {f"k{i}".encode() for i in range(600)}
    with kv.pipeline() as pl:
        for k in keys:
            pl.put(k, b"v")
        pl.execute()
    assert set(kv.iterkeys(batch=64)) == keys
    assert sum(1 for _ in kv.iterkeys()) == 600
    kv.iterinit()
    first = kv.iternext()
    assert first in keys
    it = kv.iterkeys(batch=10)
    next(it)
    it.close()  # abandoned: the connection stays usable
    assert kv.rnum() == 600


def test_counters(kv: Tyrant) -> None:
    assert kv.addint("n", 5) == 5
    assert kv.addint("n", -7) == -2
    assert kv.addint("n") == -2
    assert kv.adddouble("d", 1.5) == 1.5
    assert kv.adddouble("d", -2.75) == pytest.approx(-1.25)
    assert kv.adddouble("inf", math.inf) == math.inf
    kv.put("text", "hello")
    with pytest.raises(TyrantCommandError) as info:
        kv.addint("text", 1)
    assert info.value.code == EKEEP
    with pytest.raises(TyrantCommandError):
        kv.adddouble("n", 1.0)  # an int record
    with pytest.raises(TyrantCommandError):
        kv.adddouble("nan", math.nan)  # sent like the C client does; refused


def test_server_commands(kv: Tyrant) -> None:
    kv.put("a", "1")
    assert kv.rnum() == 1 and len(kv) == 1
    assert kv.size() > 0
    stat = kv.stat()
    assert stat["type"] == "hash" and stat["rnum"] == "1"
    assert kv.get_stats() == stat or kv.get_stats()["rnum"] == "1"
    kv.sync()
    kv.optimize()
    kv.optimize("bnum=1000")
    assert kv.get("a") == b"1"
    kv.setmst("", 0)
    with pytest.raises(TyrantCommandError) as info:
        kv.ext("nosuchfunc", "k", "v")
    assert info.value.code == EMISC
    with pytest.raises(TyrantCommandError):
        kv.copy("")
    with pytest.raises(TyrantCommandError):
        kv.restore("/nonexistent-ulog-dir", 0)
    kv.vanish()
    assert kv.rnum() == 0
    assert "a" not in kv
    assert bool(kv) is True  # truth never costs a round trip


def test_misc(kv: Tyrant) -> None:
    assert kv.misc("put", ["a", "1"]) == []
    assert kv.misc("get", ["a"], MISC_NOULOG) == [b"1"]
    assert kv.misc("putlist", ["b", "2", "c", "3"]) == []
    assert kv.misc("getlist", ["a", "b", "zz"], MISC_NOULOG) == [b"a", b"1", b"b", b"2"]
    with pytest.raises(TyrantCommandError) as info:
        kv.misc("nosuchfunction")
    assert info.value.code == EMISC
    with pytest.raises(TyrantCommandError):
        kv.misc("search")  # not a table database


# -- table layer --------------------------------------------------------------


def test_record_mapping(t: Tyrant) -> None:
    t["u1"] = {"name": "alice", "age": "30"}
    assert t["u1"] == {"name": "alice", "age": "30"}
    assert list(t["u1"]) == ["name", "age"]  # stored order
    assert "u1" in t and b"u1" in t and "u2" not in t
    assert len(t) == 1 and list(t) == ["u1"]
    with pytest.raises(KeyError):
        t["u2"]
    del t["u1"]
    with pytest.raises(KeyError):
        del t["u1"]
    t["empty"] = {}
    assert t["empty"] == {}
    with pytest.raises(TypeError):
        t["x"] = "not a record"  # type: ignore[assignment]


def test_table_methods(t: Tyrant) -> None:
    t.table_put("u1", {"name": "alice", "city": "tokyo"})
    assert t.table_get("u1") == {"name": "alice", "city": "tokyo"}
    assert t.table_get("nope") is None
    assert t.table_get("nope", {}) == {}
    assert t.table_putkeep("u1", {"name": "x"}) is False
    assert t.table_putkeep("u2", {"name": "bob"}) is True
    t.table_putcat("u1", {"name": "zzz", "age": "30"})
    assert t.table_get("u1") == {"name": "alice", "city": "tokyo", "age": "30"}
    assert t.table_get("u1", raw=True) == {b"name": b"alice", b"city": b"tokyo", b"age": b"30"}
    assert t.table_out("u2") is True
    assert t.table_out("u2") is False
    t.table_put(b"b\xc3\xa9", {b"k": "v"})
    assert t.table_get("bé") == {"k": "v"}


def test_bulk(t: Tyrant) -> None:
    records = {f"r{i}": {"n": str(i), "sq": str(i * i)} for i in range(1000)}
    t.putlist(records)
    assert len(t) == 1000
    got = t.getlist([f"r{i}" for i in range(0, 1000, 7)] + ["nope"])
    assert got == {f"r{i}": records[f"r{i}"] for i in range(0, 1000, 7)}
    assert t.multi_get(["r1"]) == {"r1": records["r1"]}  # pyrant name
    t.outlist([f"r{i}" for i in range(500)] + ["nope"])
    assert len(t) == 500
    t.putlist([("a", {"x": "1"}), ("b", {})])
    assert t.getlist(["a", "b"], raw=True) == {b"a": {b"x": b"1"}, b"b": {}}


def test_genuid_setindex(t: Tyrant) -> None:
    first = t.genuid()
    assert t.generate_key() == first + 1
    t["a"] = {"name": "x"}
    assert t.setindex("name", "lexical") is True
    assert t.setindex("name", "lexical", keep=True) is False  # exists already
    assert t.setindex("name", "optimize") is True
    assert t.setindex("name", "void") is True
    with pytest.raises(TyrantCommandError):
        t.setindex("name", "void")  # no index any more
    for kind in ("decimal", "token", "qgram", 0, 1, 2, 3):
        assert t.setindex("c", kind) is True
    t.setindex("c", "void")


def test_invalid_utf8_names_key_and_column(t: Tyrant) -> None:
    t.put("bad", b"name\0ok\0bio\0\xff\xfe")
    with pytest.raises(TyrantDecodeError) as info:
        t["bad"]
    assert info.value.key == b"bad" and info.value.column == b"bio"
    assert "bio" in str(info.value) and "bad" in str(info.value)
    assert t.table_get("bad", raw=True) == {b"name": b"ok", b"bio": b"\xff\xfe"}
    with pytest.raises(TyrantDecodeError):
        t.query.items()
    assert t.query.items(raw=True) == [(b"bad", {b"name": b"ok", b"bio": b"\xff\xfe"})]
    t.put(b"\xff", b"a\0b")
    # a key that is not UTF-8 decodes with surrogateescape and names its record
    assert t.query.filter(a="b").keys() == ["\udcff"]
    assert t["\udcff"] == {"a": "b"}


def test_table_view(people: Tyrant) -> None:
    table = people.table
    assert isinstance(table, Table)
    assert len(table) == 6
    assert sorted(table) == sorted(PEOPLE)
    assert sorted(table.keys()) == sorted(PEOPLE)
    assert dict(table.items()) == PEOPLE
    assert sorted(r["name"] for r in table.values()) == sorted(r["name"] for r in PEOPLE.values())
    assert table.get("u1") == PEOPLE["u1"]
    assert table.get("zz", "d") == "d"
    table.update({"n1": {"a": "1"}}, n2={"b": "2"})
    assert table["n1"] == {"a": "1"} and table["n2"] == {"b": "2"}
    assert table.setdefault("n1", {"x": "y"}) == {"a": "1"}
    assert table.setdefault("n3", {"x": "y"}) == {"x": "y"}
    assert table.pop("n3") == {"x": "y"}
    table.clear()
    assert len(table) == 0


# -- pipelines ----------------------------------------------------------------


def test_pipeline(kv: Tyrant) -> None:
    pl = kv.pipeline()
    assert isinstance(pl, Pipeline)
    pl.put("a", "1").put("b", "2").get("a").putkeep("a", "x").out("zz").putnr("c", "3")
    pl.get("c").rnum().mget(["a", "b"]).addint("n", 2)
    assert len(pl) == 10
    assert pl.execute() == [None, None, b"1", False, False, None, b"3", 3,
                            {b"a": b"1", b"b": b"2"}, 2]
    assert len(pl) == 0 and pl.execute() == []


def test_pipeline_errors_keep_stream_in_step(kv: Tyrant) -> None:
    kv.put("text", "hello")
    pl = kv.pipeline()
    pl.addint("text", 1).get("text").misc("nosuch").rnum()
    with pytest.raises(TyrantCommandError):
        pl.execute()
    pl.addint("text", 1).get("text").misc("nosuch").rnum()
    results = pl.execute(raise_on_error=False)
    assert isinstance(results[0], TyrantCommandError) and results[0].code == EKEEP
    assert results[1] == b"hello"
    assert isinstance(results[2], TyrantCommandError)
    assert results[3] == 1
    assert kv.get("text") == b"hello"


def test_pipeline_bad_input_raises_at_once(kv: Tyrant) -> None:
    pl = kv.pipeline()
    with pytest.raises(TypeError):
        pl.put(1, "v")
    with pytest.raises(AttributeError):
        pl.nosuchcommand()
    assert len(pl) == 0


def test_big_pipeline_does_not_deadlock(kv: Tyrant) -> None:
    value = b"x" * 2048
    with kv.pipeline() as pl:
        for i in range(3000):
            pl.put(b"k%d" % i, value)
        pl.execute()
        for i in range(3000):
            pl.get(b"k%d" % i)
        results = pl.execute()  # 6 MB of replies while the requests are still going out
    assert results == [value] * 3000


def test_table_pipeline(t: Tyrant) -> None:
    with t.pipeline() as pl:
        pl["u1"] = {"name": "alice"}
        pl.table_put("u2", {"name": "bob"}).table_get("u1").table_get("zz").genuid()
        results = pl.execute()
    assert results[:4] == [None, None, {"name": "alice"}, None]
    assert isinstance(results[4], int)


# -- construction -------------------------------------------------------------


def test_from_url_and_close(tyrant_url: str) -> None:
    t = Tyrant.from_url(tyrant_url + "?timeout=3&pool_size=2")
    assert t.timeout == 3.0 and t._pool.size == 2
    with t:
        t.rnum()
    t.rnum()  # closed clients reconnect
    t.close()
    assert parse_url("tyrant://h:1")[:2] == ("h", 1)
    assert parse_url("tyrant://h")[1] == 1978
    with pytest.raises(ValueError):
        parse_url("http://h:1")
    with pytest.raises(ValueError):
        parse_url("tyrant://h:1?bogus=1")
    assert "Tyrant" in repr(t)


def test_connect_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t = Tyrant("127.0.0.1", port, timeout=2)
    with pytest.raises(TyrantConnectError) as info:
        t.get("k")
    assert not info.value.request_sent
    assert isinstance(info.value, TyrantConnectionError)
    with pytest.raises(ConnectionError):  # also a builtin ConnectionError
        t.put("k", "v")


def test_client_never_imports_doqu() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, doqu_tyrant.tyrant, doqu_tyrant.tyrant.aio, doqu_tyrant.tyrant.query; "
            "bad = [m for m in sys.modules if m == 'doqu' or m.startswith('doqu.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[2])


def test_pipeline_big_both_ways_without_timeout(hash_url: str) -> None:
    """Large requests and large replies at once: with a blocking socket a
    naive writer would deadlock against the server's full send buffer."""
    import threading

    t = Tyrant.from_url(hash_url)  # timeout=None: blocking socket
    value = b"v" * 100_000
    outcome: list[object] = []

    def run() -> None:
        pl = t.pipeline()
        for i in range(150):
            pl.put(b"big%d" % i, value).get(b"big%d" % i)
        outcome.append(pl.execute())

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(60)
    assert not th.is_alive(), "pipeline deadlocked"
    assert outcome[0] == [None, value] * 150
    t.outlist([b"big%d" % i for i in range(150)])
