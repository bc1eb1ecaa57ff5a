"""Fixtures of the backend tests: an empty table database per test.

Every test runs against the session server of ``tests/conftest.py``: the
bundled server, or any Tyrant table database given as
``TYRANT_URL=tyrant://HOST:PORT`` (**which these tests empty**, VANISH
before and after each test; tests marked ``bundled_only`` get the bundled
server).

``db`` is a connected :class:`~doqu_tyrant.StorageAdapter`; ``raw`` a plain
client on the same database, for writing records the way the Python 2
library stored them and for reading what we wrote; ``requests`` counts the
requests the server received (``with requests() as seen: ...; seen.misc``).

A test module with ``SHARDED = True`` runs each test twice: on one server
(``[single]``) and on three bundled shards (``[sharded]``, the session
``shard_urls``): ``db`` then has ``shards=...``, ``raw`` is a
:class:`~doqu_tyrant.tyrant.ShardedTyrant`, and ``requests`` counts, for each
kind of request, the most any one shard received.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import ShardedTyrant, Tyrant
from tests.conftest import shared_url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "layout" in metafunc.fixturenames and getattr(metafunc.module, "SHARDED", False):
        metafunc.parametrize("layout", ["single", "sharded"])


@pytest.fixture
def layout() -> str:
    """``"single"`` (one server) or ``"sharded"`` (three shards)."""
    return "single"


@pytest.fixture
def raw(layout: str, request: pytest.FixtureRequest) -> Iterator[Tyrant]:
    client: Tyrant
    if layout == "sharded":
        client = ShardedTyrant(request.getfixturevalue("shard_urls"),  # type: ignore[assignment]
                               timeout=10)
    else:
        client = Tyrant.from_url(shared_url(request), timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()


@pytest.fixture
def db(raw: Tyrant, layout: str, request: pytest.FixtureRequest) -> Iterator[StorageAdapter]:
    if layout == "sharded":
        storage = StorageAdapter(shards=request.getfixturevalue("shard_urls"), timeout=10)
    else:
        storage = StorageAdapter(url=shared_url(request), timeout=10)
    yield storage
    storage.disconnect()


@dataclass
class Seen:
    """Requests the server counted between entering and leaving the block (with
    shards: for each kind, the most one shard counted)."""

    before: list[dict[str, int]] = field(default_factory=list)
    after: list[dict[str, int]] = field(default_factory=list)

    def delta(self) -> dict[str, int]:
        changed: dict[str, int] = {}
        for before, after in zip(self.before, self.after):
            for k in after:
                changed[k] = max(changed.get(k, 0), after[k] - before.get(k, 0))
        changed.pop("cnt_stat", None)
        return {k[4:]: v for k, v in changed.items() if v and not k.endswith("_miss")}

    @property
    def total(self) -> int:
        return sum(self.delta().values())


#: The type of the ``requests`` fixture.
Requests = Callable[[], contextlib.AbstractContextManager[Seen]]


def _counters(client: Tyrant) -> list[dict[str, int]]:
    stats = client.stat()
    per_server = list(stats.values()) if isinstance(client, ShardedTyrant) else [stats]
    return [{k: int(v) for k, v in stat.items() if k.startswith("cnt_")}  # type: ignore[union-attr]
            for stat in per_server]


@pytest.fixture
def requests(raw: Tyrant) -> Requests:
    """Count the requests a block sends (via the server's ``stat`` counters)."""

    @contextlib.contextmanager
    def counting() -> Iterator[Seen]:
        seen = Seen(before=_counters(raw))
        yield seen
        seen.after = _counters(raw)

    return counting
