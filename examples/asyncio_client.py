"""The asyncio client: concurrent tasks sharing one pool, a pipeline, and an
asynchronous query.

Run it as it is (it starts the bundled server on a temporary table database)
or against a server of yours: ``python examples/asyncio_client.py --url
tyrant://127.0.0.1:1978`` (that database is emptied first!).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator

from doqu_tyrant.tyrant import AsyncTyrant


@contextlib.contextmanager
def tyrant_url(url: str | None) -> Iterator[str]:
    """``url``, or the URL of a bundled server on a temporary table database."""
    if url:
        yield url
        return
    from doqu_tyrant.server import Server

    with tempfile.TemporaryDirectory() as directory:
        with Server(os.path.join(directory, "async.tct"), port=0) as server:
            yield server.url


async def writer(t: AsyncTyrant, worker: int, count: int) -> int:
    """One task storing ``count`` records, one request at a time."""
    for i in range(count):
        await t.table_put(f"w{worker}:{i:03d}", {"worker": str(worker), "n": str(i)})
    return count


async def main(url: str) -> None:
    async with AsyncTyrant.from_url(url, timeout=10, pool_size=8) as t:
        await t.vanish()

        # 16 tasks at once; they share at most 8 connections.
        written = await asyncio.gather(*(writer(t, w, 50) for w in range(16)))
        print("tasks wrote", sum(written), "records; rnum =", await t.rnum())

        # Reads run concurrently too.
        records = await asyncio.gather(*(t.table_get(f"w{w}:000") for w in range(3)))
        print("first records:", records)

        # A pipeline: many requests in one write, all replies read afterwards.
        async with t.pipeline() as pl:
            for i in range(1000):
                pl.table_put(f"p{i:04d}", {"kind": "pipelined", "n": str(i)})
            pl.rnum()
            results = await pl.execute()
        print("pipelined 1000 writes; rnum =", results[-1])

        # Queries have the same builder; results are awaited.
        q = t.query.filter(kind="pipelined", n__lt=5).order_by("n", numeric=True)
        print("count:", await q.count())
        print("keys:", await q.keys())
        streamed = [pk async for pk, _record in t.query.filter(worker="15", n__gte=48)]
        print("streamed:", sorted(streamed))
        print("deleted:", await t.query.filter(kind="pipelined").delete())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Tyrant server to use (its database is emptied)")
    args = parser.parse_args()
    with tyrant_url(args.url) as url:
        asyncio.run(main(url))
