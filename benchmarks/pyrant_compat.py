"""pyrant compatibility layer vs the native client doing the same work.

    python benchmarks/pyrant_compat.py                  # starts the bundled server
    python benchmarks/pyrant_compat.py --url tyrant://127.0.0.1:1978

One JSON object per operation: throughput of ``pyrant.Tyrant`` and of the
native :class:`doqu_tyrant.tyrant.Tyrant` (operations per second, median of
``--rounds`` alternating rounds) and their ratio (pyrant / native):

* ``setitem``: ``t[k] = {...}`` vs ``table_put``;
* ``getitem``: ``t[k]`` vs ``table_get`` (pyrant reads with GET and parses);
* ``multi_set``: 1,000 records per call vs ``putlist``;
* ``query``: ``t.query.filter(...)[:]`` over 5,000 records (matching half:
  one search, then MGET in chunks of 1,000) vs ``query.filter(...).items()``
  (one search with ``get``);
* ``keys``: ``t.keys()`` (ITERNEXT, pipelined) vs ``query.keys()``.

The database is vanished before and after: do not point ``--url`` at data
you want to keep.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundled import bundled_server  # noqa: E402

import pyrant  # noqa: E402
from doqu_tyrant.tyrant import Tyrant, parse_url  # noqa: E402


def record(i: int) -> dict[str, str]:
    return {"name": f"person {i}", "age": str(i % 90), "city": "tokyo" if i % 2 else "osaka"}


def rate(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    count = run()
    return count / (time.perf_counter() - start)


def compare(name: str, ours: Callable[[], int], native: Callable[[], int], rounds: int) -> None:
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(rate(ours))
        theirs.append(rate(native))
    ratio = statistics.median(m / n for m, n in zip(mine, theirs))
    print(json.dumps({"op": name, "pyrant_per_s": round(statistics.median(mine)),
                      "native_per_s": round(statistics.median(theirs)),
                      "ratio": round(ratio, 2)}), flush=True)


def run(url: str, rounds: int) -> None:
    host, port, _ = parse_url(url)
    native = Tyrant(host, port, timeout=30)
    t = pyrant.Tyrant(host, port)
    native.vanish()
    try:
        n = 2000

        def set_pyrant() -> int:
            for i in range(n):
                t[f"p{i}"] = record(i)
            return n

        def set_native() -> int:
            for i in range(n):
                native.table_put(f"p{i}", record(i))
            return n

        compare("setitem", set_pyrant, set_native, rounds)

        def get_pyrant() -> int:
            for i in range(n):
                t[f"p{i}"]
            return n

        def get_native() -> int:
            for i in range(n):
                native.table_get(f"p{i}")
            return n

        compare("getitem", get_pyrant, get_native, rounds)

        batch = {f"m{i}": record(i) for i in range(1000)}

        def mset_pyrant() -> int:
            t.multi_set(batch)
            return len(batch)

        def mset_native() -> int:
            native.putlist(batch)
            return len(batch)

        compare("multi_set", mset_pyrant, mset_native, rounds)

        native.vanish()
        native.putlist({f"q{i}": record(i) for i in range(5000)})

        def query_pyrant() -> int:
            return len(t.query.filter(city="tokyo")[:])

        def query_native() -> int:
            return len(native.query.filter(city="tokyo").items())

        compare("query", query_pyrant, query_native, rounds)
        compare("keys", lambda: len(t.keys()), lambda: len(native.query.keys()), rounds)
    finally:
        native.vanish()
        native.close()
        t.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Tyrant table database (default: start the bundled one)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.url:
        run(args.url, args.rounds)
    else:
        with bundled_server("bench.tct") as url:
            run(url, args.rounds)


if __name__ == "__main__":
    main()
