"""Sharding benchmarks: one server vs four shards holding the same records,
measured side by side in one run, as JSON lines.

    python benchmarks/sharding.py [--records 100000]

Starts six bundled table servers (one alone, four shards, a fifth shard):

(a) scatter-gather overhead: the same queries on the single server and on
    the four shards holding the same records (time per query, ratio
    sharded / single, below 1 when the shards answer faster; and the CPU the
    client spent, which is what the merge adds; and the slowest shard's time
    for its share when asked alone, what four machines would take);
(b) bulk throughput: ``putlist`` and ``getlist`` of 1,000 records per call
    over four shards vs one server (records per second, ratio);
(c) rebalancing four shards to five: the share of records moved and the
    rate.

Every server is a separate process; on a machine with few cores the four
shards compete for them (and with anything else running), so the sharded
figures are a lower bound of what four machines give.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundled import bundled_server  # noqa: E402

from doqu_tyrant.tyrant import ShardedTyrant, Tyrant  # noqa: E402
from doqu_tyrant.tyrant.rebalance import rebalance  # noqa: E402

BATCH = 1000


def emit(**fields: object) -> None:
    for name, value in list(fields.items()):
        if isinstance(value, float):
            fields[name] = round(value, 4 if value < 1 else 1)
    print(json.dumps(fields), flush=True)


def best(func: Callable[[], object], rounds: int) -> tuple[float, float]:
    """The fastest of ``rounds`` runs, and the least client CPU (this process,
    all its threads) one took, in seconds."""
    times, cpus = [], []
    for _ in range(rounds):
        started, cpu = time.perf_counter(), time.process_time()
        func()
        times.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(times), min(cpus)


def records(n: int) -> dict[str, dict[str, str]]:
    return {f"u{i}": {"name": f"name{i % 1000}", "age": str(i % 100),
                      "score": f"{(i * 7919) % 100000 / 100:.2f}", "city": f"c{i % 37}"}
            for i in range(n)}


def load(client: Tyrant | ShardedTyrant, data: dict[str, dict[str, str]]) -> float:
    """Put ``data`` in batches; records per second."""
    items = list(data.items())
    started = time.perf_counter()
    for i in range(0, len(items), BATCH):
        client.putlist(items[i:i + BATCH])
    return len(items) / (time.perf_counter() - started)


def read(client: Tyrant | ShardedTyrant, keys: list[str]) -> float:
    started = time.perf_counter()
    for i in range(0, len(keys), BATCH):
        client.getlist(keys[i:i + BATCH])
    return len(keys) / (time.perf_counter() - started)


QUERIES: dict[str, Callable[[Tyrant | ShardedTyrant], object]] = {
    "count age >= 50": lambda t: t.query.filter(age__gte=50).count(),
    "top 10 by score": lambda t: t.query.order_by("-score", numeric=True)[:10].keys(),
    "name = name7, all columns": lambda t: t.query.filter(name="name7").items(),
    "page 5 of 20 by key, age < 10": lambda t: t.query.filter(age__lt=10).order_by(
        "")[80:100].keys(),
    "every key of age < 10 (10%)": lambda t: t.query.filter(age__lt=10).keys(),
    "union of two cities, sorted": lambda t: (t.query.filter(city="c1")
                                               | t.query.filter(city="c2")).order_by(
        "score", numeric=True).keys(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = records(args.records)
    keys = list(data)
    emit(bench="setup", records=args.records, cpus=os.cpu_count(),
         note="every server is a local process: the shards share this machine's cores")
    with ExitStack() as stack:
        urls = [stack.enter_context(bundled_server(f"s{i}.tct")) for i in range(6)]
        single = Tyrant.from_url(urls[0], timeout=120)
        four = ShardedTyrant(urls[1:5], timeout=120)
        five = ShardedTyrant(urls[1:6], timeout=120)
        for client in (single, five):
            client.vanish()

        # (b) bulk throughput, which also loads the records
        put1, put4 = load(single, data), load(four, data)
        emit(bench="bulk putlist", per_call=BATCH, single_per_s=put1, sharded4_per_s=put4,
             ratio=put4 / put1)
        get1 = max(read(single, keys) for _ in range(2))
        get4 = max(read(four, keys) for _ in range(2))
        emit(bench="bulk getlist", per_call=BATCH, single_per_s=get1, sharded4_per_s=get4,
             ratio=get4 / get1)

        # (a) scatter-gather overhead
        for name, run in QUERIES.items():
            assert sorted(map(str, _as_list(run(single)))) == sorted(
                map(str, _as_list(run(four)))), name
            t1, cpu1 = best(lambda run=run: run(single), args.rounds)
            t4, cpu4 = best(lambda run=run: run(four), args.rounds)
            alone = max(best(lambda run=run, s=s: run(s), args.rounds)[0] for s in four.shards)
            emit(bench="query", query=name, single_ms=t1 * 1000, sharded4_ms=t4 * 1000,
                 ratio=t4 / t1, slowest_shard_alone_ms=alone * 1000,
                 client_cpu_single_ms=cpu1 * 1000, client_cpu_sharded4_ms=cpu4 * 1000)

        # (c) four shards to five
        report = rebalance(four, five)
        emit(bench="rebalance 4 -> 5", scanned=report.scanned, moved=report.moved,
             fraction=report.fraction, seconds=report.seconds,
             scanned_per_s=report.scanned / report.seconds,
             moved_per_s=report.moved / report.seconds)
        assert five.rnum() == args.records
        for client in (single, five):
            client.vanish()
            client.close()
        four.close()


def _as_list(result: object) -> list[object]:
    return result if isinstance(result, list) else [result]


if __name__ == "__main__":
    main()
