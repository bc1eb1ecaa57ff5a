"""Tokyo Cabinet's sort orders as Python keys: checked against the library itself
(its decimal comparison, through ctypes) and against a server's numeric sort."""

from __future__ import annotations

import ctypes
import ctypes.util
import random
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant.tcorder import (
    NUMASC,
    NUMDESC,
    STRASC,
    STRDESC,
    column_key,
    decimal_key,
    number_key,
    pk_key,
)
from tests.servers import ServerProcess


def _library_compare() -> object:
    name = ctypes.util.find_library("tokyocabinet")
    if name is None:  # pragma: no cover - the bundled server needs it too
        pytest.skip("libtokyocabinet is not installed")
    function = ctypes.CDLL(name).tccmpdecimal
    function.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                         ctypes.c_void_p]
    function.restype = ctypes.c_int
    return function


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def test_decimal_key_orders_as_the_librarys_decimal_comparison() -> None:
    compare = _library_compare()
    rng = random.Random(7)
    alphabet = b"0123456789.- +x\t\x7fe"
    values = [b"", b"0", b"-0", b"007", b"7", b"7.", b"7.0", b"+7", b"1e3", b"inf", b"nan",
              b"9223372036854775808", b"99999999999999999999", b"-.5", b"0.12345678901234567"]
    values += [bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
               for _ in range(3000)]
    for _ in range(30_000):
        a, b = rng.choice(values), rng.choice(values)
        ka, kb = decimal_key(a), decimal_key(b)
        assert _sign((ka > kb) - (ka < kb)) == _sign(compare(a, len(a), b, len(b), None)), (a, b)


@pytest.mark.parametrize(("text", "number"), [
    (b"12", 12), (b"12abc", 12), (b"1e3", 1), (b" 7", 7), (b"007", 7), (b"\t+7", 7),
    (b"-0", 0), (b"abc", 0), (b"", 0), (b".5", 0.5), (b"-.5", -0.5), (b"+2.50", 2.5),
    (b"1.", 1), (b"0x1F", 0), (b"- 7", 0), (b"1,000", 1), (b"99999999999", 99999999999),
])
def test_number_key_reads_numbers_as_the_table_sort_does(text: bytes, number: float) -> None:
    assert number_key(text) == (0, number)


def test_number_key_specials_and_precision() -> None:
    assert number_key(b"inf") > number_key(b"1e308") > number_key(b"-inf")
    assert number_key(b"-INF") < number_key(b"-99999999999999999999")
    assert number_key(b"nan") > number_key(b"inf")  # nan counts as the largest
    # 16 significant digits in all: later fraction digits are not read
    assert number_key(b"0.12345678901234567") == number_key(b"0.1234567890123456")
    assert number_key(b"1234567890123456.7") == number_key(b"1234567890123456")
    assert number_key(b"123456789012345.67") == number_key(b"123456789012345.6")
    assert number_key(b"0.00001") < number_key(b"0.0001")


def test_missing_columns_come_last_both_ways() -> None:
    values = [b"b", None, b"a", b"10", None, b"9"]
    for kind in (STRASC, STRDESC, NUMASC, NUMDESC):
        key, reverse = column_key(kind)
        ordered = sorted(values, key=key, reverse=reverse)
        assert ordered[-2:] == [None, None]
    key, reverse = column_key(STRASC)
    assert sorted(values, key=key, reverse=reverse)[:4] == [b"10", b"9", b"a", b"b"]
    key, reverse = column_key(NUMDESC)
    assert sorted(values, key=key, reverse=reverse)[:2] == [b"10", b"9"]
    pkey, reverse = pk_key(STRDESC)
    assert sorted([b"a", b"\xc3\xa9", b"Z"], key=pkey, reverse=reverse) == [
        b"\xc3\xa9", b"a", b"Z"]  # bytes, not str order (é > a > Z)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tyrant]:
    with ServerProcess(str(tmp_path_factory.mktemp("tcorder") / "order.tct")) as server:
        client = Tyrant.from_url(server.url, timeout=10)
        yield client
        client.close()


ODD = ["12", "12abc", " 7", "007", "7", "+7", "-0", "0", "abc", "", "1e3", ".5", "-.5",
       "+2.50", "inf", "-inf", "3.14159265358979323", "3.1415926535897932", "-17", "99999999999",
       "1.", "0x1F", "- 7", "1,000", "\t8", "2.5"]


@pytest.mark.parametrize("kind", [NUMASC, NUMDESC, STRASC, STRDESC])
def test_the_servers_sort_agrees_with_the_keys(table: Tyrant, kind: int) -> None:
    table.vanish()
    for i, value in enumerate(ODD):
        table.table_put(f"k{i:02d}", {"v": value})
    table.table_put("none", {"other": "x"})
    got = table.misc("search", [b"setorder\0v\0%d" % kind], 1)
    key, reverse = column_key(kind)
    values = [table.table_get(k, raw=True).get(b"v") for k in got]  # type: ignore[union-attr]
    keys = [key(v) for v in values]
    assert keys == sorted(keys, reverse=reverse)  # the server's order, by our keys
    assert got[-1] == b"none"
