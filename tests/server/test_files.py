"""COPY and RESTORE only touch files inside --dump-dir; the update log round trip."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]


def copy(wire: Wire, path: bytes | str) -> bool:
    return wire.call(p.encode_path(p.COPY, os.fsencode(path))).ok


def restore(wire: Wire, path: bytes | str, ts: int = 0, opts: int = 0) -> bool:
    return wire.call(p.encode_restore(os.fsencode(path), ts, opts)).ok


@pytest.fixture
def dumped(tmp_path: Path, server_factory: ServerFactory) -> tuple[ServerProcess, Path, Path]:
    """A hash server with a dump dir, and a directory outside it."""
    dump = tmp_path / "dump"
    outside = tmp_path / "outside"
    dump.mkdir()
    outside.mkdir()
    (dump / "sub").mkdir()
    server = server_factory("hash", dump_dir=dump)
    with Wire(server.address) as wire:
        assert wire.put(b"k", b"v")
    return server, dump, outside


def test_copy_inside_dump_dir(dumped: tuple[ServerProcess, Path, Path]) -> None:
    server, dump, _ = dumped
    with Wire(server.address) as wire:
        assert copy(wire, "backup.tch")
        assert copy(wire, "sub/backup2.tch")
        assert copy(wire, "sub/../backup3.tch")  # stays inside: fine
        assert not copy(wire, "no-such-dir/backup.tch")
        assert wire.get(b"k") == b"v"
        assert "fatal" not in wire.stat()  # a refused COPY does not hurt the engine
    assert (dump / "backup.tch").stat().st_size > 0
    assert (dump / "sub" / "backup2.tch").exists() and (dump / "backup3.tch").exists()
    # the copy is a working database
    backup = ServerProcess(str(dump / "backup.tch"))
    try:
        with Wire(backup.address) as wire:
            assert wire.get(b"k") == b"v"
    finally:
        backup.stop()


@pytest.mark.parametrize("path", [
    "../escape.tch", "sub/../../escape.tch", "{outside}/abs.tch", "", ".", "sub",
    "link-out/x.tch", "file-link.tch", "@/bin/true", "@touch {outside}/pwned",
])  # fmt: skip
def test_copy_refused_outside_dump_dir(
    dumped: tuple[ServerProcess, Path, Path], path: str
) -> None:
    server, dump, outside = dumped
    (dump / "link-out").symlink_to(outside)
    (dump / "file-link.tch").symlink_to(outside / "target.tch")
    with Wire(server.address) as wire:
        assert not copy(wire, path.format(outside=outside))
        assert wire.get(b"k") == b"v"
    assert list(outside.iterdir()) == []
    assert not (dump.parent / "escape.tch").exists()


def test_copy_refuses_the_database_itself(tmp_path: Path, server_factory: ServerFactory) -> None:
    server = server_factory(str(tmp_path / "self.tct"), dump_dir=tmp_path)
    with Wire(server.address) as wire:
        assert wire.put(b"k", b"a\0b")
        assert not copy(wire, "self.tct")
        assert not copy(wire, "self.tct.idx.a.lex")
        assert copy(wire, "other.tct")
        assert wire.get(b"k") == b"a\0b"


def test_copy_and_restore_refused_without_dump_dir(server_factory: ServerFactory,
                                                    tmp_path: Path) -> None:
    server = server_factory("hash")
    with Wire(server.address) as wire:
        assert not copy(wire, str(tmp_path / "x.tch"))
        assert not copy(wire, "x.tch")
        assert not restore(wire, str(tmp_path))
        assert not restore(wire, ".")
    assert not (tmp_path / "x.tch").exists()


def test_copy_commands_need_the_option(tmp_path: Path, server_factory: ServerFactory) -> None:
    marker = tmp_path / "ran"
    hook = tmp_path / "hook.sh"  # Tokyo Cabinet runs it with the database path and a time
    hook.write_text(f'#!/bin/sh\necho "$@" > {marker}\n')
    hook.chmod(0o755)
    server = server_factory("hash", copy_commands=True)
    with Wire(server.address) as wire:
        assert copy(wire, "@/bin/true")
        assert not copy(wire, "@/bin/false")
        assert copy(wire, f"@{hook}")
    assert marker.read_text().split()[0].endswith(".tch")
    refusing = server_factory("hash")
    with Wire(refusing.address) as wire:
        assert not copy(wire, "@/bin/true")
        assert not copy(wire, f"@{hook}")


def write_log(server: ServerProcess) -> None:
    with Wire(server.address) as wire:
        assert wire.call(p.encode_simple(p.VANISH)).ok
        assert wire.put(b"a", b"1")
        assert wire.put(b"b", b"2")
        assert wire.misc(b"put", [b"c", b"3"]) == []
        assert wire.misc(b"put", [b"nolog", b"x"], p.MISC_NOULOG) == []
        assert wire.call(p.encode_key(p.OUT, b"b")).ok
        assert wire.call(p.encode_addint(b"n", 5)).ok
        assert wire.call(p.encode_addint(b"n", 0)).ok  # a read: not logged
        assert not wire.call(p.encode_put(b"a", b"1", p.PUTKEEP)).ok  # failures are logged


def test_restore_from_update_log(tmp_path: Path, server_factory: ServerFactory) -> None:
    dump = tmp_path / "dump"
    master = server_factory("hash", ulog=dump / "logs", sid=3)
    write_log(master)
    target = server_factory("btree", dump_dir=dump)
    with Wire(target.address) as wire:
        assert wire.put(b"zz", b"gone after the logged VANISH")
        assert restore(wire, "logs")
        keys = wire.call(p.encode_fwmkeys(b"")).value
        assert keys == [b"a", b"c", b"n"]
        assert wire.get(b"n") == (5).to_bytes(4, "little")
        # consistency check: replaying again gives the same results (PUTKEEP fails again)
        assert restore(wire, "logs", opts=p.REPL_CHECK)
        assert restore(wire, "logs", ts=1 << 62)  # nothing after that time
        assert not restore(wire, "no-such-dir")
        assert not restore(wire, "../")
        assert not restore(wire, str(dump / "logs"))  # absolute


def test_restore_consistency_check_detects_divergence(tmp_path: Path,
                                                      server_factory: ServerFactory) -> None:
    dump = tmp_path / "dump"
    master = server_factory("hash", ulog=dump / "logs", sid=3)
    with Wire(master.address) as wire:
        assert wire.call(p.encode_put(b"a", b"1", p.PUTKEEP)).ok
    target = server_factory("hash", dump_dir=dump)
    with Wire(target.address) as wire:
        assert wire.put(b"a", b"already here")
        assert not restore(wire, "logs", opts=p.REPL_CHECK)  # PUTKEEP now fails
        assert restore(wire, "logs")  # without the check the replay carries on


def test_restore_through_symlink_out_is_refused(tmp_path: Path,
                                                server_factory: ServerFactory) -> None:
    dump = tmp_path / "dump"
    master = server_factory("hash", ulog=tmp_path / "logs", sid=3)
    write_log(master)
    dump.mkdir()
    (dump / "logs").symlink_to(tmp_path / "logs")
    target = server_factory("hash", dump_dir=dump)
    with Wire(target.address) as wire:
        assert not restore(wire, "logs")
        assert wire.rnum() == 0


def test_update_log_files_and_corruption(tmp_path: Path, server_factory: ServerFactory) -> None:
    logs = tmp_path / "dump" / "logs"
    master = server_factory("hash", ulog=logs, sid=7, ulim=200)  # tiny files: rotation
    with Wire(master.address) as wire:
        for i in range(50):
            assert wire.put(b"k%d" % i, b"v%d" % i)
    files = sorted(n for n in os.listdir(logs) if n.endswith(".ulog"))  # (not .pending)
    assert len(files) > 5 and files[0] == "00000001.ulog"
    entries = p.parse_ulog((logs / files[0]).read_bytes())
    assert entries[0][1:3] == (7, 0)
    assert entries[0][3] == p.encode_put(b"k0", b"v0") + b"\x00"
    target = server_factory("hash", dump_dir=tmp_path / "dump")
    with Wire(target.address) as wire:
        assert restore(wire, "logs")
        assert wire.rnum() == 50
        (logs / files[-1]).write_bytes(b"garbage that is no update log")
        assert not restore(wire, "logs")
    with Wire(master.address) as wire:
        assert wire.put(b"after", b"restart")  # the writer is unaffected


def test_restore_from_a_timestamp_deep_inside_a_big_log(tmp_path: Path,
                                                        server_factory: ServerFactory) -> None:
    logs = tmp_path / "dump" / "logs"
    master = server_factory("hash", ulog=logs, sid=3)
    value = b"v" * 1000
    with Wire(master.address) as wire:
        replies = wire.pipeline([p.encode_put(b"k%05d" % i, value) for i in range(3000)])
        assert all(r.ok for r in replies)
    entries = p.parse_ulog((logs / "00000001.ulog").read_bytes())
    assert len(entries) == 3000
    ts = entries[2500][0]  # about 2.5 MB of older entries come first
    target = server_factory("hash", dump_dir=tmp_path / "dump")
    with Wire(target.address) as wire:
        assert restore(wire, "logs", ts=ts)
        assert wire.rnum() == 500
        assert wire.get(b"k02500") == value and wire.get(b"k02499") is None
    # a slave asking for the same point gets the same 500 entries
    with Wire(master.address) as stream:
        stream.send(p.encode_repl(ts, 9))
        data = stream.recv_for(1.5)
    assert data.count(p.encode_put(b"k02999", value)) == 1
    assert data.count(b"\xc9") >= 500 and p.encode_put(b"k02499", value) not in data
