"""Bad input must only ever affect its own connection (issue item 5).

Rejected headers, oversized declared lengths, half-sent frames, garbage,
text lines, and the requests that abort a real ttserver (spec §10).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ServerProcess

# Sends the requests that abort a real ttserver (spec §10): bundled servers only.
pytestmark = pytest.mark.bundled_only

ServerFactory = Callable[..., ServerProcess]


def alive(server: ServerProcess) -> None:
    """The process is running and a fresh connection gets correct answers."""
    assert server.running, server.stderr()
    with Wire(server.address) as wire:
        key = b"alive-%d" % time.monotonic_ns()
        assert wire.put(key, b"name\0yes")
        assert wire.get(key) == b"name\0yes"
        assert wire.call(p.encode_key(p.OUT, key)).ok


# -- spec §10: requests that abort ttserver get a failure from us ---------------------------


@pytest.fixture(scope="module")
def indexed_table(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("killers")
    with ServerProcess(str(directory / "k.tct")) as server, Wire(server.address) as wire:
        assert wire.misc(b"setindex", [b"name", b"0"]) == []  # lexical
        assert wire.misc(b"setindex", [b"age", b"1"]) == []  # decimal
        assert wire.misc(b"setindex", [b"tags", b"2"]) == []  # token: empty values are fine
        assert wire.put(b"u1", b"name\0alice\0age\x0030")
        assert wire.put(b"u2", b"name\0bob")
        yield server


KILLERS = {
    "misc-put-empty-pk": p.encode_misc(b"put", [b"", b"name", b"x"]),
    "misc-putkeep-empty-pk": p.encode_misc(b"putkeep", [b"", b"name", b"x"]),
    "misc-putcat-empty-pk": p.encode_misc(b"putcat", [b"", b"name", b"x"]),
    "misc-put-only-empty-pk": p.encode_misc(b"put", [b""]),
    "misc-putlist-empty-pk": p.encode_misc(b"putlist", [b"ok1", b"name\0a", b"", b"name\0b"]),
    "putshl-empty-key": p.encode_putshl(b"", b"name\0x", 10),
    "misc-iterinit-empty-key": p.encode_misc(b"iterinit", [b""]),
    "put-empty-lexical-value": p.encode_put(b"e1", b"name\0\0age\x0031"),
    "put-empty-decimal-value": p.encode_put(b"e2", b"name\0bob\0age\0"),
    "putkeep-empty-lexical-value": p.encode_put(b"e3", b"name\0", p.PUTKEEP),
    "putcat-empty-decimal-value": p.encode_put(b"e4", b"age\0", p.PUTCAT),
    "putcat-new-empty-decimal-column": p.encode_put(b"u2", b"age\0", p.PUTCAT),
    "putshl-empty-lexical-value": p.encode_putshl(b"e5", b"name\0", 100),
    "misc-put-empty-lexical-value": p.encode_misc(b"put", [b"e6", b"name", b""]),
    "misc-putcat-empty-decimal-value": p.encode_misc(b"putcat", [b"e7", b"age", b""]),
    "misc-putlist-empty-decimal-value": p.encode_misc(b"putlist", [b"e8", b"age\0"]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(KILLERS))
def test_killer_request_fails_and_server_keeps_serving(
    indexed_table: ServerProcess, name: str
) -> None:
    frame = KILLERS[name]
    with Wire(indexed_table.address) as wire:
        reply = wire.call(frame)
        assert not reply.ok, name
        assert wire.rnum() >= 1
    alive(indexed_table)


SAFE = {
    # an existing column keeps its value under PUTCAT, so nothing empty is indexed
    "putcat-existing-column-empty": p.encode_put(b"u1", b"age\0", p.PUTCAT),
    "put-empty-token-indexed-value": p.encode_put(b"s1", b"name\0n\0tags\0"),
    "put-empty-unindexed-value": p.encode_put(b"s2", b"name\0n\0note\0"),
    "put-no-columns": p.encode_put(b"s3", b""),
    "put-empty-key-generates-id": p.encode_put(b"", b"name\0generated"),
    "misc-put-empty-unindexed-value": p.encode_misc(b"put", [b"s4", b"note", b""]),
}


@pytest.mark.parametrize("name", list(SAFE))
def test_similar_safe_requests_succeed(indexed_table: ServerProcess, name: str) -> None:
    with Wire(indexed_table.address) as wire:
        assert wire.call(SAFE[name]).ok, name
        assert wire.get(b"u1") == b"name\0alice\0age\x0030"


def test_putnr_killer_is_silent_and_harmless(indexed_table: ServerProcess) -> None:
    with Wire(indexed_table.address) as wire:
        wire.send(p.encode_put(b"e9", b"name\0", p.PUTNR))
        assert wire.get(b"e9") is None
    alive(indexed_table)


def test_setindex_over_empty_values_fails(server_factory: ServerFactory) -> None:
    server = server_factory("table")
    with Wire(server.address) as wire:
        assert wire.put(b"a", b"name\0\0age\0")
        assert wire.put(b"b", b"name\0bob\0age\x0030")
        assert wire.misc(b"setindex", [b"name", b"0"]) is None  # lexical over ""
        assert wire.misc(b"setindex", [b"age", b"1"]) is None  # decimal over ""
        assert wire.misc(b"setindex", [b"name", b"2"]) == []  # token index is fine
    alive(server)


@pytest.mark.parametrize("kind", ["hash", "table"])
def test_misc_iterinit_empty_key(server_factory: ServerFactory, kind: str) -> None:
    server = server_factory(kind)
    with Wire(server.address) as wire:
        assert wire.put(b"k", b"v")
        assert wire.misc(b"iterinit", [b""]) is None
        assert wire.misc(b"iterinit", [b"k"]) == []
    alive(server)


# -- framing -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A server with a 1 KiB length cap and a short frame timeout."""
    directory = tmp_path_factory.mktemp("small")
    with ServerProcess(str(directory / "s.tch"), max_length=1024, frame_timeout=1.0) as server:
        yield server


def test_length_over_cap_closes_without_waiting(small: ServerProcess) -> None:
    with Wire(small.address) as wire:
        wire.send(b"\xc8\x10" + (1).to_bytes(4, "big") + (2000).to_bytes(4, "big"))
        assert wire.closed_within(2.0)
    with Wire(small.address) as wire:
        # 1 GiB declared: refused at once (nothing allocated, nothing awaited)
        wire.send(b"\xc8\x10" + (1).to_bytes(4, "big") + (1 << 30).to_bytes(4, "big") + b"k")
        assert wire.closed_within(2.0)
    alive(small)


def test_length_at_cap_is_accepted(small: ServerProcess) -> None:
    with Wire(small.address) as wire:
        assert wire.put(b"big", b"x" * 1024)
        assert wire.get(b"big") == b"x" * 1024


def test_rejected_then_buffered_request_is_answered(small: ServerProcess) -> None:
    with Wire(small.address) as wire:
        wire.send(b"\xc8\xff" + p.encode_simple(p.RNUM))
        assert wire.recv_exact(9, timeout=2.0)[:1] == b"\x00"
        assert wire.silent_for(0.1)


def test_frame_timeout_closes_a_stalled_connection(small: ServerProcess) -> None:
    with Wire(small.address) as stalled:
        stalled.send(p.encode_put(b"key", b"value")[:-2])
        start = time.monotonic()
        assert stalled.closed_within(5.0)
        assert time.monotonic() - start >= 0.5
    with Wire(small.address) as wire:
        assert wire.get(b"key") is None  # the partial request was dropped


def test_slow_but_progressing_frame_completes(small: ServerProcess) -> None:
    frame = p.encode_put(b"slow", b"abcdefgh")
    with Wire(small.address) as wire:
        for i in range(0, len(frame), 8):  # three pieces, well inside the 1 s timeout
            wire.send(frame[i : i + 8])
            time.sleep(0.05)
        assert wire.recv_exact(1, timeout=2.0) == b"\x00"
        assert wire.get(b"slow") == b"abcdefgh"


def test_half_frames_do_not_block_other_clients(server_factory: ServerFactory) -> None:
    server = server_factory("hash")  # default frame timeout: the stalls stay
    stalled = [Wire(server.address) for _ in range(40)]
    try:
        for i, conn in enumerate(stalled):
            frame = p.encode_put(b"half%d" % i, b"v" * 100)
            conn.send(frame[: 1 + i % (len(frame) - 1)])
        with Wire(server.address) as wire:
            for i in range(200):
                assert wire.put(b"k%d" % i, b"v")
                assert wire.get(b"k%d" % i) == b"v"
    finally:
        for conn in stalled:
            conn.close()
    alive(server)


def test_huge_misc_frame_in_tiny_pieces_keeps_server_responsive(
    server_factory: ServerFactory,
) -> None:
    server = server_factory("hash")
    frame = p.encode_misc(b"putlist", [b"k%d" % i for i in range(40000)])
    with Wire(server.address) as slow, Wire(server.address) as other:
        started = time.monotonic()
        cut = 64 * 1000
        for i in range(0, cut, 64):
            slow.send(frame[i : i + 64])
        # the server has not spent its time re-parsing the partial frame
        assert other.call(p.encode_simple(p.RNUM)).ok
        slow.send(frame[cut:])
        reply = slow.decoder
        reply.expect(p.MISC)
        reply.feed(slow.recv_exact(5, timeout=10.0))
        assert reply.next_reply() == p.Reply(True, [])
        assert time.monotonic() - started < 20
        assert other.rnum() == 20000


def test_pipelined_requests_answered_in_order(server_factory: ServerFactory) -> None:
    server = server_factory("btree")
    frames = []
    for i in range(500):
        frames.append(p.encode_put(b"p%03d" % i, b"%d" % i))
        frames.append(p.encode_key(p.GET, b"p%03d" % i))
        frames.append(p.encode_put(b"nr%03d" % i, b"x", p.PUTNR))
    with Wire(server.address) as wire:
        replies = wire.pipeline(frames)
    gets = [r.value for r in replies[1::3]]
    assert gets == [b"%d" % i for i in range(500)]
    assert all(r.ok for r in replies)


def test_client_vanishing_mid_frame(server_factory: ServerFactory) -> None:
    server = server_factory("hash")
    for _ in range(20):
        conn = Wire(server.address)
        conn.send(p.encode_put(b"gone", b"x" * 50)[:30])
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        conn.close()  # RST
    with Wire(server.address) as wire:
        assert wire.get(b"gone") is None
    alive(server)


def test_request_completed_before_disconnect_is_executed(server_factory: ServerFactory) -> None:
    server = server_factory("hash")
    conn = Wire(server.address)
    conn.send(p.encode_put(b"done", b"yes"))
    conn.close()
    time.sleep(0.2)
    with Wire(server.address) as wire:
        assert wire.get(b"done") == b"yes"


# -- text protocols ------------------------------------------------------------------------


def test_memcached_version_and_unknown_lines(small: ServerProcess) -> None:
    with Wire(small.address) as wire:
        wire.send(b"version\r\n")
        assert wire.recv_exact(16, timeout=2.0) == b"VERSION 1.1.41\r\n"
        assert wire.call(p.encode_simple(p.RNUM)).ok
    for line in (b"hello\r\n", b"GET / HTTP/1.0\r\n", b"quit\r\n", b"\xff\xfe\n"):
        with Wire(small.address) as wire:
            wire.send(line)
            assert wire.closed_within(2.0), line


def test_endless_text_line_is_cut_off(small: ServerProcess) -> None:
    with Wire(small.address) as wire:
        try:
            wire.send(b"x" * 200000)
        except OSError:
            pass
        assert wire.closed_within(5.0)
    alive(small)


# -- many connections ----------------------------------------------------------------------


def test_more_than_64_simultaneous_connections(server_factory: ServerFactory) -> None:
    server = server_factory("hash")
    conns = [Wire(server.address) for _ in range(200)]
    try:
        for i, conn in enumerate(conns):  # every connection open before any request
            conn.send(p.encode_put(b"c%d" % i, b"%d" % i))
        for conn in conns:
            assert conn.recv_exact(1, timeout=5.0) == b"\x00"
        for i, conn in enumerate(conns):
            assert conn.get(b"c%d" % i) == b"%d" % i
    finally:
        for conn in conns:
            conn.close()
    with Wire(server.address) as wire:
        assert wire.rnum() == 200


def test_stat_counts_and_fields(server_factory: ServerFactory) -> None:
    server = server_factory("table")
    with Wire(server.address) as wire:
        wire.put(b"a", b"x\0y")
        wire.get(b"missing")
        stat = wire.stat()
    names = list(stat)
    assert names[:11] == ["version", "libver", "protver", "os", "time", "pid", "sid", "type",
                          "path", "rnum", "size"]
    assert names[11:19] == ["bigend", "fd", "loadavg", "memsize", "memrss", "ru_user",
                            "ru_sys", "ru_real"]
    assert names[-3:] == ["cnt_put_miss", "cnt_out_miss", "cnt_get_miss"]
    assert stat["type"] == "table" and stat["rnum"] == "1" and stat["pid"] == str(server.pid)
    assert stat["cnt_put"] == "1" and stat["cnt_get"] == "1" and stat["cnt_get_miss"] == "1"
    assert stat["cnt_stat"] == "1"


def test_no_thread_leak(server_factory: ServerFactory) -> None:
    server = server_factory("table")

    def threads() -> int:
        return len(os.listdir(f"/proc/{server.pid}/task"))

    with Wire(server.address) as wire:
        wire.misc(b"search", [b"addcond\0a\0" b"0\0x"], 1)  # warms the worker pool
    before = threads()
    for _ in range(30):
        with Wire(server.address) as wire:
            wire.send(p.encode_put(b"k", b"v")[:5])
        with Wire(server.address) as wire:
            assert wire.misc(b"search", [], 1) is not None
    time.sleep(0.2)
    assert threads() <= max(before, 10)


def test_pipelining_client_that_reads_late(server_factory: ServerFactory) -> None:
    """Replies pile up faster than the client reads: backpressure, nothing lost."""
    server = server_factory("hash")
    value = bytes(range(256)) * 40  # 10 KiB
    with Wire(server.address) as wire:
        assert wire.put(b"big", value)
        frames = [p.encode_key(p.GET, b"big")] * 3000  # about 30 MB of replies
        frames.append(p.encode_simple(p.RNUM))
        sender = threading.Thread(target=wire.send, args=(b"".join(frames),))
        sender.start()
        time.sleep(0.5)  # let the server's output buffer fill up
        expected = p.reply_bytes(value)
        for _ in range(3000):
            assert wire.recv_exact(len(expected), timeout=20) == expected
        assert wire.recv_exact(9, timeout=20) == p.reply_u64(1)
        sender.join(10)
    alive(server)


def test_slow_commands_keep_pipeline_order(server_factory: ServerFactory) -> None:
    server = server_factory("table")
    frames = [
        p.encode_put(b"a", b"city\0oslo"),
        p.encode_misc(b"setindex", [b"city", b"0"]),  # worker pool
        p.encode_put(b"b", b"city\0oslo"),
        p.encode_fwmkeys(b""),
        p.encode_key(p.GET, b"b"),
        p.encode_simple(p.SYNC),  # worker pool
        p.encode_misc(b"getlist", [b"a", b"b"] * 40),
        p.encode_simple(p.VANISH),  # worker pool
        p.encode_simple(p.RNUM),
    ]
    with Wire(server.address) as wire:
        replies = wire.pipeline(frames * 3)
    for i in range(3):
        r = replies[i * 9 : i * 9 + 9]
        assert r[1] == p.Reply(True, [])
        assert r[3] == p.Reply(True, [b"a", b"b"])
        assert r[4] == p.Reply(True, b"city\0oslo")
        assert r[6].ok and len(r[6].value) == 160  # type: ignore[arg-type]
        assert r[8] == p.Reply(True, 0)
