"""Costly regular expressions get a failure from the bundled server (issue 14, item 5).

Tokyo Cabinet runs STRRX conditions and MISC ``regex`` with glibc, inline:
``(a*)(a*)(a*)(a*)(a*)\\5\\4\\3\\2\\1b`` on a 61-byte record stalled every client
for 21.6 s, ``(((a{1,60}){1,60}){1,60}){1,60}`` took 30 s and 8.4 GB. The server
now answers such calls with a failure at once; an invalid expression still
matches nothing, as in ttserver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]

ISSUE_BACKREFS = b"(a*)(a*)(a*)(a*)(a*)\\5\\4\\3\\2\\1b"
ISSUE_NESTING = b"(((a{1,60}){1,60}){1,60}){1,60}"
# glibc's parser recurses per group: about 20,000 levels crash the process, even when
# the expression is invalid (unclosed) and would otherwise match nothing
DEEP = b"(" * 30000
COSTLY = [ISSUE_BACKREFS, ISSUE_NESTING, b".*a.{24}c", b"(a?){5000}", b"(a)\\1",
          b"*(a)\\1", DEEP, b"(a" * 20000 + b")" * 20000]
RECORDS = {b"p1": b"name\0" + b"a" * 61, b"p2": b"name\0alice", b"p3": b"name\0bob"}


def cond(expr: bytes, op: bytes = b"7", column: bytes = b"name",
         name: bytes = b"addcond") -> bytes:
    return b"\0".join((name, column, op, expr))


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("regex")
    log = directory / "server.log"
    with ServerProcess(str(directory / "rx.tct"), log=str(log)) as server, \
            Wire(server.address) as wire:
        for key, value in RECORDS.items():
            assert wire.put(key, value)
        yield server


@pytest.fixture
def wire(table: ServerProcess) -> Iterator[Wire]:
    with Wire(table.address, timeout=20) as w:
        yield w


def search(wire: Wire, *args: bytes, name: bytes = b"search") -> list[bytes] | None:
    result = wire.misc(name, list(args), 1)
    return None if result is None else sorted(result)


@pytest.mark.parametrize("expr", COSTLY)
def test_costly_expression_answers_failure(wire: Wire, expr: bytes) -> None:
    started = time.monotonic()
    assert search(wire, cond(expr)) is None
    assert time.monotonic() - started < 5  # glibc alone: 21.6 s or 30 s for the first two
    assert search(wire, cond(b"^a")) == [b"p1", b"p2"]  # the connection goes on


def test_another_connection_stays_fast_during_attacks(table: ServerProcess) -> None:
    stop = threading.Event()
    waits: list[float] = []

    def reader() -> None:
        with Wire(table.address, timeout=20) as other:
            while not stop.is_set():
                started = time.monotonic()
                assert other.get(b"p2") == RECORDS[b"p2"]
                waits.append(time.monotonic() - started)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with Wire(table.address, timeout=20) as attacker:
            for _ in range(5):
                for expr in COSTLY:
                    assert search(attacker, cond(expr)) is None
    finally:
        stop.set()
        thread.join(30)
    assert waits and max(waits) < 1.0
    with Wire(table.address) as w:
        rss = int(w.stat()["memrss"])
    assert rss < 256 << 20  # the nested repetition alone took 8.4 GB in glibc


@pytest.mark.parametrize("op", [b"RX", b"strrx", b"~RX", b"!+rx", b"16777223", b"33554439",
                                b" 7 ", b"7.5", b"4294967303"])
def test_every_operator_text_the_library_reads_as_strrx_is_checked(wire: Wire,
                                                                    op: bytes) -> None:
    negated = op[:1] in (b"~", b"!") or op == b"16777223"
    assert search(wire, cond(b"^a", op)) == ([b"p3"] if negated else [b"p1", b"p2"])
    assert search(wire, cond(ISSUE_BACKREFS, op)) is None


@pytest.mark.parametrize("op", [b"0", b"STREQ", b"bogus", b"-7", b"99", b"15"])
def test_other_operators_pass_expressions_unchecked(wire: Wire, op: bytes) -> None:
    assert search(wire, cond(ISSUE_BACKREFS, op)) is not None


def test_directives_the_library_ignores_are_not_checked(wire: Wire) -> None:
    everything = sorted(RECORDS)
    assert search(wire, cond(b"^zz", name=b"ADDCOND")) == everything  # names are exact
    assert search(wire, cond(ISSUE_BACKREFS, name=b"ADDCOND")) == everything
    assert search(wire, b"addcond\0name\x007") == everything  # too few tokens
    assert search(wire, cond(b"^zz", name=b"cond")) == []  # the alias is read, so checked
    assert search(wire, cond(ISSUE_BACKREFS, name=b"cond")) is None


def test_every_sub_query_and_out_are_checked(wire: Wire) -> None:
    ok = cond(b"^a")
    assert search(wire, b"hint", ok, b"next", b"hint", cond(ISSUE_NESTING), b"mstype\x000",
                  name=b"metasearch") is None
    assert search(wire, ok, cond(ISSUE_BACKREFS, b"16777223"), b"out") is None
    assert wire.rnum() == len(RECORDS)  # nothing was removed
    assert search(wire, cond(b"(a)\\1\0ignored")) is None  # the library reads up to a NUL
    assert search(wire, cond(b"^a\0(a)\\1")) == [b"p1", b"p2"]


def test_invalid_expression_matches_nothing_as_in_ttserver(wire: Wire) -> None:
    assert search(wire, cond(b"(")) == []  # conformance vector p054
    assert search(wire, cond(b"*[_-a]")) == []  # invalid only when ignoring case
    assert search(wire, cond(b"[a-Z]")) == []
    assert search(wire, cond(b"*[a-Z]")) == [b"p1", b"p2", b"p3"]


def test_refusal_is_logged_at_info_level(table: ServerProcess, wire: Wire) -> None:
    assert search(wire, cond(b"(b)\\1")) is None
    with open(table.opts["log"], encoding="utf-8") as f:
        log = f.read()
    assert "MISC search refused: regular expression '(b)\\\\1' refused: backreferences" in log


def test_misc_regex_on_key_value_database(server_factory: ServerFactory) -> None:
    server = server_factory("hash")
    with Wire(server.address, timeout=20) as w:
        assert w.put(b"a" * 61, b"v1") and w.put(b"key2", b"v2")
        assert w.misc(b"regex", [ISSUE_BACKREFS], 1) is None
        assert w.misc(b"regex", [b"*" + ISSUE_NESTING, b"10"], 1) is None
        assert w.misc(b"regex", [DEEP], 1) is None
        assert w.misc(b"regex", [b"^key"], 1) == [b"key2", b"v2"]
        assert w.misc(b"regex", [b"("], 1) is None  # invalid: the library's own failure
        assert w.misc(b"regex", [], 1) is None
    assert server.running
