"""Generated searches answered by one server and by three shards holding the same
records: the answers must agree.

The records are generated with canonical numbers (no index quirks, see
test_goldens.py), ties on purpose. Agreement means: equal counts; the same
records; the same sequence of sort values (equal values may come in another
order: a single server gives ties in its storage order); under a limit, as
many records, all from the unlimited answer; after a delete, the same records
left.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from doqu_tyrant.tyrant import ShardedTyrant, Tyrant
from doqu_tyrant.tyrant.tcorder import column_key, pk_key
from tests.servers import ServerProcess

SEED = 20240612
RNG = random.Random(SEED)
INDEXES = [("name", 0), ("age", 1), ("tags", 2)]
NAMES = ["ann", "Ann", "bob", "cyd", "dan", "émile", "zoë", "Åsa", "x", "ann ", "b"]
CITIES = ["Oslo", "Rome", "", "Paris, TX", "oslo", "Zürich"]
TAGS = ["a", "b", "c", "a b", "b,c", "a c d", ""]


def _record(i: int) -> tuple[str, dict[str, str]]:
    pk = RNG.choice([f"{i}", f"u:{i}", f"k{i:04d}", f"-{i}", f"{i}.5", f"ключ{i}"])
    rec: dict[str, str] = {}
    if RNG.random() < 0.9:
        rec["name"] = RNG.choice(NAMES)
    if RNG.random() < 0.85:
        rec["age"] = str(RNG.randint(-20, 120))
    if RNG.random() < 0.8:
        rec["score"] = RNG.choice([f"{RNG.randint(-9, 9)}", f"{RNG.uniform(-50, 50):.2f}",
                                   f"{RNG.uniform(0, 5):.1f}"])
    if RNG.random() < 0.8:
        rec["city"] = RNG.choice(CITIES)
    if RNG.random() < 0.7:
        rec["tags"] = RNG.choice(TAGS)
    items = list(rec.items())
    RNG.shuffle(items)
    return pk, dict(items)


RECORDS: dict[str, dict[str, str]] = dict(_record(i) for i in range(400))

CONDITIONS = [
    [b"name", b"2", b"a"], [b"name", b"0", b"bob"], [b"name", b"16777216", b"ann"],
    [b"age", b"10", b"30"], [b"age", b"11", b"50"], [b"age", b"13", b"10 60"],
    [b"age", b"33554442", b"40"], [b"score", b"9", b"0"], [b"score", b"12", b"2.5"],
    [b"city", b"0", b"Oslo"], [b"city", b"16777216", b""], [b"tags", b"5", b"a,c"],
    [b"tags", b"4", b"b"], [b"", b"2", b"u:"], [b"", b"16777218", b"k"], [b"city", b"7", b"o"],
]
ORDER_COLUMNS = [b"name", b"age", b"score", b"city", b""]
GET_COLUMNS = [b"name", b"age", b"city", b"score", b"nothing"]


def _sub() -> list[bytes]:
    return [b"\0".join([b"addcond", *RNG.choice(CONDITIONS)])
            for _ in range(RNG.randint(0, 2))]


def _order() -> tuple[bytes, int]:
    return RNG.choice(ORDER_COLUMNS), RNG.randint(0, 3)


def _query() -> dict[str, Any]:
    """A random search: its arguments and what the comparison needs to know."""
    q: dict[str, Any] = {"order": None, "limited": False, "out": False, "parts": 1}
    args = _sub()
    if RNG.random() < 0.6:
        q["order"] = _order()
        args.append(b"setorder\0%s\0%d" % q["order"])
    if RNG.random() < 0.4:
        q["limited"] = True
        args.append(b"setlimit\0%d\0%d" % (RNG.randint(0, 40), RNG.randint(0, 30)))
    if RNG.random() < 0.3:
        q["parts"] = RNG.randint(2, 3)
        q["mstype"] = RNG.randint(0, 2)
        for _ in range(q["parts"] - 1):
            args.append(b"next")
            args += _sub() or [b"addcond\0name\0" + b"2\0" + RNG.choice([b"a", b"b", b"z"])]
            if RNG.random() < 0.4:
                args.append(b"setorder\0%s\0%d" % _order())
        args.append(b"mstype\0%d" % q["mstype"])
    shape = RNG.random()
    if shape < 0.15 and q["parts"] == 1:
        args.append(b"count")
        q["count"] = True
    elif shape < 0.35:
        args.append(b"get")
        q["get"] = "all"
    elif shape < 0.5:
        names = RNG.sample(GET_COLUMNS, RNG.randint(1, 3)) + [b""]
        RNG.shuffle(names)
        args.append(b"\0".join([b"get", *names]))
        q["get"] = "names"
    if q["parts"] == 1 and RNG.random() < 0.12 and not q.get("count"):
        q["out"] = True
        if q["limited"]:  # a total order, so that exactly one set can be deleted
            args = [a for a in args if not a.startswith(b"setorder")]
            q["order"] = (b"", RNG.randint(0, 3))
            args.insert(0, b"setorder\0\0%d" % q["order"][1])
        args.append(b"out")
    q["args"] = args
    return q


QUERIES = [_query() for _ in range(160)]


def _load(client: Any) -> None:
    client.vanish()
    with client.pipeline() as pl:
        for pk, rec in RECORDS.items():
            pl.table_put(pk, rec)
        pl.execute()


@pytest.fixture(scope="module")
def pair(shard_urls: list[str], tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Tyrant, ShardedTyrant]]:
    server = ServerProcess(str(tmp_path_factory.mktemp("single") / "single.tct"))
    single = Tyrant.from_url(server.url, timeout=30)
    sharded = ShardedTyrant(shard_urls, timeout=30)
    for client in (single, sharded):
        for column, kind in INDEXES:
            client.setindex(column, kind)
        _load(client)
    try:
        yield single, sharded
    finally:
        for column, _ in INDEXES:
            sharded.setindex(column, "void")
        sharded.vanish()
        sharded.close()
        single.close()
        server.close()


def _pk(element: bytes, q: dict[str, Any]) -> str:
    if "get" not in q:
        return element.decode()
    parts = element.split(b"\0")
    cols = dict(zip(parts[::2], parts[1::2]))
    return cols[b""].decode()


def _sort_keys(result: list[bytes], q: dict[str, Any]) -> list[Any]:
    column, kind = q["order"]
    if not column:
        pkey, _ = pk_key(kind)
        return [pkey(_pk(e, q).encode()) for e in result]
    ckey, _ = column_key(kind)
    name = column.decode()
    return [ckey(None if (v := RECORDS[_pk(e, q)].get(name)) is None else v.encode())
            for e in result]


def _unlimited(q: dict[str, Any]) -> list[bytes]:
    return [a for a in q["args"] if not a.startswith((b"setlimit", b"count", b"out"))]


@pytest.mark.parametrize("q", QUERIES, ids=[f"q{i:03d}" for i in range(len(QUERIES))])
def test_same_answer(pair: tuple[Tyrant, ShardedTyrant], q: dict[str, Any]) -> None:
    single, sharded = pair
    args = q["args"]
    if q["out"]:
        one = single.misc("search", args, 0)
        many = sharded.misc("search", args, 0)
        assert Counter(many) == Counter(one)
        left = single.misc("search", [], 1)
        assert Counter(sharded.misc("search", [], 1)) == Counter(left)
        _load(single)
        _load(sharded)
        return
    one = single.misc("search", args, 1)
    many = sharded.misc("search", args, 1)
    if q.get("count"):
        assert many == one
        return
    compound = q["parts"] > 1
    if q["limited"]:
        assert len(many) == len(one)
        everything = set(sharded.misc("search", _unlimited(q), 1))
        assert set(many) <= everything and len(set(many)) == len(many)
    else:
        assert Counter(many) == Counter(one)
    final_order = q["order"]
    if compound and q["mstype"] == 0 and final_order is not None and not final_order[0]:
        final_order = None  # a union is not re-sorted by the primary key
    if compound and q["mstype"] == 1:
        final_order = None  # an intersection keeps its last part's order
    if final_order is not None:
        q2 = dict(q, order=final_order)
        assert _sort_keys(many, q2) == _sort_keys(one, q2)


UNION_PARTS = [
    [b"addcond\0name\x002\0a", b"setorder\0\x000"],
    [b"addcond\0age\x0010\x0060", b"setorder\0\x001"],
    [b"addcond\0city\x000\0Oslo", b"setorder\0\x002"],
    [b"addcond\0\x00\x0016777216\x00", b"addcond\0name\x007\0^$"],  # nothing
]


@pytest.mark.parametrize("window", [None, (5, 0), (14, 3), (10, 50), (1, 7)])
@pytest.mark.parametrize("parts", [(3, 0, 1), (0, 1), (1, 2, 0), (2, 1)])
def test_unions_of_sorted_parts_match_exactly(pair: tuple[Tyrant, ShardedTyrant],
                                              parts: tuple[int, ...],
                                              window: tuple[int, int] | None) -> None:
    """A union not re-sorted is its parts one after another, each in its own
    order (here a total one: the key): the same list on one server and on
    shards, windows and limited later parts included."""
    single, sharded = pair
    args: list[bytes] = []
    for i, part in enumerate(parts):
        if i:
            args.append(b"next")
        args += UNION_PARTS[part]
        if i == 0 and window is not None:
            args.append(b"setlimit\0%d\0%d" % window)
        if i == 2:
            args.append(b"setlimit\x004\x002")  # a later part keeps its first 6
    args.append(b"mstype\x000")
    one = single.misc("search", args, 1)
    assert one, "a union finding nothing would test nothing"
    assert sharded.misc("search", args, 1) == one
    assert sharded.misc("search", [*args, b"get\0name\0"], 1) == single.misc(
        "search", [*args, b"get\0name\0"], 1)
