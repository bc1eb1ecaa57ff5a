"""Fixtures of the sharded-client tests: three bundled servers (started once per
session, see ``shard_urls`` in tests/conftest.py), emptied around each use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import ShardedTyrant


@pytest.fixture
def sharded(shard_urls: list[str]) -> Iterator[ShardedTyrant]:
    """A :class:`ShardedTyrant` over the three session shards, empty."""
    client = ShardedTyrant(shard_urls, timeout=10)
    client.vanish()
    yield client
    client.vanish()
    client.close()
