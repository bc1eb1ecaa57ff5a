"""A long read on one connection does not stall the others.

The slow request here is a regular expression that glibc matches in time
quadratic in the value's length (``x.*y`` over values of ``x``): a table
search with a STRRX condition, and MISC ``regex`` over long keys of a hash
database. Each fixture measures how long one value takes on this machine and
stores enough of them for the whole request to take a few seconds. While it
runs, other connections' GET, ``version``, STAT and a short indexed search
are answered within :data:`BOUND`; writes wait until it has finished (and a
search sent after a waiting write waits behind it); the searching
connection's later requests are answered after it, in order.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ServerProcess

BOUND = 1.0  # seconds: another connection's answer while the long read runs
LONG = 3.0  # seconds the long read is made to take (measured, roughly)
VALUE = 8000  # bytes of x per value: ~0.1 s of x.*y each on a shared 2-core machine
PROBES = 100

SLOW_SEARCH = p.encode_misc(b"search", [b"addcond\0v\0STRRX\0x.*y"], p.MISC_NOULOG)
SLOW_REGEX = p.encode_misc(b"regex", [b"x.*y"], p.MISC_NOULOG)
VERSION = b"version\r\n"


def timed(frame: bytes, wire: Wire) -> float:
    started = time.monotonic()
    wire.call(frame)
    return time.monotonic() - started


def copies(seconds_each: float) -> int:
    """How many values make the long read take about :data:`LONG` seconds."""
    return min(max(int(LONG / max(seconds_each, 1e-3)) + 1, 4), 400)


@pytest.fixture(scope="module")
def slow_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A table (decimal index on ``n``) whose SLOW_SEARCH takes a few seconds."""
    path = tmp_path_factory.mktemp("longreads") / "slow.tct#idx=n:dec"
    server = ServerProcess(str(path))
    try:
        with Wire(server.address, timeout=120) as wire:
            assert wire.misc(b"putlist", [b"x0", b"v\0" + b"x" * VALUE + b"\0n\0" b"0"]) == []
            each = min(timed(SLOW_SEARCH, wire) for _ in range(3))
            args = []
            for i in range(1, copies(each)):
                args += [b"x%d" % i, b"v\0" + b"x" * VALUE + b"\0n\0%d" % i]
            assert wire.misc(b"putlist", args) == []
        yield server
    finally:
        server.close()


def held_write(server: ServerProcess, key: bytes, value: bytes) -> Wire:
    """A connection whose PUT is held back: the long read is running."""
    for _ in range(PROBES):
        wire = Wire(server.address, timeout=120)
        wire.send(p.encode_put(key, value))
        if wire.silent_for(0.1):
            return wire
        wire.close()  # answered: the long read has not started yet
        time.sleep(0.02)
    raise AssertionError("the long read never held a write back")


def replies(wire: Wire, commands: list[int], timeout: float = 120) -> list[p.Reply]:
    """The replies to requests already sent on ``wire``, in order."""
    decoder = wire.decoder
    for command in commands:
        decoder.expect(command)
    out: list[p.Reply] = []
    deadline = time.monotonic() + timeout
    while len(out) < len(commands):
        reply = decoder.next_reply()
        if reply is not None:
            out.append(reply)
            continue
        left = deadline - time.monotonic()
        assert left > 0 and select.select([wire.sock], [], [], left)[0], "no reply"
        chunk = wire.sock.recv(1 << 16)
        assert chunk, "connection closed"
        decoder.feed(chunk)
    return out


def answered_within(wire: Wire, frame: bytes, seconds: float = BOUND) -> p.Reply:
    started = time.monotonic()
    reply = wire.call(frame)
    took = time.monotonic() - started
    assert took < seconds, f"answered after {took:.2f} s"
    return reply


def test_others_are_answered_during_a_long_search(slow_table: ServerProcess) -> None:
    server = slow_table
    with Wire(server.address, timeout=120) as searcher, \
            Wire(server.address) as reader, Wire(server.address) as texter:
        # the searching connection's next requests wait for the search, in order
        searcher.send(SLOW_SEARCH + p.encode_put(b"after", b"v\0a")
                      + p.encode_key(p.GET, b"after")
                      + p.encode_misc(b"search", [b"addcond\0n\0NUMEQ\0" b"2"], p.MISC_NOULOG))
        # a matching record written during the search: held back until it ends
        writer = held_write(server, b"during", b"v\0xxy")
        try:
            assert answered_within(reader, p.encode_key(p.GET, b"x1")).value[:3] == b"v\0x"
            texter.send(VERSION)
            started = time.monotonic()
            assert texter.recv_exact(16, timeout=BOUND) == b"VERSION 1.1.41\r\n"
            assert time.monotonic() - started < BOUND
            indexed = p.encode_misc(b"search", [b"addcond\0n\0NUMEQ\0" b"3"], p.MISC_NOULOG)
            assert answered_within(reader, indexed).value == [b"x3"]
            assert answered_within(reader, p.encode_simple(p.STAT)).ok
            assert answered_within(reader, p.encode_simple(p.RNUM)).ok
            # ...all while the search and the write still wait
            assert searcher.silent_for(0.0) and writer.silent_for(0.0)
            answers = replies(searcher, [p.MISC, p.PUT, p.GET, p.MISC])
            # the write came after the search: its record was not found
            assert [r.value for r in answers] == [[], None, b"v\0a", [b"x2"]]
            assert writer.recv_exact(1, timeout=30) == b"\x00"
        finally:
            writer.close()
        assert reader.misc(b"search", [b"addcond\0v\0STRRX\0^xxy$"], p.MISC_NOULOG) == [
            b"during"]
        assert reader.call(p.encode_key(p.OUT, b"during")).ok
        assert reader.call(p.encode_key(p.OUT, b"after")).ok


def test_a_search_after_a_waiting_write_waits_behind_it(slow_table: ServerProcess) -> None:
    """Long reads cannot hold writes back forever: a search that arrives while
    a write waits runs after the write (and so finds its record)."""
    server = slow_table
    probe = p.encode_misc(b"search", [b"addcond\0w\0STRRX\0x.*y"], p.MISC_NOULOG)
    with Wire(server.address, timeout=120) as first, Wire(server.address, timeout=120) as second:
        counted = int(first.stat()["cnt_misc"])
        first.send(SLOW_SEARCH)
        writer = held_write(server, b"fair", b"w\0xxy")
        try:
            second.send(probe)  # a long read (a regular expression): waits for the write
            assert second.silent_for(0.2)
            assert writer.recv_exact(1, timeout=120) == b"\x00"
        finally:
            writer.close()
        assert replies(first, [p.MISC])[0].value == []
        assert replies(second, [p.MISC])[0].value == [b"fair"]
        assert int(first.stat()["cnt_misc"]) == counted + 2  # the one that waited: once
        assert first.call(p.encode_key(p.OUT, b"fair")).ok


@pytest.fixture
def slow_keys(tmp_path: Path) -> Iterator[ServerProcess]:
    """A hash database whose MISC regex (over its keys) takes a few seconds."""
    server = ServerProcess(str(tmp_path / "keys.tch"))
    try:
        with Wire(server.address, timeout=120) as wire:
            assert wire.put(b"x" * VALUE + b"0", b"v") and wire.put(b"small", b"s")
            each = min(timed(SLOW_REGEX, wire) for _ in range(3))
            args = []
            for i in range(1, copies(each)):
                args += [b"x" * VALUE + b"%d" % i, b"v"]
            assert wire.misc(b"putlist", args) == []
        yield server
    finally:
        server.close()


def test_others_are_answered_during_a_long_misc_regex(slow_keys: ServerProcess) -> None:
    server = slow_keys
    with Wire(server.address, timeout=120) as scanner, Wire(server.address) as reader, \
            Wire(server.address) as texter:
        scanner.send(SLOW_REGEX)
        writer = held_write(server, b"x" * 10 + b"y", b"w")
        try:
            assert answered_within(reader, p.encode_key(p.GET, b"small")).value == b"s"
            assert answered_within(reader, p.encode_key(p.VSIZ, b"small")).value == 1
            texter.send(VERSION)
            assert texter.recv_exact(16, timeout=BOUND) == b"VERSION 1.1.41\r\n"
            assert scanner.silent_for(0.0) and writer.silent_for(0.0)
            assert scanner.recv_exact(5, timeout=120) == b"\x00\x00\x00\x00\x00"  # no match
            assert writer.recv_exact(1, timeout=30) == b"\x00"
        finally:
            writer.close()
        assert reader.misc(b"regex", [b"^x{10}y$"], p.MISC_NOULOG) == [b"x" * 10 + b"y", b"w"]
