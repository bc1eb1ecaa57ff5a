"""The Tyrant client on its own: key-value data, table records, bulk calls,
pipelines and native queries -- no doqu involved.

Run it as it is (it starts bundled servers: an on-memory hash database and a
temporary table database) or against servers of yours: ``python
examples/client.py --url tyrant://127.0.0.1:1978 --kv-url
tyrant://127.0.0.1:1979`` (those databases are emptied first!).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator

from doqu_tyrant.tyrant import Tyrant


@contextlib.contextmanager
def tyrant_url(url: str | None, name: str = "client.tct") -> Iterator[str]:
    """``url``, or the URL of a bundled server on a temporary database ``name``
    (``*`` is an on-memory hash database)."""
    if url:
        yield url
        return
    from doqu_tyrant.server import Server

    with tempfile.TemporaryDirectory() as directory:
        path = name if name in ("*", "+") else os.path.join(directory, name)
        with Server(path, port=0) as server:
            yield server.url


def key_value(url: str) -> None:
    """Plain keys and byte values, as in a hash database."""
    with Tyrant.from_url(url, timeout=10) as t:
        t.vanish()
        t.put("greeting", "hello")
        t.putcat("greeting", ", world")
        print("get:", t.get("greeting"), "| size:", t.vsiz("greeting"))
        with t.pipeline() as pl:
            for i in range(1000):
                pl.put(f"k{i}", i.to_bytes(4, "big"))
            pl.execute()
        print("mget:", t.mget(["k1", "k2", "missing"]))
        print("putkeep on an existing key:", t.putkeep("k1", b"x"))
        print("counter:", t.addint("hits", 5), t.addint("hits", 1))


def tables(url: str) -> None:
    """Records as dicts of text, in a table database."""
    with Tyrant.from_url(url, timeout=10) as t:
        t.vanish()

        # Table records are dicts of text; item access is one round trip each.
        t["u1"] = {"name": "Alice", "age": "30", "city": "Oslo"}
        print("u1:", t["u1"])
        print("u1 in t:", "u1" in t, "| missing:", t.table_get("nobody", "default"))

        # Bulk: many records in one request each way.
        t.putlist({f"user:{i:04d}": {"name": f"user {i}", "age": str(i % 90)}
                   for i in range(1000)})
        some = t.getlist(["user:0001", "user:0002", "nope"])
        print("getlist:", sorted(some), "| records:", len(t))

        # A pipeline writes many requests at once and reads all replies after.
        start = time.perf_counter()
        with t.pipeline() as pl:
            for i in range(5000):
                pl.table_put(f"event:{i}", {"kind": "click", "n": str(i)})
            pl.rnum()
            results = pl.execute()
        elapsed = time.perf_counter() - start
        print(f"pipelined 5000 writes, rnum now {results[-1]} ({elapsed * 1000:.0f} ms)")

        # Native queries: built lazily, one round trip per result.
        adults = t.query.filter(age__gte=18, name__startswith="user 4").exclude(age=44)
        print("count:", adults.count())
        top = adults.order_by("-age", numeric=True).columns("age")[:3]
        print("oldest three:", top.items())
        print("keys with a prefix:", t.fwmkeys("user:000", 3))
        print("events deleted:", t.query.filter(kind="click").delete())

        # An index the server uses for equality and range conditions.
        t.setindex("age", "decimal")
        print("hint:", t.query.filter(age__gt=85).hint().splitlines()[0])

        # Counters live in the column "_num" of a table record.
        t.addint("visits", 1)
        print("visits:", t.addint("visits", 2))

        # Union of two queries: one metasearch.
        either = t.query.filter(name="Alice") | t.query.filter(age="89")
        print("union:", sorted(either.keys())[:3], "...")

        stat = t.stat()
        print("server:", stat["type"], "database with", stat["rnum"], "records")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Tyrant server with a table database to use "
                        "(its database is emptied)")
    parser.add_argument("--kv-url", help="a Tyrant server with a hash database to use "
                        "(emptied too)")
    args = parser.parse_args()
    with tyrant_url(args.kv_url, "*") as url:
        key_value(url)
    with tyrant_url(args.url) as url:
        tables(url)
