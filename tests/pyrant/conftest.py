"""Fixtures of the pyrant tests.

``tt`` is a :class:`pyrant.Tyrant` of the session table database of
``tests/conftest.py`` (``$TYRANT_URL`` or a bundled server; emptied before and
after each test), ``kt`` one of a bundled hash database (module-scoped server;
``TYRANT_HASH_URL`` to use another), ``native`` a plain client of the table
database for checking what was stored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import pyrant
from doqu_tyrant.tyrant import Tyrant, parse_url
from tests.servers import ServerProcess


def _address(url: str) -> tuple[str, int]:
    host, port, _ = parse_url(url)
    return host, port


@pytest.fixture(scope="module")
def hash_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TYRANT_HASH_URL")
    if url:
        yield url
        return
    server = ServerProcess(str(tmp_path_factory.mktemp("pyrant-kv") / "kv.tch"))
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def native(tyrant_url: str) -> Iterator[Tyrant]:
    client = Tyrant.from_url(tyrant_url, timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()


@pytest.fixture
def tt(native: Tyrant, tyrant_url: str) -> Iterator[pyrant.Tyrant]:
    t = pyrant.Tyrant(*_address(tyrant_url))
    yield t
    t.close()


@pytest.fixture
def kt(hash_url: str) -> Iterator[pyrant.Tyrant]:
    t = pyrant.Tyrant(*_address(hash_url))
    t.clear()
    yield t
    t.clear()
    t.close()


@pytest.fixture
def items(tt: pyrant.Tyrant) -> pyrant.Tyrant:
    """The table database with pyrant's documentation example and a bit more."""
    tt["a"] = {"name": "Foo", "price": 1, "tags": "red green"}
    tt["b"] = {"name": "Bar", "price": 2, "tags": "blue"}
    tt["c"] = {"name": "Foo", "price": 3, "note": "the Quick fox"}
    tt["d"] = {"name": "Quux", "price": "10.5"}
    return tt
