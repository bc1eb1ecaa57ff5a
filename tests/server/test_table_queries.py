"""Replay tests/conformance/table-queries.json against the bundled server, strictly.

Every query's result list must equal the recorded one exactly, unordered and
tie-dependent ones included: the server runs real Tokyo Cabinet on a table
loaded exactly as the recording was (see tests/conformance/TABLE-QUERIES.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.conformance_data import encode_query_args, table_queries
from tests.server.wire import Wire
from tests.servers import ServerProcess

DATA = table_queries()
QUERIES = DATA["queries"]


def load(wire: Wire) -> None:
    """Steps 1-3 of the README: empty table, fresh indexes, records in load order."""
    assert wire.call(p.encode_simple(p.VANISH)).ok
    for column, _type in DATA["indexes"]:
        wire.misc(b"setindex", [column.encode(), b"9999"])  # fails when there is none
    for column, itype in DATA["indexes"]:
        assert wire.misc(b"setindex", [column.encode(), str(itype).encode()]) == []
    records = DATA["records"]
    frames = []
    for pk in DATA["load_order"]:
        columns = [(k.encode(), v.encode()) for k, v in records[pk].items()]
        frames.append(p.encode_put(pk.encode(), p.pack_record(columns)))
    replies = wire.pipeline(frames)
    assert all(r.ok for r in replies)
    assert wire.rnum() == len(DATA["load_order"])


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    directory = tmp_path_factory.mktemp("table-queries")
    with ServerProcess(str(directory / "queries.tct")) as server, Wire(server.address) as conn:
        load(conn)
        yield conn


def expected(query: dict) -> list[bytes]:
    return [item.encode() for item in query["result"]]


@pytest.mark.parametrize("query", QUERIES, ids=[q["id"] for q in QUERIES])
def test_query(wire: Wire, query: dict) -> None:
    mutates = query.get("mutates", False)
    reply = wire.call(
        p.encode_misc(b"search", encode_query_args(query["args"]), 0 if mutates else 1)
    )
    assert reply.ok is (query.get("code", 0) == 0)
    assert reply.value == expected(query)  # strict: exact order, ties included
    if mutates:
        remaining = wire.misc(b"search", [], 1)
        assert remaining is not None
        assert Counter(remaining) == Counter(k.encode() for k in query["remaining_after"])
        load(wire)


def test_every_query_is_replayed() -> None:
    assert len(QUERIES) == 353
