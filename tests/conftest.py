"""Shared fixtures: a Tyrant server to talk to.

* ``tyrant_url`` (session): ``$TYRANT_URL`` when set (any Tyrant server, e.g.
  a real ttserver: ``make test-external``), otherwise ``bundled_url``. Tests
  that use it share that server and must leave it as they found it: VANISH
  what they write, and drop every index they create (``setindex(column,
  "void")``; VANISH keeps indexes). The autouse fixture
  ``_no_index_left_behind`` fails a test that leaves one.
* ``bundled_url`` (session): a bundled server on a temporary ``.tct`` table
  database, e.g. ``"tyrant://127.0.0.1:40123"`` -- always ours, whatever
  ``$TYRANT_URL`` says. Started on first use.
* ``shared_url(request)``: what function fixtures such as ``t`` and ``raw``
  connect to: ``bundled_url`` for a test marked ``bundled_only``, else
  ``tyrant_url``.
* marker ``bundled_only``: the test sends a request that aborts a real
  ttserver (protocol spec §10: an empty value in a lexical/decimal-indexed
  column, an empty primary key, MISC iterinit with an empty key, ...), e.g.
  to check that the bundled server refuses it. Its shared fixtures then talk
  to ``bundled_url``; it must not use ``tyrant_url`` itself (collection fails
  if it does while ``$TYRANT_URL`` is set). Such a test never reaches an
  external server.
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

``TYRANT_URL`` must name a table database, ``TYRANT_HASH_URL`` (optional, for
the key-value tests of tests/tyrant) a hash database; the session stops at
once, saying so, when they do not. ``make test-external`` runs the client,
pyrant, backend and CLI suites this way.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doqu_tyrant.tyrant import Tyrant, TyrantCommandError, TyrantConnectionError, TyrantError
from doqu_tyrant.tyrant import commands as c
from doqu_tyrant.tyrant.kinds import describe
from tests.servers import KINDS, ServerProcess, db_path

ServerFactory = Callable[..., ServerProcess]


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts a background job (``make test &``) with SIGINT ignored, and
    # Python then keeps it ignored, as does every process started from here. The
    # tests of Ctrl-C would wait for it in vain: give SIGINT its usual meaning.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers", "bundled_only: sends a request that aborts a real ttserver (spec §10); "
        "runs against the bundled server only")


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``$TYRANT_URL`` (and ``$TYRANT_HASH_URL``), check first that the servers
    answer and hold the kind of database the suites need."""
    for variable, wanted in (("TYRANT_URL", "table"), ("TYRANT_HASH_URL", "hash")):
        url = os.environ.get(variable)
        if not url:
            continue
        try:
            with Tyrant.from_url(url, timeout=10) as client:
                kind = client.kind()
        except (TyrantError, ValueError) as exc:
            pytest.exit(f"{variable}={url}: {exc}", returncode=2)
        if kind != wanted:
            pytest.exit(f"{variable}={url} holds {describe(kind)}; the suites need "
                        f"{describe(wanted)} there", returncode=2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TYRANT_URL"):
        for item in items:
            if "bundled_only" in item.keywords and "tyrant_url" in getattr(
                    item, "fixturenames", ()):
                raise pytest.UsageError(
                    f"{item.nodeid} is marked bundled_only but uses tyrant_url, which is "
                    "$TYRANT_URL: use bundled_url (or the t/raw/db fixtures) instead")
        return
    skip = pytest.mark.skip(reason="needs TYRANT_URL=tyrant://HOST:PORT")
    for item in items:
        if "external" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bundled_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a bundled server on a temporary table database (never $TYRANT_URL)."""
    directory = tmp_path_factory.mktemp("tyrant-session")
    server = ServerProcess(str(directory / "session.tct"))
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def tyrant_url(request: pytest.FixtureRequest) -> str:
    """URL of the Tyrant server under test (``$TYRANT_URL`` or ``bundled_url``)."""
    return os.environ.get("TYRANT_URL") or request.getfixturevalue("bundled_url")


def shared_url(request: pytest.FixtureRequest) -> str:
    """The shared server a test's fixtures use (``bundled_url`` if ``bundled_only``)."""
    if request.node.get_closest_marker("bundled_only") is not None:
        return str(request.getfixturevalue("bundled_url"))
    return str(request.getfixturevalue("tyrant_url"))


@pytest.fixture(autouse=True)
def _no_index_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves an index on the shared server(s).

    Records the columns of every ``setindex`` the test builds (client,
    asyncio client, pipelines, raw ``misc``) and, afterwards, drops any of
    them that still has an index there: a left index would turn a later
    test's empty value in that column into a server abort on a real ttserver.
    Module- and session-scoped fixtures are set up before this one, so their
    indexes are theirs to drop.
    """
    columns: set[bytes] = set()
    setindex, misc, queued = c.setindex, c.misc, c.PipelineBase.setindex  # type: ignore[attr-defined]

    def recording_setindex(column: c.Key, kind: int | str, *, keep: bool = False) -> c.Cmd:
        cmd = setindex(column, kind, keep=keep)
        columns.add(c.to_bytes(column, "column"))
        return cmd

    def recording_misc(name: c.Key, args: Any = (), opts: int = 0) -> c.Cmd:
        if not isinstance(args, (str, bytes, bytearray, memoryview)):
            args = list(args)  # read twice below
        cmd = misc(name, args, opts)
        if c.to_bytes(name, "name") == b"setindex":
            names = [c.to_bytes(a, "arg") for a in args]
            columns.update(names[0:len(names) - 1:2])
        return cmd

    def recording_queued(self: Any, column: c.Key, *args: Any, **kwargs: Any) -> Any:
        columns.add(c.to_bytes(column, "column"))
        return queued(self, column, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(c, "setindex", recording_setindex)
        patch.setattr(c, "misc", recording_misc)
        patch.setattr(c.PipelineBase, "setindex", recording_queued)
        yield
    if not columns:
        return
    left: list[str] = []
    for name in ("tyrant_url", "bundled_url"):
        if name not in request.fixturenames and not (
                name == "bundled_url" and request.node.get_closest_marker("bundled_only")):
            continue
        url = request.getfixturevalue(name)
        with Tyrant.from_url(url, timeout=10) as client:
            try:
                if client.kind() != "table":
                    continue
            except TyrantConnectionError:
                continue
            for column in sorted(columns):
                try:
                    if client.setindex(column, "void"):
                        left.append(f"{column!r} on {url}")
                except TyrantCommandError:
                    pass  # no index there: fine
    assert not left, (f"the test left indexes ({', '.join(left)}); drop them with "
                      "setindex(column, 'void') -- VANISH keeps indexes")


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


@pytest.fixture(scope="session")
def shard_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """URLs of three bundled table servers, started once, for the sharded tests
    (each test empties them before use)."""
    directory = tmp_path_factory.mktemp("shards")
    servers: list[ServerProcess] = []
    try:
        for i in range(3):
            servers.append(ServerProcess(str(directory / f"shard{i}.tct")))
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.close()
