"""A long command on one connection does not stall the others.

While SYNC, OPTIMIZE, COPY, ``setindex`` … run in the worker pool, another
connection's ``version`` is answered at once; so are its reads during a COPY
of a hash or table database (Tokyo Cabinet lets reads proceed then), and its
writes wait for the command and then succeed. A COPY through a slow
``@command`` makes the command's duration certain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]

VERSION = b"version\r\n"


def slow_hook(tmp_path: Path, seconds: float) -> tuple[Path, Path]:
    """A COPY ``@command`` that marks that it started, then takes ``seconds``."""
    started = tmp_path / "started"
    hook = tmp_path / "slow.sh"
    hook.write_text(f"#!/bin/sh\ntouch {started}\nsleep {seconds}\n")
    hook.chmod(0o755)
    return hook, started


def wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def answered_within(wire: Wire, seconds: float) -> bool:
    return not wire.silent_for(seconds)


@pytest.mark.parametrize("kind", ["hash", "table", "btree"])
def test_others_are_answered_during_a_slow_copy(
    tmp_path: Path, server_factory: ServerFactory, kind: str
) -> None:
    hook, started = slow_hook(tmp_path, 2.0)
    server = server_factory(kind, copy_commands=True)
    with Wire(server.address) as setup:
        assert setup.put(b"k", b"c\0v")
    with Wire(server.address) as copier, Wire(server.address) as reader, \
            Wire(server.address) as writer, Wire(server.address) as texter:
        copier.send(p.encode_path(p.COPY, b"@" + bytes(hook)))
        wait_for(started)
        reader.send(p.encode_key(p.GET, b"k"))
        writer.send(p.encode_put(b"k2", b"c\0v2"))
        time.sleep(0.05)
        texter.send(VERSION)
        # the event loop is free: a text command is answered at once, while the
        # write (and on a B+ tree the read) still waits for the copy
        assert texter.recv_exact(16, timeout=5) == b"VERSION 1.1.41\r\n"
        assert not answered_within(writer, 0.0)
        if kind in ("hash", "table"):  # reads proceed during a copy of these
            assert answered_within(reader, 5)
        else:
            assert not answered_within(reader, 0.0)
        assert not answered_within(copier, 0.0)  # still copying
        assert copier.recv_exact(1, timeout=10) == b"\x00"
        assert writer.recv_exact(1, timeout=10) == b"\x00"
        assert reader.recv_exact(1, timeout=10)[:1] == b"\x00"
    with Wire(server.address) as check:
        assert check.get(b"k2") == b"c\0v2"


@pytest.fixture(scope="module")
def big_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A table whose OPTIMIZE and setindex take long enough to be caught running."""
    server = ServerProcess(str(tmp_path_factory.mktemp("long") / "big.tct"))
    try:
        with Wire(server.address, timeout=60) as setup:
            for start in range(0, 150_000, 50_000):
                rows = [b"r%06d" % i for i in range(start, start + 50_000)]
                args = [x for key in rows
                        for x in (key, b"name\0user %s\0age\0%d" % (key, len(key)))]
                assert setup.misc(b"putlist", args) == []
            assert setup.misc(b"setindex", [b"name", b"0"]) == []  # OPTIMIZE rebuilds it
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("command", ["optimize", "setindex", "misc-optimize"])
def test_version_is_answered_during_a_long_table_command(
    big_table: ServerProcess, command: str
) -> None:
    server = big_table
    frame = {
        "optimize": p.encode_path(p.OPTIMIZE, b""),
        "setindex": p.encode_misc(b"setindex", [b"name", b"3"]),  # a q-gram index
        "misc-optimize": p.encode_misc(b"optimize", []),
    }[command]
    with Wire(server.address) as slow, Wire(server.address) as texter:
        slow.send(frame)
        reader = held_read(server)  # a GET that waits for the command...
        try:
            texter.send(VERSION)
            assert texter.recv_exact(16, timeout=5) == b"VERSION 1.1.41\r\n"
            # ...without holding up the event loop: the text reply came first
            assert not answered_within(reader, 0.0)
            assert slow.recv_exact(1, timeout=60) == b"\x00"
            assert reader.recv_exact(1, timeout=10) == b"\x00"
        finally:
            reader.close()


def held_read(server: ServerProcess) -> Wire:
    """A connection whose GET is not answered yet: the long command is running."""
    for _ in range(100):
        wire = Wire(server.address)
        wire.send(p.encode_key(p.GET, b"r000001"))
        if wire.silent_for(0.1):
            return wire
        wire.close()  # answered: the command has not started yet
    raise AssertionError("the long command never held a request back")


def test_btree_writes_are_committed_without_sync(tmp_path: Path) -> None:
    """The periodic commit makes B+ tree writes survive a kill -9 without SYNC."""
    server = ServerProcess(str(tmp_path / "db.tcb"), commit_interval=0.2)
    try:
        with Wire(server.address) as wire:
            replies = wire.pipeline([p.encode_put(b"k%05d" % i, b"v%d" % i) for i in range(5000)])
            assert all(r.ok for r in replies)
        time.sleep(1.0)  # several commit intervals
        server.kill()
        server.start()
        with Wire(server.address) as wire:
            assert wire.rnum() == 5000
            assert wire.get(b"k04999") == b"v4999"
    finally:
        server.close()
