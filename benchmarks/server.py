"""Server throughput: one JSON line per figure.

    python benchmarks/server.py                      # starts the bundled server
    python benchmarks/server.py --url tyrant://127.0.0.1:1978
    python benchmarks/server.py --compare tyrant://127.0.0.1:1978   # both, with ratios

Figures: sequential PUT and GET on one connection (one request, one reply),
the same with 16 concurrent connections (16 client processes), and table
``search`` over 100,000 records (a full scan, and a lookup served by an
index). The target must be a table database (``.tct``); the script VANISHes
it first. Clients use the sans-IO codec on raw sockets, so the same script
measures any Tyrant server, e.g. a real ttserver side by side.

    python benchmarks/server.py --cpu                # the bundled server's CPU time
    python benchmarks/server.py --safeguards         # what its memory safeguards cost

``--cpu`` measures the bundled server's own CPU time per request or record,
in this process (no sockets: a connection is fed the bytes a client would
send and its replies are checked): pipelined PUT and GET, MGET, table
putlist/getlist of 1,000 records, single table put/get. Far less noisy than
throughput over loopback on a shared machine. Each figure is measured with
the memory safeguards (the budget, backpressure, bounded MGET/getlist) on
and off, alternately, with their ratio; ``--safeguards`` does the same for
the throughput figures over sockets.

    python benchmarks/server.py --durability         # what its durability safeguards cost

``--busy N`` measures new-record writes (pipelines of 3,000 PUTs into a hash
database, ``--rounds`` of them) while N CPU-bound processes run beside the
server, with Tokyo Cabinet's yield after every write removed (the default,
:mod:`doqu_tyrant.server.noyield`) and kept (``DOQU_TYRANT_KEEP_TC_YIELD=1``),
and prints the ratio.

``--durability`` runs :mod:`benchmarks.durability`: B+ tree writes with the
standing transaction and its commits against plain writes, the fatal-state
check on failing calls, the start-up index rebuild of a 300,000-record table.

    python benchmarks/server.py --baseline DIR [--cpu]   # this code against another's

``--baseline DIR`` measures the same figures with the server code of another
checkout (e.g. ``git archive main | tar -x -C DIR``), alternately with this
one's, and prints this/baseline ratios (``--code DIR`` runs one measurement
with that code). ``get_during_scans`` is the rate of one connection's GETs
while another runs full-scan searches back to back, with the slowest GET.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# --code DIR: the server code of another checkout (imported and started from there)
CODE = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv[:-1] else str(ROOT)
sys.path.insert(0, CODE)

from doqu_tyrant.tyrant import protocol as p  # noqa: E402


class Conn:
    """A minimal blocking connection: one request, then its reply."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = p.ReplyDecoder()

    def call(self, command: int, frame: bytes) -> p.Reply:
        decoder = self.decoder
        decoder.expect(command)
        self.sock.sendall(frame)
        while True:
            reply = decoder.next_reply()
            if reply is not None:
                return reply
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            decoder.feed(chunk)

    def pipeline(self, command: int, frames: list[bytes]) -> list[p.Reply]:
        decoder = self.decoder
        for _ in frames:
            decoder.expect(command)
        self.sock.sendall(b"".join(frames))
        replies: list[p.Reply] = []
        while len(replies) < len(frames):
            reply = decoder.next_reply()
            if reply is not None:
                replies.append(reply)
                continue
            decoder.feed(self.sock.recv(1 << 20))
        return replies

    def close(self) -> None:
        self.sock.close()


def value_of(i: int) -> bytes:
    """A small table record (also a fine plain value on other database types)."""
    return b"name\0user%d\0age\0%d\0city\0%s" % (i, i % 90, b"tokyo" if i % 7 else b"oslo")


def run_puts(host: str, port: int, prefix: bytes, n: int) -> None:
    conn = Conn(host, port)
    call = conn.call
    for i in range(n):
        key = prefix + b"%d" % i
        if not call(p.PUT, p.encode_put(key, value_of(i))).ok:
            raise RuntimeError("PUT failed")
    conn.close()


def run_gets(host: str, port: int, prefix: bytes, n: int) -> None:
    conn = Conn(host, port)
    call = conn.call
    for i in range(n):
        if not call(p.GET, p.encode_key(p.GET, prefix + b"%d" % i)).ok:
            raise RuntimeError("GET missed")
    conn.close()


def _worker(args: tuple[str, str, int, bytes, int, object]) -> None:
    kind, host, port, prefix, n, barrier = args
    barrier.wait()  # type: ignore[attr-defined]
    (run_puts if kind == "put" else run_gets)(host, port, prefix, n)


def concurrent(kind: str, host: str, port: int, clients: int, n: int) -> float:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    procs = [
        ctx.Process(target=_worker, args=((kind, host, port, b"c%d:" % c, n, barrier),))
        for c in range(clients)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"{kind} client failed")
    return time.perf_counter() - start


RESULTS: list[dict[str, object]] = []


# -- in-process server CPU (--cpu) ---------------------------------------------------


def cpu_figures(repeats: int) -> None:
    """CPU µs per request/record of the bundled server's code, fed in-process."""
    import asyncio
    import concurrent.futures
    import statistics

    from doqu_tyrant.server.app import Engine
    from doqu_tyrant.server.cabinet import Cabinet
    from doqu_tyrant.server.commands import Commands
    from doqu_tyrant.server.connection import Connection
    from doqu_tyrant.server.limits import Limits

    class Sink(asyncio.Transport):
        """Collects what the connection writes."""

        def __init__(self) -> None:
            super().__init__()
            self.data: list[bytes] = []

        def write(self, data: bytes | bytearray | memoryview) -> None:
            self.data.append(bytes(data))

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

        def pause_reading(self) -> None:
            pass

        def resume_reading(self) -> None:
            pass

        def set_write_buffer_limits(self, high: int | None = None,
                                    low: int | None = None) -> None:
            pass

        def get_write_buffer_size(self) -> int:
            return 0

    loop = asyncio.new_event_loop()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    directory = tempfile.mkdtemp()

    Pair = tuple[tuple[Connection, Sink], tuple[Connection, Sink]]

    def open_db(name: str) -> tuple[Cabinet, Pair]:
        """The database, with one connection of a guarded engine (the
        default) and one of an unguarded one (memory safeguards off)."""
        db = Cabinet(os.path.join(directory, name))
        commands = Commands(db)
        sides = []
        for guarded in (True, False):
            engine = Engine(loop, executor, commands, p.MAX_LENGTH, 30.0,
                            Limits(guarded=guarded))
            conn, sink = Connection(engine), Sink()
            conn.connection_made(sink)
            sides.append((conn, sink))
        return db, (sides[0], sides[1])

    def figure(name: str, per: str, count: int, chunks: list[bytes], pair: Pair,
               expect: bytes | None = None) -> None:
        """Median CPU time per unit, guarded and unguarded alternately."""
        runs: dict[bool, list[float]] = {True: [], False: []}
        for conn, sink in pair:
            feed = conn.data_received
            sink.data.clear()
            for chunk in chunks:  # warm up, and fill the database for reads
                feed(chunk)
            if expect is not None and b"".join(sink.data) != expect:
                raise RuntimeError(f"{name}: unexpected replies")
        for _ in range(repeats):
            for guarded, (conn, sink) in zip((True, False), pair):
                feed = conn.data_received
                sink.data.clear()
                cpu = time.process_time()
                for chunk in chunks:
                    feed(chunk)
                runs[guarded].append((time.process_time() - cpu) / count * 1e6)
        guarded_us = statistics.median(runs[True])
        unguarded_us = statistics.median(runs[False])
        line = {"benchmark": f"cpu_{name}", f"cpu_us_per_{per}": round(guarded_us, 3),
                f"best_cpu_us_per_{per}": round(min(runs[True]), 3),
                f"unguarded_cpu_us_per_{per}": round(unguarded_us, 3),
                "safeguard_cost_ratio": round(guarded_us / unguarded_us, 3),
                per + "s": count, "repeats": repeats}
        print(json.dumps(line), flush=True)

    def in_chunks(data: bytes, size: int = 1 << 18) -> list[bytes]:
        return [data[i : i + size] for i in range(0, len(data), size)]  # as a socket reads

    _, kv = open_db("cpu.tch")
    n = 100_000
    keys = [b"pl%07d" % i for i in range(n)]
    value = b"col\0" + b"x" * 96
    puts = b"".join(p.encode_put(k, value) for k in keys)
    figure("pipelined_put", "request", n, in_chunks(puts), kv, b"\0" * n)
    gets = b"".join(p.encode_key(p.GET, k) for k in keys)
    figure("pipelined_get", "request", n, in_chunks(gets), kv,
           p.reply_bytes(value) * n)
    singles = [p.encode_key(p.GET, k) for k in keys[:20_000]]
    figure("single_get", "request", len(singles), singles, kv,
           p.reply_bytes(value) * len(singles))
    mgets = [p.encode_mget(keys[i : i + 1000]) for i in range(0, 20_000, 1000)]
    figure("mget_1000", "record", 20_000, mgets, kv)

    _, table = open_db("cpu.tct")
    pks = [b"rec%05d" % i for i in range(1000)]
    records = [b"name\0user %d\0age\0%d\0city\0tokyo\0bio\0%s" % (i, i % 90, b"x" * 60)
               for i in range(1000)]
    args = [x for pair in zip(pks, records) for x in pair]
    putlist = p.encode_misc(b"putlist", args)
    figure("table_putlist_1000", "record", 5000, [putlist] * 5, table,
           p.reply_list([]) * 5)
    getlist = p.encode_misc(b"getlist", pks, p.MISC_NOULOG)
    figure("table_getlist_1000", "record", 5000, [getlist] * 5, table,
           p.reply_list(args) * 5)
    singles = [p.encode_misc(b"put", [pk, *rec.split(b"\0")]) for pk, rec in zip(pks, records)]
    figure("table_single_put", "request", 1000, singles, table)
    singles = [p.encode_misc(b"get", [pk], p.MISC_NOULOG) for pk in pks]
    figure("table_single_get", "request", 1000, singles, table)
    table[0][0].commands.db.misc(b"setindex", [b"name", b"0"])
    searches = [p.encode_misc(b"search", [b"addcond\0name\0STREQ\0user %d" % i], p.MISC_NOULOG)
                for i in range(1000)]
    figure("table_search_small", "request", 1000, searches, table)


def emit(name: str, ops: int, seconds: float, url: str, **extra: object) -> None:
    line = {"benchmark": name, "ops": ops, "seconds": round(seconds, 4),
            "ops_per_sec": round(ops / seconds, 1), "server": url, **extra}
    RESULTS.append(line)
    print(json.dumps(line), flush=True)


def load_table(host: str, port: int, records: int) -> None:
    conn = Conn(host, port)
    batch = []
    for i in range(records):
        batch.append(p.encode_put(b"r%d" % i, value_of(i)))
        if len(batch) == 1000:
            assert all(r.ok for r in conn.pipeline(p.PUT, batch))
            batch = []
    if batch:
        assert all(r.ok for r in conn.pipeline(p.PUT, batch))
    conn.close()


def bench(host: str, port: int, url: str, n: int, clients: int, records: int,
          searches: int) -> None:
    conn = Conn(host, port)
    if not conn.call(p.VANISH, p.encode_simple(p.VANISH)).ok:
        raise RuntimeError("VANISH failed")
    for column in (b"name", b"city"):
        conn.call(p.MISC, p.encode_misc(b"setindex", [column, b"9999"]))

    run_puts(host, port, b"warm:", min(1000, n))  # warm up both ends, untimed
    run_gets(host, port, b"warm:", min(1000, n))
    start = time.perf_counter()
    run_puts(host, port, b"s:", n)
    emit("put_sequential", n, time.perf_counter() - start, url, connections=1)
    start = time.perf_counter()
    run_gets(host, port, b"s:", n)
    emit("get_sequential", n, time.perf_counter() - start, url, connections=1)

    per_client = max(n // clients, 1)
    seconds = concurrent("put", host, port, clients, per_client)
    emit("put_concurrent", per_client * clients, seconds, url, connections=clients)
    seconds = concurrent("get", host, port, clients, per_client)
    emit("get_concurrent", per_client * clients, seconds, url, connections=clients)

    conn.call(p.VANISH, p.encode_simple(p.VANISH))
    load_table(host, port, records)
    queries = [
        # full scan of every record; matches a single one
        ("search_scan", [b"addcond\0name\0" b"0\0user%d" % (records // 2)]),
        # numeric condition over every record, ordered, limited
        ("search_scan_order_limit", [b"addcond\0age\0" b"10\0" b"80",
                                     b"setorder\0age\0" b"2", b"setlimit\0" b"10\0" b"0"]),
    ]
    for name, args in queries:
        start = time.perf_counter()
        for _ in range(searches):
            reply = conn.call(p.MISC, p.encode_misc(b"search", args, 1))
            if not reply.ok:
                raise RuntimeError("search failed (is the server a table database?)")
        emit(name, searches, time.perf_counter() - start, url, records=records,
             results=len(reply.value))  # type: ignore[arg-type]
    conn.call(p.MISC, p.encode_misc(b"setindex", [b"name", b"0"]))
    indexed = [b"addcond\0name\0" b"0\0user%d" % (records // 3)]
    count = searches * 50
    start = time.perf_counter()
    for _ in range(count):
        reply = conn.call(p.MISC, p.encode_misc(b"search", indexed, 1))
    emit("search_indexed", count, time.perf_counter() - start, url, records=records,
         results=len(reply.value))  # type: ignore[arg-type]
    conn.call(p.MISC, p.encode_misc(b"setindex", [b"name", b"9999"]))
    get_during_scans(host, port, url, conn, records, searches)
    conn.close()


def get_during_scans(host: str, port: int, url: str, conn: Conn, records: int,
                     searches: int) -> None:
    """One connection's GETs while another runs full-scan searches back to back."""
    import threading

    scan = p.encode_misc(b"search", [b"addcond\0name\0" b"0\0user%d" % (records // 2)], 1)
    done = threading.Event()

    def scanner() -> None:
        other = Conn(host, port)
        try:
            for _ in range(searches):
                other.call(p.MISC, scan)
        finally:
            other.close()
            done.set()

    thread = threading.Thread(target=scanner)
    frame = p.encode_key(p.GET, b"r1")
    gets = 0
    slowest = 0.0
    start = time.perf_counter()
    thread.start()
    while not done.is_set():
        began = time.perf_counter()
        if not conn.call(p.GET, frame).ok:
            raise RuntimeError("GET missed")
        slowest = max(slowest, time.perf_counter() - began)
        gets += 1
    thread.join()
    emit("get_during_scans", gets, time.perf_counter() - start, url, scans=searches,
         records=records, slowest_get_ms=round(slowest * 1e3, 2))


def start_bundled(directory: str, options: tuple[str, ...] = (), name: str = "bench.tct",
                  **environ: str) -> tuple[subprocess.Popen[bytes], str, int]:
    cmd = [sys.executable, "-m", "doqu_tyrant.server", "--port", "0", *options,
           os.path.join(directory, name)]
    env = dict(os.environ, PYTHONPATH=CODE, **environ)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"bundled server did not start: {line!r}")
    host, _, port = line[len("listening on ") :].rpartition(":")
    return proc, host, int(port)


def run_bundled(args: argparse.Namespace, options: tuple[str, ...] = ()) -> None:
    with tempfile.TemporaryDirectory() as directory:
        proc, host, port = start_bundled(directory, options)
        try:
            bench(host, port, f"bundled tyrant://{host}:{port}", args.n, args.clients,
                  args.records, args.searches)
        finally:
            proc.terminate()
            proc.wait(30)


def busy_writes(args: argparse.Namespace) -> None:
    """New records per second with ``args.busy`` CPU-bound processes running,
    Tokyo Cabinet's per-write yield removed and kept (see the module docstring)."""
    spin = [sys.executable, "-c", "import time\nend = time.time() + 600\n"
            "while time.time() < end: pass"]
    spinners = [subprocess.Popen(spin) for _ in range(args.busy)]
    rates: dict[str, list[float]] = {"removed": [], "kept": []}
    try:
        for _round in range(args.rounds):
            for who, keep in (("removed", "0"), ("kept", "1")):
                with tempfile.TemporaryDirectory() as directory:
                    proc, host, port = start_bundled(directory, name="busy.tch",
                                                     DOQU_TYRANT_KEEP_TC_YIELD=keep)
                    try:
                        conn = Conn(host, port)
                        frames = [p.encode_put(b"k%06d" % i, value_of(i)) for i in range(3000)]
                        start = time.perf_counter()
                        conn.pipeline(p.PUT, frames)
                        rates[who].append(3000 / (time.perf_counter() - start))
                        conn.close()
                    finally:
                        proc.terminate()
                        proc.wait(30)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    removed, kept = (statistics.median(rates[w]) for w in ("removed", "kept"))
    print(json.dumps({"benchmark": "new_records_beside_busy_processes", "busy": args.busy,
                      "records": 3000, "rounds": args.rounds,
                      "yield_removed_per_sec": round(removed), "yield_kept_per_sec": round(kept),
                      "ratio_removed_to_kept": round(removed / kept, 1)}), flush=True)


def compare_safeguards(args: argparse.Namespace) -> None:
    """Each figure with the safeguards on and off, best of ``rounds`` each."""
    best: dict[tuple[str, str], float] = {}
    for _round in range(args.rounds):
        for who, options in (("guarded", ()), ("unguarded", ("--unguarded",))):
            RESULTS.clear()
            run_bundled(args, options)
            for r in RESULTS:
                key = (who, str(r["benchmark"]))
                best[key] = max(best.get(key, 0.0), float(r["ops_per_sec"]))  # type: ignore[arg-type]
    for (who, name), ops in best.items():
        if who == "guarded":
            other = best[("unguarded", name)]
            print(json.dumps({"benchmark": name,
                              "ratio_guarded_to_unguarded": round(ops / other, 3),
                              "guarded_ops_per_sec": ops, "unguarded_ops_per_sec": other,
                              "rounds": args.rounds}), flush=True)


def compare_baseline(args: argparse.Namespace) -> None:
    """Every figure with this code and with ``args.baseline``'s, alternately, in
    subprocesses; the best of ``rounds`` each and their ratio."""
    argv = sys.argv[1:]
    i = argv.index("--baseline")
    del argv[i : i + 2]
    best: dict[tuple[str, str], tuple[str, float]] = {}
    for _round in range(args.rounds):
        for who in ("this", "baseline"):
            extra = ["--code", args.baseline] if who == "baseline" else []
            out = subprocess.run([sys.executable, __file__, *argv, *extra], check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            for line in out.splitlines():
                r = json.loads(line)
                name = str(r["benchmark"])
                # CPU time per unit: lower is better; throughput: higher is better
                unit = next((k for k in r if k.startswith("cpu_us_per_")), "ops_per_sec")
                value = float(r[unit])
                old = best.get((who, name))
                better = old is None or (value < old[1] if unit != "ops_per_sec"
                                         else value > old[1])
                if better:
                    best[(who, name)] = (unit, value)
    for (who, name), (unit, value) in best.items():
        if who == "this" and ("baseline", name) in best:
            base = best[("baseline", name)][1]
            print(json.dumps({"benchmark": name, "unit": unit, "this": value, "baseline": base,
                              "ratio_this_to_baseline": round(value / base, 3),
                              "rounds": args.rounds}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="tyrant://HOST:PORT of a table database (else bundled)")
    parser.add_argument("--compare", metavar="URL",
                        help="also measure this server (e.g. a real ttserver) in the same run "
                        "and print bundled/other ratios")
    parser.add_argument("--rounds", type=int, default=2,
                        help="with --compare: alternate the servers this often, keep the best")
    parser.add_argument("-n", type=int, default=20000, help="operations per figure")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--records", type=int, default=100000)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--cpu", action="store_true",
                        help="only the bundled server's CPU time per request/record, measured "
                        "in this process")
    parser.add_argument("--repeats", type=int, default=7, help="with --cpu: runs per figure")
    parser.add_argument("--safeguards", action="store_true",
                        help="the bundled server with its memory safeguards and with them off "
                        "(--unguarded), alternately, and the ratios")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also measure the server code of the checkout DIR, alternately "
                        "with this one's, and print this/baseline ratios (--rounds rounds)")
    parser.add_argument("--code", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--busy", type=int, metavar="N",
                        help="only new-record writes beside N CPU-bound processes, with Tokyo "
                        "Cabinet's per-write yield removed and kept (--rounds each)")
    parser.add_argument("--durability", action="store_true",
                        help="only the cost of the durability safeguards "
                        "(benchmarks/durability.py)")
    args = parser.parse_args()
    if args.busy is not None:
        busy_writes(args)
        return 0
    if args.baseline:
        compare_baseline(args)
        return 0
    if args.cpu:
        cpu_figures(args.repeats)
        return 0
    if args.safeguards:
        compare_safeguards(args)
        return 0
    if args.durability:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import durability

        return durability.main([])
    if args.url:
        rest = args.url.split("://", 1)[-1]
        host, _, port = rest.rpartition(":")
        bench(host, int(port), args.url, args.n, args.clients, args.records, args.searches)
        return 0
    if not args.compare:
        run_bundled(args)
        return 0
    # Side by side: alternate the two servers, keep each one's best figure.
    best: dict[tuple[str, str], float] = {}
    for _round in range(args.rounds):
        for who in ("bundled", "other"):
            RESULTS.clear()
            if who == "bundled":
                run_bundled(args)
            else:
                host, _, port = args.compare.split("://", 1)[-1].rpartition(":")
                bench(host, int(port), args.compare, args.n, args.clients, args.records,
                      args.searches)
            for r in RESULTS:
                key = (who, str(r["benchmark"]))
                best[key] = max(best.get(key, 0.0), float(r["ops_per_sec"]))  # type: ignore[arg-type]
    for (who, name), ops in best.items():
        if who == "bundled":
            ratio = ops / best[("other", name)]
            print(json.dumps({"benchmark": name, "ratio_bundled_to_other": round(ratio, 3),
                              "bundled_ops_per_sec": ops,
                              "other_ops_per_sec": best[("other", name)],
                              "other": args.compare, "rounds": args.rounds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
