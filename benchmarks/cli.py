"""Export and import throughput of the ``doqu-tyrant`` command line.

    python benchmarks/cli.py                         # two bundled servers, 100,000 records
    python benchmarks/cli.py --records 20000
    python benchmarks/cli.py --source tyrant://a:1978 --target tyrant://b:1978

Fills the source table with ``--records`` records (8 columns, some unicode,
some empty values), then runs the command line as a separate process, as a
user would: ``export -o FILE``, ``import FILE`` into the emptied target, and
``export | import`` through a pipe. Prints one JSON line per figure with
records per second, and checks that the target ends up with every record.
Both databases are VANISHed first: do not point it at data you need.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundled import bundled_server, server_env  # noqa: E402

from doqu_tyrant.tyrant import Tyrant  # noqa: E402


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "doqu_tyrant", *args]


def env() -> dict[str, str]:
    return server_env()


@contextlib.contextmanager
def servers(source: str | None, target: str | None) -> Iterator[tuple[str, str]]:
    """The given URLs, or bundled servers on temporary table databases."""
    with contextlib.ExitStack() as stack:
        if source is None:
            source = stack.enter_context(bundled_server("source.tct"))
        if target is None:
            target = stack.enter_context(bundled_server("target.tct"))
        yield source, target


def fill(url: str, count: int) -> None:
    with Tyrant.from_url(url, timeout=60) as t:
        t.vanish()
        batch: dict[str, dict[str, str]] = {}
        for i in range(count):
            batch[f"person:{i:07d}"] = {
                "name": f"Person {i}", "age": str(i % 97), "city": ("Oslo", "Bergen", "")[i % 3],
                "born": f"19{i % 100:02d}0{1 + i % 9}1{i % 10}", "tags": "a, b, c",
                "note": "Ève Zoë 李" if i % 5 == 0 else "", "score": str(i / 7),
                "active": str(i % 2),
            }
            if len(batch) == 5000:
                t.putlist(batch)
                batch.clear()
        if batch:
            t.putlist(batch)


def timed(args: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env(), **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


def report(figure: str, count: int, seconds: float, **extra: object) -> None:
    print(json.dumps({"figure": figure, "records": count, "seconds": round(seconds, 3),
                      "records_per_s": round(count / seconds), **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--source", help="tyrant:// URL of the source table server")
    parser.add_argument("--target", help="tyrant:// URL of the target table server")
    args = parser.parse_args()
    count = args.records
    with servers(args.source, args.target) as (source, target), \
            tempfile.TemporaryDirectory() as work:
        fill(source, count)
        dump = os.path.join(work, "dump.jsonl")
        seconds = timed(cli("--url", source, "-q", "export", "-o", dump))
        report("export to a file", count, seconds, mib=round(os.path.getsize(dump) / 2**20, 1))

        with Tyrant.from_url(target, timeout=60) as t:
            t.vanish()
        seconds = timed(cli("--url", target, "-q", "import", dump))
        report("import from a file", count, seconds)

        with Tyrant.from_url(target, timeout=60) as t:
            t.vanish()
        start = time.perf_counter()
        export = subprocess.Popen(cli("--url", source, "export"), stdout=subprocess.PIPE,
                                  env=env())
        subprocess.run(cli("--url", target, "import"), stdin=export.stdout, check=True,
                       env=env())
        assert export.stdout is not None
        export.stdout.close()
        if export.wait() != 0:
            raise SystemExit("export failed")
        report("export | import", count, time.perf_counter() - start)

        with Tyrant.from_url(source) as a, Tyrant.from_url(target) as b:
            if a.rnum() != b.rnum() or a.getlist(["person:0000005"]) != b.getlist(
                    ["person:0000005"]):
                raise SystemExit("the target differs from the source")


if __name__ == "__main__":
    main()
