"""One client must not be able to take the others' memory, descriptors or time.

Each attack below used to cost the bundled server hundreds of megabytes
(or, scaled up, gigabytes) or stall everyone. Now the server refuses the
request or stops reading from the attacker, its resident memory stays
within a stated bound of what it was before (read from /proc), and another
connection's GET is answered promptly meanwhile. The sizes are kept small
(the machine is shared): each attack would cost 150-300 MB without the
limits, the bounds allow 100 MB.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.server.__main__ import main as server_main
from doqu_tyrant.tyrant import Tyrant, TyrantCommandError, TyrantConnectionError
from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ROOT, ServerProcess

ServerFactory = Callable[..., ServerProcess]

MiB = 1 << 20
BIG = bytes(range(256)) * 4096  # 1 MiB
TABLE_BIG = b"v\0" + b"y" * MiB  # a one-column record of 1 MiB
MEMORY_BOUND = 100 * MiB  # over the resident size before the attack
PROBE_BOUND = 2.0  # seconds for another connection's GET, under attack (generous)


def rss(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


class Probe:
    """Another client: a small GET every 20 ms on a fresh connection; the slowest."""

    def __init__(self, server: ServerProcess, expect: bytes = b"s") -> None:
        self.server = server
        self.expect = expect
        self.slowest = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            with Wire(self.server.address, timeout=30) as wire:
                assert wire.get(b"small") == self.expect
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers += 1
            self._stop.wait(0.02)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture
def loaded(server_factory: ServerFactory) -> Callable[..., ServerProcess]:
    """A server (options as keywords) holding ``big`` (1 MiB) and ``small``."""

    def start(kind: str = "hash", **opts: object) -> ServerProcess:
        server = server_factory(kind, **opts)
        with Wire(server.address) as wire:
            value = TABLE_BIG if kind == "table" else BIG
            assert wire.put(b"big", value) and wire.put(b"small", b"s" if kind != "table"
                                                         else b"v\0s")
        return server

    return start


# -- amplification: a small request, a huge answer --------------------------------------------


def test_mget_naming_a_big_record_many_times_is_refused(loaded: Callable) -> None:
    server = loaded(max_memory="64M")
    base, _ = rss(server.pid)
    with Probe(server) as probe, Wire(server.address) as wire:
        reply = wire.call(p.encode_mget([b"big"] * 200))  # a 200 MiB answer from 1.2 KB
        assert not reply.ok
        ok = wire.call(p.encode_mget([b"big"] * 3 + [b"small"]))  # within the budget
        assert ok.ok and ok.value == [(b"big", BIG)] * 3 + [(b"small", b"s")]
        time.sleep(0.2)
    _, peak = rss(server.pid)
    assert peak - base < MEMORY_BOUND
    assert probe.slowest < PROBE_BOUND and probe.answers > 0
    with Tyrant(server.host, server.port, timeout=10) as t:
        with pytest.raises(TyrantCommandError, match="mget"):  # not an empty "nothing found"
            t.mget(["big"] * 200)


def test_getlist_naming_a_big_record_many_times_is_refused(loaded: Callable) -> None:
    server = loaded("table", max_memory="64M")
    base, _ = rss(server.pid)
    with Probe(server, b"v\0s") as probe, Wire(server.address) as wire:
        reply = wire.call(p.encode_misc(b"getlist", [b"big"] * 200, p.MISC_NOULOG))
        assert not reply.ok
        assert wire.misc(b"getlist", [b"big", b"small"], p.MISC_NOULOG) == [
            b"big", TABLE_BIG, b"small", b"v\0s"]
    _, peak = rss(server.pid)
    assert peak - base < MEMORY_BOUND
    assert probe.slowest < PROBE_BOUND


def test_pipelined_gets_never_read(loaded: Callable) -> None:
    """150 GETs of 1 MiB in one write, replies left unread: the server stops
    answering once a little is waiting, and everything arrives once read."""
    server = loaded()
    base, _ = rss(server.pid)
    with Probe(server) as probe, Wire(server.address, timeout=30) as wire:
        frames = [p.encode_key(p.GET, b"big")] * 150 + [p.encode_simple(p.RNUM)]
        wire.send(b"".join(frames))
        time.sleep(1.0)
        _, peak = rss(server.pid)
        expected = p.reply_bytes(BIG)
        for _ in range(150):
            assert wire.recv_exact(len(expected)) == expected
        assert wire.recv_exact(9) == p.reply_u64(2)
    assert peak - base < MEMORY_BOUND
    assert probe.slowest < PROBE_BOUND


def test_many_connections_sending_gets_and_never_reading(loaded: Callable) -> None:
    server = loaded(max_memory="32M")
    base, _ = rss(server.pid)
    attackers = []
    try:
        with Probe(server) as probe:
            for _ in range(20):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(server.address)
                sock.sendall(p.encode_key(p.GET, b"big") * 10)
                attackers.append(sock)
            time.sleep(1.5)
        _, peak = rss(server.pid)
    finally:
        for sock in attackers:
            sock.close()
    assert peak - base < MEMORY_BOUND
    assert probe.slowest < PROBE_BOUND and probe.answers > 10


def _stall_big_frame(server: ServerProcess, size: int, send: int) -> socket.socket:
    """Declare a ``size``-byte PUT and send up to ``send`` bytes of it (or
    what the server takes within a second)."""
    sock = socket.create_connection(server.address)
    sock.sendall(b"\xc8\x10" + (1).to_bytes(4, "big") + size.to_bytes(4, "big") + b"k")
    sock.setblocking(False)
    chunk = b"y" * MiB
    sent = 0
    deadline = time.monotonic() + 1.0
    while sent < send and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk[: send - sent])
        except BlockingIOError:
            time.sleep(0.005)
    return sock


def test_stalled_large_requests_share_one_budget(loaded: Callable) -> None:
    """Six clients each send most of a 40 MB request and stall: over the
    budget only one of them at a time is read on, the others wait."""
    server = loaded(max_memory="32M", frame_timeout=3)
    base, _ = rss(server.pid)
    stalled = []
    try:
        with Probe(server) as probe:
            for _ in range(6):
                stalled.append(_stall_big_frame(server, 40 * MiB, 30 * MiB))
            time.sleep(0.5)
            _, peak = rss(server.pid)
            # closed by the frame timeout: the memory is usable again
            with Wire(server.address, timeout=30) as wire:
                deadline = time.monotonic() + 20
                while not wire.put(b"after", b"z" * 20 * MiB):
                    assert time.monotonic() < deadline
                assert wire.call(p.encode_key(p.VSIZ, b"after")).value == 20 * MiB
    finally:
        for sock in stalled:
            sock.close()
    assert peak - base < MEMORY_BOUND
    assert probe.slowest < PROBE_BOUND


def test_a_client_reading_no_replies_is_closed(loaded: Callable) -> None:
    server = loaded(frame_timeout=1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(server.address)
    try:
        sock.sendall(p.encode_key(p.GET, b"big") * 50)
        time.sleep(3.5)  # past the timeout, nothing read
        received = 0
        sock.settimeout(10)
        try:
            while chunk := sock.recv(MiB):
                received += len(chunk)
        except ConnectionResetError:
            pass
    finally:
        sock.close()
    assert received < 10 * MiB  # cut off, not the 50 MiB asked for
    alive(server)


def test_a_slow_reader_is_not_closed(loaded: Callable) -> None:
    server = loaded(frame_timeout=1)
    with Wire(server.address, timeout=30) as wire:
        wire.send(p.encode_key(p.GET, b"big") * 4)
        expected = p.reply_bytes(BIG)
        data = bytearray()
        while len(data) < 4 * len(expected):  # 256 KiB every 0.15 s: slow but steady
            chunk = wire.recv_exact(min(256 * 1024, 4 * len(expected) - len(data)))
            assert chunk, "closed"
            data += chunk
            time.sleep(0.15)
        assert bytes(data) == expected * 4


def alive(server: ServerProcess) -> None:
    with Wire(server.address) as wire:
        assert wire.get(b"small") == b"s"


# -- connections --------------------------------------------------------------------------------


def test_connections_over_the_limit_are_closed_at_once(server_factory: ServerFactory) -> None:
    server = server_factory("hash", max_connections=5)
    wires = [Wire(server.address) for _ in range(5)]
    try:
        for i, wire in enumerate(wires):
            assert wire.put(b"c%d" % i, b"x")
        with Wire(server.address) as extra:
            assert extra.closed_within(10.0)
        with Tyrant(server.host, server.port, timeout=5) as t:
            with pytest.raises(TyrantConnectionError):
                t.rnum()
        wires.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the close a moment later
            with Wire(server.address) as wire:
                try:
                    assert wire.rnum() == 5
                    break
                except ConnectionError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
    finally:
        for wire in wires:
            wire.close()


def test_idle_connections_are_closed(server_factory: ServerFactory) -> None:
    server = server_factory("hash", idle_timeout=0.5)
    with Wire(server.address) as idle, Wire(server.address) as busy:
        assert idle.put(b"a", b"1")
        started = time.monotonic()
        for _ in range(10):  # 2 s of a request every 0.2 s: never idle that long
            assert busy.get(b"a") == b"1"
            time.sleep(0.2)
        assert time.monotonic() - started > 1.5
        assert idle.closed_within(5.0)
    with Tyrant(server.host, server.port, timeout=5) as t:  # reconnects by itself
        assert t.get("a") == b"1"
        time.sleep(1.5)
        assert t.get("a") == b"1"


def test_out_of_descriptors_one_log_line_and_no_spinning(tmp_path: Path) -> None:
    """With descriptors exhausted (a 64-file limit, connections allowed past
    it), the server logs one line instead of a traceback per accept, waits
    instead of spinning, turns the extra clients away, and recovers."""
    log = tmp_path / "server.log"

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "doqu_tyrant.server", "--port", "0", "--max-connections",
             "1000", str(tmp_path / "db.tch")],
            stdout=subprocess.PIPE, stderr=err, env=env, preexec_fn=limit_files)
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])
        for _ in range(80):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        cpu_before = _cpu_seconds(proc.pid)
        time.sleep(2.0)
        cpu = _cpu_seconds(proc.pid) - cpu_before
        # the ones beyond the descriptors were accepted and closed, not left hanging
        turned_away = 0
        for sock in socks[60:]:
            sock.settimeout(3)
            try:
                turned_away += sock.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                pass
        for sock in socks:
            sock.close()
        socks.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                with Wire(("127.0.0.1", port), timeout=5) as wire:
                    assert wire.put(b"k", b"v")
                break
            except (ConnectionError, TimeoutError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        for sock in socks:
            sock.close()
        proc.terminate()
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    assert text.count("cannot accept connections") == 1, text[:2000]
    assert len(text) < 2000
    assert cpu < 0.5
    assert turned_away >= 15


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--host", ""],
    ["--max-connections", "0"], ["--max-connections", "-3"], ["--max-connections", "many"],
    ["--idle-timeout", "-1"], ["--idle-timeout", "nan"], ["--idle-timeout", "inf"],
    ["--idle-timeout", "soon"],
    ["--max-memory", "0"], ["--max-memory", "lots"], ["--max-memory", "-1G"],
])  # fmt: skip
def test_bad_limit_options_exit_2(args: list[str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        sys.exit(server_main([*args, "--port", "0", str(tmp_path / "x.tch")]))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert not (tmp_path / "x.tch").exists()


def test_good_limit_options(server_factory: ServerFactory) -> None:
    server = server_factory("hash", max_memory="1G", max_connections=10, idle_timeout=30)
    assert server.host == "127.0.0.1"  # still loopback unless told otherwise
    with Wire(server.address) as wire:
        assert wire.put(b"small", b"s")
