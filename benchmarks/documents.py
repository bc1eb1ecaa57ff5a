"""Document-layer benchmarks: doqu_tyrant vs the raw client doing the same work.

    python benchmarks/documents.py                  # starts the bundled server
    python benchmarks/documents.py --url tyrant://127.0.0.1:1978

Each line of output is one JSON object: the operation, the throughput of the
document layer and of the raw client (operations per second, median of
``--rounds`` alternating rounds), their ratio (document / raw, the median of
the per-round ratios) and the client CPU time per operation of each side:

* ``save``: ``Document.save`` with a generated key (validate, convert,
  ``genuid`` + ``putkeep``) vs ``genuid`` + ``table_putkeep`` of the same
  text record; ``save_update``: saving a loaded document again
  (``put``) vs ``table_put``. Target >= 0.8.
* ``get``: ``db.get(Person, pk)`` vs ``table_get(pk)``. Target >= 0.8.
* ``get_many``: 1,000 keys per call vs ``getlist`` of the same keys.
* ``materialise``: ``list(db.find(Person).where(...))`` over a 10k-record
  table (matching half of it) vs ``t.query.filter(...).items()``, and
  ``materialise_slice`` (``q[:]``, one request). Target >= 0.5.
* ``count``: ``find(...).where(...).count()`` vs ``query.filter(...).count()``.
* ``save_many``: ``db.save_many`` of ``--bulk`` (10k) new documents vs the raw
  client's ``putlist`` of the same text records (target >= 0.7), and
  ``save_many_vs_loop``: the same ``save_many`` vs a loop of ``save()``;
  ``validate_convert_vs_putlist``: only the validation and conversion that
  ``save_many`` does before sending anything (the class's generated encoder),
  vs the whole raw ``putlist`` (a bound on what ``save_many`` can reach).

The database is vanished before and after the run: do not point ``--url``
at data you want to keep.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundled import bundled_server  # noqa: E402

from doqu import Document  # noqa: E402
from doqu.validators import Length, Required  # noqa: E402
from doqu_tyrant import StorageAdapter  # noqa: E402
from doqu_tyrant.encoder import encoder_for  # noqa: E402
from doqu_tyrant.tyrant import Tyrant  # noqa: E402


class Person(Document):
    structure = {
        "name": str,
        "age": int,
        "height": float,
        "balance": Decimal,
        "born": datetime.date,
        "tags": list,
        "active": bool,
    }
    validators = {"name": [Required(), Length(max=100)]}


def person(i: int) -> Person:
    return Person(name=f"person {i}", age=i % 90, height=1.5 + (i % 50) / 100,
                  balance=Decimal(i) / 4, born=datetime.date(1950 + i % 60, 1 + i % 12, 1),
                  tags=["a", "b"] if i % 2 else [], active=bool(i % 3))


def record(i: int) -> dict[str, str]:
    """The text record ``person(i)`` is stored as (what the raw client writes)."""
    return {"name": f"person {i}", "age": str(i % 90), "height": repr(1.5 + (i % 50) / 100),
            "balance": str(Decimal(i) / 4), "born": f"{1950 + i % 60:04d}{1 + i % 12:02d}01",
            "tags": "a, b" if i % 2 else "", "active": "1" if i % 3 else "0"}


def timed(run: Callable[[], None], setup: Callable[[], None] | None) -> tuple[float, float]:
    """Wall-clock and process (client CPU) seconds of one ``run``."""
    if setup is not None:
        setup()
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(name: str, count: int, rounds: int, doc: Callable[[], None], raw: Callable[[], None],
            setup: Callable[[], None] | None = None, target: float | None = None,
            **extra: object) -> None:
    """Run both sides alternately ``rounds`` times; report medians.

    The ratio is the median of the per-round ratios (each pair measured back to
    back, so load from other processes hits both sides alike); the CPU figures
    are this process's time per operation (the server is another process).
    """
    pairs = []
    for _ in range(rounds):
        pairs.append((timed(doc, setup), timed(raw, setup)))
    ratio = statistics.median(r[0] / d[0] for d, r in pairs)
    doc_wall = statistics.median(d[0] for d, _ in pairs)
    raw_wall = statistics.median(r[0] for _, r in pairs)
    line: dict[str, object] = {
        "op": name, "n": count,
        "doc_ops_per_s": round(count / doc_wall), "raw_ops_per_s": round(count / raw_wall),
        "ratio": round(ratio, 3),
        "doc_cpu_us_per_op": round(statistics.median(d[1] for d, _ in pairs) / count * 1e6, 1),
        "raw_cpu_us_per_op": round(statistics.median(r[1] for _, r in pairs) / count * 1e6, 1),
    }
    if target is not None:
        line["target"] = target
        line["ok"] = ratio >= target
    line.update(extra)
    print(json.dumps(line), flush=True)


def bulk(t: Tyrant, db: StorageAdapter, rounds: int, n: int) -> None:
    """``save_many`` of ``n`` new documents vs ``putlist`` and vs a loop of ``save()``."""
    texts = {str(i + 1): record(i) for i in range(n)}
    batches: list[list[Person]] = []

    def fresh() -> None:
        t.vanish()
        batches[:] = [[person(i) for i in range(n)]]  # new, unsaved documents each round

    def save_many() -> None:
        keys = db.save_many(batches[0])
        assert len(keys) == n

    def putlist() -> None:
        t.putlist(texts)

    def save_loop() -> None:
        for doc in batches[0]:
            doc.save(db)

    def convert_only() -> None:  # what save_many does before sending anything
        encode = encoder_for(Person, db.converter_manager)
        assert encode is not None
        for doc in batches[0]:
            if encode(doc, db) is None:  # (the general path; not taken by these documents)
                doc.validate()
                db._record_data(doc._to_storage(db))

    compare("save_many", n, rounds, save_many, putlist, setup=fresh, target=0.7)
    compare("save_many_vs_loop", n, max(3, rounds // 3), save_many, save_loop, setup=fresh)
    # For reference: validating and converting alone, vs the whole raw putlist.
    compare("validate_convert_vs_putlist", n, rounds, convert_only, putlist, setup=fresh)


def main(url: str, rounds: int, records: int, bulk_size: int = 10_000,
         only_bulk: bool = False) -> None:
    t = Tyrant.from_url(url, timeout=60)
    db = StorageAdapter(url=url, timeout=60)
    t.vanish()
    bulk(t, db, rounds, bulk_size)
    if only_bulk:
        t.vanish()
        return

    n = 2000
    documents = [person(i) for i in range(n)]
    texts = [record(i) for i in range(n)]

    def save_docs() -> None:
        for doc in documents:
            doc._pk = None  # a new record each time
            doc._storage = None
            doc.save(db)

    def save_raw() -> None:
        for rec in texts:
            while not t.table_putkeep(str(t.genuid()), rec):
                pass

    compare("save", n, rounds, save_docs, save_raw, setup=t.vanish, target=0.8)

    t.vanish()
    keys = [person(i).save(db) for i in range(n)]
    loaded = db.get_many(Person, keys)

    def update_docs() -> None:
        for doc in loaded:
            doc.save()

    def update_raw() -> None:
        for key, rec in zip(keys, texts):
            t.table_put(key, rec)

    compare("save_update", n, rounds, update_docs, update_raw, target=0.8)

    def get_docs() -> None:
        for key in keys:
            db.get(Person, key)

    def get_raw() -> None:
        for key in keys:
            t.table_get(key)

    compare("get", n, rounds, get_docs, get_raw, target=0.8)

    batch = keys[:1000]
    calls = 20

    def get_many_docs() -> None:
        for _ in range(calls):
            db.get_many(Person, batch)

    def get_many_raw() -> None:
        for _ in range(calls):
            t.getlist(batch)

    compare("get_many", calls * len(batch), rounds, get_many_docs, get_many_raw,
            keys_per_call=len(batch))

    t.vanish()
    chunk = 1000
    for start in range(0, records, chunk):
        t.putlist({str(i + 1): record(i) for i in range(start, min(records, start + chunk))})
    matched = t.query.filter(name__exists=True, age__gte=45).count()

    def materialise_docs() -> None:
        found = list(db.find(Person).where(age__gte=45))
        assert len(found) == matched

    def materialise_slice() -> None:
        found = db.find(Person).where(age__gte=45)[:]
        assert len(found) == matched

    def materialise_raw() -> None:
        found = t.query.filter(name__exists=True, age__gte=45).items()
        assert len(found) == matched

    compare("materialise", matched, rounds, materialise_docs, materialise_raw, target=0.5,
            table_records=records)
    compare("materialise_slice", matched, rounds, materialise_slice, materialise_raw,
            target=0.5, table_records=records)

    queries = 50

    def count_docs() -> None:
        for _ in range(queries):
            db.find(Person).where(age__gte=45).count()

    def count_raw() -> None:
        for _ in range(queries):
            t.query.filter(name__exists=True, age__gte=45).count()

    compare("count", queries, rounds, count_docs, count_raw, table_records=records)

    t.vanish()
    t.close()
    db.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Tyrant server to use (its database is emptied)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--bulk", type=int, default=10_000, help="documents per save_many")
    parser.add_argument("--only-bulk", action="store_true", help="run only the bulk lines")
    args = parser.parse_args()
    if args.url:
        main(args.url, args.rounds, args.records, args.bulk, args.only_bulk)
    else:
        with bundled_server("bench.tct") as url:
            main(url, args.rounds, args.records, args.bulk, args.only_bulk)
