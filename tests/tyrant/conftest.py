"""Fixtures of the client tests: module-scoped servers (one start per module).

``table_url`` is the session server of ``tests/conftest.py`` ($TYRANT_URL or a
bundled table database); ``hash_url`` a bundled hash database (with
$TYRANT_URL set and ``TYRANT_HASH_URL`` unset, hash tests use a bundled one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import Tyrant
from tests.conftest import shared_url
from tests.servers import ServerProcess


@pytest.fixture(scope="module")
def hash_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TYRANT_HASH_URL")
    if url:
        yield url
        return
    server = ServerProcess(str(tmp_path_factory.mktemp("kv") / "kv.tch"))
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def kv(hash_url: str) -> Iterator[Tyrant]:
    """A client of an empty hash database."""
    t = Tyrant.from_url(hash_url, timeout=10)
    t.vanish()
    yield t
    t.close()


@pytest.fixture
def t(request: pytest.FixtureRequest) -> Iterator[Tyrant]:
    """A client of an empty table database (the shared one, see tests/conftest.py)."""
    client = Tyrant.from_url(shared_url(request), timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()


PEOPLE = {
    "u1": {"name": "alice", "age": "30", "city": "tokyo", "tags": "red green",
           "bio": "the quick brown fox"},
    "u2": {"name": "bob", "age": "25", "city": "osaka", "tags": "blue",
           "bio": "lazy dog jumps"},
    "u3": {"name": "carol", "age": "35", "city": "tokyo", "tags": "green,blue",
           "bio": "Quick fox"},
    "u4": {"name": "dave", "age": "abc", "city": "kyoto"},
    "u5": {"name": "Eve", "age": "30", "bio": "brown foxes"},
    "u6": {"name": "frank", "age": "40.5", "city": "Tokyo"},
}


@pytest.fixture
def people(t: Tyrant) -> Tyrant:
    t.putlist(PEOPLE)
    return t
