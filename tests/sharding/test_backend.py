"""The doqu backend over three shards: ``{"backend": "doqu_tyrant", "shards": [...]}``.

(The backend's query tests in tests/backend/ run on shards too; these cover
storage operations and the settings.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import doqu
from doqu import Document, ImproperlyConfigured
from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import ShardedTyrant
from tests.conftest import ServerFactory


class Person(Document):
    structure = {"name": str, "age": int}


@pytest.fixture
def db(shard_urls: list[str]) -> Iterator[StorageAdapter]:
    storage = doqu.get_db({"backend": "doqu_tyrant", "shards": shard_urls, "timeout": 10})
    storage.clear()
    yield storage
    storage.clear()
    storage.disconnect()


def test_get_db_builds_a_sharded_adapter(db: StorageAdapter, shard_urls: list[str]) -> None:
    assert isinstance(db, StorageAdapter)
    assert isinstance(db.client, ShardedTyrant)
    assert db.shards == shard_urls
    assert "shards=" in repr(db)


def test_records_spread_and_come_back(db: StorageAdapter) -> None:
    client: ShardedTyrant = db.client  # type: ignore[assignment]
    keys = [Person(name=f"p{i}", age=i).save(db) for i in range(30)]
    assert keys == [str(n) for n in range(int(keys[0]), int(keys[0]) + 30)]  # one counter
    assert {client.server_for(k) for k in keys} == set(client.names)
    for key in keys:
        assert client.client_for(key).table_get(key) is not None  # on its own shard
    assert db.get(Person, keys[4])["name"] == "p4"
    many = db.get_many(Person, [keys[9], keys[2], keys[9]])
    assert [p["name"] for p in many] == ["p9", "p2", "p9"]
    with pytest.raises(KeyError):
        db.get_many(Person, [keys[0], "nobody"])
    with pytest.raises(KeyError):
        db.get(Person, "nobody")
    assert len(db) == 30 and keys[0] in db and "nobody" not in db
    assert sorted(db, key=int) == keys
    db.save({"name": "fixed"}, primary_key="fixed")
    assert db.get(Person, "fixed")["name"] == "fixed"
    assert client.server_for("fixed") in client.names
    db.delete(keys[0])
    with pytest.raises(KeyError):
        db.delete(keys[0])
    assert len(db) == 30
    doc, created = db.get_or_create(Person, name="p5")
    assert not created and doc.pk == keys[5]
    people = db.find(Person).where(age__gte=25).order_by("-age")
    assert [p["age"] for p in people] == [29, 28, 27, 26, 25]
    assert people.count() == 5
    people.delete()
    assert len(db) == 25
    db.clear()
    assert len(db) == 0
    assert Person(name="again").save(db) == "1"  # clear resets the counter


def test_generated_keys_skip_numbers_saved_by_hand(db: StorageAdapter) -> None:
    db.save({"name": "taken"}, primary_key="1")
    assert db.save({"name": "new"}) == "2"
    assert db.get(Person, "1")["name"] == "taken"


def test_settings_are_checked_before_connecting(shard_urls: list[str]) -> None:
    with pytest.raises(ValueError, match="either shards or"):
        StorageAdapter(shards=shard_urls, port=1978)
    with pytest.raises(ValueError, match="either shards or"):
        StorageAdapter(shards=shard_urls, url="tyrant://127.0.0.1:1")
    with pytest.raises(TypeError, match="list of URLs"):
        StorageAdapter(shards="tyrant://127.0.0.1:1978")
    with pytest.raises(ValueError, match="at least one"):
        StorageAdapter(shards=[])
    with pytest.raises(ValueError, match="unique"):
        StorageAdapter(shards=[shard_urls[0], shard_urls[0]])


def test_a_non_table_shard_is_refused(shard_urls: list[str],
                                      server_factory: ServerFactory) -> None:
    hashdb = server_factory("hash")
    with pytest.raises(ImproperlyConfigured, match=f"{hashdb.port}.*hash database"):
        StorageAdapter(shards=[*shard_urls[:2], hashdb.url])


def test_bulk_saves_and_deletes(db: StorageAdapter) -> None:
    client: ShardedTyrant = db.client  # type: ignore[assignment]
    docs = [Person(name=f"b{i}", age=i) for i in range(40)]
    keys = db.save_many(docs)
    assert keys == [d.pk for d in docs] and len(set(keys)) == 40
    assert {client.server_for(k) for k in keys} == set(client.names)
    assert [p["name"] for p in db.get_many(Person, keys)] == [f"b{i}" for i in range(40)]
    db.delete_many(keys[:30])
    assert len(db) == 10
    with pytest.raises(KeyError):
        db.delete_many([keys[0], keys[35]])
    assert len(db) == 9


def test_declared_indexes_exist_on_every_shard(shard_urls: list[str]) -> None:
    db = StorageAdapter(shards=shard_urls, timeout=10, indexes={"name": "lexical"})
    client: ShardedTyrant = db.client  # type: ignore[assignment]
    try:
        for shard in client.shards:
            shard.forget_indexes()
            assert shard.index_kinds(["name"]) == {"name": "lexical"}
        # an unset field in a lexical column is left out (the server cannot index ""),
        # whichever shard the record lands on
        keys = [Person(age=i).save(db) for i in range(12)]
        assert {client.server_for(k) for k in keys} == set(client.names)
        assert all(db.get(Person, k)["name"] is None for k in keys)
        assert all("name" not in client[k] for k in keys)
    finally:
        db.clear()
        client.setindex("name", "void")
        db.disconnect()


def test_the_pyrant_connection_needs_one_server(db: StorageAdapter) -> None:
    with pytest.raises(TypeError, match="db.client"):
        _ = db.connection
    assert db.client.host and db.client.port  # the first shard's, for code reading them
