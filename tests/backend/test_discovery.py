"""Finding the backend: entry points, import paths, the doqu.ext.tokyo_tyrant alias."""

from __future__ import annotations

import subprocess
import sys

import pytest

import doqu
from doqu.backends import available_backends
from doqu_tyrant import QueryAdapter, StorageAdapter
from tests.backend.models import Item


@pytest.mark.parametrize("name", ["doqu_tyrant", "tokyo_tyrant", "doqu.ext.tokyo_tyrant",
                                  "doqu_tyrant.storage"])
def test_get_db_by_name(tyrant_url: str, raw: object, name: str) -> None:
    db = doqu.get_db({"backend": name, "url": tyrant_url})
    try:
        assert type(db) is StorageAdapter and db.connected
        assert isinstance(db.find(Item), QueryAdapter)
        assert db.save({"a": "b"}) == "1"
    finally:
        db.disconnect()


def test_get_db_with_host_and_port(tyrant_url: str, raw: object) -> None:
    from doqu_tyrant.tyrant import parse_url

    host, port, _ = parse_url(tyrant_url)
    settings = {"backend": "doqu_tyrant", "host": host, "port": port}
    db = doqu.get_db(settings)
    assert (db.host, db.port) == (host, port)
    assert settings == {"backend": "doqu_tyrant", "host": host, "port": port}
    db.disconnect()
    with pytest.raises(TypeError, match="colour"):
        doqu.get_db(settings, colour="red")


def test_entry_points_are_declared() -> None:
    backends = available_backends()
    assert backends["doqu_tyrant"] == "doqu_tyrant"
    assert backends["tokyo_tyrant"] == "doqu_tyrant"
    assert doqu.load_backend("tokyo_tyrant") is StorageAdapter


def test_alias_import_paths() -> None:
    from doqu.ext.tokyo_tyrant import QueryAdapter as AliasQuery
    from doqu.ext.tokyo_tyrant import StorageAdapter as AliasStorage
    from doqu.ext.tokyo_tyrant.query import QueryAdapter as OldQuery
    from doqu.ext.tokyo_tyrant.storage import StorageAdapter as OldStorage
    from doqu_tyrant.query import QueryAdapter as NewQuery
    from doqu_tyrant.storage import StorageAdapter as NewStorage

    assert AliasStorage is OldStorage is NewStorage is StorageAdapter
    assert AliasQuery is OldQuery is NewQuery is QueryAdapter
    assert doqu.load_backend("doqu.ext.tokyo_tyrant") is StorageAdapter


def test_the_client_and_server_do_not_import_doqu() -> None:
    code = ("import sys, doqu_tyrant.tyrant, doqu_tyrant.server; "
            "assert not any(m == 'doqu' or m.startswith('doqu.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
