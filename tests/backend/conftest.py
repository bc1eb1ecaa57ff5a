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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import Tyrant
from tests.conftest import shared_url


@pytest.fixture
def raw(request: pytest.FixtureRequest) -> Iterator[Tyrant]:
    client = Tyrant.from_url(shared_url(request), timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()


@pytest.fixture
def db(raw: Tyrant, request: pytest.FixtureRequest) -> Iterator[StorageAdapter]:
    storage = StorageAdapter(url=shared_url(request), timeout=10)
    yield storage
    storage.disconnect()


@dataclass
class Seen:
    """Requests the server counted between entering and leaving the block."""

    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    def delta(self) -> dict[str, int]:
        changed = {k: self.after[k] - self.before.get(k, 0) for k in self.after}
        changed.pop("cnt_stat", None)
        return {k[4:]: v for k, v in changed.items() if v and not k.endswith("_miss")}

    @property
    def total(self) -> int:
        return sum(self.delta().values())


#: The type of the ``requests`` fixture.
Requests = Callable[[], contextlib.AbstractContextManager[Seen]]


def _counters(client: Tyrant) -> dict[str, int]:
    return {k: int(v) for k, v in client.stat().items() if k.startswith("cnt_")}


@pytest.fixture
def requests(raw: Tyrant) -> Requests:
    """Count the requests a block sends (via the server's ``stat`` counters)."""

    @contextlib.contextmanager
    def counting() -> Iterator[Seen]:
        seen = Seen(before=_counters(raw))
        yield seen
        seen.after = _counters(raw)

    return counting
