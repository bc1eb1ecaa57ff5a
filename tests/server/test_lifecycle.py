"""Starting, stopping, restarting and killing the server; durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.server import Server
from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ROOT, ServerProcess

ServerFactory = Callable[..., ServerProcess]


def record(i: int) -> bytes:
    return b"name\0user%d\0n\0%d" % (i, i)


def test_in_process_server(tmp_path: Path) -> None:
    with Server(str(tmp_path / "inproc.tct"), port=0) as server:
        assert server.port > 0 and server.url == f"tyrant://127.0.0.1:{server.port}"
        with Wire(("127.0.0.1", server.port)) as wire:
            assert wire.put(b"k", b"a\0b")
            assert wire.get(b"k") == b"a\0b"
    names = {t.name for t in threading.enumerate()}
    assert not any(n.startswith(("tyrant-server", "tyrant-worker")) for n in names)
    # the database was closed properly: a new server sees the record
    server = Server(str(tmp_path / "inproc.tct"), port=0).start()
    try:
        with Wire(("127.0.0.1", server.port)) as wire:
            assert wire.get(b"k") == b"a\0b"
    finally:
        server.stop()
    server.stop()  # stopping twice is harmless


def test_in_process_start_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        Server(str(tmp_path / "missing-dir" / "x.tch"), port=0).start()
    with pytest.raises(ValueError):
        Server("*", ulog_dir=str(tmp_path), sid=0)
    with Server("*", port=0) as first, pytest.raises(OSError):
        Server("+", port=first.port).start()  # port in use


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_cleanly_and_removes_pid_file(tmp_path: Path, signum: int) -> None:
    pid_file = tmp_path / "server.pid"
    server = ServerProcess(str(tmp_path / "sig.tch"), pid=pid_file)
    assert pid_file.read_text().strip() == str(server.pid)
    with Wire(server.address) as wire:
        assert wire.put(b"k", b"v")
    assert server.proc is not None
    server.proc.send_signal(signum)
    assert server.proc.wait(20) == 0
    assert not pid_file.exists()


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "doqu_tyrant.server", "--ulog", str(tmp_path), "*"],
        capture_output=True, env=env, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2 and b"--sid" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "doqu_tyrant.server", "--port", "0", str(tmp_path / "no/x.tch")],
        capture_output=True, env=env, timeout=30,
    )  # fmt: skip
    assert run.returncode == 1 and b"error" in run.stderr


@pytest.mark.parametrize("kind", ["hash", "btree", "fixed", "table"])
def test_records_survive_sigterm_and_restart(server_factory: ServerFactory, kind: str) -> None:
    server = server_factory(kind)
    port = server.port
    with Wire(server.address) as wire:
        replies = wire.pipeline([p.encode_put(b"%d" % i, record(i)) for i in range(1, 2001)])
        assert all(r.ok for r in replies)
    server.stop()
    server.restart()
    assert server.port == port
    with Wire(server.address) as wire:
        assert wire.rnum() == 2000
        width = 255 if kind == "fixed" else None
        for i in (1, 2, 999, 2000):
            assert wire.get(b"%d" % i) == record(i)[:width]


@pytest.mark.parametrize("kind", ["hash", "table"])
def test_kill9_after_sync_keeps_acknowledged_records(
    server_factory: ServerFactory, kind: str
) -> None:
    server = server_factory(kind)
    with Wire(server.address) as wire:
        replies = wire.pipeline([p.encode_put(b"k%d" % i, record(i)) for i in range(3000)])
        assert all(r.ok for r in replies)
        assert wire.call(p.encode_simple(p.SYNC)).ok
    server.kill()
    server.start()
    with Wire(server.address) as wire:
        assert wire.rnum() == 3000
        replies = wire.pipeline([p.encode_key(p.GET, b"k%d" % i) for i in range(3000)])
        assert [r.value for r in replies] == [record(i) for i in range(3000)]


def test_memory_database_starts_empty(server_factory: ServerFactory) -> None:
    server = server_factory("memtree")
    with Wire(server.address) as wire:
        assert wire.put(b"k", b"v")
    server.restart()
    with Wire(server.address) as wire:
        assert wire.rnum() == 0


def test_tuning_parameters_in_path(tmp_path: Path, server_factory: ServerFactory) -> None:
    server = server_factory(str(tmp_path / "tuned.tct#bnum=1000#idx=age:dec#idx=name:lex"))
    with Wire(server.address) as wire:
        assert wire.put(b"a", b"name\0ann\0age\x0040")
        assert wire.put(b"b", b"name\0bob\0age\x0020")
        query = [b"addcond\0age\0" b"9\0" b"10", b"hint"]
        result = wire.misc(b"search", query, 1)
    assert result is not None and result[:2] == [b"b", b"a"]  # decimal index order
    assert b"using an index" in result[-1]
    assert (tmp_path / "tuned.tct.idx.age.dec").exists()
