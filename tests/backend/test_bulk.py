"""db.save_many / db.delete_many: bulk documents in a few round trips."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from doqu import Document, ValidationError
from doqu.validators import Required
from doqu_tyrant import StorageAdapter
from doqu_tyrant.bulk import BulkWriteConnectionError, BulkWriteError
from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.client import Connection
from tests.backend.conftest import Requests
from tests.conftest import ServerFactory
from tests.section10 import Section10Proxy

N = 10_000


class Thing(Document):
    structure = {"name": str, "n": int, "ratio": float, "money": Decimal, "flag": bool,
                 "day": datetime.date, "at": datetime.datetime, "tags": list, "note": str,
                 "other": "self"}
    validators = {"name": [Required()]}


def thing(i: int) -> Thing:
    return Thing(
        name=f"thing {i} ✓", n=i * 7 - 3, ratio=i / 3, money=Decimal(i) / 8 - 1,
        flag=bool(i % 2), day=datetime.date(1900 + i % 200, 1 + i % 12, 1 + i % 28),
        at=datetime.datetime(2000, 1, 1, i % 24, i % 60, i % 60),
        tags=[f"t{i % 5}", "x y"] if i % 3 else [], note=None if i % 4 else f"n{i}",
    )


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many exchanges the blocking client made (a pipeline or a single request)."""
    calls = []
    many, one = Connection.request_many, Connection.request

    def counting_many(self: Connection, frame: bytes, commands: list[int]) -> list[p.Reply]:
        calls.append(len(commands))
        return many(self, frame, commands)

    def counting_one(self: Connection, frame: bytes, command: int) -> p.Reply:
        calls.append(1)
        return one(self, frame, command)

    monkeypatch.setattr(Connection, "request_many", counting_many)
    monkeypatch.setattr(Connection, "request", counting_one)
    return lambda: len(calls)


def test_ten_thousand_documents_round_trip_exactly(
    db: StorageAdapter, raw: Tyrant, round_trips: Callable[[], int]
) -> None:
    docs = [thing(i) for i in range(N)]
    db.client.indexes.ttl = None  # (on a slow machine the probe's answer could expire first)
    keys = db.save_many(docs)
    assert round_trips() == 3  # the probe of the empty columns, the keys, the records
    assert keys == [doc.pk for doc in docs] and len(set(keys)) == N
    assert keys == [str(i) for i in range(1, N + 1)]  # the table's counter, in order
    loaded = db.get_many(Thing, keys)
    # (an unset text field is stored as "" and reads back as "", as with save())
    expected = [{**dict(thing(i)), "note": thing(i)["note"] or ""} for i in range(N)]
    assert [dict(doc) for doc in loaded] == expected
    # exactly the records save() writes
    single = thing(N - 1)
    single_key = single.save(db)
    assert raw[single_key] == raw[keys[-1]]
    assert db.save_many([]) == []


def test_an_invalid_document_in_the_middle_writes_nothing(
    db: StorageAdapter, requests: Requests
) -> None:
    bad_value = [thing(i) for i in range(100)]
    bad_value[50]["money"] = Decimal("NaN")
    missing = [thing(i) for i in range(100)]
    missing[70]["name"] = None
    wrong_type = [thing(i) for i in range(100)]
    wrong_type[99]["n"] = "seven"
    bad_column = [thing(i) for i in range(100)]
    bad_column[3]["note"] = "a\0b"
    with requests() as seen:
        with pytest.raises(ValueError, match="document 50 of the 100 given.*finite") as e1:
            db.save_many(bad_value)
        with pytest.raises(ValidationError, match="document 70 of the 100.*name") as e2:
            db.save_many(missing)
        with pytest.raises(ValidationError, match="document 99 .*n: Expected int"):
            db.save_many(wrong_type)
        with pytest.raises(ValueError, match="document 3 .*'note'.*NUL"):
            db.save_many(bad_column)
        with pytest.raises(TypeError, match="item 1 is dict"):
            db.save_many([thing(0), {"name": "x"}])  # type: ignore[list-item]
    assert e1.value.document_index == 50 and list(e2.value.errors) == ["name"]
    assert set(seen.delta()) <= {"misc"}  # at most the index probes (searches): no write
    assert len(db) == 0 and all(doc.pk is None for doc in bad_value + missing)
    assert thing(0).save(db) == "1"  # no generated key was taken


def test_keys_never_collide_with_records_saved_by_hand(db: StorageAdapter, raw: Tyrant) -> None:
    for key in ("2", "3", "7"):
        raw.table_put(key, {"name": f"by hand {key}"})
    docs = [thing(i) for i in range(8)]
    keys = db.save_many(docs)
    # the taken numbers are skipped (their documents take the next free ones)
    assert sorted(keys, key=int) == ["1", "4", "5", "6", "8", "9", "10", "11"]
    assert keys == [doc.pk for doc in docs]
    for key in ("2", "3", "7"):
        assert raw[key] == {"name": f"by hand {key}"}
    assert [db.get(Thing, k)["n"] for k in keys] == [doc["n"] for doc in docs]


def test_documents_with_keys_are_written_as_save_writes_them(
    db: StorageAdapter, raw: Tyrant
) -> None:
    keys = db.save_many([thing(i) for i in range(5)])
    loaded = db.get_many(Thing, keys)
    for doc in loaded:
        doc["n"] = -1
    named = Thing(name="chosen")
    named.save(db)
    named["name"] = "renamed"
    raw.table_put(keys[0], {"name": "x", "extra": "gone after the put"})
    assert db.save_many([*loaded, named]) == [*keys, named.pk]
    assert all(db.get(Thing, k)["n"] == -1 for k in keys)
    assert "extra" not in raw[keys[0]] and raw[named.pk]["name"] == "renamed"
    assert len(db) == 6
    copy = StorageAdapter(url=f"tyrant://{db.host}:{db.port}")
    try:  # documents of another storage get new keys (as save() gives them) ...
        assert copy.save_many(loaded[:2]) == ["7", "8"]
        # ... unless they keep them
        assert copy.save_many(loaded[2:3], keep_keys=True) == [keys[2]]
    finally:
        copy.disconnect()


def test_two_documents_under_one_key_are_written_in_order(db: StorageAdapter,
                                                          raw: Tyrant) -> None:
    keys = db.save_many([thing(1), thing(2)])
    copy = StorageAdapter(url=f"tyrant://{db.host}:{db.port}")
    try:  # (documents of another storage, so that being saved here shows)
        first, second = copy.get_many(Thing, keys)
        twin = copy.get(Thing, first.pk)
    finally:
        copy.disconnect()
    twin["name"], first["name"] = "written first", "written last"
    assert db.save_many([twin, second, first], keep_keys=True) == [keys[0], keys[1], keys[0]]
    assert raw[keys[0]]["name"] == "written last" and len(db) == 2
    assert twin.storage is second.storage is first.storage is db  # as three save() calls


def test_unsaved_referenced_documents_are_saved_first(db: StorageAdapter) -> None:
    parent = thing(1)
    child = thing(2)
    child["other"] = parent
    grandchild = thing(3)
    grandchild["other"] = child
    keys = db.save_many([grandchild, thing(4), child])
    assert parent.pk is not None and keys == [grandchild.pk, keys[1], child.pk]
    assert db.get(Thing, grandchild.pk)["other"].pk == child.pk
    assert db.get(Thing, child.pk)["other"].pk == parent.pk
    assert len(db) == 4


def test_delete_many(db: StorageAdapter, round_trips: Callable[[], int]) -> None:
    keys = db.save_many([thing(i) for i in range(20)])
    before = round_trips()
    db.delete_many(keys[:10])
    assert round_trips() == before + 1 and len(db) == 10
    with pytest.raises(KeyError) as info:
        db.delete_many([keys[10], "nope", keys[0], int(keys[11]), keys[10]])
    assert info.value.args[0] == ["nope", keys[0]]
    assert keys[10] not in db and keys[11] not in db and len(db) == 8
    with pytest.raises(KeyError, match="'gone'"):
        db.delete_many(["gone"])
    db.delete_many([])
    with pytest.raises(TypeError):
        db.delete_many("abc")


def test_a_query_delete_is_one_request(db: StorageAdapter, requests: Requests) -> None:
    db.save_many([thing(i) for i in range(30)])
    with requests() as seen:
        db.find(Thing).where(flag=True).delete()
    assert seen.delta() == {"misc": 1} and len(db) == 15


def test_unset_fields_in_indexed_columns_are_left_out(db: StorageAdapter, raw: Tyrant) -> None:
    raw.setindex("note", "lexical")
    try:
        docs = [thing(i) for i in range(8)]
        keys = db.save_many(docs)
        assert ["note" in raw[k] for k in keys] == [i % 4 == 0 for i in range(8)]
        assert [db.get(Thing, k)["note"] for k in keys] == [doc["note"] for doc in docs]
        docs[1]["note"] = ""
        with pytest.raises(ValueError, match="document 1 .*'note'.*lexical index"):
            db.save_many(docs)
    finally:
        raw.setindex("note", "void")


# -- broken connections ------------------------------------------------------------------------


@pytest.fixture
def cutting(server_factory: ServerFactory) -> Iterator[Callable[..., tuple[StorageAdapter,
                                                                             Tyrant]]]:
    """A bundled server behind a proxy that drops the connection at the n-th PUTKEEP
    (or request of ``command``)."""
    opened: list[Section10Proxy | StorageAdapter | Tyrant] = []

    def make(at: int, then: Callable[[], None] | None = None,
             command: int = p.PUTKEEP) -> tuple[StorageAdapter, Tyrant]:
        server = server_factory("table")
        seen = [0]

        def cut(request: p.Request) -> bool:
            if request.command != command:
                return False
            seen[0] += 1
            if seen[0] == at:
                if then is not None:
                    then(server)  # type: ignore[call-arg]
                return True
            return False

        proxy = Section10Proxy(server.address, cut=cut)
        db = StorageAdapter(url=proxy.url, timeout=10)
        raw = Tyrant(server.host, server.port, timeout=10)
        opened.extend([proxy, db, raw])
        return db, raw

    yield make
    for thing_ in reversed(opened):
        if isinstance(thing_, StorageAdapter):
            thing_.disconnect()
        else:
            thing_.close()


def test_a_dropped_connection_reports_which_documents_were_stored(cutting: Callable) -> None:
    db, raw = cutting(at=3000)
    docs = [thing(i) for i in range(5000)]
    with pytest.raises(BulkWriteConnectionError) as info:
        db.save_many(docs)
    err = info.value
    assert isinstance(err, ConnectionError) and isinstance(err, BulkWriteError)
    assert err.unknown == []  # the client could ask the server afterwards
    assert len(err.saved) + len(err.unsaved) == 5000 and 0 < len(err.saved) <= 2999
    assert raw.rnum() == len(err.saved)
    for doc in err.saved:
        assert doc.pk is not None and raw[doc.pk]["name"] == doc["name"]
    assert all(doc.pk is None for doc in err.unsaved)
    assert "stored" in str(err) and "of 5000 documents" in str(err)
    # the rest can be saved again: nothing is stored twice
    keys = db.save_many(err.unsaved)
    assert raw.rnum() == 5000 and len({doc.pk for doc in docs}) == 5000 and len(keys) == len(
        err.unsaved)


def test_a_connection_dropped_while_taking_keys_stores_nothing(cutting: Callable) -> None:
    db, raw = cutting(at=500, command=p.MISC)  # (the 500th genuid of the pipeline)
    docs = [thing(i) for i in range(2000)]
    with pytest.raises(BulkWriteConnectionError) as info:
        db.save_many(docs)
    err = info.value
    assert "taking generated keys failed" in str(err) and "0 of 2000 documents" in str(err)
    assert err.saved == [] and err.unknown == [] and err.unsaved == docs
    assert all(doc.pk is None for doc in docs) and raw.rnum() == 0
    assert len(db.save_many(docs)) == 2000 and raw.rnum() == 2000  # (asked again: stored)


def test_a_server_gone_mid_batch_leaves_the_in_flight_documents_unknown(
    cutting: Callable,
) -> None:
    db, raw = cutting(at=100, then=lambda server: server.kill())
    docs = [thing(i) for i in range(300)]
    with pytest.raises(BulkWriteConnectionError) as info:
        db.save_many(docs)
    err = info.value
    assert err.saved == [] and len(err.unknown) == 300 and err.unsaved == []
    assert all(doc.pk is None for doc in docs)


def test_a_refused_record_is_reported_with_what_was_stored(server_factory: ServerFactory) -> None:
    # The bundled server refuses what a real ttserver aborts on: a client that has
    # not seen an index created meanwhile by another client.
    server = server_factory("table")
    db = StorageAdapter(server.host, server.port, timeout=10)
    raw = Tyrant(server.host, server.port, timeout=10)
    try:
        db.client.indexes.ttl = None
        db.save_many([thing(0)])
        assert db.client.index_kinds(["note"]) == {"note": None}
        raw.setindex("note", "lexical")
        docs = [thing(i) for i in range(1, 9)]  # notes of 1, 2, 3, 5, 6, 7 are unset
        with pytest.raises(BulkWriteError, match="refused to store 6 documents, the first "
                           "being document 0") as info:
            db.save_many(docs)
        err = info.value
        assert err.saved == [docs[3], docs[7]] and err.unknown == []
        assert err.unsaved == [d for i, d in enumerate(docs) if i not in (3, 7)]
        assert raw.rnum() == 3 and all(doc.pk is None for doc in err.unsaved)
        assert len(db.save_many(err.unsaved)) == 6  # the index is known now
        assert raw.rnum() == 9
    finally:
        raw.close()
        db.disconnect()
