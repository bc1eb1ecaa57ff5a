"""Replication and failover figures of the bundled server: one JSON line each.

    python benchmarks/replication.py
    python benchmarks/replication.py --records 100000 --samples 1000 --failovers 10

* ``replication_delay``: a write on master A until it is readable on B, for
  a dual master (A and B each the other's ``--master``): median and p99 over
  ``--samples`` writes, one at a time (B polled with GET).
* ``catch_up``: a replica started after ``--records`` table records were
  written to its master (one update-log entry each): records per second
  from its start until it holds them all, and, side by side in the same
  run, the ratio to the rate at which a client wrote them (pipelined,
  1,000 requests per write).
* ``failover``: a failover client writing in a loop to the active master of
  the dual master; the active one is killed (SIGKILL): time from the kill to
  the first write that succeeds on the other, median and maximum over
  ``--failovers`` kills (the killed server is restarted and catches up in
  between; the client stays where it is).
* ``logged_writes``: pipelined PUTs and ADDINTs to one master with an update
  log (and a replica following it), per second.
* ``restart_after_kill`` (B+ tree only): a master with ``--records`` writes
  made since its last commit is killed; the time until it listens again,
  which includes applying those writes again from its update log, next to
  the time a clean restart takes.

``--kind btree`` runs them on B+ tree databases (``.tcb``, records as
key/value pairs) instead of tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bundled import server_env  # noqa: E402
from doqu_tyrant.tyrant import Tyrant, TyrantError  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m doqu_tyrant.server`` on a fixed port; kill and restart."""

    def __init__(self, path: str, port: int, *args: str) -> None:
        self.cmd = [sys.executable, "-m", "doqu_tyrant.server", "--port", str(port), *args, path]
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=server_env(), cwd=os.path.dirname(self.cmd[-1]) or None)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise SystemExit(f"the server did not start: {line!r}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self._close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


SUFFIX = {"table": ".tct", "btree": ".tcb"}
KIND = "table"


def db(directory: str, name: str) -> str:
    return os.path.join(directory, name + SUFFIX[KIND])


def dual_master(directory: str) -> tuple[Server, Server]:
    pa, pb = free_port(), free_port()
    a = Server(db(directory, "a"), pa, "--sid", "1", "--ulog",
               os.path.join(directory, "alog"), "--master", f"127.0.0.1:{pb}")
    b = Server(db(directory, "b"), pb, "--sid", "2", "--ulog",
               os.path.join(directory, "blog"), "--master", f"127.0.0.1:{pa}")
    return a, b


def put_records(t: Tyrant, records: int, prefix: str = "r") -> None:
    """``records`` records, one request each, pipelined 1,000 at a time."""
    for base in range(0, records, 1000):
        with t.pipeline() as pipe:
            for i in range(base, min(base + 1000, records)):
                if KIND == "table":
                    pipe.table_put(f"{prefix}{i}", {"name": f"user {i}", "age": str(i % 90)})
                else:
                    pipe.put(f"{prefix}{i}", f"user {i}")
            pipe.execute()


def emit(line: dict[str, object]) -> None:
    line.setdefault("kind", KIND)
    print(json.dumps(line), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def replication_delay(samples: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        a, b = dual_master(directory)
        try:
            with Tyrant(*a.address, timeout=10) as ta, Tyrant(*b.address, timeout=10) as tb:
                ta.put("warm", "up")
                deadline = time.monotonic() + 30
                while tb.get("warm") is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                delays = []
                for i in range(samples):
                    key = f"d{i}"
                    start = time.perf_counter()
                    ta.put(key, "x")
                    while tb.get(key) is None:
                        pass
                    delays.append((time.perf_counter() - start) * 1000)
            emit({"benchmark": "replication_delay", "samples": samples,
                  "median_ms": round(statistics.median(delays), 3),
                  "p99_ms": round(percentile(delays, 0.99), 3),
                  "max_ms": round(max(delays), 3)})
        finally:
            a.stop()
            b.stop()


def catch_up(records: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        master = Server(db(directory, "m"), free_port(), "--sid", "1", "--ulog",
                        os.path.join(directory, "mlog"))
        replica: Server | None = None
        try:
            with Tyrant(*master.address, timeout=60) as m:
                # the rate at which a client can feed the master the entries the
                # replica applies
                start = time.perf_counter()
                put_records(m, records)
                write_s = time.perf_counter() - start
                replica = Server(db(directory, "r"), free_port(), "--sid", "2",
                                 "--master", f"127.0.0.1:{master.port}")
                start = time.perf_counter()  # from its "listening" line
                with Tyrant(*replica.address, timeout=60) as r:
                    while r.rnum() < records:
                        time.sleep(0.005)
                catch_s = time.perf_counter() - start
            rate, client_rate = records / catch_s, records / write_s
            emit({"benchmark": "catch_up", "records": records, "seconds": round(catch_s, 3),
                  "records_per_s": round(rate, 1),
                  "client_pipelined_puts_per_s": round(client_rate, 1),
                  "ratio_catch_up_to_client_writes": round(rate / client_rate, 3)})
        finally:
            master.stop()
            if replica is not None:
                replica.stop()


def failover(kills: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        a, b = dual_master(directory)
        servers = {a.port: a, b.port: b}
        times = []
        try:
            with Tyrant(servers=[a.address, b.address], timeout=5, retry_interval=0.5) as g:
                for n in range(kills):
                    victim = servers[g.port]
                    stop = threading.Event()
                    killed_at: list[float] = []

                    def kill(victim: Server = victim, killed_at: list[float] = killed_at) -> None:
                        time.sleep(0.2)
                        killed_at.append(time.perf_counter())
                        victim.kill()

                    killer = threading.Thread(target=kill)
                    killer.start()
                    i = 0
                    while not stop.is_set():
                        i += 1
                        try:
                            g.put(f"f{n}-{i}", "x")
                        except TyrantError:
                            continue
                        if killed_at and g.port != victim.port:
                            times.append((time.perf_counter() - killed_at[0]) * 1000)
                            stop.set()
                    killer.join()
                    victim.start()  # it catches up from the other while we go on
                    time.sleep(0.5)
            emit({"benchmark": "failover", "kills": kills,
                  "median_ms": round(statistics.median(times), 3),
                  "max_ms": round(max(times), 3)})
        finally:
            a.stop()
            b.stop()


def logged_writes(records: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        master = Server(db(directory, "m"), free_port(), "--sid", "1", "--ulog",
                        os.path.join(directory, "mlog"))
        replica = Server(db(directory, "r"), free_port(), "--sid", "2",
                         "--master", f"127.0.0.1:{master.port}")
        try:
            with Tyrant(*master.address, timeout=60) as m:
                put_records(m, 1000, "warm")
                start = time.perf_counter()
                put_records(m, records)
                puts_s = time.perf_counter() - start
                start = time.perf_counter()
                for base in range(0, records, 1000):
                    with m.pipeline() as pipe:
                        for _ in range(min(1000, records - base)):
                            pipe.addint("counter", 1)
                        pipe.execute()
                addint_s = time.perf_counter() - start
            emit({"benchmark": "logged_writes", "records": records,
                  "puts_per_s": round(records / puts_s, 1),
                  "addints_per_s": round(records / addint_s, 1)})
        finally:
            master.stop()
            replica.stop()


def restart_after_kill(records: int) -> None:
    if KIND != "btree":
        return
    with tempfile.TemporaryDirectory() as directory:
        master = Server(db(directory, "m"), free_port(), "--sid", "1", "--ulog",
                        os.path.join(directory, "mlog"), "--commit-interval", "3600")
        try:
            with Tyrant(*master.address, timeout=60) as m:
                put_records(m, records)
            master.kill()
            start = time.perf_counter()
            master.start()
            after_kill_s = time.perf_counter() - start
            with Tyrant(*master.address, timeout=60) as m:
                kept = m.rnum()
            master.stop()
            start = time.perf_counter()
            master.start()
            clean_s = time.perf_counter() - start
            emit({"benchmark": "restart_after_kill", "writes_since_commit": records,
                  "records_after_restart": kept, "seconds": round(after_kill_s, 3),
                  "clean_restart_seconds": round(clean_s, 3)})
        finally:
            master.stop()


def main() -> None:
    global KIND
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--kind", choices=sorted(SUFFIX), default="table")
    parser.add_argument("--only", choices=["replication_delay", "catch_up", "failover",
                                           "logged_writes", "restart_after_kill"],
                        action="append", help="run only these (repeatable)")
    args = parser.parse_args()
    KIND = args.kind
    runs = {
        "replication_delay": lambda: replication_delay(args.samples),
        "catch_up": lambda: catch_up(args.records),
        "failover": lambda: failover(args.failovers),
        "logged_writes": lambda: logged_writes(args.records),
        "restart_after_kill": lambda: restart_after_kill(args.records),
    }
    for name, run in runs.items():
        if args.only is None or name in args.only:
            run()


if __name__ == "__main__":
    main()
