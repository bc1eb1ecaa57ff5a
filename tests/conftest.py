"""Shared fixtures: a Tyrant server to talk to.

* ``tyrant_url`` (session): ``$TYRANT_URL`` when set (any Tyrant server),
  otherwise the URL of a bundled server started on a temporary ``.tct`` table
  database, e.g. ``"tyrant://127.0.0.1:40123"``. Tests that use it share that
  server: clean up what you write (or VANISH first).
* ``server_factory`` (per test): ``server_factory(path_or_kind, **opts)``
  starts another bundled server and returns a :class:`tests.servers.ServerProcess`
  (``.host .port .url .stop() .kill() .restart()``). ``path_or_kind`` is a
  database path (any ttserver form, ``#params`` included) or a kind: ``"hash"``,
  ``"btree"``, ``"fixed"``, ``"table"``, ``"memhash"``/``"*"``,
  ``"memtree"``/``"+"`` (a fresh file in a temporary directory). ``opts`` are
  command-line options (``dump_dir=..., ulog=..., sid=1, copy_commands=True``,
  ``frame_timeout=...``, ``port=...``). Every server it started is stopped
  when the test ends.
* marker ``external``: the test runs only when ``TYRANT_URL`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import KINDS, ServerProcess, db_path

ServerFactory = Callable[..., ServerProcess]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TYRANT_URL"):
        return
    skip = pytest.mark.skip(reason="needs TYRANT_URL=tyrant://HOST:PORT")
    for item in items:
        if "external" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tyrant_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the Tyrant server under test (``$TYRANT_URL`` or a bundled one)."""
    url = os.environ.get("TYRANT_URL")
    if url:
        yield url
        return
    directory = tmp_path_factory.mktemp("tyrant-session")
    server = ServerProcess(str(directory / "session.tct"))
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start bundled servers for one test; all are stopped at its end."""
    started: list[ServerProcess] = []

    def factory(path_or_kind: str | os.PathLike[str] = "table", **opts: Any) -> ServerProcess:
        spec = os.fspath(path_or_kind)
        if spec in KINDS:
            directory: Path = tmp_path_factory.mktemp("tyrant")
            spec = db_path(spec, directory, f"{spec.strip('*+') or 'mem'}")
        server = ServerProcess(spec, **opts)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.close()
