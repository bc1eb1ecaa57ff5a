"""Failover groups of the blocking client: the exact retry rules, probing,
stickiness, bounded waits, and the client API (pipelines, queries, iteration,
the table mapping) through a group. Real servers; a listener that drops or
never answers requests stands in for a half-dead server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doqu_tyrant.tyrant import (
    FailoverTyrant,
    Tyrant,
    TyrantConnectionError,
    TyrantUncertainWriteError,
)
from doqu_tyrant.tyrant.failover import split_url
from tests.replicas import Blackhole, free_port
from tests.servers import ServerProcess, db_path

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def shared_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One table server for the many small rule cases (each empties it first)."""
    server = ServerProcess(db_path("table", Path(tmp_path_factory.mktemp("shared"))))
    yield server
    server.close()


@pytest.fixture
def b(shared_table: ServerProcess) -> ServerProcess:
    with direct(shared_table) as t:
        t.vanish()
    return shared_table


def addr(server: ServerProcess) -> str:
    return f"{server.host}:{server.port}"


def direct(server: ServerProcess) -> Tyrant:
    return Tyrant(server.host, server.port, timeout=5)


# -- construction --------------------------------------------------------------------------------


def test_urls_and_servers_make_groups() -> None:
    t = Tyrant.from_url("tyrant://127.0.0.1:1,127.0.0.1:2?timeout=3&retry_interval=0.5"
                        "&read_from=any&pool_size=2")
    assert isinstance(t, FailoverTyrant) and isinstance(t, Tyrant)
    assert [(c.host, c.port, c.timeout) for c in t.clients] == [
        ("127.0.0.1", 1, 3.0), ("127.0.0.1", 2, 3.0)]
    assert (t.group.retry_interval, t.group.read_from) == (0.5, "any")
    assert (t.host, t.port) == ("127.0.0.1", 1)
    g = Tyrant(servers=["127.0.0.1:5", ("localhost", 6), "tyrant://127.0.0.1"], timeout=1)
    assert isinstance(g, FailoverTyrant)
    assert g.group.addresses == ["127.0.0.1:5", "localhost:6", "127.0.0.1:1978"]
    assert split_url("tyrant://a:1,[::1]:2/?unique_ids=1")[0] == [("a", 1), ("::1", 2)]
    assert not isinstance(Tyrant.from_url("tyrant://127.0.0.1:7"), FailoverTyrant)


@pytest.mark.parametrize("make, error, words", [
    (lambda: Tyrant(servers="a:1"), TypeError, "list of servers"),
    (lambda: Tyrant(servers=[]), ValueError, "at least one"),
    (lambda: Tyrant(servers=["a:1", ("a", 1)]), ValueError, "twice"),
    (lambda: Tyrant(servers=[("a", 0)]), ValueError, "port"),
    (lambda: Tyrant(servers=[("a", "1")]), ValueError, "port"),
    (lambda: Tyrant(servers=[42]), TypeError, "host:port"),
    (lambda: Tyrant("a", 1, servers=["b:2"]), TypeError, "not both"),
    (lambda: Tyrant(servers=["a:1"], read_from="replica"), ValueError, "read_from"),
    (lambda: Tyrant(servers=["a:1"], retry_interval=-1), ValueError, "retry_interval"),
    (lambda: Tyrant(servers=["a:1"], uid_gap=-5), ValueError, "uid_gap"),
    (lambda: Tyrant.from_url("tyrant://a:1,,b:2"), ValueError, "empty server"),
    (lambda: Tyrant.from_url("tyrant://a:1,b:2?retry_interval=soon"), ValueError,
     "retry_interval"),
    (lambda: Tyrant.from_url("tyrant://a:1,b:2?bogus=1"), ValueError, "bogus"),
])
def test_bad_groups_are_refused(make: Callable[[], Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        make()


def test_a_subclass_is_not_turned_into_a_group() -> None:
    class Mine(Tyrant):
        pass

    with pytest.raises(TypeError, match="single-server"):
        Mine(servers=["a:1"])


# -- the retry rules -----------------------------------------------------------------------------


def test_reads_and_idempotent_writes_move_on(server_factory: ServerFactory) -> None:
    a, b = server_factory("hash"), server_factory("hash")
    for server in (a, b):
        with direct(server) as t:
            t.put("k", addr(server))
    with Tyrant(servers=[addr(a), addr(b)], timeout=5) as g:
        assert g.get("k") == addr(a).encode()
        a.kill()
        assert g.get("k") == addr(b).encode()  # the read moved to B
        g.put("w", "1")
        g.misc("putlist", ["x", "1"])
        assert (g.host, g.port) == (b.host, b.port)
        assert sorted(g) == [b"k", b"w", b"x"]  # key-value iteration (a streamed FWMKEYS)
        assert g["w"] == b"1" and len(g) == 3
        status = g.group.status()
        assert [s["active"] for s in status] == [False, True] and status[0]["down_for"] > 0
    with direct(b) as t:
        assert (t.get("w"), t.get("x")) == (b"1", b"1")


def test_writes_that_never_left_go_to_the_next_server(server_factory: ServerFactory) -> None:
    b = server_factory("hash")
    with Tyrant(servers=[f"127.0.0.1:{free_port()}", addr(b)], timeout=5) as g:
        g.putcat("cat", "ab")  # A refused the connection: nothing was sent there
        assert g.addint("n", 2) == 2
        g.putcat("cat", "cd")
        g.putnr("nr", "1")  # no answer ever comes: only a failed send can move it
    with direct(b) as t:
        assert t.get("cat") == b"abcd" and t.addint("n") == 2
        assert t.get("nr") == b"1"


NOT_IDEMPOTENT: dict[str, Callable[[Tyrant], Any]] = {
    "putkeep": lambda g: g.putkeep("k", "v"),
    "putcat": lambda g: g.putcat("k", "v"),
    "putshl": lambda g: g.putshl("k", "v", 4),
    "addint": lambda g: g.addint("k", 1),
    "adddouble": lambda g: g.adddouble("k", 1.5),
    "ext": lambda g: g.ext("fn", "k", "v"),
    "genuid": lambda g: g.genuid(),
    "table_putkeep": lambda g: g.table_putkeep("k", {"a": "1"}),
    "table_putcat": lambda g: g.table_putcat("k", {"a": "1"}),
    "misc putcat": lambda g: g.misc("putcat", ["k", "v"]),
    "pipeline with addint": lambda g: g.pipeline().put("a", "1").addint("k", 1).execute(),
}


@pytest.mark.parametrize("name", list(NOT_IDEMPOTENT))
def test_a_sent_write_that_is_not_idempotent_is_not_repeated(
        b: ServerProcess, name: str) -> None:
    with Blackhole(close_after_read=True) as hole, Tyrant(
            servers=[hole.address, addr(b)], timeout=5) as g:
        with pytest.raises(TyrantUncertainWriteError, match="may or may not have been applied"
                           ) as info:
            NOT_IDEMPOTENT[name](g)
        assert isinstance(info.value, TyrantConnectionError) and info.value.request_sent
        assert info.value.server == hole.address
        assert hole.received  # it was sent to A ...
        assert (g.host, g.port) == (b.host, b.port)  # ... A counts as failed ...
    with direct(b) as t:
        assert t.rnum() == 0  # ... and nothing reached B


IDEMPOTENT: dict[str, tuple[Callable[[Tyrant], Any], Callable[[Tyrant], bool]]] = {
    # (binary writes to a table database store a serialised record)
    "put": (lambda g: g.put("k", "a\x001"), lambda t: t["k"] == {"a": "1"}),
    "out": (lambda g: g.out("gone"), lambda t: t.get("gone") is None),
    "vanish": (lambda g: g.vanish(), lambda t: t.rnum() == 0),
    "table_put": (lambda g: g.table_put("k", {"a": "1"}), lambda t: t["k"] == {"a": "1"}),
    "table_out": (lambda g: g.table_out("gone"), lambda t: "gone" not in t),
    "putlist": (lambda g: g.putlist({"k": {"a": "1"}}), lambda t: t["k"] == {"a": "1"}),
    "outlist": (lambda g: g.outlist(["gone"]), lambda t: "gone" not in t),
    "setindex": (lambda g: g.setindex("a", "lexical"), lambda t: True),
    "pipeline of puts": (lambda g: g.pipeline().table_put("k", {"a": "1"}).get("x").execute(),
                         lambda t: t["k"] == {"a": "1"}),
}


@pytest.mark.parametrize("name", list(IDEMPOTENT))
def test_a_sent_idempotent_write_is_repeated_on_the_next_server(
        b: ServerProcess, name: str) -> None:
    with direct(b) as t:
        t["gone"] = {"a": "x"}
    write, check = IDEMPOTENT[name]
    with Blackhole(close_after_read=True) as hole, Tyrant(
            servers=[hole.address, addr(b)], timeout=5) as g:
        write(g)
        assert hole.received
    with direct(b) as t:
        assert check(t)


def test_replies_that_never_come_are_bounded_by_the_timeout(
        server_factory: ServerFactory) -> None:
    b = server_factory("hash")
    with direct(b) as t:
        t.put("k", "from b")
    with Blackhole() as hole, Tyrant(servers=[hole.address, addr(b)], timeout=0.5) as g:
        start = time.monotonic()
        assert g.get("k") == b"from b"
        assert time.monotonic() - start < 3.0  # one timeout, then B
        start = time.monotonic()
        assert g.get("k") == b"from b"
        assert time.monotonic() - start < 1.0  # A is skipped now
    with Blackhole() as hole, Tyrant(servers=[hole.address, addr(b)], timeout=0.5) as g:
        with pytest.raises(TyrantUncertainWriteError) as info:
            g.putcat("k", "x")
        assert isinstance(info.value.__cause__, TimeoutError)


def test_a_failed_server_is_probed_only_after_the_interval(
        server_factory: ServerFactory) -> None:
    b = server_factory("hash")
    with Blackhole(close_after_read=True) as hole, Tyrant(
            servers=[hole.address, addr(b)], timeout=5, retry_interval=0.5) as g:
        assert g.get("k") is None  # A failed (its client retried once), B answered
        tried = hole.accepted
        assert tried >= 1
        b.kill()
        with pytest.raises(TyrantConnectionError, match="no server of the group"):
            g.get("k")  # B failed too; A's interval has not passed: not tried
        assert hole.accepted == tried
        time.sleep(0.6)
        with pytest.raises(TyrantConnectionError):
            g.get("k")  # now A is probed again (and fails again)
        assert hole.accepted > tried
        assert g.group.status()[0]["down_for"] > 0.6  # failing again soon: a longer wait


def test_the_group_stays_on_a_working_server(server_factory: ServerFactory) -> None:
    """No flapping: a recovered server is not taken back while the active one works."""
    a, b = server_factory("hash"), server_factory("hash")
    with Tyrant(servers=[addr(a), addr(b)], timeout=5, retry_interval=0.2) as g:
        g.put("k", "1")
        a.kill()
        g.put("k", "2")  # on B now
        a.start()
        time.sleep(0.4)  # A's interval is over and A is back
        for _ in range(20):
            g.get("k")
        with direct(a) as t:
            assert int(t.stat()["cnt_get"]) == 0  # no GET reached A
        b.kill()
        assert g.get("k") == b"1"  # B gone: back to A
        assert (g.host, g.port) == (a.host, a.port)


def test_read_from_any_spreads_reads(server_factory: ServerFactory) -> None:
    a, b = server_factory("hash"), server_factory("hash")
    for server in (a, b):
        with direct(server) as t:
            t.put("where", addr(server))
    with Tyrant(servers=[addr(a), addr(b)], timeout=5, read_from="any") as g:
        seen = {g.get("where") for _ in range(6)}
        assert seen == {addr(a).encode(), addr(b).encode()}
        g.put("w", "1")
    with direct(a) as ta, direct(b) as tb:
        assert ta.get("w") == b"1" and tb.get("w") is None  # writes: the active server only


# -- the client API through a group ----------------------------------------------------------------


def test_queries_iteration_pipelines_and_the_table_after_a_failover(
        server_factory: ServerFactory) -> None:
    a, b = server_factory("table"), server_factory("table")
    people = {f"p{i}": {"name": f"n{i}", "age": str(20 + i)} for i in range(30)}
    for server in (a, b):
        with direct(server) as t:
            t.putlist(people)
    with Tyrant(servers=[addr(a), addr(b)], timeout=5) as g:
        for step in ("on A", "after A died"):
            assert g.query.filter(age__gte=40).count() == 10, step
            assert [k for k, _ in g.query.filter(age__lt=22).order_by("age").items()] == [
                "p0", "p1"]
            assert sorted(g) == sorted(people)
            assert sorted(g.iterkeys()) == sorted(k.encode() for k in people)
            assert dict(g.table.items()) == people and len(g.table) == 30
            assert g["p3"] == people["p3"] and "p3" in g
            assert g.pipeline().table_get("p1").rnum().execute() == [people["p1"], 30]
            a.kill()
        g["new"] = {"name": "x"}
        del g["p0"]
        g.query.filter(age__gte=45).delete()
    with direct(b) as t:
        assert t["new"] == {"name": "x"} and "p0" not in t and len(t) == 30 + 1 - 1 - 5


def test_unique_ids_never_repeat_a_number_across_a_failover(
        server_factory: ServerFactory) -> None:
    a, b = server_factory("table"), server_factory("table")
    with Tyrant(servers=[addr(a), addr(b)], timeout=5, unique_ids=True, uid_gap=50) as g:
        first = [g.genuid() for _ in range(3)]
        assert first == [1, 2, 3]
        a.kill()  # B's own counter is still at 0
        after = [g.genuid() for _ in range(3)]
        assert after[0] > 3 + 50 - 1 and after == list(range(after[0], after[0] + 3))
        g.vanish()  # the sequence restarts on purpose
        assert g.genuid() == 1
    with Tyrant(servers=[addr(a), addr(b)], timeout=5) as plain:
        assert plain.genuid() > 1  # without unique_ids: just the server's counter
