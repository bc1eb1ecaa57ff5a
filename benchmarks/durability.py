"""The cost of the server's durability safeguards, side by side in one run.

    python benchmarks/server.py --durability      # or: python benchmarks/durability.py

Each figure runs the same work on a plain :class:`Cabinet` (what ttserver
does) and on the :class:`DurableCabinet` the server opens, alternating the
two ``--rounds`` times and keeping each one's best, and prints the ratio
durable/plain of the throughputs (> 1: the safeguard is faster):

* B+ tree writes in pipelined batches of 1,000 (one ``putmany`` each, as
  a pipelined run of PUTs is handled), random keys, with the periodic commit
  of the standing transaction every second; then the same with a SYNC after
  every 10,000 records, and table-style ``putlist`` batches.
* Hash PUTKEEP on existing keys, one call each: every call fails, so every
  call pays the fatal-state check.
* The start-up index rebuild of a table of 300,000 records after an unclean
  shutdown, against a clean open of the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from doqu_tyrant.server.cabinet import Cabinet  # noqa: E402
from doqu_tyrant.server.durable import DurableCabinet  # noqa: E402

COMMIT_INTERVAL = 1.0


def emit(**line: object) -> None:
    print(json.dumps(line), flush=True)


def timed_writes(db: Cabinet, batches: list[list[tuple[bytes, bytes]]], sync_every: int,
                 how: str) -> float:
    """Seconds to write ``batches``; commits every second like the server's timer."""
    commit = db.commit if isinstance(db, DurableCabinet) else None
    start = last = time.perf_counter()
    written = 0
    for batch in batches:
        if how == "putlist":
            db.misc(b"putlist", [x for pair in batch for x in pair])
        else:
            db.putmany(batch)
        written += len(batch)
        if sync_every and written % sync_every == 0:
            db.sync()
        now = time.perf_counter()
        if commit is not None and now - last >= COMMIT_INTERVAL:
            commit()
            last = now
    db.sync()
    return time.perf_counter() - start


def side_by_side(name: str, per: str, count: int, rounds: int,
                 run: Callable[[type[Cabinet], str], float]) -> None:
    best: dict[str, float] = {}
    for _ in range(rounds):
        for label, cls in (("plain", Cabinet), ("durable", DurableCabinet)):
            directory = tempfile.mkdtemp(prefix="tyrant-bench-")
            try:
                seconds = run(cls, directory)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            best[label] = max(best.get(label, 0.0), count / seconds)
    emit(benchmark=name, ratio_durable_to_plain=round(best["durable"] / best["plain"], 3),
         **{f"durable_{per}s_per_sec": round(best["durable"]),
            f"plain_{per}s_per_sec": round(best["plain"])}, rounds=rounds)


def btree_writes(records: int, rounds: int) -> None:
    keys = [b"k%09d" % i for i in range(records)]
    random.Random(7).shuffle(keys)
    batches = [[(k, b"value of " + k) for k in keys[i:i + 1000]] for i in range(0, records, 1000)]
    for name, sync_every, how in (("btree_put_batches", 0, "put"),
                                  ("btree_put_sync_every_10k", 10_000, "put"),
                                  ("btree_putlist", 0, "putlist")):
        def run(cls: type[Cabinet], directory: str, sync_every: int = sync_every,
                how: str = how) -> float:
            db = cls(os.path.join(directory, "bench.tcb"))
            try:
                return timed_writes(db, batches, sync_every, how)
            finally:
                db.close()

        side_by_side(name, "record", records, rounds, run)


def hash_failures(count: int, rounds: int) -> None:
    items = [(b"k%07d" % i, b"v") for i in range(count)]

    def run(cls: type[Cabinet], directory: str) -> float:
        db = cls(os.path.join(directory, "bench.tch"))
        try:
            db.putmany(items)
            putkeep = db.putkeep
            start = time.perf_counter()
            for key, value in items:
                putkeep(key, value)  # fails: the key exists
            return time.perf_counter() - start
        finally:
            db.close()

    side_by_side("hash_putkeep_failing", "request", count, rounds, run)


def table_rebuild(records: int) -> None:
    directory = tempfile.mkdtemp(prefix="tyrant-bench-")
    try:
        path = os.path.join(directory, "people.tct")
        with Cabinet(path + "#idx=age:dec#idx=name:lex") as db:
            for i in range(0, records, 10_000):
                db.putmany([(b"p%07d" % j, b"name\0user %d\0age\0%d\0city\0oslo" % (j, j % 90))
                            for j in range(i, min(records, i + 10_000))])
        start = time.perf_counter()
        DurableCabinet(path).close()
        clean = time.perf_counter() - start
        for label in ("2_indexes", "1_index"):
            with open(path, "r+b") as f:  # what a kill -9 leaves: the "open" flag set
                f.seek(33)
                flags = f.read(1)[0]
                f.seek(33)
                f.write(bytes((flags | 1,)))
            db = DurableCabinet(path)
            emit(benchmark=f"table_index_rebuild_{label}", records=records,
                 rebuild_seconds=round(db.rebuild_seconds or 0.0, 3),
                 clean_open_seconds=round(clean, 3))
            db.misc(b"setindex", [b"name", b"9999"])  # the next round: one index
            db.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="B+ tree records")
    parser.add_argument("--table-records", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    btree_writes(args.records, args.rounds)
    hash_failures(args.records, args.rounds)
    table_rebuild(args.table_records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
