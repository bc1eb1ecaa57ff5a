"""Documents with unset fields whose columns have lexical or decimal indexes.

Tokyo Cabinet cannot index an empty value: a real ttserver aborts on one
(spec §10), the bundled server refuses the write. The backend leaves such
an unset field's column out (it reads back as ``None`` all the same) and
refuses other empty values there before sending anything.

The tests talk to the server through :class:`tests.section10.Section10Proxy`,
which never forwards a request that aborts a real ttserver and records it:
every test ends by checking that the document layer sent none.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from doqu import Document
from doqu.backends import ImproperlyConfigured
from doqu_tyrant import StorageAdapter
from doqu_tyrant import storage as storage_module
from doqu_tyrant.tyrant import Tyrant, TyrantCommandError
from doqu_tyrant.tyrant import protocol as p
from tests.conftest import ServerFactory
from tests.section10 import Section10Proxy
from tests.server.wire import parse_url

INDEXES = {"city": "lexical", "age": "decimal", "born": "decimal", "labels": "lexical",
           "tags": "token", "bio": "qgram"}


class Person(Document):
    structure = {"name": str, "city": str, "age": int, "born": datetime.date, "labels": list,
                 "tags": list, "bio": str, "note": str}


@dataclass
class Setup:
    db: StorageAdapter  # through the proxy
    raw: Tyrant  # straight to the server
    proxy: Section10Proxy


def counters(raw: Tyrant) -> dict[str, int]:
    return {k[4:]: int(v) for k, v in raw.stat().items() if k.startswith("cnt_")}


def sent(before: dict[str, int], raw: Tyrant) -> dict[str, int]:
    after = counters(raw)
    changed = {k: after[k] - before.get(k, 0) for k in after if k != "stat"}
    return {k: v for k, v in changed.items() if v and not k.endswith("_miss")}


@pytest.fixture
def s(tyrant_url: str) -> Iterator[Setup]:
    raw = Tyrant.from_url(tyrant_url, timeout=10)
    raw.vanish()
    for column, kind in INDEXES.items():
        raw.setindex(column, kind)
    proxy = Section10Proxy(parse_url(tyrant_url),
                           ordered=[c for c, k in INDEXES.items() if k in ("lexical", "decimal")])
    db = StorageAdapter(url=proxy.url, timeout=10)
    try:
        yield Setup(db, raw, proxy)
        assert proxy.violations == []
    finally:
        db.disconnect()
        proxy.close()
        raw.vanish()
        for column in INDEXES:
            raw.setindex(column, "void")
        raw.close()


def test_unset_indexed_fields_save_and_read_back_as_none(s: Setup) -> None:
    key = Person(name="Alice").save(s.db)
    # left out: the lexical/decimal columns; kept as "" (the Python 2 format): the others
    assert s.raw[key] == {"name": "Alice", "tags": "", "bio": "", "note": ""}
    alice = s.db.get(Person, key)
    assert dict(alice) == {"name": "Alice", "city": None, "age": None, "born": None,
                           "labels": None, "tags": [], "bio": "", "note": ""}
    alice["city"] = "Oslo"
    alice["age"] = 30
    alice.save()
    assert s.raw[key]["city"] == "Oslo" and "born" not in s.raw[key]
    alice["city"] = None
    alice.save()
    assert "city" not in s.raw[key] and s.raw[key]["age"] == "30"
    assert s.db.save({"name": "Bob", "age": None}, "bob") == "bob"
    assert s.raw["bob"] == {"name": "Bob"}
    bob, created = s.db.get_or_create(Person, name="Cid")
    assert created and s.db.get(Person, bob.pk)["city"] is None
    q = s.db.find(Person)
    assert {d.pk for d in q.where(city=None)} == {key, "bob", bob.pk}
    assert {d.pk for d in q.where(age__gte=0)} == {key}
    assert [d.pk for d in q.order_by("-age")][0] == key


def test_bulk_saves_leave_them_out_too(s: Setup) -> None:
    docs = [Person(name=f"p{i}", city="Oslo" if i % 2 else None, age=i if i % 3 else None)
            for i in range(50)]
    keys = s.db.save_many([*docs, docs[0]])
    assert keys[-1] == keys[0] and len(s.db) == 50
    for doc in docs:
        stored = s.raw[doc.pk]
        assert ("city" in stored) == (doc["city"] is not None)
        assert ("age" in stored) == (doc["age"] is not None)
        assert dict(s.db.get(Person, doc.pk))["city"] == doc["city"]
    docs[7]["labels"] = []
    with pytest.raises(ValueError, match="document 7 .*'labels'"):
        s.db.save_many(docs)
    s.db.delete_many(keys[:10])
    assert len(s.db) == 40


def test_other_empty_values_in_such_columns_are_refused_before_sending(s: Setup) -> None:
    for fields in ({"city": ""}, {"labels": []}):
        before = counters(s.raw)
        with pytest.raises(ValueError, match=f"field '{next(iter(fields))}'.*index"):
            Person(name="x", **fields).save(s.db)
        assert "putkeep" not in str(sent(before, s.raw)) and "genuid" not in str(s.raw.stat())
    with pytest.raises(ValueError, match="'city'"):
        s.db.save({"city": ""}, "k")
    assert len(s.db) == 0
    assert Person(name="y").save(s.db) == "1"  # no generated key was spent


def test_probes_are_sent_once(s: Setup) -> None:
    Person(name="a").save(s.db)
    before = counters(s.raw)
    for name in "bcd":
        Person(name=name).save(s.db)
    assert sent(before, s.raw) == {"misc": 6}  # genuid + putkeep each, no probe


def test_a_refused_write_is_told_apart_from_a_taken_key(server_factory: ServerFactory) -> None:
    # The bundled server refuses what a real ttserver aborts on; this needs a
    # client that does not know an index another client has just created.
    server = server_factory("table")
    db = StorageAdapter(server.host, server.port, timeout=10)
    raw = Tyrant(server.host, server.port, timeout=10)
    db.client.indexes.ttl = None
    assert set(db.client.index_kinds(Person.structure).values()) == {None}
    raw.setindex("city", "lexical")
    before = counters(raw)
    with pytest.raises(TyrantCommandError, match="refused to store the record '1'.*'city'"):
        Person(name="x").save(db)
    assert sent(before, raw) == {"misc": 2, "vsiz": 1}  # genuid, putkeep, the key check
    assert Person(name="x").save(db) == "2"  # the index is known now: city left out
    assert raw["2"]["name"] == "x" and "city" not in raw["2"]
    raw.table_put("3", {"name": "by hand"})
    assert Person(name="y").save(db) == "4"  # a taken key: the next number
    assert raw["3"] == {"name": "by hand"}
    db.client.forget_indexes()
    db.client.indexes.ttl = None
    assert db.client.index_kinds(["zz"]) == {"zz": None}
    raw.setindex("zz", "decimal")
    before = counters(raw)
    with pytest.raises(TyrantCommandError, match="refused to store the record 'k'"):
        db.save({"zz": None}, "k")
    assert sent(before, raw) == {"misc": 1}
    raw.close()
    db.disconnect()


def test_an_oversize_value_is_refused_before_a_key_is_taken(
    s: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert storage_module.MAX_LENGTH == p.MAX_LENGTH  # the server's limit (256 MiB)
    monkeypatch.setattr(storage_module, "MAX_LENGTH", 1000)
    for value in ("x" * 1001, "é" * 501, "x" * 251):  # (251 x 4 bytes could exceed it)
        if len(value.encode()) <= 1000:
            continue
        with pytest.raises(ValueError, match="at most 1000"):
            Person(name=value).save(s.db)
    Person(name="x" * 251).save(s.db)
    assert Person(name="fits").save(s.db) == "2"  # no key was spent on the refusals


def test_settings_can_declare_the_indexes(tyrant_url: str, raw: Tyrant) -> None:
    declared = {"city": "lexical", "age": "DECIMAL", "tags": "token"}
    try:
        db = StorageAdapter(url=tyrant_url, indexes=declared)
        assert raw.index_kinds(["city", "age", "tags", "name"]) == {
            "city": "lexical", "age": "decimal", "tags": "token", "name": None}
        before = counters(raw)
        key = db.save({"name": "a", "city": None, "age": None, "tags": None})
        assert sent(before, raw) == {"misc": 2}  # genuid + putkeep: the kinds are known
        assert raw[key] == {"name": "a", "tags": ""}
        db.disconnect()
        before = counters(raw)
        again = StorageAdapter(url=tyrant_url, indexes=declared)
        assert sent(before, raw) == {"misc": 3}  # the probes; nothing to create
        again.disconnect()
        with pytest.raises(ImproperlyConfigured, match="token index on 'city'.*lexical"):
            StorageAdapter(url=tyrant_url, indexes={"city": "token"})
        raw.table_put("e", {"note": ""})
        with pytest.raises(ImproperlyConfigured, match="'note'.*record 'e'"):
            StorageAdapter(url=tyrant_url, indexes={"note": "decimal"})
        assert raw.index_kinds(["note"]) == {"note": None}
    finally:
        for column in declared:
            raw.setindex(column, "void")
    for bad, error in (({"x": "void"}, ValueError), ({"": "lexical"}, ValueError),
                       (["x"], TypeError)):
        with pytest.raises(error):
            StorageAdapter(url=tyrant_url, indexes=bad)  # type: ignore[arg-type]
