"""The clients' index knowledge and the spec §10 checks of every write path.

Every test talks to the table server through :class:`tests.section10.Section10Proxy`,
which refuses to forward a request that aborts a real ttserver: the tests
hold with ``TYRANT_URL`` pointing at one (the indexes they create are
dropped again), and the fixture asserts that no write path sent one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from doqu_tyrant.tyrant import (
    AsyncTyrant,
    Tyrant,
    TyrantCommandError,
    TyrantConnectionError,
    TyrantUnsafeWrite,
)
from doqu_tyrant.tyrant import indexes as ix
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.client import Connection
from tests.section10 import Section10Proxy
from tests.server.wire import parse_url

INDEXES = {"city": "lexical", "age": "decimal", "tags": "token", "bio": "qgram"}


@dataclass
class Setup:
    t: Tyrant  # through the proxy; created the indexes, so it knows them
    raw: Tyrant  # straight to the server
    proxy: Section10Proxy
    extra: list[str]  # more indexed columns to drop at the end

    def fresh(self, **options: Any) -> Tyrant:
        """Another client through the proxy, knowing nothing yet."""
        client = Tyrant.from_url(self.proxy.url, timeout=10, **options)
        self.clients.append(client)
        return client

    def __post_init__(self) -> None:
        self.clients: list[Tyrant] = []


@pytest.fixture
def s(tyrant_url: str) -> Iterator[Setup]:
    raw = Tyrant.from_url(tyrant_url, timeout=10)
    raw.vanish()
    proxy = Section10Proxy(parse_url(tyrant_url))
    t = Tyrant.from_url(proxy.url, timeout=10)
    setup = Setup(t, raw, proxy, [])
    try:
        for column, kind in INDEXES.items():
            t.setindex(column, kind)
        yield setup
        assert proxy.violations == []
    finally:
        for client in [t, *setup.clients]:
            client.close()
        proxy.close()
        raw.vanish()
        for column in INDEXES:
            raw.setindex(column, "void")
        for column in setup.extra:
            with contextlib.suppress(TyrantCommandError):  # (refused: never created)
                raw.setindex(column, "void")
        raw.close()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many pipelined exchanges the blocking clients made so far."""
    calls = []
    original = Connection.request_many

    def counting(self: Connection, frame: bytes, commands: list[int]) -> list[p.Reply]:
        calls.append(len(commands))
        return original(self, frame, commands)

    monkeypatch.setattr(Connection, "request_many", counting)
    return lambda: len(calls)


# -- what the client learns ------------------------------------------------------------------


def test_one_probe_names_every_kind_in_one_round_trip(
    s: Setup, round_trips: Callable[[], int]
) -> None:
    a = s.fresh()
    s.raw.putlist({f"r{i}": {"city": f"c{i}", "age": str(i), "name": "x"} for i in range(200)})
    before = s.proxy.requests
    kinds = a.index_kinds(["city", "age", "tags", "bio", "name", b"", "city"])
    assert kinds == {"city": "lexical", "age": "decimal", "tags": "token", "bio": "qgram",
                     "name": None, b"": None}
    assert round_trips() == 1 and s.proxy.requests - before == 6  # one probe per column
    assert a.index_kinds(["city", "name"]) == {"city": "lexical", "name": None}
    assert round_trips() == 1 and s.proxy.requests - before == 6  # known: nothing sent


def test_a_probe_is_a_read_that_returns_no_record(s: Setup) -> None:
    s.raw.putlist({f"r{i}": {"city": "x"} for i in range(50)})
    frame, command, _, _, idempotent = ix.probe(b"city")
    decoder = p.RequestDecoder()
    decoder.feed(frame)
    request = decoder.next_event()
    assert isinstance(request, p.Request) and command == p.MISC and idempotent
    name, opts, args = request.args
    assert name == b"search" and opts == p.MISC_NOULOG and args[0] == b"hint"
    assert b"setlimit\x000\x000" in args and all(a.split(b"\0")[-1] for a in args[1:-1])
    reply = s.raw.misc(name, args, opts)
    assert len(reply) == 1 and reply[0].startswith(b"\0\0[[HINT]]\n")  # only the hint


def test_setindex_calls_teach_the_client(s: Setup, round_trips: Callable[[], int]) -> None:
    a = s.fresh()
    s.extra.append("score")
    a.setindex("score", "decimal")
    assert a.indexes.kind(b"score") == "decimal"
    a.setindex("score", "token")
    assert a.index_kinds(["score"]) == {"score": "token"}
    a.misc("setindex", ["score", "void"])
    assert a.indexes.kind(b"score") is None
    calls = round_trips()
    assert a.index_kinds(["score"]) == {"score": None} and round_trips() == calls


def test_query_hints_teach_the_client(s: Setup, round_trips: Callable[[], int]) -> None:
    a = s.fresh()
    a.query.filter(city="tokyo").keys()
    a.query.filter(age__gt=3).count()
    assert a.indexes.kind(b"city") == "lexical" and a.indexes.kind(b"age") == "decimal"
    calls = round_trips()
    assert a.index_kinds(["city", "age"]) == {"city": "lexical", "age": "decimal"}
    assert round_trips() == calls


def test_facts_expire_after_the_ttl_and_can_be_forgotten(s: Setup) -> None:
    a = s.fresh()
    a.indexes.ttl = None  # trusted until forgotten
    assert a.index_kinds(["w"]) == {"w": None}
    s.extra.append("w")
    s.t.setindex("w", "lexical")  # another client: ``a`` does not see it
    assert a.indexes.kind(b"w") is None
    a.forget_indexes(["w"])
    with pytest.raises(TyrantUnsafeWrite, match="'w'"):
        a["k"] = {"w": ""}
    b = s.fresh()
    b.indexes.ttl = 0.2
    assert b.index_kinds(["name"]) == {"name": None}
    s.extra.append("name")
    s.t.setindex("name", "decimal")
    time.sleep(0.3)
    with pytest.raises(TyrantUnsafeWrite, match="decimal index"):
        b["k"] = {"name": ""}
    assert s.raw.rnum() == 0


# -- writes that would abort a real ttserver -------------------------------------------------

BAD: dict[str, Callable[[Tyrant, str], Any]] = {
    "table_put": lambda t, col: t.table_put("k", {"name": "x", col: ""}),
    "table_putkeep": lambda t, col: t.table_putkeep("k", {col: ""}),
    "table_putcat": lambda t, col: t.table_putcat("k", {col: "", "z": "1"}),
    "item": lambda t, col: t.__setitem__("k", {col: ""}),
    "table item": lambda t, col: t.table.__setitem__("k", {col: ""}),
    "table update": lambda t, col: t.table.update({"a": {"x": "1"}, "k": {col: ""}}),
    "setdefault": lambda t, col: t.table.setdefault("k", {col: ""}),
    "putlist": lambda t, col: t.putlist({"a": {"name": "ok"}, "k": {col: ""}}),
    "multi_set": lambda t, col: t.multi_set([("k", {"name": "", col: ""})]),
    "pipeline": lambda t, col: t.pipeline().table_put("a", {"x": "1"})
    .table_put("k", {col: ""}).execute(),
    "pipeline item": lambda t, col: _pipeline_item(t, col),
    "misc put": lambda t, col: t.misc("put", ["k", "name", "x", col, ""]),
    "misc putkeep": lambda t, col: t.misc("putkeep", ["k", col, ""]),
    "misc putcat": lambda t, col: t.misc("putcat", ["k", col, ""]),
    "misc putlist": lambda t, col: t.misc("putlist", ["a", b"x\0001", "k", f"{col}\0"]),
    "binary put": lambda t, col: t.put("k", f"{col}\0\0name\0x"),
    "binary putkeep": lambda t, col: t.putkeep("k", f"name\0x\0{col}\0"),
    "binary putcat": lambda t, col: t.putcat("k", f"{col}\0"),
    "putnr": lambda t, col: t.putnr("k", f"{col}\0"),
}


def _pipeline_item(t: Tyrant, col: str) -> Any:
    pl = t.pipeline()
    pl["a"] = {"x": "1"}
    pl["k"] = {col: ""}
    return pl.execute()


@pytest.mark.parametrize("column", ["city", "age"])
@pytest.mark.parametrize("path", BAD)
def test_an_empty_value_in_a_lexical_or_decimal_column_is_refused_unsent(
    s: Setup, path: str, column: str
) -> None:
    for client in (s.t, s.fresh()):  # knowing the index, and probing for it
        with pytest.raises(TyrantUnsafeWrite, match=f"'{column}'") as info:
            BAD[path](client, column)
        assert isinstance(info.value, ValueError)
        assert "nothing was sent" in str(info.value)
    assert s.raw.rnum() == 0  # not even the good records of the same request


@pytest.mark.parametrize("path", ["table_put", "putlist", "pipeline", "misc put", "binary put"])
def test_an_empty_value_elsewhere_is_written(s: Setup, path: str) -> None:
    for column in ("tags", "bio", "note"):  # token, q-gram, no index
        s.raw.vanish()
        BAD[path](s.fresh(), column)
        assert s.raw.table_get("k")[column] == ""  # type: ignore[index]


def test_inputs_that_abort_any_table_are_refused_unsent(s: Setup) -> None:
    a = s.fresh()
    s.raw["x"] = {"name": "1"}
    cases: list[Callable[[], Any]] = [
        lambda: a.misc("put", ["", "name", "x"]),
        lambda: a.misc("putkeep", ["", "name", "x"]),
        lambda: a.misc("putcat", [""]),
        lambda: a.misc("putlist", ["k", b"name\0x", "", b"name\0y"]),
        lambda: a.putshl("x", "abc", 2),
        lambda: a.pipeline().putshl("x", "abc", 10).execute(),
        lambda: a.misc("iterinit", [""]),
        lambda: a.pipeline().misc("iterinit", [b""]).execute(),
    ]
    for case in cases:
        with pytest.raises(TyrantUnsafeWrite):
            case()
    assert s.raw.rnum() == 1 and s.raw["x"] == {"name": "1"}
    a.misc("iterinit", ["x"])  # with a key, or none, iterinit is fine
    a.misc("iterinit")


def test_setindex_over_empty_values_is_refused_unsent(s: Setup) -> None:
    s.raw.putlist({"a": {"zz": "1"}, "e": {"zz": ""}})
    s.extra.append("zz")
    a = s.fresh()
    for call in (lambda: a.setindex("zz", "lexical"), lambda: a.setindex("zz", 1, keep=True),
                 lambda: a.misc("setindex", ["zz", "+dec"]),
                 lambda: a.pipeline().setindex("zz", "decimal").execute()):
        with pytest.raises(TyrantUnsafeWrite, match="'e'"):
            call()
    assert a.index_kinds(["zz"]) == {"zz": None}
    assert a.setindex("zz", "token")  # kinds that can index an empty value are fine
    assert a.indexes.kind(b"zz") == "token"
    s.raw.table_out("e")
    assert a.setindex("zz", "lexical") and a.indexes.kind(b"zz") == "lexical"


def test_a_key_value_database_has_no_indexes(kv: Tyrant) -> None:
    assert kv.index_kinds(["a", "b"]) == {"a": None, "b": None}
    assert kv.indexes.table() is False
    kv.put("bin", b"a\0\0b\0x")  # any bytes: not a record here
    kv.putshl("bin", "yz", 3)
    kv.misc("put", ["", "empty key"])
    kv.misc("putlist", ["", "v", "k", "w"])
    assert kv.get("bin") == b"xyz" and kv.get("") == b"v"


def test_checks_can_be_switched_off_and_the_proxy_catches_what_passes(s: Setup) -> None:
    a = s.fresh()
    a.indexes.checks = False
    with pytest.raises(TyrantConnectionError):
        a["k"] = {"city": ""}
    assert s.proxy.violations == ["misc put of b'k' empties b'city'"]
    s.proxy.violations.clear()  # (the proxy did not forward it)
    assert s.raw.rnum() == 0


def test_the_asyncio_client_checks_the_same(s: Setup) -> None:
    async def main() -> None:
        async with AsyncTyrant.from_url(s.proxy.url, timeout=10) as a:
            assert await a.index_kinds(["city", "age", "name"]) == {
                "city": "lexical", "age": "decimal", "name": None}
            with pytest.raises(TyrantUnsafeWrite, match="'city'"):
                await a.table_put("k", {"city": ""})
            with pytest.raises(TyrantUnsafeWrite, match="'age'"):
                await a.pipeline().table_put("j", {"x": "1"}).putlist({"k": {"age": ""}}).execute()
            with pytest.raises(TyrantUnsafeWrite):
                await a.misc("putlist", ["", "x"])
            await a.table_put("k", {"name": "", "tags": ""})
            s.extra.append("name")
            await a.setindex("name", "qgram")
            assert a.indexes.kind(b"name") == "qgram"
            await a.query.filter(city="x").keys()
            a.forget_indexes()
            await a.query.filter(city="x").keys()
            assert a.indexes.kind(b"city") == "lexical"  # from the hint

    asyncio.run(main())
    assert s.raw.table_get("k") == {"name": "", "tags": ""}


def test_with_no_caching_every_check_asks_and_uses_the_answer(
    s: Setup, round_trips: Callable[[], int]
) -> None:
    a = s.fresh()
    a.indexes.ttl = 0  # nothing is trusted beyond the check that asked
    for i in range(3):
        before = round_trips()
        a[f"k{i}"] = {"note": "", "tags": ""}
        assert round_trips() == before + 1  # the probe (pipelined) each time
    with pytest.raises(TyrantUnsafeWrite, match="'city'"):
        a["x"] = {"city": ""}
    assert s.raw.rnum() == 3
