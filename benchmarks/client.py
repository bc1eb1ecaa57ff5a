"""Client benchmarks: ratios measured side by side in one run, as JSON lines.

    python benchmarks/client.py                  # starts the bundled server
    python benchmarks/client.py --url tyrant://127.0.0.1:1978

(a) sequential GET and PUT through ``Tyrant`` vs a minimal raw-socket loop in
    this process: throughput ratio (target >= 0.95) and client CPU per
    operation (process time of this process; the server is another process);
(b) bulk ``putlist``/``getlist`` of 1,000 records per call vs single
    ``table_put``/``table_get`` calls (target >= 20x);
(c) 100k PUTs in one pipeline vs sequential PUTs (target >= 10x);
(d) ``AsyncTyrant``: 32 concurrent tasks vs one task (target >= 2.5x);
(e) the stray-byte check before each request: sequential GETs through
    ``Tyrant`` and ``AsyncTyrant`` (one task and 32) with it and without it,
    alternately; the ratio is its cost.

The database is vanished before and after the run: do not point ``--url``
at data you want to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundled import bundled_server  # noqa: E402

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant  # noqa: E402
from doqu_tyrant.tyrant.aioconnection import AsyncConnection  # noqa: E402
from doqu_tyrant.tyrant.client import parse_url  # noqa: E402
from doqu_tyrant.tyrant.connection import Connection  # noqa: E402

VALUE = b"col\0" + b"x" * 96  # a valid table record too, so any database type works


def measure(func: Callable[[], int]) -> tuple[float, float]:
    """Run ``func`` (returns its operation count); (ops per second, CPU µs per op)."""
    wall, cpu = time.perf_counter(), time.process_time()
    ops = func()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return ops / wall, cpu / ops * 1e6


def best(func: Callable[[], int], rounds: int) -> tuple[float, float]:
    results = [measure(func) for _ in range(rounds)]
    return max(r[0] for r in results), min(r[1] for r in results)


def emit(**fields: object) -> None:
    for name, value in list(fields.items()):
        if isinstance(value, float):
            fields[name] = round(value, 3 if value < 100 else 1)
    print(json.dumps(fields), flush=True)


# -- (a) the client against a minimal raw-socket loop ------------------------


class RawLoop:
    """The least a Python program can do per request: pack, sendall, recv."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def put(self, key: bytes, value: bytes) -> None:
        self.sock.sendall(b"\xc8\x10" + len(key).to_bytes(4, "big")
                          + len(value).to_bytes(4, "big") + key + value)
        if self.sock.recv(65536) != b"\x00":
            raise RuntimeError("put failed")

    def get(self, key: bytes) -> bytes:
        self.sock.sendall(b"\xc8\x30" + len(key).to_bytes(4, "big") + key)
        data = self.sock.recv(65536)
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[1:5], "big"):
            data += self.sock.recv(65536)
        if data[0] != 0:
            raise RuntimeError("get failed")
        return data[5:]

    def close(self) -> None:
        self.sock.close()


def bench_sequential(t: Tyrant, host: str, port: int, n: int, rounds: int) -> None:
    raw = RawLoop(host, port)
    keys = [b"seq%07d" % i for i in range(n)]

    def raw_put() -> int:
        for k in keys:
            raw.put(k, VALUE)
        return n

    def client_put() -> int:
        put = t.put
        for k in keys:
            put(k, VALUE)
        return n

    def raw_get() -> int:
        for k in keys:
            raw.get(k)
        return n

    def client_get() -> int:
        get = t.get
        for k in keys:
            get(k)
        return n

    for name, raw_f, client_f in (("put", raw_put, client_put), ("get", raw_get, client_get)):
        raw_f(), client_f()  # warm up
        # Alternate short blocks so that drifts of the machine hit both alike;
        # the best block of each side is its figure (as timeit does), the
        # median is shown too.
        blocks: dict[str, list[tuple[float, float]]] = {"raw": [], "client": []}
        for _ in range(rounds):
            for side, func in (("raw", raw_f), ("client", client_f)):
                wall, cpu = time.perf_counter(), time.process_time()
                func()
                blocks[side].append((time.perf_counter() - wall, time.process_time() - cpu))
        fig = {}
        for side, runs in blocks.items():
            walls = sorted(w for w, _ in runs)
            cpus = sorted(c for _, c in runs)
            fig[side] = (n / walls[0], cpus[0] / n * 1e6, n / walls[len(walls) // 2],
                         cpus[len(cpus) // 2] / n * 1e6)
        ratio = fig["client"][0] / fig["raw"][0]
        emit(bench=f"a-sequential-{name}", ops_per_block=n, blocks=rounds,
             client_ops_per_s=fig["client"][0], raw_ops_per_s=fig["raw"][0],
             throughput_ratio=ratio,
             median_throughput_ratio=fig["client"][2] / fig["raw"][2],
             client_cpu_us_per_op=fig["client"][1], raw_cpu_us_per_op=fig["raw"][1],
             cpu_ratio=fig["client"][1] / fig["raw"][1],
             median_cpu_ratio=fig["client"][3] / fig["raw"][3],
             target=">= 0.95 throughput", ok=ratio >= 0.95)
    raw.close()


# -- (b) bulk vs single -------------------------------------------------------


def bench_bulk(t: Tyrant, n_calls: int, rounds: int) -> None:
    records = {f"rec{i:05d}": {"name": f"user {i}", "age": str(i % 90), "city": "tokyo",
                               "bio": "x" * 60} for i in range(1000)}
    pks = list(records)
    singles = max(200, 1000 // 2)

    def single_put() -> int:
        put = t.table_put
        for pk in pks[:singles]:
            put(pk, records[pk])
        return singles

    def bulk_put() -> int:
        for _ in range(n_calls):
            t.putlist(records)
        return 1000 * n_calls

    def single_get() -> int:
        get = t.table_get
        for pk in pks[:singles]:
            get(pk)
        return singles

    def bulk_get() -> int:
        for _ in range(n_calls):
            got = t.getlist(pks)
            assert len(got) == 1000
        return 1000 * n_calls

    for name, single, bulk in (("put", single_put, bulk_put), ("get", single_get, bulk_get)):
        single(), bulk()
        s_ops, s_cpu = best(single, rounds)
        b_ops, b_cpu = best(bulk, rounds)
        emit(bench=f"b-bulk-{name}-1000", records_per_call=1000, bulk_records_per_s=b_ops,
             single_records_per_s=s_ops, ratio=b_ops / s_ops,
             bulk_client_cpu_us_per_record=b_cpu, single_client_cpu_us_per_record=s_cpu,
             bulk_server_bound_share=1 - b_cpu * b_ops / 1e6, target=">= 20",
             ok=b_ops / s_ops >= 20)


# -- (c) pipelined vs sequential ------------------------------------------------


def bench_pipeline(t: Tyrant, n: int, n_seq: int) -> None:
    keys = [b"pl%07d" % i for i in range(n)]

    def sequential() -> int:
        put = t.put
        for k in keys[:n_seq]:
            put(k, VALUE)
        return n_seq

    def pipelined() -> int:
        pl = t.pipeline()
        put = pl.put
        for k in keys:
            put(k, VALUE)
        results = pl.execute()
        assert len(results) == n
        return n

    seq_ops, _ = measure(sequential)
    pl_ops, pl_cpu = measure(pipelined)
    emit(bench=f"c-pipelined-put-{n}", pipelined_ops_per_s=pl_ops, sequential_ops_per_s=seq_ops,
         ratio=pl_ops / seq_ops, pipelined_client_cpu_us_per_op=pl_cpu,
         pipelined_server_bound_share=1 - pl_cpu * pl_ops / 1e6, target=">= 10",
         ok=pl_ops / seq_ops >= 10)


# -- (d) asyncio concurrency ------------------------------------------------------


def bench_async(url: str, n: int, tasks: int) -> None:
    async def run(concurrency: int) -> float:
        t = AsyncTyrant.from_url(url, pool_size=8)
        keys = [b"as%06d" % i for i in range(n)]
        await t.put(keys[0], VALUE)

        async def worker(part: list[bytes]) -> None:
            get = t.get
            for k in part:
                await get(k)

        await worker(keys[:200])  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(worker(keys[i::concurrency]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        await t.aclose()
        return n / elapsed

    one = asyncio.run(run(1))
    many = asyncio.run(run(tasks))
    emit(bench=f"d-async-{tasks}-tasks-get", ops=n, one_task_ops_per_s=one,
         concurrent_ops_per_s=many, ratio=many / one, target=">= 2.5", ok=many / one >= 2.5)


# -- (e) the cost of the stray-byte check ---------------------------------------------


def bench_stray_check(t: Tyrant, url: str, n: int, rounds: int) -> None:
    """Throughput and client CPU per GET, the check on and off in alternate
    blocks (best block of each side: CPU time is the steadier figure on a
    busy machine)."""
    key = b"stray-check"
    t.put(key, VALUE)

    def blocking() -> None:
        get = t.get
        for _ in range(n):
            get(key)

    async def tasks(concurrency: int) -> None:
        a = AsyncTyrant.from_url(url, pool_size=8)
        await a.get(key)

        async def worker(count: int) -> None:
            get = a.get
            for _ in range(count):
                await get(key)

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        await a.aclose()

    sides = (("blocking", blocking, Connection),
             ("async-1-task", lambda: asyncio.run(tasks(1)), AsyncConnection),
             ("async-32-tasks", lambda: asyncio.run(tasks(32)), AsyncConnection))
    for name, func, cls in sides:
        func()  # warm up
        ops = {True: 0.0, False: 0.0}
        cpu = {True: float("inf"), False: float("inf")}
        for _ in range(rounds):
            for check in (True, False):
                cls.check_stray = check
                wall, used = time.perf_counter(), time.process_time()
                func()
                wall, used = time.perf_counter() - wall, time.process_time() - used
                ops[check] = max(ops[check], n / wall)
                cpu[check] = min(cpu[check], used / n * 1e6)
        cls.check_stray = True
        emit(bench=f"e-stray-check-{name}-get", ops_per_block=n, blocks=rounds,
             checked_ops_per_s=ops[True], unchecked_ops_per_s=ops[False],
             throughput_ratio=ops[True] / ops[False],
             checked_cpu_us_per_op=cpu[True], unchecked_cpu_us_per_op=cpu[False],
             cpu_ratio=cpu[True] / cpu[False])
    t.out(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="tyrant://HOST:PORT for every part (default: start two "
                        "bundled servers, a hash database and a table database)")
    parser.add_argument("--n", type=int, default=1000, help="operations per block in (a)")
    parser.add_argument("--rounds", type=int, default=20, help="blocks per side in (a)")
    parser.add_argument("--pipeline", type=int, default=100000, help="PUTs in (c)")
    parser.add_argument("--async-ops", type=int, default=20000, help="GETs in (d)")
    parser.add_argument("--only", default="abcde", help="which parts to run, e.g. 'a' or 'cd'")
    parser.add_argument("--kv-db", default="bench.tch",
                        help="database of the bundled key-value server: a file name "
                        "(.tch, .tcb, ...) or '*' (on-memory hash); default %(default)s")
    args = parser.parse_args()
    if args.url:
        run_all(args.url, args.url, args)
    else:
        with bundled_server(args.kv_db) as kv_url, bundled_server("bench.tct") as table_url:
            run_all(kv_url, table_url, args)


def run_all(kv_url: str, table_url: str, args: argparse.Namespace) -> None:
    host, port, _ = parse_url(kv_url)
    t = Tyrant(host, port)
    table = Tyrant.from_url(table_url)
    t.vanish()
    table.vanish()
    emit(bench="setup", kv_url=kv_url, table_url=table_url,
         server=t.stat().get("version"), python=sys.version.split()[0],
         cpus=os.cpu_count())
    if "a" in args.only:
        bench_sequential(t, host, port, args.n, args.rounds)
        t.vanish()
    if "b" in args.only:
        bench_bulk(table, 5, 3)
        table.vanish()
    if "c" in args.only:
        bench_pipeline(t, args.pipeline, 20000)
        t.vanish()
    if "d" in args.only:
        bench_async(kv_url, args.async_ops, 32)
        t.vanish()
    if "e" in args.only:
        bench_stray_check(t, kv_url, args.n * 5, max(args.rounds // 4, 3))
        t.vanish()
    t.close()
    table.close()


if __name__ == "__main__":
    main()
