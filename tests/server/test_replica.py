"""The bundled server as a replica from its command line (--master, --rts, --rcc),
dual masters, the update log's rotation (--ulim), and SETMST being opt-in."""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.server.cabinet import Cabinet
from doqu_tyrant.server.rts import UNDO_RAW, Pending, Position, RtsFile, Undo
from doqu_tyrant.server.ulog import UpdateLog, log_files
from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant import protocol as p
from tests.replicas import dual_master, dump, free_port, wait_converged, wait_until
from tests.server.wire import Wire
from tests.servers import ROOT, ServerProcess

ServerFactory = Callable[..., ServerProcess]


def log_entries(directory: Path) -> list[tuple[int, int, int, bytes]]:
    return p.parse_ulog(b"".join((directory / n).read_bytes() for n in log_files(str(directory))))


def counter(t: Tyrant, key: str) -> int:
    value = t.get(key)
    return 0 if value is None else int.from_bytes(value, "little", signed=True)


# -- a replica from the command line -----------------------------------------------------------


def test_replica_follows_from_the_command_line(tmp_path: Path,
                                               server_factory: ServerFactory) -> None:
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    with Tyrant(*master.address, timeout=5) as m:
        m.put("before", "1")  # written before the replica exists: caught up from the start
        replica = server_factory("hash", sid=2, master=f"127.0.0.1:{master.port}")
        m.put("k", "v")
        m.putkeep("k", "other")  # fails on both
        m.putcat("cat", "ab")
        m.putcat("cat", "cd")
        m.addint("n", 5)
        m.adddouble("d", 1.5)
        m.putshl("shl", "abcdef", 4)
        m.misc("putlist", ["x", "1", "y", "2"])
        m.out("before")
        with Tyrant(*replica.address, timeout=5) as r:
            assert wait_until(lambda: dump(replica) == dump(master))
            assert r.get("cat") == b"abcd" and counter(r, "n") == 5 and r.get("before") is None
            stat = r.stat()
            names = list(stat)
            i = names.index("mhost")
            assert names[i - 1] == "bigend" and names[i:i + 5] == [
                "mhost", "mport", "rts", "delay", "fd"]
            assert (stat["mhost"], stat["mport"]) == ("127.0.0.1", str(master.port))
            last_ts = log_entries(tmp_path / "mlog")[-1][0]
            assert int(stat["rts"]) == last_ts
            # ttserver's delay: now minus the newest applied entry's timestamp
            assert abs(float(stat["delay"]) - (time.time() - last_ts / 1e6)) < 5
            # the default position file sits next to the database
            assert Path(replica.path + ".rts").read_text().split("\n")[0] == str(last_ts)


def test_replica_resumes_after_sigkill_without_gaps_or_duplicates(
        tmp_path: Path, server_factory: ServerFactory) -> None:
    """Writes that are not idempotent (addint, putcat) show any entry applied
    twice or skipped; the replica is killed at random points while it applies."""
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    rts = tmp_path / "replica.rts"
    replica = server_factory("hash", sid=2, ulog=tmp_path / "rlog", rts=rts,
                             master=f"127.0.0.1:{master.port}")
    rng = random.Random(11)
    with Tyrant(*master.address, timeout=10) as m:
        rounds = 4
        for _ in range(rounds):
            with m.pipeline() as pipe:
                for i in range(750):
                    pipe.addint("count", 1)
                    pipe.putcat("trail", b"%d," % (i % 10))
                    pipe.put(f"k{i}", str(rng.random()))
                pipe.execute()
            time.sleep(rng.uniform(0.0, 0.3))  # the replica is somewhere in the backlog
            replica.kill()
            replica.start()
        with Tyrant(*replica.address, timeout=10) as r:
            assert wait_until(lambda: counter(r, "count") == rounds * 750, 30)
            # (the putcat and put after the last addint may still be on their way)
            assert wait_until(lambda: dump(replica) == dump(master))
            assert counter(r, "count") == rounds * 750  # nothing applied twice
    # the replica's own update log holds every master entry exactly once
    master_log = [(ts, payload) for ts, _sid, _mid, payload in log_entries(tmp_path / "mlog")]
    replica_log = log_entries(tmp_path / "rlog")
    assert {(sid, mid) for _ts, sid, mid, _p in replica_log} == {(1, 1)}
    assert sorted(pl for _ts, pl in master_log) == sorted(pl for *_x, pl in replica_log)
    position, _seq, pending = RtsFile(rts).load()
    assert position == Position(master_log[-1][0], 1) and pending is None


def _next_entry(master_log: Path, after: int) -> tuple[int, bytes]:
    return next((ts, payload) for ts, _s, _m, payload in log_entries(master_log) if ts > after)


@pytest.mark.parametrize("logged", [False, True])
def test_an_entry_caught_half_applied_is_completed_once(
        tmp_path: Path, server_factory: ServerFactory, logged: bool) -> None:
    """The state a kill between applying an entry and recording it leaves:
    the pending record written, the record changed, the replica's update log
    with (logged=True) or without the entry. After the restart every entry
    counts exactly once."""
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    rts = tmp_path / "replica.rts"
    replica = server_factory("hash", sid=2, ulog=tmp_path / "rlog", rts=rts,
                             master=f"127.0.0.1:{master.port}")
    with Tyrant(*master.address, timeout=5) as m, Tyrant(*replica.address, timeout=5) as r:
        m.addint("n", 1)
        assert wait_until(lambda: counter(r, "n") == 1)
        replica.stop()
        m.addint("n", 10)  # the entry the replica is "caught" applying
        m.addint("n", 100)
        position, seq, pending = RtsFile(rts).load()
        assert pending is None
        ts, payload = _next_entry(tmp_path / "mlog", position.ts)
        ulog = UpdateLog(str(tmp_path / "rlog"), 2)
        before = (1).to_bytes(4, "little")
        RtsFile(rts).begin(Pending(seq + 1, Position(ts, 1), 1, 1, ulog.position(),
                                   Undo(UNDO_RAW, b"n", (before,)), payload))
        with Cabinet(replica.path) as db:
            assert db.addint(b"n", 10) == 11  # applied, but not recorded
        if logged:
            ulog.write(payload, 1, 1)
        ulog.close()
        replica.start()
        assert wait_until(lambda: counter(r, "n") == 111)
        time.sleep(0.3)
        assert counter(r, "n") == 111
    entries = [pl for _ts, _s, _m, pl in log_entries(tmp_path / "rlog")]
    assert entries.count(payload) == 1
    assert "was being applied when the server stopped" in replica.stderr()


@pytest.mark.parametrize("applied", [False, True])
def test_a_logged_write_caught_before_its_log_entry_is_completed(
        tmp_path: Path, server_factory: ServerFactory, applied: bool) -> None:
    """A master killed after its intent record (and maybe after the write
    reached the database) but before the log entry: at the next start the
    write is completed once and logged, so its replicas get it too."""
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    replica = server_factory("hash", sid=2, master=f"127.0.0.1:{master.port}")
    with Tyrant(*master.address, timeout=5) as m, Tyrant(*replica.address, timeout=5) as r:
        m.addint("n", 1)
        assert wait_until(lambda: counter(r, "n") == 1)
        master.stop()
        payload = p.encode_addint(b"n", 10)
        ulog = UpdateLog(str(tmp_path / "mlog"), 1)
        ulog.begin(payload, Undo(UNDO_RAW, b"n", ((1).to_bytes(4, "little"),)))
        ulog.close()
        if applied:
            with Cabinet(master.path) as db:
                assert db.addint(b"n", 10) == 11
        master.start()
        assert counter(m, "n") == 11
        assert wait_until(lambda: counter(r, "n") == 11)
        m.addint("n", 100)
        assert wait_until(lambda: counter(r, "n") == 111)
    assert [pl for *_x, pl in log_entries(tmp_path / "mlog")].count(payload + b"\x00") == 1
    assert "completed the write" in master.stderr()


def test_a_replica_started_late_catches_up_across_rotated_logs(
        tmp_path: Path, server_factory: ServerFactory) -> None:
    master = server_factory("table", ulog=tmp_path / "mlog", sid=1, ulim=4096)
    with Tyrant(*master.address, timeout=10) as m:
        with m.pipeline() as pipe:
            for i in range(2000):
                pipe.table_put(f"p{i}", {"name": f"n{i}", "age": str(i % 90)})
            pipe.execute()
        m.table_out("p7")
        m.addint("counter", 3)
        files = log_files(str(tmp_path / "mlog"))
        assert len(files) > 20  # rotated at --ulim bytes
        assert all(os.path.getsize(tmp_path / "mlog" / f) < 4096 + 200 for f in files[:-1])
        replica = server_factory("table", sid=2, master=f"127.0.0.1:{master.port}")
        assert wait_until(lambda: dump(replica) == dump(master), 30)
        m.table_put("later", {"name": "after catching up"})  # and it keeps following
        with Tyrant(*replica.address, timeout=5) as r:
            assert wait_until(lambda: r.table_get("later") == {"name": "after catching up"})
            assert r.rnum() == m.rnum() == 2001


def test_ulim_zero_means_no_limit(tmp_path: Path) -> None:
    ulog = UpdateLog(str(tmp_path), 1, limit=0)  # as ttserver's -ulim 0
    for i in range(50):
        ulog.write(p.encode_put(b"k%d" % i, b"v") + b"\x00")
    ulog.close()
    assert log_files(str(tmp_path)) == ["00000001.ulog"]


def test_dual_master_converges_without_echo(tmp_path: Path) -> None:
    a, b = dual_master(tmp_path, "hash")
    try:
        with Tyrant(*a.address, timeout=5) as ta, Tyrant(*b.address, timeout=5) as tb:
            for i in range(200):  # both accept writes, interleaved
                ta.put(f"a{i}", "x")
                tb.put(f"b{i}", "y")
                ta.addint("hits", 1)
                tb.addint("hits", 1)
            assert wait_converged(a, b)
            assert counter(ta, "hits") == counter(tb, "hits") == 400
            assert ta.rnum() == 401

            def sizes() -> tuple[int, ...]:
                return tuple(sum(os.path.getsize(d / n) for n in os.listdir(d))
                             for d in (tmp_path / "alog", tmp_path / "blog"))

            settled = sizes()
            time.sleep(1.0)
            assert sizes() == settled  # no entry travels back and forth
            assert ta.stat()["mport"] == str(b.port) and tb.stat()["mport"] == str(a.port)
        # each log: its own writes with mid 0, the other's with the other as origin and master
        a_log = log_entries(tmp_path / "alog")
        assert {(s, m) for _t, s, m, _p in a_log} == {(1, 0), (2, 2)}
        assert len(a_log) == len(log_entries(tmp_path / "blog")) == 800
    finally:
        a.close()
        b.close()


def test_genuid_is_replicated(tmp_path: Path, server_factory: ServerFactory) -> None:
    """MISC genuid is a logged call (the C client sends it without the no-log
    option), so a replica's counter moves with its master's."""
    master = server_factory("table", ulog=tmp_path / "mlog", sid=1)
    replica = server_factory("table", sid=2, master=f"127.0.0.1:{master.port}")
    with Tyrant(*master.address, timeout=5) as m, Tyrant(*replica.address, timeout=5) as r:
        assert [m.genuid() for _ in range(3)] == [1, 2, 3]
        assert p.misc_log_payload(b"genuid", []) + b"\x00" in [
            pl for *_x, pl in log_entries(tmp_path / "mlog")]
        m.table_put("sync", {"x": "1"})
        assert wait_until(lambda: r.table_get("sync") is not None)
        assert r.genuid() == 4


def test_rcc_stops_replication_on_an_inconsistency(tmp_path: Path,
                                                   server_factory: ServerFactory) -> None:
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    strict = server_factory("hash", sid=2, rcc=True, master=f"127.0.0.1:{master.port}")
    lenient = server_factory("hash", sid=3, master=f"127.0.0.1:{master.port}")
    for server in (strict, lenient):
        with Tyrant(*server.address, timeout=5) as t:
            t.put("taken", "by the replica")  # so the master's putkeep fails there
    with Tyrant(*master.address, timeout=5) as m:
        m.putkeep("taken", "by the master")
        m.put("after", "1")
        with Tyrant(*strict.address, timeout=5) as s, Tyrant(*lenient.address, timeout=5) as le:
            assert wait_until(lambda: le.get("after") == b"1")
            time.sleep(0.5)
            assert s.get("after") is None  # stopped at the inconsistent entry
            assert s.stat()["mhost"] == "127.0.0.1"
    assert "consistency check" in strict.stderr()


# -- a real ttserver's stream, as recorded ------------------------------------------------------


def _recorded(name: str) -> dict:
    import json

    with open(ROOT / "tests" / "conformance" / "transcripts.jsonl") as f:
        for line in f:
            vector = json.loads(line)
            if vector["name"] == name:
                return vector
    raise KeyError(name)


def test_follows_the_stream_a_real_ttserver_sent(server_factory: ServerFactory) -> None:
    """A fake master answers REPL with the bytes ttserver sent (ulog.repl.01)."""
    stream = bytes.fromhex(_recorded("ulog.repl.01-repl-stream-start")["response_hex"])
    requests: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    conns: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conns.append(conn)
        requests.append(conn.recv(14))
        conn.sendall(stream)  # then stays silent: the replica must not mind

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        replica = server_factory("hash", sid=9, master=f"127.0.0.1:{listener.getsockname()[1]}")
        thread.join(10)
        assert requests == [p.encode_repl(1, 9)]  # c8 a0, ts 1, sid 9: what ttserver sends
        with Tyrant(*replica.address, timeout=5) as r:
            assert wait_until(lambda: r.fwmkeys(b"") == [b"a", b"c"])
            assert (r.get("a"), r.get("c")) == (b"1", b"3")
            entries, _nops, _used = p.parse_repl_stream(stream[4:])
            assert int(r.stat()["rts"]) == entries[-1][0]
    finally:
        for conn in conns:
            conn.close()
        listener.close()


class ScriptedMaster:
    """A master that answers the n-th REPL connection with ``scripts[n]``
    (entries ``(ts, payload)``), then closes it; records each request."""

    def __init__(self, scripts: list[list[tuple[int, bytes]]], hold_last: bool = True) -> None:
        self.scripts = scripts
        self.hold_last = hold_last
        self.requests: list[tuple[int, int]] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self._conns.append(conn)
            request = conn.recv(14)
            _magic, _cmd, ts, sid = struct.unpack(">BBQI", request)
            n = len(self.requests)
            self.requests.append((ts, sid))
            script = self.scripts[min(n, len(self.scripts) - 1)]
            conn.sendall(p.repl_header(77) + p.REPL_KEEPALIVE + b"".join(
                p.repl_entry(e_ts, 77, payload) for e_ts, payload in script))
            if n < len(self.scripts) - 1 or not self.hold_last:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.listener.close()
        for conn in self._conns:
            conn.close()


def test_entries_sharing_a_timestamp_are_neither_skipped_nor_repeated(
        tmp_path: Path, server_factory: ServerFactory) -> None:
    """ttserver stamps entries with its clock, so several can share a
    timestamp; the master resends all of them when asked from that
    timestamp. (ttserver's own replica resumes after it, losing the rest.)"""
    add = p.encode_addint(b"n", 1) + b"\x00"
    put_a = p.encode_put(b"a", b"1") + b"\x00"
    put_z = p.encode_put(b"z", b"9") + b"\x00"
    first = [(100, put_a), (200, add), (200, add)]
    again = [(200, add), (200, add), (200, add), (300, put_z)]  # one more at 200, then 300
    master = ScriptedMaster([first, again, [(300, put_z)]])
    try:
        replica = server_factory("hash", sid=2, master=f"127.0.0.1:{master.port}",
                                 rts=tmp_path / "r.rts")
        with Tyrant(*replica.address, timeout=5) as r:
            assert wait_until(lambda: r.get("z") == b"9")
            assert counter(r, "n") == 3 and r.get("a") == b"1"
            replica.kill()  # resumes from the file: asks from 300, skips the one it has
            replica.start()
            assert wait_until(lambda: len(master.requests) >= 3)
            time.sleep(0.3)
            assert counter(r, "n") == 3 and r.get("z") == b"9"
        asked = [ts for ts, _sid in master.requests]
        assert asked[:2] == [1, 200] and set(asked[2:]) == {300}
        assert RtsFile(tmp_path / "r.rts").load()[0] == Position(300, 1)
    finally:
        master.close()


def test_stream_skips_entries_that_came_through_the_slave(tmp_path: Path,
                                                          server_factory: ServerFactory) -> None:
    """Entries whose origin *or* master is the requesting slave are not sent
    back (ttserver's rule; RESTORE keeps both ids of the entries it replays)."""
    dump_dir = tmp_path / "dump"
    old = UpdateLog(str(dump_dir / "old"), 5)
    old.write(p.encode_put(b"via-2", b"x") + b"\x00", sid=7, mid=2)
    old.write(p.encode_put(b"from-7", b"y") + b"\x00", sid=7, mid=0)
    old.close()
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1, dump_dir=dump_dir)
    with Wire(master.address) as wire:
        path = b"old"
        assert wire.call(p.encode_restore(path, 0, 0)).ok
    # The log holds via-2, then from-7, then nothing: once from-7 arrived,
    # via-2 was either sent before it or left out.
    for slave_sid, expected in [(2, [b"from-7"]), (3, [b"via-2", b"from-7"])]:
        with Wire(master.address) as stream:
            stream.send(p.encode_repl(1, slave_sid))
            data = b""
            keys: list[bytes] = []
            deadline = time.monotonic() + 10
            while b"from-7" not in keys:
                assert time.monotonic() < deadline, f"stream so far: {data.hex()}"
                data += stream.recv_for(0.1)
                entries, _nops, _used = p.parse_repl_stream(data[4:])
                keys = [payload[10:10 + int.from_bytes(payload[2:6], "big")]
                        for _ts, _sid, payload in entries]
        assert keys == expected, slave_sid


# -- SETMST is opt-in (issue 14 item 8) -----------------------------------------------------------


def test_setmst_is_refused_unless_allowed(tmp_path: Path, server_factory: ServerFactory) -> None:
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(4)
    trap.settimeout(1.5)
    try:
        plain = server_factory("hash", sid=2)
        with Wire(plain.address) as wire:
            assert wire.put(b"keep", b"me")
            reply = wire.call(p.encode_setmst(b"127.0.0.1", trap.getsockname()[1], 1))
            assert not reply.ok  # refused (status 1), as ttserver answers a forbidden command
            with pytest.raises(socket.timeout):
                trap.accept()  # the server did not connect anywhere
            assert "mhost" not in wire.stat()
            assert wire.get(b"keep") == b"me"
            # "stop replicating" is harmless and answered as ttserver does
            assert wire.call(p.encode_setmst(b"", 0, 0)).ok
        assert "--allow-setmst" in plain.stderr()
        allowed = server_factory("hash", sid=3, allow_setmst=True)
        with Wire(allowed.address) as wire:
            assert wire.call(p.encode_setmst(b"127.0.0.1", trap.getsockname()[1], 1)).ok
            conn, _ = trap.accept()  # now it does
            assert conn.recv(14)[:2] == b"\xc8\xa0"
            conn.close()
            assert wire.call(p.encode_setmst(b"", 0, 0)).ok
    finally:
        trap.close()


def test_setmst_is_allowed_with_master(tmp_path: Path, server_factory: ServerFactory) -> None:
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    replica = server_factory("hash", sid=2, master=f"127.0.0.1:{master.port}")
    with Wire(replica.address) as wire:
        assert wire.call(p.encode_setmst(b"", 0, 0)).ok  # stop replicating
        assert "mhost" not in wire.stat()


# -- bad input on the command line -----------------------------------------------------------


def _run_server(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "doqu_tyrant.server", "--port", "0", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("args, message", [
    (["--master", "127.0.0.1:1978", "db.tch"], "needs a server id"),
    (["--sid", "2", "--master", "127.0.0.1:99999", "db.tch"], "port must be a number"),
    (["--sid", "2", "--master", ":1978", "db.tch"], "has no host"),
    (["--sid", "2", "--master", "::1:1978", "db.tch"], "[ADDRESS]:PORT"),
    (["--sid", "2", "--rts", "x.rts", "*"], "on-memory"),
])
def test_bad_replication_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run_server(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("db.tch*"))  # refused before anything was written


def test_a_damaged_rts_file_is_refused(tmp_path: Path) -> None:
    rts = tmp_path / "r.rts"
    rts.write_bytes(b"123\ndoqu-rts 1 n=1 seq=5 crc=00000000\n")
    port = free_port()
    result = _run_server("--sid", "2", "--master", f"127.0.0.1:{port}", "--rts", str(rts),
                         "db.tch", cwd=tmp_path)
    assert result.returncode == 2 and "checksum" in result.stderr
    assert "Traceback" not in result.stderr
    rts.write_bytes(b"1700000000000000\n")  # ttserver's own format is accepted
    assert RtsFile(rts).load()[0] == Position(1700000000000000, None)
    assert Position(1700000000000000, None).request_ts() == 1700000000000001


def test_torn_update_log_tail_is_repaired(tmp_path: Path, server_factory: ServerFactory) -> None:
    logdir = tmp_path / "log"
    ulog = UpdateLog(str(logdir), 1)
    ulog.write(p.encode_put(b"a", b"1") + b"\x00")
    ulog.close()
    (logdir / "00000001.ulog").open("ab").write(p.ulog_entry(9, 1, 0, b"torn entry")[:-4])
    master = server_factory("hash", ulog=logdir, sid=1)
    with Tyrant(*master.address, timeout=5) as m:
        m.put("b", "2")
        replica = server_factory("hash", sid=2, master=f"127.0.0.1:{master.port}")
        with Tyrant(*replica.address, timeout=5) as r:
            assert wait_until(lambda: r.get("b") == b"2")
            assert r.get("a") == b"1"
    assert "torn entry" in master.stderr()
    assert [pl for *_x, pl in log_entries(logdir)] == [
        p.encode_put(b"a", b"1") + b"\x00", p.encode_put(b"b", b"2") + b"\x00"]


def test_repl_stream_parser_reads_the_recorded_stream() -> None:
    stream = bytes.fromhex(_recorded("ulog.repl.01-repl-stream-start")["response_hex"])
    assert struct.unpack(">I", stream[:4]) == (1,)
    entries, keepalives, used = p.parse_repl_stream(stream[4:])
    assert used == len(stream) - 4 and keepalives == 2
    assert [(sid, payload) for _ts, sid, payload in entries] == [
        (1, b"\xc8\x72\x00"),
        (1, p.encode_put(b"a", b"1") + b"\x00"),
        (1, p.misc_log_payload(b"put", [b"c", b"3"]) + b"\x00"),
    ]
    # an incomplete entry is left for later
    assert p.parse_repl_stream(stream[4:30]) == (entries[:1], 1, 21)


def test_every_replication_option_is_documented() -> None:
    from doqu_tyrant.server.__main__ import build_parser

    text = (ROOT / "docs" / "replication.rst").read_text(encoding="utf-8")
    group = next(g for g in build_parser()._action_groups if g.title == "replication")
    for action in group._group_actions:
        assert f"``{action.option_strings[0]}" in text, action.option_strings
