"""Fixtures for the doqu core tests: a fresh in-memory database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.doqu.memory_backend import StorageAdapter, drop_database


@pytest.fixture
def db() -> Iterator[StorageAdapter]:
    name = f"test-{uuid.uuid4().hex}"
    storage = StorageAdapter(name=name)
    yield storage
    storage.disconnect()
    drop_database(name)
