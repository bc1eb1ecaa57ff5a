"""Replay every recorded ttserver exchange against the bundled server.

Groups run in recording order, each on a server of its database type shared
the way tests/conformance/README.md describes. Responses are compared byte
for byte, except what a vector's ``volatile`` field leaves free (STAT
values, SIZE, hint text, the engine's error text, REPL timestamps).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import protocol as p
from tests.conformance_data import transcripts
from tests.server.wire import Wire
from tests.servers import ServerProcess, db_path

VECTORS = transcripts()
GROUP_ORDER = [
    "hash.basic", "hash.iter", "hash.counters", "hash.misc", "hash.server", "errors",
    "btree.basic", "btree.iter", "btree.counters", "btree.dups", "fixed.basic",
    "memhash.basic", "memhash.iter", "memhash.counters", "memtree.basic", "memtree.iter",
    "table.binary", "table.misc", "table.search", "table.index", "ulog.write", "ulog.repl",
    "hash.restore",
]  # fmt: skip
GROUPS: dict[str, list[dict]] = {}
for _v in VECTORS:
    GROUPS.setdefault(_v["group"], []).append(_v)

# Which server each group runs on (groups naming the same server share it).
SERVER_OF = {
    **{g: "hash" for g in GROUP_ORDER if g.startswith("hash.")},
    "errors": "hash",
    **{g: "btree" for g in GROUP_ORDER if g.startswith("btree.")},
    "fixed.basic": "fixed",
    **{g: "memhash" for g in GROUP_ORDER if g.startswith("memhash.")},
    **{g: "memtree" for g in GROUP_ORDER if g.startswith("memtree.")},
    "table.binary": "table", "table.misc": "table", "table.search": "table",
    "table.index": "table-index",
    "ulog.write": "ulog", "ulog.repl": "ulog",
}  # fmt: skip

QUIET = 0.05  # how long "nothing more arrives" is watched
HINT = b"\0\0[[HINT]]\n"


class Servers:
    """Lazily started servers for the whole module, one per kind."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dump = root / "dumps"
        (self.dump / "dump").mkdir(parents=True)
        self.running: dict[str, ServerProcess] = {}
        self.done: set[str] = set()

    def get(self, name: str) -> ServerProcess:
        if name not in self.running:
            directory = self.root / name
            directory.mkdir()
            kind = {"table-index": "table", "ulog": "hash"}.get(name, name)
            opts: dict[str, object] = {}
            if name == "hash":
                # COPY and RESTORE paths of the vectors are relative to the dump dir;
                # the @command vectors run /bin/true and /bin/false.
                opts = {"dump_dir": self.dump, "copy_commands": True}
            elif name == "ulog":
                opts = {"ulog": self.dump / "dump" / "ulog", "sid": 1}
            self.running[name] = ServerProcess(db_path(kind, directory), **opts)
        return self.running[name]

    def close(self) -> None:
        for server in self.running.values():
            server.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    state = Servers(tmp_path_factory.mktemp("transcripts"))
    try:
        yield state
    finally:
        state.close()


# -- comparing ---------------------------------------------------------------------------------


def _commands(request: bytes) -> list[int]:
    decoder = p.RequestDecoder()
    decoder.feed(request)
    out = []
    while (event := decoder.next_event()) is not None:
        if isinstance(event, p.Request):
            out.append(event.command)
    return out


def read_structured(wire: Wire, request: bytes) -> bytes:
    """Read the replies to ``request`` with the codec; return their raw bytes."""
    decoder = p.ReplyDecoder()
    for cmd in _commands(request):
        decoder.expect(cmd)
    raw = bytearray()
    while decoder.pending:
        if decoder.next_reply() is not None:
            continue
        chunk = wire.recv_exact(1, timeout=5.0)
        assert chunk, f"connection ended after {raw.hex()}"
        raw += chunk
        decoder.feed(chunk)
    return bytes(raw)


def misc_elements(reply: bytes) -> list[bytes]:
    assert reply[:1] == b"\x00", reply.hex()
    (count,) = struct.unpack_from(">I", reply, 1)
    pos, items = 5, []
    for _ in range(count):
        (size,) = struct.unpack_from(">I", reply, pos)
        items.append(reply[pos + 4 : pos + 4 + size])
        pos += 4 + size
    assert pos == len(reply)
    return items


def stat_fields(reply: bytes) -> list[tuple[str, str]]:
    assert reply[:1] == b"\x00"
    (size,) = struct.unpack_from(">I", reply, 1)
    text = reply[5:]
    assert len(text) == size
    return [tuple(line.split("\t", 1)) for line in text.decode().splitlines()]  # type: ignore[misc]


def compare(vector: dict, got: bytes) -> None:
    expected = bytes.fromhex(vector["response_hex"])
    volatile = vector.get("volatile")
    name = vector["name"]
    if volatile is None:
        assert got.hex() == expected.hex(), name
        return
    if "database size" in volatile:
        assert got[:1] == expected[:1] and len(got) == len(expected) == 9, name
    elif "payload (after the 4-byte length)" in volatile:
        ours, theirs = stat_fields(got), stat_fields(expected)
        assert [k for k, _ in ours] == [k for k, _ in theirs], name
        ours_d, theirs_d = dict(ours), dict(theirs)
        for key in ("version", "libver", "protver", "os", "sid", "type", "rnum"):
            assert ours_d[key] == theirs_d[key], (name, key)
    elif "error code and message" in volatile:
        ours_l, theirs_l = misc_elements(got), misc_elements(expected)
        assert len(ours_l) == len(theirs_l), name
    elif "[[HINT]]" in volatile:
        ours_l, theirs_l = misc_elements(got), misc_elements(expected)
        assert ours_l[:-1] == theirs_l[:-1], name
        assert ours_l[-1].startswith(HINT) and theirs_l[-1].startswith(HINT), name
    else:  # pragma: no cover - a new kind of volatile field
        raise AssertionError(f"{name}: unknown volatile description {volatile!r}")


# -- replaying ---------------------------------------------------------------------------------


def check_after(wire: Wire, vector: dict) -> None:
    after = vector.get("connection_after")
    name = vector["name"]
    if after is None:
        return
    if after == "closed":
        assert wire.closed_within(2.0), f"{name}: connection should be closed"
    elif after.startswith("open (a following RNUM is answered)"):
        reply = wire.call(p.encode_simple(p.RNUM))
        assert reply.ok, name
    elif after.startswith("open, no response"):
        assert wire.silent_for(0.2), name
    elif after.startswith("open but unresponsive"):
        wire.send(p.encode_simple(p.RNUM))
        assert wire.silent_for(0.2), f"{name}: the RNUM should be swallowed"
    else:  # pragma: no cover
        raise AssertionError(f"{name}: unknown connection_after {after!r}")


def replay_vector(wire: Wire, server: ServerProcess, vector: dict, keep: list[Wire]) -> None:
    request = bytes.fromhex(vector["request_hex"])
    expected = bytes.fromhex(vector["response_hex"])
    if vector.get("connection") == "new":
        conn = Wire(server.address)
        keep.append(conn)
        conn.send(request)
        if vector["name"].startswith("ulog.repl"):
            check_repl_stream(conn, expected)
            return
        if "halfclose" in vector["name"]:
            conn.sock.shutdown(2 - 1)  # SHUT_WR
        got = conn.recv_exact(len(expected), timeout=5.0) if expected else b""
        compare(vector, got)
        check_after(conn, vector)
        return
    wire.send(request)
    if not expected:
        assert wire.silent_for(QUIET), f"{vector['name']}: expected no response"
        return
    if vector.get("volatile"):
        got = read_structured(wire, request)
    else:
        got = wire.recv_exact(len(expected), timeout=5.0)
    compare(vector, got)


def repl_entries(stream: bytes) -> tuple[int, list[tuple[int, bytes]]]:
    """Split a REPL stream into the master sid and its (sid, payload) entries."""
    (sid,) = struct.unpack_from(">I", stream)
    pos, entries = 4, []
    while pos < len(stream):
        kind = stream[pos]
        if kind == 0xCA:
            pos += 1
            continue
        assert kind == 0xC9, stream[pos:].hex()
        if pos + 17 > len(stream):
            break
        _ts, esid, size = struct.unpack_from(">QII", stream, pos + 1)
        if pos + 17 + size > len(stream):
            break
        entries.append((esid, stream[pos + 17 : pos + 17 + size]))
        pos += 17 + size
    return sid, entries


def check_repl_stream(conn: Wire, expected: bytes) -> None:
    got = conn.recv_for(1.3)
    assert got[:4] == expected[:4]
    assert repl_entries(got) == repl_entries(expected)
    assert p.REPL_KEEPALIVE in got[4:]


def rewrite_paths(vector: dict) -> dict:
    """The vectors' server-side paths are already relative to the dump directory."""
    return vector


@pytest.mark.parametrize("group", GROUP_ORDER)
def test_group(servers: Servers, group: str) -> None:
    if group == "hash.restore" and "ulog.write" not in servers.done:
        run_group(servers, "ulog.write")  # its update log is what gets restored
    run_group(servers, group)


def run_group(servers: Servers, group: str) -> None:
    server = servers.get(SERVER_OF[group])
    keep: list[Wire] = []
    with Wire(server.address) as wire:
        try:
            for vector in GROUPS[group]:
                replay_vector(wire, server, rewrite_paths(vector), keep)
            assert wire.silent_for(QUIET), f"{group}: unexpected bytes at the end"
        finally:
            for conn in keep:
                conn.close()
    servers.done.add(group)


def test_every_vector_is_replayed() -> None:
    assert sum(len(GROUPS[g]) for g in GROUP_ORDER) == len(VECTORS) == 687
