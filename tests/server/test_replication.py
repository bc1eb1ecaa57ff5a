"""REPL streaming (master side) and SETMST (this server as a slave)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from doqu_tyrant.server.ulog import log_files
from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]


def wait_for(predicate: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def setmst(wire: Wire, host: str, port: int, ts: int = 1) -> bool:
    return wire.call(p.encode_setmst(host.encode(), port, ts)).ok


def test_slave_follows_master(tmp_path: Path, server_factory: ServerFactory) -> None:
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    slave = server_factory("hash", ulog=tmp_path / "slog", sid=2, allow_setmst=True)
    with Wire(master.address) as m, Wire(slave.address) as s:
        assert m.put(b"before", b"1")  # already logged: caught up from ts 1
        assert setmst(s, master.host, master.port)
        stat = s.stat()
        assert (stat["mhost"], stat["mport"]) == (master.host, str(master.port))
        names = list(stat)
        assert names.index("bigend") + 1 == names.index("mhost")
        assert names[names.index("mhost"):names.index("mhost") + 5] == [
            "mhost", "mport", "rts", "delay", "fd"]
        assert m.put(b"after", b"2")
        assert m.misc(b"putlist", [b"x", b"10", b"y", b"20"]) == []
        assert m.call(p.encode_addint(b"n", 7)).ok
        assert m.call(p.encode_key(p.OUT, b"before")).ok
        # entries arrive in order: once the addint shows, wait for the OUT after it
        seven = (7).to_bytes(4, "little")
        assert wait_for(lambda: s.get(b"n") == seven and s.get(b"before") is None)
        assert [s.get(k) for k in (b"after", b"x", b"y")] == [b"2", b"10", b"20"]
        assert int(s.stat()["rts"]) > 0
        # the slave logs what it applied with the master's id as origin
        entries = p.parse_ulog(b"".join(
            (tmp_path / "slog" / n).read_bytes() for n in log_files(str(tmp_path / "slog"))
        ))
        assert entries and {sid for _ts, sid, _mid, _payload in entries} == {1}
        # an empty host stops replicating
        assert setmst(s, "", 0, 0)
        assert "mhost" not in s.stat()
        assert m.put(b"late", b"3")
        time.sleep(0.5)
        assert s.get(b"late") is None


def test_setmst_to_unreachable_master_still_answers(server_factory: ServerFactory) -> None:
    slave = server_factory("hash", sid=2, allow_setmst=True)
    with Wire(slave.address) as s:
        assert setmst(s, "127.0.0.1", 1)
        assert setmst(s, "no-such-host.invalid", 1978)
        assert s.stat()["mhost"] == "no-such-host.invalid"
        assert s.put(b"k", b"v")
        assert setmst(s, "", 0)


def test_two_masters_do_not_echo(tmp_path: Path, server_factory: ServerFactory) -> None:
    a = server_factory("hash", ulog=tmp_path / "alog", sid=1, allow_setmst=True)
    b = server_factory("hash", ulog=tmp_path / "blog", sid=2, allow_setmst=True)
    with Wire(a.address) as wa, Wire(b.address) as wb:
        assert setmst(wa, b.host, b.port)
        assert setmst(wb, a.host, a.port)
        assert wa.put(b"from-a", b"1")
        assert wb.put(b"from-b", b"2")
        assert wait_for(lambda: wb.get(b"from-a") == b"1" and wa.get(b"from-b") == b"2")
        time.sleep(1.0)

        def log_size(name: str) -> int:
            d = tmp_path / name
            return sum((d / n).stat().st_size for n in os.listdir(d))

        sizes = (log_size("alog"), log_size("blog"))
        time.sleep(1.0)
        assert (log_size("alog"), log_size("blog")) == sizes  # no ping-pong
        assert wa.rnum() == wb.rnum() == 2


def test_repl_requests_that_are_refused(tmp_path: Path, server_factory: ServerFactory) -> None:
    master = server_factory("hash", ulog=tmp_path / "log", sid=5)
    plain = server_factory("hash")
    for server, frame in [
        (master, p.encode_repl(1, 5)),  # the master's own id
        (master, p.encode_repl(0, 9)),  # ts 0
        (plain, p.encode_repl(1, 9)),  # no update log to stream
    ]:
        with Wire(server.address) as wire:
            wire.send(frame)
            assert wire.closed_within(2.0)


def test_repl_stream_sends_new_entries_and_keepalives(tmp_path: Path,
                                                      server_factory: ServerFactory) -> None:
    master = server_factory("hash", ulog=tmp_path / "log", sid=5)
    with Wire(master.address) as stream, Wire(master.address) as writer:
        stream.send(p.encode_repl(1, 9))
        assert stream.recv_exact(5, timeout=2.0) == (5).to_bytes(4, "big") + p.REPL_KEEPALIVE
        assert writer.put(b"k", b"v")
        data = stream.recv_for(2.5)  # the entry, then a keep-alive after about 1 s idle
        assert p.encode_put(b"k", b"v") + b"\x00" in data
        assert data.endswith(p.REPL_KEEPALIVE)
        assert writer.put(b"k2", b"v2")  # the stream connection does not disturb others
