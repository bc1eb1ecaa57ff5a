"""doqu's ``db.connection`` is a pyrant ``Tyrant`` on the adapter's connections;
pyrant costs nothing to a program that does not use it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

import pyrant
from doqu import Document
from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import Tyrant
from tests.servers import ROOT


class Person(Document):
    structure = {"name": str, "age": int}


@pytest.fixture
def db(native: Tyrant, tyrant_url: str) -> Iterator[StorageAdapter]:
    storage = StorageAdapter(url=tyrant_url, timeout=10, pool_size=2)
    yield storage
    storage.disconnect()


def test_connection_is_a_pyrant_tyrant_on_the_same_pool(db: StorageAdapter) -> None:
    conn = db.connection
    assert isinstance(conn, pyrant.Tyrant)
    assert conn.proto.client is db.client  # same client, same pool of sockets
    assert db.connection is conn  # made once
    assert conn.table_enabled


def test_connection_sees_documents(db: StorageAdapter) -> None:
    pk = Person(name="Alice", age=30).save(db)
    conn = db.connection
    assert conn[pk] == {"name": "Alice", "age": "30"}
    assert [k for k, _ in conn.query.filter(age__gte=18)] == [pk]
    conn["p2"] = {"name": "Bob", "age": 25}
    assert db.get(Person, "p2")["age"] == 25


def test_connection_follows_reconnect(db: StorageAdapter) -> None:
    first = db.connection
    db.reconnect()
    second = db.connection
    assert second is not first and second.proto.client is db.client
    db.disconnect()
    with pytest.raises(RuntimeError):
        db.connection  # noqa: B018


def test_iteration_with_a_small_pool(db: StorageAdapter) -> None:
    # items() reads records while it walks the keys: it must not hold one of
    # the pool's two connections for the whole walk.
    db.connection.multi_set({f"k{i}": {"i": str(i)} for i in range(300)})
    assert len(db.connection.items()) == 300


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_doqu_tyrant_does_not_import_pyrant(tyrant_url: str) -> None:
    code = (
        "import sys, doqu, doqu_tyrant, doqu_tyrant.storage, doqu_tyrant.tyrant\n"
        f"db = doqu.get_db({{'backend': 'doqu_tyrant', 'url': {tyrant_url!r}}})\n"
        "len(db)\n"
        "print('pyrant' in sys.modules)\n"
        "db.connection\n"
        "print('pyrant' in sys.modules)\n"
    )
    assert _run(code).split() == ["False", "True"]


def test_importing_pyrant_connects_nowhere() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('a socket was opened')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import pyrant, pyrant.query, pyrant.protocol, pyrant.utils, pyrant.exceptions\n"
        "print('ok')\n"
    )
    assert _run(code) == "ok"
