# mypy: disable-error-code="arg-type,list-item,assignment,dict-item"
"""Bad input is refused with ValueError/TypeError naming the argument, before
anything is sent: the clients here point at a closed port, so any attempt to
send would surface as a connection error instead."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, TyrantKindError


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PORT = _closed_port()
T = Tyrant("127.0.0.1", PORT)
# Item access and the bulk calls depend on the database's kind, which a client
# learns once (one STAT) and remembers: T has learned that it serves a table.
T._kind = "table"

CASES: list[tuple[str, Callable[[Tyrant], object], type, str]] = [
    ("int key", lambda t: t.put(1, "v"), TypeError, "key"),
    ("None value", lambda t: t.put("k", None), TypeError, "value"),
    ("float key", lambda t: t.get(1.5), TypeError, "key"),
    ("surrogate", lambda t: t.get("\ud800"), ValueError, "key"),
    ("mget of a str", lambda t: t.mget("abc"), TypeError, "keys"),
    ("mget item", lambda t: t.mget(["a", 2]), TypeError, "keys[1]"),
    ("negative width", lambda t: t.putshl("k", "v", -1), ValueError, "width"),
    ("putshl empty key", lambda t: t.putshl("", "v", 1), ValueError, "empty"),
    ("addint overflow", lambda t: t.addint("k", 1 << 31), ValueError, "num"),
    ("addint float", lambda t: t.addint("k", 1.5), TypeError, "num"),
    ("adddouble str", lambda t: t.adddouble("k", "1"), TypeError, "num"),
    ("adddouble huge", lambda t: t.adddouble("k", 1e300), ValueError, "range"),
    ("fwmkeys max", lambda t: t.fwmkeys("p", 1 << 40), ValueError, "max"),
    ("misc name", lambda t: t.misc("x" * 1024), ValueError, "function name"),
    ("misc args", lambda t: t.misc("get", "abc"), TypeError, "args"),
    ("misc opts", lambda t: t.misc("get", [], -1), ValueError, "opts"),
    ("ext name", lambda t: t.ext(None), TypeError, "function name"),
    ("setmst port", lambda t: t.setmst("h", 70000), ValueError, "port"),
    ("restore ts", lambda t: t.restore("p", -1), ValueError, "ts"),
    ("empty pk", lambda t: t.table_put("", {"a": "b"}), ValueError, "primary key"),
    ("NUL in pk", lambda t: t.table_put("a\0b", {"a": "b"}), ValueError, "NUL"),
    ("NUL in pk get", lambda t: t.table_get(b"a\0"), ValueError, "NUL"),
    ("empty pk out", lambda t: t.table_out(""), ValueError, "primary key"),
    ("empty column", lambda t: t.table_put("k", {"": "v"}), ValueError, "column name"),
    ("NUL in column", lambda t: t.table_put("k", {"a\0": "v"}), ValueError, "NUL"),
    ("NUL in value", lambda t: t.table_put("k", {"a": "v\0"}), ValueError, "'a'"),
    ("int value", lambda t: t.table_put("k", {"age": 3}), TypeError, "age"),
    ("record not a dict", lambda t: t.table_put("k", ["a"]), TypeError, "mapping"),
    ("item assignment", lambda t: t.__setitem__("k", "v"), TypeError, "mappings"),
    ("item NUL", lambda t: t.__setitem__("k\0", {}), ValueError, "NUL"),
    ("putlist pk", lambda t: t.putlist({"": {}}), ValueError, "primary key"),
    ("putlist value", lambda t: t.putlist({"k": {"a": None}}), TypeError, "'a'"),
    ("putlist of a str", lambda t: t.putlist("abc"), TypeError, "pairs, not str"),
    ("putlist of strs", lambda t: t.putlist(["ab"]), TypeError, "records[0]"),
    ("putlist triple", lambda t: t.putlist([("k", {}, 1)]), TypeError, "records[0]"),
    ("putlist mixed", lambda t: t.putlist([("k", {}), ("j", "v")]), TypeError, "mapping"),
    ("putlist values", lambda t: t.putlist({"k": "v"}), TypeError, "mappings of column"),
    ("surrogate pk", lambda t: t["\ud800x"], ValueError, "'\\ud800x'"),
    ("call_func flag", lambda t: t.call_func("f", "k", "v", "yes"), TypeError,
     "record_locking"),
    ("order_by int", lambda t: t.query.order_by(5), TypeError, "column"),
    ("order_by two", lambda t: t.query.order_by("a", "b"), TypeError, "one column"),
    ("order_by numeric", lambda t: t.query.order_by("a", numeric="no"), TypeError, "numeric"),
    ("query index", lambda t: t.query["a"], TypeError, "indices"),
    ("getlist pk", lambda t: t.getlist(["a", ""]), ValueError, "pks[1]"),
    ("outlist pk", lambda t: t.outlist([b"\0"]), ValueError, "pks[0]"),
    ("setindex kind", lambda t: t.setindex("c", "bogus"), ValueError, "bogus"),
    ("setindex code", lambda t: t.setindex("c", 4), ValueError, "4"),
    ("setindex column", lambda t: t.setindex("c\0", 0), ValueError, "NUL"),
    ("iterkeys batch", lambda t: list(t.iterkeys(0)), ValueError, "batch"),
    ("query lookup", lambda t: t.query.filter(age__nope=1).keys(), ValueError, "nope"),
    ("query limit", lambda t: t.query[:-1].keys(), ValueError, "negative"),
    ("query huge limit", lambda t: t.query.limit(1 << 32).keys(), ValueError, "larger"),
    ("query NUL", lambda t: t.query.filter(a="\0").keys(), ValueError, "NUL"),
    ("query column NUL", lambda t: t.query.order_by("a\0").keys(), ValueError, "NUL"),
    ("pool size", lambda t: Tyrant(pool_size=0), ValueError, "pool_size"),
]


@pytest.mark.parametrize("name, call, error, words", CASES, ids=[c[0] for c in CASES])
def test_refused_before_sending(name: str, call: Callable[[Tyrant], object], error: type,
                                words: str) -> None:
    with pytest.raises(error) as info:
        call(T)
    assert words in str(info.value)


def test_pipeline_refuses_at_queue_time() -> None:
    pl = T.pipeline()
    with pytest.raises(ValueError, match="primary key"):
        pl.table_put("", {})
    with pytest.raises(TypeError):
        pl["k"] = {"a": 1}
    assert len(pl) == 0


def test_async_client_refuses_before_sending() -> None:
    a = AsyncTyrant("127.0.0.1", PORT)

    async def main() -> None:
        with pytest.raises(ValueError, match="NUL"):
            await a.table_put("k", {"a": "\0"})
        with pytest.raises(TypeError, match="key"):
            await a.get(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="nope"):
            await a.query.filter(x__nope=1).keys()

    asyncio.run(main())


UNKNOWN = Tyrant("127.0.0.1", PORT)  # has not learned the kind: must not ask for these
KV = Tyrant("127.0.0.1", PORT)
KV._kind = "hash"

KIND_CASES: list[tuple[str, Callable[[], object], type, str]] = [
    ("unstorable item", lambda: UNKNOWN.__setitem__("k", 5), TypeError, "not int"),
    ("putlist of a str", lambda: UNKNOWN.putlist("abc"), TypeError, "pairs, not str"),
    ("putlist bad record", lambda: UNKNOWN.putlist({"k": {"a": None}}), TypeError, "'a'"),
    ("putlist bad value", lambda: UNKNOWN.putlist({"k": None}), TypeError, "not NoneType"),
    ("record into a hash", lambda: KV.__setitem__("k", {"a": "1"}), TyrantKindError,
     "a hash database, which keeps one value"),
    ("records into a hash", lambda: KV.putlist({"k": {"a": "1"}}), TyrantKindError,
     "one value (str or bytes) per key"),
    ("table view of a hash", lambda: len(KV.table), TyrantKindError, "t.table needs a table"),
    ("query of a hash", lambda: KV.query.keys(), TyrantKindError, "a query needs a table"),
    ("mput record", lambda: KV.mput({"k": {"a": "1"}}), TypeError, "one value"),
    ("mput key", lambda: KV.mput({1: "v"}), TypeError, "key in items"),
    ("mout of a str", lambda: KV.mout("abc"), TypeError, "keys"),
]


@pytest.mark.parametrize("name, call, error, words", KIND_CASES, ids=[c[0] for c in KIND_CASES])
def test_refused_by_kind_before_sending(name: str, call: Callable[[], object], error: type,
                                        words: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
