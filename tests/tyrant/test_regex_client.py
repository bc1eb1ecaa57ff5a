"""Both clients refuse bad STRRX expressions before anything is sent (issue 9 item 14,
issue 14 item 5); good ones still reach the server unchanged."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import NEGATE, NOIDX, AsyncTyrant, Op, Tyrant
from doqu_tyrant.tyrant.regex import InvalidRegex, RefusedRegex, RegexError
from tests.tyrant.conftest import PEOPLE


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that records whether anyone connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


BAD = {
    "(": InvalidRegex,
    "a{2,1}": InvalidRegex,
    "[[:word:]]": InvalidRegex,
    "(a*)(a*)(a*)(a*)(a*)\\5\\4\\3\\2\\1b": RefusedRegex,
    "(((a{1,60}){1,60}){1,60}){1,60}": RefusedRegex,
    ".*a.{20}c": RefusedRegex,
}


@pytest.mark.parametrize("client_class", [Tyrant, AsyncTyrant])
@pytest.mark.parametrize("expr", list(BAD))
def test_lookups_raise_before_sending(listener: socket.socket, client_class: type,
                                      expr: str) -> None:
    client = client_class("127.0.0.1", listener.getsockname()[1])
    query = client.query
    with pytest.raises(BAD[expr]) as info:
        query.filter(name__regex=expr)
    assert "name__regex" in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(BAD[expr]):
        query.filter(name__iregex=expr)
    with pytest.raises(BAD[expr]):
        query.exclude(name__strrx=expr)
    with pytest.raises(BAD[expr]):
        query.filter(name__regex__noidx=expr)
    assert nobody_connected(listener)


@pytest.mark.parametrize("op", [Op.STRRX, 7, "RX", "strrx", "~RX", "!+STRRX", "7",
                                Op.STRRX | NEGATE | NOIDX, "16777223"])
def test_raw_conditions_raise_before_sending(listener: socket.socket, op: object) -> None:
    with Tyrant("127.0.0.1", listener.getsockname()[1]) as t:
        with pytest.raises(RegexError, match="backreferences"):
            t.query.condition("name", op, "(a)\\1")  # type: ignore[arg-type]
        with pytest.raises(RegexError, match="unmatched"):
            t.query.condition("name", op, b"(")  # type: ignore[arg-type]
        t.query.condition("name", Op.STREQ, "(")  # other operators take any text
    assert nobody_connected(listener)


def test_ignore_case_flag_is_read_as_the_server_does(listener: socket.socket) -> None:
    t = Tyrant("127.0.0.1", listener.getsockname()[1])
    t.query.filter(name__regex="*[a-Z]")  # valid ignoring case
    with pytest.raises(InvalidRegex, match="out of order"):
        t.query.filter(name__regex="[a-Z]")
    with pytest.raises(InvalidRegex, match="ignoring case"):
        t.query.filter(name__iregex="[_-a]")
    assert nobody_connected(listener)


def test_good_expressions_still_match_on_the_server(t: Tyrant) -> None:
    t.putlist(PEOPLE)  # type: ignore[arg-type]
    assert sorted(t.query.filter(name__regex="^[a-c]").keys()) == ["u1", "u2", "u3"]
    assert sorted(t.query.filter(name__iregex="^e").keys()) == ["u5"]
    assert sorted(t.query.condition("name", "RX", "^(bob|dave)$").keys()) == ["u2", "u4"]
    assert "u4" in t.query.filter(bio__exists=False).keys()  # STRRX "" is not checked away


@pytest.mark.parametrize("name, args", [
    ("search", [b"hint", b"addcond\0name\x007\0(a*)(a*)\\2\\1b"]),
    ("search", [b"addcond\0name\0~+RX\0" + b"(" * 30000]),  # kills a ttserver's parser
    ("metasearch", [b"addcond\0a\x007\0^x", b"next", b"cond\0b\0RX\0.*a.{20}c"]),
    ("regex", [b"*((a{1,60}){1,60}){1,60}", b"10"]),
])
def test_raw_misc_calls_with_costly_expressions_raise_before_sending(
        listener: socket.socket, name: str, args: list[bytes]) -> None:
    port = listener.getsockname()[1]
    with Tyrant("127.0.0.1", port) as t, pytest.raises(RefusedRegex):
        t.misc(name, args)


    async def call() -> None:
        async with AsyncTyrant("127.0.0.1", port) as client:
            await client.misc(name, args)

    with pytest.raises(RefusedRegex):
        asyncio.run(call())
    assert nobody_connected(listener)


def test_raw_misc_passes_invalid_and_other_expressions_as_given(t: Tyrant) -> None:
    t.putlist(PEOPLE)  # type: ignore[arg-type]
    assert t.misc("search", [b"addcond\0name\x007\0("]) == []  # the server matches nothing
    assert t.misc("search", [b"addcond\0name\x000\0(a)\\1"]) == []  # STREQ: any text
    assert sorted(t.misc("search", [b"addcond\0name\0RX\0^[ab]"])) == [b"u1", b"u2"]
