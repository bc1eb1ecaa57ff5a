"""Batches: many requests of one command encoded in one pass, their replies
decoded in one pass (the codec pieces behind bulk saves), and the client
methods and pipeline entries built on them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doqu_tyrant.server.ulog import LogReader
from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, TyrantProtocolError
from doqu_tyrant.tyrant import commands as c
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.errors import TyrantCommandError, TyrantUnsafeWrite
from tests.conftest import ServerFactory

keys = st.binary(max_size=30)
values = st.binary(max_size=300)

# One reply of each shape the decoder knows, as (command, reply bytes, decoded Reply).
_REPLY_CASES = st.one_of(
    st.booleans().map(lambda ok: (p.PUTKEEP, b"\0" if ok else b"\1", p.Reply(ok, None))),
    st.booleans().map(lambda ok: (p.OUT, b"\0" if ok else b"\1", p.Reply(ok, None))),
    values.map(lambda v: (p.GET, p.reply_bytes(v), p.Reply(True, v))),
    st.just((p.GET, b"\1", p.Reply(False, None))),
    st.integers(0, 2**32 - 1).map(lambda n: (p.VSIZ, p.reply_u32(n), p.Reply(True, n))),
    st.lists(values, max_size=3).map(lambda items: (p.MISC, p.reply_list(items),
                                                    p.Reply(True, items))),
    st.integers(1, 2**63).map(lambda n: (p.MISC, p.reply_list([b"%d" % n]),
                                         p.Reply(True, [b"%d" % n]))),
    st.from_regex(rb"[0-9]{1,25}[a-z]?", fullmatch=True).map(  # number-like, or not
        lambda text: (p.MISC, p.reply_list([text]), p.Reply(True, [text]))),
    st.just((p.MISC, p.REPLY_MISC_FAIL, p.Reply(False, None))),
    st.lists(keys, max_size=3).map(lambda items: (p.FWMKEYS, p.reply_list(items),
                                                  p.Reply(True, items))),
    st.just((p.PUTNR, b"", p.Reply(True, None))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_REPLY_CASES, max_size=40), st.lists(st.integers(1, 64), max_size=20))
def test_next_replies_decodes_what_next_reply_decodes(cases: list, cuts: list[int]) -> None:
    commands = [command for command, _, _ in cases]
    data = b"".join(reply for _, reply, _ in cases)
    expected = [reply for _, _, reply in cases]
    decoder = p.ReplyDecoder()
    decoder.expect_many(commands)
    assert decoder.pending == len(cases)
    got: list[p.Reply] = []
    pos = 0
    for cut in [*cuts, len(data)]:  # the bytes arrive in arbitrary pieces
        decoder.feed(data[pos:pos + cut])
        pos += cut
        got += decoder.next_replies()
        if pos >= len(data):
            break
    assert got == expected
    assert decoder.pending == 0 and decoder.buffered == 0


def test_a_long_run_of_number_replies_arriving_in_pieces() -> None:
    numbers = [b"%d" % n for n in range(1, 3001)] + [b"12x", b"", b"7"]
    data = b"".join(p.reply_list([n]) for n in numbers) + p.reply_bytes(b"v")
    decoder = p.ReplyDecoder()
    decoder.expect_many([p.MISC] * len(numbers) + [p.GET])
    got: list[p.Reply] = []
    for start in range(0, len(data), 5000):
        decoder.feed(data[start:start + 5000])
        got += decoder.next_replies()
    assert got == [p.Reply(True, [n]) for n in numbers] + [p.Reply(True, b"v")]
    assert decoder.pending == 0 and decoder.buffered == 0


def test_number_replies_are_matched_only_as_far_as_they_are_due() -> None:
    # A GET of one NUL byte, then one whose size is 0x00023132: together their bytes
    # read like a one-element list reply holding "12"; only one MISC is due.
    data = p.reply_list([b"5"]) + p.reply_bytes(b"\0") + p.reply_bytes(b"v" * 0x23132)
    decoder = p.ReplyDecoder()
    decoder.expect_many([p.MISC, p.GET, p.GET])
    decoder.feed(data)
    assert decoder.next_replies() == [p.Reply(True, [b"5"]), p.Reply(True, b"\0"),
                                      p.Reply(True, b"v" * 0x23132)]


def test_next_replies_refuses_a_bad_status_byte_in_a_run_of_statuses() -> None:
    decoder = p.ReplyDecoder()
    decoder.expect_many([p.PUT] * 4)
    decoder.feed(b"\0\1\x07\0")
    with pytest.raises(TyrantProtocolError, match="0x07"):
        decoder.next_replies()


def test_next_replies_leaves_bytes_beyond_the_announced_replies() -> None:
    decoder = p.ReplyDecoder()
    decoder.expect_many([p.PUT, p.PUT])
    decoder.feed(b"\0\0\0")
    assert decoder.next_replies() == [p.Reply(True, None)] * 2
    assert decoder.buffered == 1  # the caller decides (the clients: a protocol error)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(keys, values), max_size=30),
       st.sampled_from([p.PUT, p.PUTKEEP, p.PUTCAT, p.PUTNR]))
def test_encode_puts_is_the_frames_of_encode_put(pairs: list[tuple[bytes, bytes]],
                                                 command: int) -> None:
    frame = p.encode_puts([k for k, _ in pairs], [v for _, v in pairs], command)
    assert frame == b"".join(p.encode_put(k, v, command) for k, v in pairs)
    decoder = p.RequestDecoder()
    decoder.feed(frame)
    args: list[tuple] = []
    while (event := decoder.next_batch()) is not None:
        args += event.args if isinstance(event, p.Run) else [event.args]
    assert args == pairs
    with pytest.raises(ValueError, match="2 keys but 1 values"):
        p.encode_puts([b"a", b"b"], [b"x"])


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=30))
def test_reply_lists_of_one_is_the_replies_of_reply_list(items: list[bytes]) -> None:
    assert p.reply_lists_of_one(items) == b"".join(p.reply_list([item]) for item in items)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["genuid", "other misc", "put", "cut"]), max_size=20))
def test_genuid_frames_come_as_one_run(ops: list[str]) -> None:
    frames = {"genuid": p.GENUID_FRAME, "other misc": p.encode_misc(b"genuid", [b"x"]),
              "put": p.encode_put(b"k", b"v")}
    data = b"".join(frames[op] for op in ops if op != "cut")
    if ops and ops[-1] == "cut":
        data += p.GENUID_FRAME[:7]  # an incomplete frame at the end
    one_by_one = p.RequestDecoder()
    one_by_one.feed(data)
    expected = []
    while (event := one_by_one.next_event()) is not None:
        expected.append(event)
    decoder = p.RequestDecoder()
    decoder.feed(data)
    got = []
    while (event := decoder.next_batch()) is not None:
        if isinstance(event, p.Run):
            assert len(event.args) >= 2
            if event.command == p.MISC:  # only runs of the argument-less genuid
                assert all(args == (b"genuid", 0, []) for args in event.args)
            got += [p.Request(event.command, args) for args in event.args]
        else:
            got.append(event)
    assert got == expected
    assert decoder.buffered == one_by_one.buffered


# -- batches in pipelines, against a server ------------------------------------------------


def test_genuids_are_the_next_numbers_of_the_sequence(t: Tyrant) -> None:
    first = t.genuid()
    numbers = t.genuids(500)
    assert numbers == list(range(first + 1, first + 501))
    assert t.genuid() == first + 501
    assert t.genuids(0) == []
    with pytest.raises(ValueError, match="count"):
        t.genuids(-1)
    with pytest.raises(TypeError, match="count"):
        t.genuids("3")  # type: ignore[arg-type]


def test_table_putkeep_many_stores_only_absent_keys(t: Tyrant) -> None:
    t["b"] = {"name": "by hand"}
    records = {"a": {"name": "x", "n": "1"}, "b": {"name": "y"}, "c": {"name": "z", "e": ""}}
    assert t.table_putkeep_many(records) == [True, False, True]
    assert t["a"] == records["a"] and t["b"] == {"name": "by hand"} and t["c"] == records["c"]
    assert t.get("a") == p.pack_record([(b"name", b"x"), (b"n", b"1")])  # what MISC put stores
    t.table_put_many([("b", {"name": "replaced"}), ("d", b"name\0serialised")])
    assert t["b"] == {"name": "replaced"} and t["d"] == {"name": "serialised"}
    assert t.table_putkeep_many({}) == [] and len(t) == 4


def test_batches_mix_with_other_commands_in_a_pipeline(t: Tyrant) -> None:
    pipe = t.pipeline().rnum().genuids(3).table_putkeep_many({"k": {"a": "1"}})
    results = pipe.table_put_many({"j": {"b": "2"}}).table_get("k").execute()
    assert results[0] == 0
    assert isinstance(results[1], c.BatchResults) and len(results[1]) == 3
    assert results[2] == [True] and results[3] == [None] and results[4] == {"a": "1"}
    assert t.pipeline().table_putkeep_many({"k": {"a": "2"}}).execute() == [[False]]


def test_bad_records_are_refused_before_anything_is_sent(t: Tyrant) -> None:
    bad = [({"k": {"a": "x\0y"}}, ValueError, "NUL"),
           ({"": {"a": "1"}}, ValueError, "empty"),
           ({"k": b"name\0value\0dangling"}, ValueError, "not a serialised record"),
           ({"k": b"\0value"}, ValueError, "empty column name"),
           ({"k": 5}, TypeError, "mapping"),
           ("kv", TypeError, "records")]
    for records, error, match in bad:
        with pytest.raises(error, match=match):
            t.table_putkeep_many(records)  # type: ignore[arg-type]
        with pytest.raises(error, match=match):
            t.pipeline().table_put_many(records)  # type: ignore[arg-type]
    assert len(t) == 0


@pytest.mark.bundled_only
def test_an_empty_value_in_an_indexed_column_refuses_the_whole_batch(t: Tyrant) -> None:
    t.setindex("city", "lexical")
    try:
        records = [(f"r{i}", {"name": f"n{i}", "city": "" if i in (7, 9) else "x"})
                   for i in range(10)]
        with pytest.raises(TyrantUnsafeWrite, match="'city' of record 'r7'.*lexical"):
            t.table_putkeep_many(records)
        assert len(t) == 0  # nothing was sent
        t.table_put_many(records[:7])  # without the empty ones: stored
        assert len(t) == 7
    finally:
        t.setindex("city", "void")


def test_a_failed_put_of_a_batch_is_its_exception(t: Tyrant) -> None:
    replies = [p.Reply(True, None), p.Reply(False, None), p.Reply(False, None)]
    results = c.pipeline_results([c.table_put_many({"a": {}, "b": {}, "c": {}})], replies,
                                 False)
    batch = results[0]
    assert batch[0] is None and isinstance(batch[1], TyrantCommandError)
    assert batch.error is batch[1] and batch[2] is not batch[1]
    with pytest.raises(TyrantCommandError):
        c.raise_first_error(results)
    numbers = c.pipeline_results([c.genuids(2)], [p.Reply(True, [b"7"]), p.Reply(False, None)],
                                 False)[0]
    assert numbers[0] == 7 and numbers.error is numbers[1]


def test_the_batch_methods_need_a_table(kv: Tyrant) -> None:
    with pytest.raises(TypeError, match="table"):
        kv.table_putkeep_many({"a": {"x": "1"}})
    with pytest.raises(TypeError, match="table"):
        kv.table_put_many({"a": {"x": "1"}})
    assert len(kv) == 0


def test_a_server_answers_a_run_of_genuids_as_one_batch(server_factory: ServerFactory,
                                                        tmp_path: Path) -> None:
    for opts in ({}, {"ulog": str(tmp_path), "sid": 1}):  # with a log: each logged on its own
        server = server_factory("table", **opts)
        with Tyrant(server.host, server.port, timeout=10) as client:
            assert client.genuids(3000) == list(range(1, 3001))
            assert client.genuid() == 3001
            assert client.stat()["cnt_misc"] == "3001"
    entries = LogReader(str(tmp_path), 0).read()
    logged = p.misc_log_payload(b"genuid", []) + b"\0"  # (+ the result: success)
    assert [payload for *_, payload in entries] == [logged] * 3001


def test_a_server_without_a_table_fails_every_genuid_of_a_run(kv: Tyrant) -> None:
    results = kv.pipeline().genuids(3).execute(raise_on_error=False)[0]
    assert len(results) == 3 and all(isinstance(r, TyrantCommandError) for r in results)
    with pytest.raises(TyrantCommandError, match="genuid"):
        kv.genuids(2)


# -- through failover groups -----------------------------------------------------------------


def test_genuids_of_a_group_with_unique_ids_skip_past_the_gap(
        server_factory: ServerFactory) -> None:
    a, b = server_factory("table"), server_factory("table")
    servers = [f"{s.host}:{s.port}" for s in (a, b)]
    with Tyrant(servers=servers, timeout=5, unique_ids=True, uid_gap=50) as g:
        assert g.genuids(3) == [1, 2, 3]
        with Tyrant(b.host, b.port, timeout=5) as direct:
            direct.genuids(20)  # B's counter is at 20: below 3 + the gap
        a.kill()
        after = g.genuids(5)
        assert after[0] >= 3 + 50 and after == list(range(after[0], after[0] + 5))
        assert g.genuid() == after[-1] + 1 and g.genuids(2)[0] == after[-1] + 2
    with Tyrant(servers=servers, timeout=5) as plain:  # without unique_ids: B's counter
        assert plain.genuids(2) == [after[-1] + 4, after[-1] + 5]


def test_async_genuids_and_batches(server_factory: ServerFactory) -> None:
    a, b = server_factory("table"), server_factory("table")
    servers = [f"{s.host}:{s.port}" for s in (a, b)]

    async def main() -> None:
        async with AsyncTyrant(servers=servers, timeout=5, unique_ids=True, uid_gap=10) as g:
            assert await g.genuids(2) == [1, 2]
            assert await g.table_putkeep_many({"x": {"a": "1"}, "y": {"a": "2"}}) == [True, True]
            await g.table_put_many({"x": {"a": "3"}})
            assert await g.table_get("x") == {"a": "3"}
            a.kill()
            assert (await g.genuids(3))[0] >= 2 + 10
        async with AsyncTyrant(b.host, b.port, timeout=5) as single:
            assert await single.genuids(0) == []
            assert len(await single.genuids(4)) == 4

    asyncio.run(main())
