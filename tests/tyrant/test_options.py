"""Construction-time checks of ports, timeouts and URLs (issue 9, items 13 and 14).

A bad setting raises when the client or adapter is built, with a message
naming the argument; it never reaches another server than the one meant.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

import doqu
from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, parse_url
from doqu_tyrant.tyrant.options import (
    URL_FORM,
    check_port,
    check_seconds,
    client_options,
    parse_size,
)

GOOD = "tyrant://127.0.0.1:1978"


def port_of(url: str) -> int:
    return parse_url(url)[1]


# -- item 13: arguments that reached the wrong server -------------------------------------


def test_port_beyond_65535_is_refused_not_wrapped(tyrant_url: str) -> None:
    host, port, _ = parse_url(tyrant_url)
    wrapped = port + 65536  # used to connect to ``port``: the server under test
    for build in (lambda: Tyrant(host, wrapped), lambda: AsyncTyrant(host, wrapped),
                  lambda: StorageAdapter(host, wrapped),
                  lambda: doqu.get_db({"backend": "doqu_tyrant", "host": host,
                                       "port": wrapped})):
        with pytest.raises(ValueError, match=f"port must be from 1 to 65535, got {wrapped}"):
            build()


def test_async_client_refuses_a_bad_port_at_construction() -> None:
    with pytest.raises(ValueError, match="port must be from 1 to 65535, got 70000"):
        AsyncTyrant("127.0.0.1", 70000)  # used to be a raw OverflowError at the first call


@pytest.mark.parametrize("url, problem", [
    ("127.0.0.1:5000", "no tyrant:// scheme; did you mean 'tyrant://127.0.0.1:5000'?"),
    ("localhost:1978", "no tyrant:// scheme"),
    ("garbage", "no tyrant:// scheme"),
    ("", "it is empty"),
    ("tyrant://127.0.0.1:0", "the port must be a number from 1 to 65535, not '0'"),
    ("tyrant:/db1:5000", "the scheme must be followed by //HOST"),
    ("tyrant://", "no host"),
    ("tyrant://:1978", "no host"),
    ("tyrant://h:", "the port is empty"),
    ("tyrant://h:70000", "the port must be a number from 1 to 65535, not '70000'"),
    ("tyrant://h:-1", "the port must be a number from 1 to 65535"),
    ("tyrant://h:12ab", "not '12ab'"),
    ("http://h:1978", "the scheme must be tyrant://, not http://"),
    ("tyrant://user:pw@h:1978", "user info"),
    ("tyrant://h:1978/db", "a Tyrant server has no paths ('/db')"),
    ("tyrant://h:1978#frag", "a fragment"),
    ("tyrant://h:1978?bogus=1", "unknown option 'bogus'"),
    ("tyrant://h:1978?timeout", "not name=value"),
    ("tyrant://h:1978?timeout=-5", "timeout must be above 0 seconds"),
    ("tyrant://h:1978?timeout=0", "timeout must be above 0 seconds"),
    ("tyrant://h:1978?timeout=nan", "timeout must be a finite number"),
    ("tyrant://h:1978?timeout=soon", "timeout must be a number of seconds, got 'soon'"),
    ("tyrant://h:1978?pool_size=0", "pool_size must be at least 1"),
    ("tyrant://h:1978?pool_size=2.5", "pool_size must be a whole number"),
    ("tyrant://h:1978?retry_reads=maybe", "retry_reads must be true or false"),
    ("tyrant://h:1978?timeout=1&timeout=2", "option 'timeout' is given twice"),
    ("tyrant://h :1978", "a space"),
])  # fmt: skip
def test_malformed_urls_are_refused(url: str, problem: str) -> None:
    for build in (parse_url, Tyrant.from_url, AsyncTyrant.from_url,
                  lambda u: StorageAdapter(url=u),
                  lambda u: doqu.get_db({"backend": "doqu_tyrant", "url": u})):
        with pytest.raises(ValueError) as info:
            build(url)
        text = str(info.value)
        assert text.startswith(f"bad URL {url!r}: ") and problem in text, text
        assert URL_FORM in text


def test_parse_url_takes_one_server() -> None:
    """A group URL is split by the failover layer, which parses each part."""
    with pytest.raises(ValueError, match="one host:port is expected here"):
        parse_url("tyrant://a:1978,b:1978")
    with pytest.raises(ValueError, match="write an IPv6 address as"):
        parse_url("tyrant://::1:1978")


def test_good_urls() -> None:
    assert parse_url("tyrant://h") == ("h", 1978, {})
    assert parse_url("tyrant://h:1/") == ("h", 1, {})
    assert parse_url("TYRANT://H:65535") == ("h", 65535, {})
    assert parse_url("tt://[::1]:2000") == ("::1", 2000, {})
    assert parse_url("tyrant://h:1?timeout=2.5&connect_timeout=none&pool_size=3"
                     "&pool_timeout=0&retry_reads=off&health_check_interval=0")[2] == {
        "timeout": 2.5, "connect_timeout": None, "pool_size": 3, "pool_timeout": 0.0,
        "retry_reads": False, "health_check_interval": 0.0}


# -- item 14: values checked at construction, naming the argument --------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    ({"timeout": -1}, ValueError, "timeout must be above 0 seconds"),
    ({"timeout": 0}, ValueError, "timeout must be above 0 seconds"),
    ({"timeout": "5"}, TypeError, "timeout must be a number of seconds (None: no limit), "
                                  "got str '5'"),
    ({"timeout": math.nan}, ValueError, "timeout must be a finite number of seconds"),
    ({"timeout": math.inf}, ValueError, "use None for no limit"),
    ({"timeout": True}, TypeError, "timeout must be a number"),
    ({"connect_timeout": -2}, ValueError, "connect_timeout must be above 0"),
    ({"pool_timeout": -1}, ValueError, "pool_timeout must be 0 or more seconds"),
    ({"pool_size": 0}, ValueError, "pool_size must be at least 1"),
    ({"pool_size": 2.0}, TypeError, "pool_size must be an int"),
    ({"retry_reads": "no"}, TypeError, "retry_reads must be True or False"),
    ({"port": "abc"}, TypeError, "port must be an int from 1 to 65535, got str 'abc'"),
    ({"port": "1978"}, TypeError, "got str '1978'"),
    ({"port": 1.9}, TypeError, "port must be an int from 1 to 65535, got float 1.9"),
    ({"port": 0}, ValueError, "port must be from 1 to 65535, got 0"),
    ({"port": True}, TypeError, "port must be an int"),
    ({"port": None}, TypeError, "port must be an int"),
    ({"host": ""}, ValueError, "host must be a host name or address"),
    ({"host": 127}, TypeError, "host must be a str"),
])  # fmt: skip
def test_bad_settings_fail_at_construction(kwargs: dict[str, Any], error: type[Exception],
                                           message: str) -> None:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": 1978, **kwargs}
    builders: list[Any] = [Tyrant, AsyncTyrant]
    if kwargs.get("port", 1) is not None:  # for the adapter, None is the default port
        builders += [StorageAdapter, lambda **kw: doqu.get_db({"backend": "doqu_tyrant", **kw})]
    for build in builders:
        with pytest.raises(error) as info:
            build(**settings)
        assert message in str(info.value), (build, str(info.value))


def test_health_check_interval_is_checked() -> None:
    with pytest.raises(ValueError, match="health_check_interval must be 0 or more"):
        Tyrant(health_check_interval=-1)
    with pytest.raises(TypeError, match="health_check_interval must be a number"):
        Tyrant(health_check_interval=None)  # type: ignore[arg-type]


def test_int_like_values_are_accepted() -> None:
    class Port:
        def __index__(self) -> int:
            return 2000

    assert Tyrant("127.0.0.1", Port(), timeout=5).port == 2000  # type: ignore[arg-type]
    assert check_port(0, allow_zero=True) == 0 and check_seconds(1, "t") == 1.0


def test_client_options_refuses_unknown_names() -> None:
    with pytest.raises(TypeError, match="unknown option 'timout'"):
        client_options(timout=5)


# -- one precedence rule: keywords win over the URL, the URL over the defaults ---------------


def test_tyrant_from_url_keywords_win(tyrant_url: str) -> None:
    t = Tyrant.from_url(tyrant_url + "?timeout=5&retry_reads=0", timeout=7)
    assert t.timeout == 7.0 and t.retry_reads is False
    t.close()


def test_storage_adapter_keywords_win_over_the_url(tyrant_url: str) -> None:
    url = tyrant_url + "?timeout=5&retry_reads=false&pool_size=3"
    db = StorageAdapter(url=url, timeout=7)
    try:
        assert db.timeout == 7.0  # the keyword, as Tyrant.from_url (it used to be 5)
        assert db.pool_size == 3  # from the URL
        assert db.retry_reads is False  # from the URL (it used to be ignored)
        assert db.client.retry_reads is False and db.client.timeout == 7.0
    finally:
        db.disconnect()
    db = StorageAdapter(url=tyrant_url)
    try:
        assert (db.timeout, db.pool_size, db.retry_reads) == (30.0, 8, True)  # the defaults
    finally:
        db.disconnect()
    db = doqu.get_db({"backend": "doqu_tyrant", "url": url, "timeout": 9})
    try:
        assert db.timeout == 9.0 and db.retry_reads is False  # type: ignore[attr-defined]
    finally:
        db.disconnect()


def test_async_from_url_checks_before_any_loop_runs() -> None:
    with pytest.raises(ValueError, match="bad URL"):
        AsyncTyrant.from_url("tyrant://h:0")

    async def main() -> None:
        t = AsyncTyrant.from_url(GOOD + "?timeout=3")
        assert t.timeout == 3.0
        await t.aclose()

    asyncio.run(main())


def test_sizes() -> None:
    assert [parse_size(t) for t in ("1024", "512K", "64M", "64mb", "64MiB", "2g")] == [
        1024, 512 << 10, 64 << 20, 64 << 20, 64 << 20, 2 << 30]
    for bad in ("0", "-5", "1.5M", "abc", "", "12Q"):
        with pytest.raises(ValueError):
            parse_size(bad)
