"""A server that goes away: the error surfaces, the next call reconnects by itself."""

from __future__ import annotations

import pytest

from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import TyrantConnectionError
from tests.backend.models import Item
from tests.conftest import ServerFactory
from tests.servers import ServerProcess


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory("table")


def test_killed_server_raises_then_recovers_after_restart(server: ServerProcess) -> None:
    db = StorageAdapter(url=server.url, timeout=5, pool_size=2)
    keys = [Item(text=str(i), number=i).save(db) for i in range(5)]
    server.kill()
    for call in (lambda: db.get(Item, keys[0]), lambda: db.save({"a": "b"}),
                 lambda: db.find(Item).count(), lambda: [d for d in db.find(Item)],
                 lambda: db.get_many(Item, keys), lambda: len(db)):
        with pytest.raises(TyrantConnectionError):
            call()
    assert db.connected  # no explicit reconnect needed
    server.start()
    assert [d["number"] for d in db.get_many(Item, keys)] == [0, 1, 2, 3, 4]
    assert db.find(Item).where(number__gte=3).count() == 2
    assert Item(text="after").save(db) == "6"
    db.disconnect()


def test_restart_between_calls_is_invisible(server: ServerProcess) -> None:
    db = StorageAdapter(url=server.url, timeout=5)
    key = Item(text="x").save(db)
    server.restart()
    assert db.get(Item, key)["text"] == "x"
    db.reconnect()
    assert key in db
    db.disconnect()


def test_explicit_reconnect_after_a_failure(server: ServerProcess) -> None:
    db = StorageAdapter(url=server.url, timeout=5)
    server.kill()
    with pytest.raises(TyrantConnectionError):
        db.find(Item).count()
    with pytest.raises(TyrantConnectionError):
        db.reconnect()  # the server is still down: connect() fails
    assert not db.connected
    server.start()
    db.connect()
    assert len(db) == 0
    db.disconnect()
