"""The client's API agrees with pyrant's and with the doqu query: call_func's
signature, len() and negative indexes of a query, list(query) in one request,
and tables whose keys are not all UTF-8."""

from __future__ import annotations

import asyncio
import struct

import pytest

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant
from doqu_tyrant.tyrant import protocol as p
from tests.tyrant.conftest import PEOPLE
from tests.tyrant.helpers import ReplayListener


def _ext_reply(value: bytes) -> bytes:
    return b"\0" + struct.pack(">I", len(value)) + value


@pytest.fixture
def listener() -> ReplayListener:
    lst = ReplayListener()
    yield lst  # type: ignore[misc]
    lst.close()


def test_call_func_takes_pyrants_arguments(listener: ReplayListener) -> None:
    with Tyrant.from_url(listener.url, timeout=5) as t:
        calls = [
            (lambda: t.call_func("f", "k", "v", True, False), 1),
            (lambda: t.call_func("f", "k", "v", False, True), 2),
            (lambda: t.call_func("f", "k", "v", 1, 1), 3),
            (lambda: t.call_func(func="f", key="k", value="v", record_locking=True,
                                 global_locking=True), 3),
            (lambda: t.call_func("f", "k", "v"), 0),
            (lambda: t.ext("f", "k", "v", lock_record=True), 1),  # the native form stays
        ]
        for call, opts in calls:
            frame = p.encode_ext(b"f", b"k", b"v", opts)
            listener.exchange(len(frame), _ext_reply(b"done"))
            assert call() == b"done"
            assert listener.recorded() == frame
        frame = p.encode_ext(b"f", b"k", b"v", 1) + p.encode_ext(b"g", b"", b"", 2)
        listener.exchange(len(frame), _ext_reply(b"1") + _ext_reply(b"2"))
        pl = t.pipeline().call_func("f", "k", "v", True).call_func("g", global_locking=True)
        assert pl.execute() == [b"1", b"2"]
        assert listener.recorded() == frame


def test_async_call_func_takes_pyrants_arguments(listener: ReplayListener) -> None:
    async def main() -> None:
        async with AsyncTyrant.from_url(listener.url, timeout=5) as t:
            frame = p.encode_ext(b"f", b"k", b"v", 2)
            listener.exchange(len(frame), _ext_reply(b"ok"))
            assert await t.call_func("f", "k", "v", False, True) == b"ok"
            assert listener.recorded() == frame

    asyncio.run(main())


def _misc_requests(t: Tyrant) -> int:
    return int(t.stat()["cnt_misc"])


def test_len_and_negative_indexes(people: Tyrant) -> None:
    q = people.query.filter(city="tokyo").order_by("name")
    assert len(q) == q.count() == 2
    assert len(people.query) == len(PEOPLE)
    assert q[-1] == ("u3", PEOPLE["u3"]) and q[-2] == q[0] == ("u1", PEOPLE["u1"])
    with pytest.raises(IndexError, match="2 matches"):
        q[-3]
    with pytest.raises(IndexError):
        q[2]
    with pytest.raises(ValueError, match="cannot count from the end"):
        q[-2:]
    assert bool(people.query.filter(city="nowhere")) is True  # truth costs no request


def test_list_of_a_query_is_one_request(people: Tyrant) -> None:
    q = people.query.filter(age__gte=30).order_by("name")
    before = _misc_requests(people)
    rows = list(q)
    assert _misc_requests(people) - before == 1
    assert rows == q.items() == [(pk, PEOPLE[pk]) for pk in ("u5", "u1", "u3", "u6")]
    people["u7"] = {"name": "zed", "age": "99"}
    before = _misc_requests(people)
    assert [pk for pk, _ in list(q)] == ["u5", "u1", "u3", "u6", "u7"]  # asked again
    assert len(q) == 5
    assert _misc_requests(people) - before == 2
    it = iter(q)
    assert len(q) == 5  # fetched for `it`, which then yields them without asking
    before = _misc_requests(people)
    assert len(list(it)) == 5 and _misc_requests(people) == before


def test_keys_that_are_not_utf8(t: Tyrant) -> None:
    t.putlist({"ok": {"a": "1"}})
    t.put(b"\xff\xfe", b"a\0b")  # a record whose key is not UTF-8
    t.put("caf\xe9".encode("latin-1"), b"c\0d")
    odd, latin = "\udcff\udcfe", "caf\udce9"
    assert sorted(t.table.keys()) == sorted(["ok", odd, latin])
    assert sorted(t) == sorted(["ok", odd, latin])
    assert dict(t.table.items()) == {"ok": {"a": "1"}, odd: {"a": "b"}, latin: {"c": "d"}}
    assert t.table[odd] == {"a": "b"} and t.getlist([odd]) == {odd: {"a": "b"}}
    assert odd in t.table and latin in t and t.get(latin) == b"c\0d"
    assert sorted(t.query.keys(raw=True)) == sorted([b"ok", b"\xff\xfe", b"caf\xe9"])
    del t.table[odd]
    assert t.get(b"\xff\xfe") is None and len(t) == 2
    with pytest.raises(ValueError, match=r"'\\ud800' cannot be encoded as UTF-8"):
        t.table["\ud800"]
