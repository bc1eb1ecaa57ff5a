"""Storage adapter lifecycle: built connected, RuntimeError on misuse."""

from __future__ import annotations

import pytest

from doqu import Document
from tests.doqu.memory_backend import StorageAdapter


class Thing(Document):
    structure = {"name": str}


def test_built_connected(db) -> None:
    assert db.connected and bool(db)
    assert "connected" in repr(db) and "name=" in repr(db)


def test_connect_twice_raises(db) -> None:
    with pytest.raises(RuntimeError, match="already connected"):
        db.connect()


def test_operations_on_a_disconnected_adapter_raise(db) -> None:
    pk = Thing(name="x").save(db)
    query = db.find(Thing)
    db.disconnect()
    assert not db.connected and not db
    calls = [
        lambda: db.get(Thing, pk),
        lambda: db.get_many(Thing, [pk]),
        lambda: db.get_or_create(Thing, name="x"),
        lambda: db.find(Thing),
        lambda: db.save({"name": "y"}),
        lambda: db.delete(pk),
        lambda: db.clear(),
        lambda: db.sync(),
        lambda: pk in db,
        lambda: list(db),
        lambda: len(db),
        lambda: query.count(),
        lambda: query.values("name"),
        lambda: query.delete(),
        lambda: list(query),
        lambda: query[0],
        lambda: query[:1],
        lambda: len(query),
        lambda: bool(query),
        lambda: Thing(name="z").save(db),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="not connected"):
            call()
    assert "disconnected" in repr(query)
    assert "disconnected" in repr(db)
    db.disconnect()  # closing twice is harmless
    query.where(name="x")  # building a query sends nothing


def test_reconnect_keeps_working_with_the_same_data(db) -> None:
    pk = Thing(name="x").save(db)
    db.reconnect()
    assert db.get(Thing, pk)["name"] == "x"
    db.disconnect()
    db.reconnect()
    assert db.connected and len(db) == 1
    db.disconnect()
    db.connect()
    assert pk in db


def test_context_manager_disconnects() -> None:
    with StorageAdapter(name="test-context") as storage:
        assert storage.connected
    assert not storage.connected


def test_empty_database_is_still_true(db) -> None:
    assert len(db) == 0 and bool(db)


def test_subclass_overrides_are_guarded_once() -> None:
    class Sub(StorageAdapter):
        def get(self, doc_class, primary_key):
            return super().get(doc_class, primary_key)

    storage = Sub(name="test-sub")
    storage.disconnect()
    with pytest.raises(RuntimeError):
        storage.get(Thing, "1")
    assert Sub.get.__wrapped__.__name__ == "get"  # type: ignore[attr-defined]
    assert not hasattr(Sub.get.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]
